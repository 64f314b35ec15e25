"""Analytical Timeloop-compatible model: fixed mapping -> cycles, energy, per-level statistics."""
from .batch import MappingBatch, batch_from_mapping, evaluate_batch, mapping_from_batch
from .engine import evaluate_arrays, resolve_mapping, set_timeloop_semantics, validate_mapping
from .result import Result, evaluate, result_from_arrays

__all__ = ["MappingBatch", "batch_from_mapping", "evaluate_batch", "mapping_from_batch", "evaluate",
           "Result", "evaluate_arrays", "resolve_mapping", "validate_mapping", "result_from_arrays",
           "set_timeloop_semantics"]
