"""Glue between :class:`a3cs_plugin.hardware.spec.Spec` and the mapper's :class:`MapSpace`."""
from __future__ import annotations

import numpy as np

from ..spec import Spec
from ..spec.constraints import parse_constraints, spec_constraints
from .mapspace import MapSpace

__all__ = ["build_mapspace", "spec_label", "spec_metrics", "constraint_targets"]


def spec_label(spec: Spec) -> str:
    """The spec for error messages: its source files (comma-separated), or ``<spec>``."""
    return spec.source


def constraint_targets(spec: Spec) -> list:
    """All constraint entries of ``spec`` (its ``constraints`` list plus the per-level
    architecture constraints not already in it), as the constraint parser reads them."""
    return spec_constraints(spec)


def spec_metrics(spec: Spec) -> tuple:
    """``optimization_metrics`` of the spec's mapper settings (or the older spelling
    ``optimization_metric``, the two keys :class:`~a3cs_plugin.hardware.spec.validate.MapperSettings`
    accepts); an empty tuple if neither is set."""
    v = spec.mapper.get("optimization_metrics") or spec.mapper.get("optimization_metric")
    if not v:
        return ()
    return tuple([v] if isinstance(v, str) else v)


def _parallel_bypass(spec: Spec) -> dict:
    """Implicit bypasses of v0.4 ``!Parallel`` branches: level name -> data spaces it bypasses.

    The architecture loader records each level's branch (``Level.branch_keep``); as Timeloop's
    front end does, a component in a branch bypasses every data space its branch does not keep.
    """
    spaces = list(spec.problem.ds_names)
    out: dict = {}
    for lv in spec.arch.levels:
        by = lv.branch_bypass(spaces)
        if by:
            out[lv.name] = by
    return out


def build_mapspace(spec: Spec) -> MapSpace:
    """The map space of ``spec`` (levels, fan-outs and constraints as Timeloop builds them).

    Dummy levels of spatial containers (``inter_<name>_spatial``) keep nothing and have no temporal
    loops, as Timeloop's front end constrains them; components of a v0.4 ``!Parallel`` branch
    bypass what the branch does not keep; the innermost level's loop order is canonical when it
    has no fan-out below it (Timeloop's mapper ignores permutation constraints there).  Constraint targets may name a container (its
    dummy level is meant) and the compute level (ignored: it has no loops of its own).
    """
    arch, prob = spec.arch, spec.problem
    dims = list(prob.dimensions)
    bounds = np.array(prob.sizes, dtype=np.int64)
    spaces = list(prob.ds_names)
    names = [lv.name for lv in arch.levels]
    cons, min_par = parse_constraints(spec).map_space()
    implicit = _parallel_bypass(spec)
    for lv, lc in zip(arch.levels, cons):
        for ds in implicit.get(lv.name, ()):
            si = spaces.index(ds)
            if lc.keep[si] == -1:
                lc.keep[si] = 0
        if lv.is_dummy:
            lc.t_fixed[lc.t_fixed == 0] = 1
            lc.keep[lc.keep == -1] = 0
            if not lc.t_prefix and not lc.t_suffix and (lc.t_fixed == 1).all():
                lc.t_prefix = list(range(len(dims)))     # all loops are 1: order is irrelevant
    fanx = [lv.fanout_x for lv in arch.levels]
    fany = [lv.fanout_y for lv in arch.levels]
    if cons and fanx[0] * fany[0] <= 1:
        # Timeloop's mapper keeps the first tiling level (the innermost storage level's temporal
        # loops when nothing fans out below it) in canonical order, whatever the constraints say
        cons[0].t_prefix, cons[0].t_suffix = list(range(len(dims))), []
    return MapSpace(spec_label(spec), dims, bounds, names, spaces, fanx, fany, cons, min_par)

