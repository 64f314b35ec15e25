"""Glue between :class:`a3cs_plugin.hardware.spec.Spec` and the mapper's :class:`MapSpace`."""
from __future__ import annotations

import numpy as np

from ..spec.constraints import parse_constraints, spec_constraints
from .space import MapSpace

__all__ = ["build_mapspace", "spec_label", "spec_metrics", "constraint_targets", "mapping_to_list"]


def spec_label(spec) -> str:
    """The spec for error messages: its files (comma-separated), else the problem name."""
    for attr in ("source", "sources", "files", "paths", "name"):
        v = getattr(spec, attr, None)
        if v:
            if isinstance(v, (list, tuple)):
                v = ", ".join(str(x) for x in v)
            return str(v)
    prob = getattr(spec, "problem", None)
    return str(getattr(prob, "name", None) or "spec")


def constraint_targets(spec) -> list:
    """All constraint entries of ``spec`` (its ``constraints`` list plus the per-level
    architecture constraints not already in it), as the constraint parser reads them."""
    return spec_constraints(spec)


def spec_metrics(spec) -> tuple:
    """``optimization_metrics`` of the spec's mapper settings (empty tuple if none)."""
    mapper = getattr(spec, "mapper", None)
    if mapper is None and isinstance(getattr(spec, "raw", None), dict):
        mapper = spec.raw.get("mapper")
    if mapper is None:
        return ()
    if not isinstance(mapper, dict):
        mapper = getattr(mapper, "__dict__", {})
    for key in ("optimization_metrics", "optimization_metric", "optimization-metrics"):
        v = mapper.get(key)
        if v:
            return tuple([v] if isinstance(v, str) else v)
    return ()


def _parallel_bypass(spec) -> dict:
    """Implicit bypasses of v0.4 ``!Parallel`` branches: level name -> data spaces it bypasses.

    The architecture loader records each level's branch (``Level.branch_keep``); as Timeloop's
    front end does, a component in a branch bypasses every data space its branch does not keep.
    """
    spaces = list(spec.problem.ds_names)
    out: dict = {}
    for lv in spec.arch.levels:
        by = lv.branch_bypass(spaces) if hasattr(lv, "branch_bypass") else set()
        if by:
            out[lv.name] = by
    return out


def build_mapspace(spec) -> MapSpace:
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
        if getattr(lv, "is_dummy", False):
            lc.t_fixed[lc.t_fixed == 0] = 1
            lc.keep[lc.keep == -1] = 0
            if not lc.t_prefix and not lc.t_suffix and (lc.t_fixed == 1).all():
                lc.t_prefix = list(range(len(dims)))     # all loops are 1: order is irrelevant
    fanx = [int(getattr(lv, "fanout_x", 1) or 1) for lv in arch.levels]
    fany = [int(getattr(lv, "fanout_y", 1) or 1) for lv in arch.levels]
    if cons and fanx[0] * fany[0] <= 1:
        # Timeloop's mapper keeps the first tiling level (the innermost storage level's temporal
        # loops when nothing fans out below it) in canonical order, whatever the constraints say
        cons[0].t_prefix, cons[0].t_suffix = list(range(len(dims))), []
    return MapSpace(spec_label(spec), dims, bounds, names, spaces, fanx, fany, cons, min_par)


def mapping_to_list(spec, mapping) -> list:
    """Timeloop v0.4 mapping list (outermost level first) of a model ``Mapping``."""
    from ..spec.mapping import dump_mapping
    return dump_mapping(spec, mapping)
