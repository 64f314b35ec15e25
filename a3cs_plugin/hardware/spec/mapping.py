"""Timeloop mappings (list of target/type/factors/permutation/keep/bypass directives)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from a3cs_plugin.errors import MappingError, SpecError

_FACTOR = re.compile(r"([A-Za-z_][A-Za-z_0-9]*?)\s*=?\s*(\d+)$")
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
    # model flags (see :mod:`a3cs_plugin.hardware.spec.constraints`): flag -> data-space names
    flags: dict = field(default_factory=dict)


@dataclass
class Mapping:
    """A (possibly partial) mapping: ``levels[name]`` -> :class:`LevelMapping`."""

    levels: dict = field(default_factory=dict)
    source: str = "<mapping>"

    def level(self, name: str) -> LevelMapping:
        return self.levels.setdefault(name, LevelMapping())


def parse_factors(value: Any, file: str, key: str) -> dict:
    """``"R=3 P=1"``, ``"C1 M8"``, ``"R=3,P=1"`` or ``["R=3", ...]`` -> ``{"R": 3, "P": 1}``."""
    if value is None:
        return {}
    if isinstance(value, dict):
        items = [f"{k}={v}" for k, v in value.items()]
    elif isinstance(value, str):
        items = [t for t in re.split(r"[\s,]+", value.strip()) if t]
    elif isinstance(value, list):
        items = [str(t).strip() for t in value]
    else:
        raise MappingError("bad factors", file=file, key=key, expected="'D=N ...' string or list", got=value)
    out = {}
    for it in items:
        m = _FACTOR.match(it.replace(" ", ""))
        if not m:
            raise MappingError("bad factor", file=file, key=key, expected="DIM=N", got=it)
        out[m.group(1)] = int(m.group(2))
    return out


def parse_permutation(value: Any, dims: list, file: str, key: str) -> list:
    """``"PRKC"`` (single-letter dims), ``"P R K"`` or a list -> list of dimension names."""
    if value is None:
        return []
    if isinstance(value, list):
        toks = [str(v) for v in value]
    else:
        s = str(value).strip()
        if any(sep in s for sep in (" ", ",")):
            toks = [t for t in re.split(r"[\s,]+", s) if t]
        elif s in dims:
            toks = [s]
        else:
            toks, i = [], 0
            names = sorted(dims, key=len, reverse=True)
            while i < len(s):
                for n in names:
                    if s.startswith(n, i):
                        toks.append(n)
                        i += len(n)
                        break
                else:
                    raise MappingError("unknown dimension in permutation", file=file, key=key,
                                       expected="a permutation of " + "".join(dims), got=s)
    for t in toks:
        if t not in dims:
            raise MappingError("unknown dimension in permutation", file=file, key=key,
                               expected="one of " + ", ".join(dims), got=t)
    return toks


# directive type -> (key, model flag) pairs (Timeloop's mapping parser reads these)
_FLAG_OF = {
    "temporal": (("no_reuse", "no_temporal_reuse"), ("no_temporal_reuse", "no_temporal_reuse"),
                 ("rmw_first_update", "rmw_first_update")),
    "spatial": (("no_reuse", "no_multicast"), ("no_multicast_no_reduction", "no_multicast"),
                ("no_link_transfer", "no_link_transfer")),
    "dataspace": (("no_coalesce", "no_coalesce"),),
    "datatype": (("no_coalesce", "no_coalesce"),),
    "bypass": (("no_coalesce", "no_coalesce"),),
}


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
        unknown = set(d) - {"target", "type", "factors", "permutation", "split", "keep", "bypass",
                            "no_coalesce", "rmw_first_update", "max_overbooked_proportion",
                            "min_parallelism", "default_max_factor", "default_min_factor",
                            "no_reuse", "no_link_transfer", "no_multicast_no_reduction",
                            "no_temporal_reuse"}
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
        for kk, flag in _FLAG_OF.get(typ, ()):
            vals = d.get(kk)
            if vals is None:
                continue
            vals = [vals] if isinstance(vals, str) else list(vals)
            for v in vals:
                if v not in ds_names:
                    raise MappingError(f"unknown data space in {kk}", file=file, key=f"{key}.{kk}",
                                       expected="one of " + ", ".join(ds_names), got=v)
            if vals:
                lm.flags[flag] = lm.flags.get(flag, set()) | set(vals)
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


def dump_mapping(spec, mapping: Mapping | None = None) -> list:
    """Timeloop v0.4 mapping list (outermost level first) of a fully resolved mapping."""
    from a3cs_plugin.hardware.model.engine import resolve_mapping
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
            so = list(r.sorder[li]) if getattr(r, "sorder", None) else list(range(len(dims)))
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
           "dump_mapping", "check_targets", "SpecError"]
