"""Vectorised Timeloop-style evaluation of many mappings at once.

Index conventions (all taken from the :class:`~a3cs_plugin.hardware.spec.Spec`):

* ``L`` -- storage levels, ``spec.arch.levels``, **innermost first**: index 0 is the storage level
  right above the compute unit (Timeloop's "Level 1"), index ``L-1`` the outermost (usually DRAM).
  Dummy levels created for spatial containers (``inter_<name>_spatial``) are levels too.
* ``D`` -- problem dimensions in ``spec.problem.dimensions`` order.
* ``S`` -- data spaces in ``spec.problem.data_spaces`` order (e.g. Weights, Inputs, Outputs).

A mapping assigns to every storage level ``l``

* ``temporal[l, d]`` -- temporal loop bound of dimension ``d`` at level ``l``;
* ``spatial_x[l, d]``, ``spatial_y[l, d]`` -- spatial loop bounds of ``d`` at level ``l`` along the
  mesh X / Y axes; these loops distribute the tile of level ``l`` over the instances of the level
  below (level ``l-1`` or, for ``l == 0``, the compute units);
* ``perm[l, :]`` -- the temporal loop order at level ``l`` as dimension indices, **innermost loop
  first** (Timeloop's permutation string order);
* ``keep[l, s]`` -- True if level ``l`` stores data space ``s`` (False = bypass).

The product over levels of ``temporal * spatial_x * spatial_y`` must equal the problem size of each
dimension.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MappingBatch", "evaluate_batch", "batch_from_mapping", "mapping_from_batch"]


@dataclass
class MappingBatch:
    """``B`` mappings for one :class:`Spec`, as integer / boolean numpy arrays (see module doc)."""

    temporal: np.ndarray   # int64 [B, L, D]
    spatial_x: np.ndarray  # int64 [B, L, D]
    spatial_y: np.ndarray  # int64 [B, L, D]
    perm: np.ndarray       # int64 [B, L, D], dimension indices, innermost loop first
    keep: np.ndarray       # bool  [B, L, S]
    # order of the spatial loops of each level, dimension indices, innermost first (the X part,
    # then the Y part, each in this order); None = dimension order.  Only link transfers use it.
    spatial_order: np.ndarray | None = None

    def __post_init__(self):
        self.temporal = np.asarray(self.temporal, dtype=np.int64)
        self.spatial_x = np.asarray(self.spatial_x, dtype=np.int64)
        self.spatial_y = np.asarray(self.spatial_y, dtype=np.int64)
        self.perm = np.asarray(self.perm, dtype=np.int64)
        self.keep = np.asarray(self.keep, dtype=bool)
        b, l, d = self.temporal.shape
        for name in ("spatial_x", "spatial_y", "perm"):
            if getattr(self, name).shape != (b, l, d):
                raise ValueError(f"MappingBatch.{name} has shape {getattr(self, name).shape}, "
                                 f"expected {(b, l, d)}")
        if self.keep.ndim != 3 or self.keep.shape[:2] != (b, l):
            raise ValueError(f"MappingBatch.keep has shape {self.keep.shape}, expected ({b}, {l}, S)")
        if self.spatial_order is not None:
            self.spatial_order = np.asarray(self.spatial_order, dtype=np.int64)
            if self.spatial_order.shape != (b, l, d):
                raise ValueError(f"MappingBatch.spatial_order has shape {self.spatial_order.shape}, "
                                 f"expected {(b, l, d)}")

    def orders(self) -> np.ndarray:
        """``spatial_order``, with the dimension order where it is not given."""
        if self.spatial_order is not None:
            return self.spatial_order
        b, l, d = self.temporal.shape
        return np.broadcast_to(np.arange(d), (b, l, d))

    def __len__(self) -> int:
        return int(self.temporal.shape[0])

    @property
    def size(self) -> int:
        return len(self)

    def take(self, index) -> "MappingBatch":
        """Sub-batch selected by an index array / slice / boolean mask."""
        return MappingBatch(self.temporal[index], self.spatial_x[index], self.spatial_y[index],
                            self.perm[index], self.keep[index],
                            None if self.spatial_order is None else self.spatial_order[index])

    @staticmethod
    def concatenate(batches: "list[MappingBatch]") -> "MappingBatch":
        out = MappingBatch(*(np.concatenate([getattr(b, f) for b in batches])
                             for f in ("temporal", "spatial_x", "spatial_y", "perm", "keep")))
        if any(b.spatial_order is not None for b in batches):
            out.spatial_order = np.concatenate([b.orders() for b in batches])
        return out


def evaluate_batch(spec, batch: MappingBatch) -> dict:
    """Evaluate every mapping of ``batch`` on ``spec``.

    Returns a dict of numpy arrays of length ``B``: ``cycles`` (float), ``energy_pJ``, ``edp``
    (energy_pJ * cycles), ``valid`` (bool: factors multiply to the problem size, spatial fan-out
    fits the mesh, every kept tile fits its buffer) and ``computes``; also ``levels_pJ`` (``[B, L+1]``,
    storage levels in ``spec.arch.levels`` order then the compute level) and ``utilization``.
    Numbers are computed for invalid mappings too (they are just not realisable).
    """
    from .engine import evaluate_batch as _impl
    return _impl(spec, batch)


def batch_from_mapping(spec, mapping=None) -> MappingBatch:
    """A batch of one holding ``mapping`` (a :class:`Mapping`; ``spec.mapping`` when None)."""
    from .engine import batch_from_mapping as _impl
    return _impl(spec, mapping)


def mapping_from_batch(spec, batch: MappingBatch, i: int):
    """The ``i``-th mapping of ``batch`` as a :class:`Mapping` (dumpable as a Timeloop mapping)."""
    from .engine import mapping_from_batch as _impl
    return _impl(spec, batch, i)
