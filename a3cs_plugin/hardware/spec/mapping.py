"""Timeloop mappings: the directive list (target/type/factors/permutation/keep/bypass), its
resolution to complete per-level loop bounds (:func:`resolve_mapping`) and the checks that need
no model (:func:`check_mapping`: factor products, fan-out vs the mesh, the outermost level keeps
everything, tiles fit the buffers and meet their ``min_utilization``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from a3cs_plugin.errors import MappingError, SpecError

from .constraints import DIRECTIVE_KEYS, directive_flags, mapping_factors, mapping_permutation
from .problem import footprint

DIRECTIVE_TYPES = ("temporal", "spatial", "dataspace", "datatype", "bypass")


@dataclass
class LevelMapping:
    """Directives for one storage level (``None`` = not specified by the user)."""

    temporal: dict | None = None        # dim -> factor
    temporal_perm: list | None = None   # innermost first
    spatial: dict | None = None
    spatial_perm: list | None = None
    split: int | None = None
    keep: set | None = None
    bypass: set | None = None
    # model flags (:data:`a3cs_plugin.hardware.spec.constraints.FLAG_KEYS`): flag -> data-space names
    flags: dict = field(default_factory=dict)


@dataclass
class Mapping:
    """A (possibly partial) mapping: ``levels[name]`` -> :class:`LevelMapping`."""

    levels: dict = field(default_factory=dict)
    source: str = "<mapping>"

    def level(self, name: str) -> LevelMapping:
        return self.levels.setdefault(name, LevelMapping())


# the directive syntax of factors and permutations is the constraints' (one implementation)
parse_factors = mapping_factors
parse_permutation = mapping_permutation


def parse_mapping(directives: Any, dims: list, ds_names: list, file: str = "<dict>",
                  section: str = "mapping") -> Mapping:
    """Parse a Timeloop mapping list. Target names are checked later against the architecture."""
    if isinstance(directives, dict):
        directives = directives.get("targets", directives.get("mapping"))
    if not isinstance(directives, list):
        raise MappingError("mapping must be a list of directives", file=file, key=section,
                           expected="[{target, type, factors, permutation}, ...]")
    m = Mapping(source=file)
    for i, d in enumerate(directives):
        key = f"{section}[{i}]"
        if not isinstance(d, dict):
            raise MappingError("directive must be a mapping", file=file, key=key)
        unknown = set(d) - DIRECTIVE_KEYS
        if unknown:
            raise MappingError("unknown directive key", file=file, key=f"{key}.{sorted(unknown)[0]}",
                               expected="target, type, factors, permutation, split, keep, bypass")
        target, typ = d.get("target"), d.get("type")
        if not target:
            raise MappingError("directive has no target", file=file, key=key + ".target",
                               expected="a level name")
        if typ not in DIRECTIVE_TYPES:
            raise MappingError("unknown directive type", file=file, key=key + ".type",
                               expected="|".join(DIRECTIVE_TYPES), got=typ)
        lm = m.level(str(target))
        for flag, vals in directive_flags(d, ds_names, file, key).items():
            lm.flags[flag] = lm.flags.get(flag, set()) | vals
        if typ in ("temporal", "spatial"):
            f = parse_factors(d.get("factors"), file, key + ".factors")
            for dim in f:
                if dim not in dims:
                    raise MappingError("unknown dimension in factors", file=file, key=key + ".factors",
                                       expected="one of " + ", ".join(dims), got=dim)
            perm = parse_permutation(d.get("permutation"), dims, file, key + ".permutation")
            if typ == "temporal":
                lm.temporal, lm.temporal_perm = f, perm
            else:
                lm.spatial, lm.spatial_perm = f, perm
                if d.get("split") is not None:
                    lm.split = int(d["split"])
        else:
            for kk in ("keep", "bypass"):
                vals = d.get(kk)
                if vals is None:
                    continue
                if isinstance(vals, str):
                    vals = [vals]
                for v in vals:
                    if v not in ds_names:
                        raise MappingError(f"unknown data space in {kk}", file=file, key=f"{key}.{kk}",
                                           expected="one of " + ", ".join(ds_names), got=v)
                cur = getattr(lm, kk) or set()
                setattr(lm, kk, cur | set(vals))
    return m


@dataclass
class ResolvedMapping:
    """A complete mapping as per-level lists, levels innermost first (``spec.arch.levels``
    order), dimensions / data spaces in problem order: ``temporal``, ``spatial_x``,
    ``spatial_y`` loop bounds ``[L][D]``, ``perm`` temporal loop order ``[L][D]`` (innermost
    first), ``keep`` ``[L][S]`` and ``sorder`` the spatial loop order ``[L][D]``."""

    temporal: list
    spatial_x: list
    spatial_y: list
    perm: list
    keep: list
    sorder: list = None


def resolve_mapping(spec, mapping) -> ResolvedMapping:
    """Fill defaults (factor 1, permutation padding, keep-all / dummy bypass) and split X/Y."""
    if mapping is None:
        raise MappingError("no mapping given", file=spec.source, key="mapping",
                           expected="a mapping section or --mapping file")
    arch, prob = spec.arch, spec.problem
    dims, dsn = prob.dimensions, prob.ds_names
    D, L = len(dims), len(arch.levels)
    temporal = [[1] * D for _ in range(L)]
    sx = [[1] * D for _ in range(L)]
    sy = [[1] * D for _ in range(L)]
    perm = [list(range(D)) for _ in range(L)]
    sorder = [list(range(D)) for _ in range(L)]
    keep = [[not arch.levels[l].is_dummy] * len(dsn) for l in range(L)]
    specified = [False] * D
    for li, lv in enumerate(arch.levels):
        lm = mapping.levels.get(lv.name)
        if lm is None:
            continue
        if lm.temporal is not None:
            for d, f in lm.temporal.items():
                temporal[li][dims.index(d)] = int(f)
                specified[dims.index(d)] = True
        if lm.temporal_perm:
            order = [dims.index(d) for d in lm.temporal_perm]
            order += [k for k in range(D) if k not in order]
            perm[li] = order
        if lm.spatial is not None:
            sperm = [dims.index(d) for d in (lm.spatial_perm or [])]
            sperm += [k for k in range(D) if k not in sperm]
            sorder[li] = list(sperm)
            split = lm.split
            facs = {dims.index(d): int(f) for d, f in lm.spatial.items()}
            for d in facs:
                specified[d] = True
            if split is None:
                total = int(np.prod(list(facs.values()) or [1]))
                split = D if (total <= lv.fanout_x or lv.fanout_y == 1) else 0
            for pos, k in enumerate(sperm):
                f = facs.get(k, 1)
                if pos < split:
                    sx[li][k] = f
                else:
                    sy[li][k] = f
        if lm.keep is not None or lm.bypass is not None:
            # unspecified data spaces keep Timeloop's default: kept (dummy levels: bypassed)
            base = list(keep[li])
            for s, name in enumerate(dsn):
                if lm.keep is not None and name in lm.keep:
                    base[s] = True
                if lm.bypass is not None and name in lm.bypass:
                    base[s] = False
            keep[li] = base
    # a dimension never mentioned anywhere: the whole size goes to the outermost temporal level
    for k, d in enumerate(dims):
        if not specified[k]:
            temporal[L - 1][k] = int(prob.instance[d])
    return ResolvedMapping(temporal, sx, sy, perm, keep, sorder)


def tile_words(spec, r: ResolvedMapping) -> list:
    """Words each level holds under the resolved mapping ``r`` (sum of its kept tiles), per
    level in ``spec.arch.levels`` order."""
    L, D = len(spec.arch.levels), len(spec.problem.dimensions)
    ext = [1.0] * D
    out = []
    for li in range(L):
        ext = [ext[k] * float(r.temporal[li][k] * r.spatial_x[li][k] * r.spatial_y[li][k]) for k in range(D)]
        used = 0.0
        for s, ds in enumerate(spec.problem.data_spaces):
            if r.keep[li][s]:
                used += footprint(ext, ds.projection)
        out.append(used)
    return out


def check_mapping(spec, mapping) -> None:
    """Raise :class:`MappingError` (file, key, expected) if ``mapping`` cannot run on ``spec``:
    the factors of a dimension do not multiply to its size, a fan-out exceeds the mesh, the
    outermost level bypasses something, a tile overflows a buffer or under-fills one with a
    ``min_utilization``."""
    r = resolve_mapping(spec, mapping)
    file = mapping.source
    dims, arch = spec.problem.dimensions, spec.arch
    for k, d in enumerate(dims):
        prod = 1
        for li in range(len(arch.levels)):
            prod *= r.temporal[li][k] * r.spatial_x[li][k] * r.spatial_y[li][k]
        if prod != spec.problem.instance[d]:
            raise MappingError(f"factors of dimension {d} multiply to {prod}", file=file,
                               key=f"mapping.factors.{d}", expected=f"product {spec.problem.instance[d]} "
                               f"(problem size of {d})")
    for li, lv in enumerate(arch.levels):
        px = int(np.prod(r.spatial_x[li]))
        py = int(np.prod(r.spatial_y[li]))
        if px > lv.fanout_x or py > lv.fanout_y:
            raise MappingError(f"spatial fan-out {px}x{py} at '{lv.name}' exceeds the mesh", file=file,
                               key=f"mapping.target={lv.name}.spatial",
                               expected=f"at most {lv.fanout_x}x{lv.fanout_y} (meshX x meshY)")
    if not all(r.keep[len(arch.levels) - 1]):
        raise MappingError(f"outermost level '{arch.levels[-1].name}' must keep every data space",
                           file=file, key=f"mapping.target={arch.levels[-1].name}.bypass",
                           expected="no bypass at the outermost level")
    for lv, used in zip(arch.levels, tile_words(spec, r)):
        cap = lv.effective_size
        if cap is not None and used > cap + 1e-9:
            raise MappingError(f"tile of {int(used)} words overflows '{lv.name}'", file=file,
                               key=f"mapping.target={lv.name}",
                               expected=f"at most {int(cap)} words (depth*width/datawidth)")
        if cap is not None and lv.min_utilization > 0 and used < lv.min_utilization * cap - 1e-9:
            raise MappingError(f"tiles of {int(used)} words use less of '{lv.name}' than its "
                               f"min_utilization {lv.min_utilization:g}", file=file,
                               key=f"mapping.target={lv.name}",
                               expected=f"at least {lv.min_utilization * cap:g} words")


def dump_mapping(spec, mapping: Mapping | None = None) -> list:
    """Timeloop v0.4 mapping list (outermost level first) of a fully resolved mapping."""
    m = mapping if mapping is not None else spec.mapping
    out = resolved_to_list(spec, resolve_mapping(spec, m))
    keys = {"no_temporal_reuse": ("temporal", "no_temporal_reuse"),
            "rmw_first_update": ("temporal", "rmw_first_update"),
            "no_multicast": ("spatial", "no_reuse"), "no_link_transfer": ("spatial", "no_link_transfer")}
    for e in out:
        lm = m.levels.get(e["target"]) if m is not None else None
        for flag, vals in (lm.flags.items() if lm is not None else ()):
            typ, key = keys.get(flag, (None, None))
            if typ == e["type"]:
                e[key] = sorted(vals)
    return out


def resolved_to_list(spec, r) -> list:
    dims = spec.problem.dimensions
    out = []
    for li in reversed(range(len(spec.arch.levels))):
        lv = spec.arch.levels[li]
        out.append({"target": lv.name, "type": "temporal",
                    "factors": " ".join(f"{d}={r.temporal[li][k]}" for k, d in enumerate(dims)),
                    "permutation": "".join(dims[k] for k in r.perm[li]) if all(len(x) == 1 for x in dims)
                    else " ".join(dims[k] for k in r.perm[li])})
        if lv.fanout_x * lv.fanout_y > 1:
            so = list(r.sorder[li]) if r.sorder else list(range(len(dims)))
            xs = [k for k in so if r.spatial_x[li][k] > 1]
            ys = [k for k in so if r.spatial_y[li][k] > 1 and k not in xs]
            rest = [k for k in so if k not in xs and k not in ys]
            order = xs + rest + ys
            fac = {k: r.spatial_x[li][k] * r.spatial_y[li][k] for k in range(len(dims))}
            out.append({"target": lv.name, "type": "spatial",
                        "factors": " ".join(f"{dims[k]}={fac[k]}" for k in range(len(dims))),
                        "permutation": " ".join(dims[k] for k in order),
                        "split": len(xs) + len(rest)})
        names = spec.problem.ds_names
        out.append({"target": lv.name, "type": "dataspace",
                    "keep": [names[s] for s in range(len(names)) if r.keep[li][s]],
                    "bypass": [names[s] for s in range(len(names)) if not r.keep[li][s]]})
    return out


def check_targets(mapping: Mapping, arch, file: str) -> Mapping:
    """Rename container targets to their dummy level; unknown targets raise MappingError."""
    names = arch.level_names
    out = Mapping(source=mapping.source)
    for tgt, lm in mapping.levels.items():
        name = tgt
        if name not in names:
            alt = f"inter_{tgt}_spatial"
            if alt in names:
                name = alt
            elif tgt == arch.compute.name:
                continue
            else:
                raise MappingError("unknown mapping target", file=file, key=f"mapping.target={tgt}",
                                   expected="one of " + ", ".join(names))
        if name in out.levels:
            cur = out.levels[name]
            for f in ("temporal", "temporal_perm", "spatial", "spatial_perm", "split", "keep", "bypass"):
                if getattr(lm, f) is not None:
                    setattr(cur, f, getattr(lm, f))
            for flag, vals in lm.flags.items():
                cur.flags[flag] = cur.flags.get(flag, set()) | set(vals)
        else:
            out.levels[name] = lm
    return out


__all__ = ["Mapping", "LevelMapping", "parse_mapping", "parse_factors", "parse_permutation",
           "dump_mapping", "check_targets", "ResolvedMapping", "resolve_mapping", "check_mapping",
           "tile_words", "SpecError"]
