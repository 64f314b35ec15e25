"""Timeloop-compatible mapping search (vectorised over the model's batched evaluator).

``search(spec, metric="edp", time_limit=10.0, seed=0)`` returns a :class:`MapResult` holding the
best mapping found and its model result.  The map space follows Timeloop's: perfect factorisation
of every problem dimension over the temporal loops of each storage level and the spatial (mesh X/Y)
loops of each fan-out, loop permutations and keep/bypass choices, restricted by the spec's
constraints (factors, ``<=``/``>=`` bounds, permutations, split, keep/bypass, min utilisation).
"""
from .constraints import LevelConstraints, parse_targets
from .mapspace import Genome, MapSpace
from .adapter import build_mapspace, constraint_targets
from .search import METRICS, MapResult, resolve_metric, search

__all__ = ["search", "MapResult", "MapSpace", "Genome", "build_mapspace", "constraint_targets",
           "LevelConstraints", "parse_targets", "resolve_metric", "METRICS"]
