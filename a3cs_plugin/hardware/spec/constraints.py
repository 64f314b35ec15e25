"""Constraint settings that change what Timeloop's *model* computes (not just the map space).

Timeloop copies these per-level, per-data-space flags from the constraints (mapper) or the
mapping directives (model) into the loop nest, and its nest analysis / tile collapse reads them:

* ``temporal: {no_reuse | no_temporal_reuse: [ds]}`` -- the level's tile of ``ds`` gets no temporal
  reuse: every iteration of every temporal loop above the level fetches the whole tile again
  (no stationarity, no sliding-window overlap).
* ``temporal: {rmw_first_update: [ds]}`` (read-write data) -- no first-read elision at the level:
  the first update of each output also reads the (zero) value from the level and fills it from
  the parent.
* ``spatial: {no_reuse | no_multicast_no_reduction: [ds]}`` -- the level's spatial fan-out neither
  multicasts ``ds`` to the children that need the same data nor reduces their outputs spatially:
  every child's access reaches the level.
* ``spatial: {no_link_transfer: [ds]}`` -- no neighbour-to-neighbour transfers of ``ds`` over this
  level's fan-out (see :mod:`a3cs_plugin.hardware.model.links`).
* ``max_overbooked_proportion: {proportion: p}`` -- lets *sparse* tiles overbook a buffer; for the
  dense tensors modelled here Timeloop's tile confidence is always 1 and an over-full buffer is
  invalid regardless, so it changes nothing.
* ``dataspace: {no_coalesce: [ds]}`` -- not implemented: a non-empty list raises :class:`SpecError`.

Unknown keys in a constraint raise :class:`SpecError` rather than being ignored silently.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from a3cs_plugin.errors import SpecError

_COMMON = {"target", "type", "name", "attributes", "constraints"}
_ITER = {"factors", "permutation", "default_max_factor", "default_min_factor", "remainders"}
ALLOWED_KEYS = {
    "temporal": _COMMON | _ITER | {"no_reuse", "no_temporal_reuse", "rmw_first_update"},
    "spatial": _COMMON | _ITER | {"split", "no_reuse", "no_multicast_no_reduction", "no_link_transfer"},
    "dataspace": _COMMON | {"keep", "bypass", "no_coalesce"},
    "max_overbooked_proportion": _COMMON | {"proportion"},
    "utilization": _COMMON | {"min"},
}
for _alias in ("datatype", "bypass", "bypassing"):
    ALLOWED_KEYS[_alias] = ALLOWED_KEYS["dataspace"]
ALLOWED_KEYS["parallelism"] = ALLOWED_KEYS["utilization"]

# flag -> (constraint type, keys that set it)
_FLAG_KEYS = {
    "no_temporal_reuse": ("temporal", ("no_reuse", "no_temporal_reuse")),
    "rmw_first_update": ("temporal", ("rmw_first_update",)),
    "no_multicast": ("spatial", ("no_reuse", "no_multicast_no_reduction")),
    "no_link_transfer": ("spatial", ("no_link_transfer",)),
    "no_coalesce": ("dataspace", ("no_coalesce",)),
}
_DATASPACE_TYPES = ("dataspace", "datatype", "bypass", "bypassing")


@dataclass
class ModelFlags:
    """Per-level (``spec.arch.levels`` order), per-data-space boolean arrays ``[L, S]``."""

    no_temporal_reuse: np.ndarray
    rmw_first_update: np.ndarray
    no_multicast: np.ndarray
    no_link_transfer: np.ndarray

    def any(self) -> bool:
        return bool(self.no_temporal_reuse.any() or self.rmw_first_update.any()
                    or self.no_multicast.any())


def _entries(raw):
    """Timeloop accepts ``{target, type, ...}`` or ``{target, constraints: [...]}``; ``attributes``
    may hold the settings."""
    if isinstance(raw, dict) and isinstance(raw.get("constraints"), list):
        for c in raw["constraints"]:
            if isinstance(c, dict):
                c = dict(c)
                c.setdefault("target", raw.get("target", raw.get("name")))
                yield c
    elif isinstance(raw, dict):
        yield dict(raw)


def _flatten_attrs(c: dict) -> dict:
    attrs = c.pop("attributes", None)
    if isinstance(attrs, dict):
        c.update(attrs)
    return c


def _ds_list(value, ds_names, file, key) -> list:
    if value is None:
        return []
    vals = [value] if isinstance(value, str) else list(value)
    for v in vals:
        if v not in ds_names:
            raise SpecError(f"unknown data space '{v}'", file=file, key=key,
                            expected="one of " + ", ".join(ds_names))
    return vals


def _level_index(arch, target):
    names = arch.level_names
    if isinstance(target, int) and 0 <= target < len(names):
        return target
    if target in names:
        return names.index(target)
    if f"inter_{target}_spatial" in names:
        return names.index(f"inter_{target}_spatial")
    return None


def check_constraint_keys(c: dict, file: str, where: str) -> None:
    """Raise :class:`SpecError` for a key the constraint's type does not have (or we lack)."""
    ctype = str(c.get("type", "")).strip()
    allowed = ALLOWED_KEYS.get(ctype)
    if allowed is None:
        return  # unknown types are reported by the mapper's constraint parser
    unknown = sorted(k for k in c if k not in allowed)
    if unknown:
        raise SpecError(f"constraint key '{unknown[0]}' is not supported for type '{ctype}'", file=file,
                        key=f"{where}.{unknown[0]}", expected="one of " + ", ".join(sorted(allowed - _COMMON)))


def model_flags(spec) -> ModelFlags:
    """The :class:`ModelFlags` of ``spec``: from its constraints (architecture + mapspace, as
    Timeloop's mapper uses them) and from its mapping directives (as timeloop-model does)."""
    arch, ds_names = spec.arch, spec.problem.ds_names
    L, S = len(arch.levels), len(ds_names)
    arrays = {f: np.zeros((L, S), dtype=bool) for f in ("no_temporal_reuse", "rmw_first_update",
                                                       "no_multicast", "no_link_transfer", "no_coalesce")}
    file = spec.source
    items = []
    for i, raw in enumerate(spec.constraints or []):
        for c in _entries(raw):
            items.append((_flatten_attrs(c), f"constraints[{i}]"))
    mapping = getattr(spec, "mapping", None)
    if mapping is not None:
        for name, lm in mapping.levels.items():
            for flag, vals in (getattr(lm, "flags", None) or {}).items():
                typ = _FLAG_KEYS[flag][0]
                items.append(({"target": name, "type": typ, _FLAG_KEYS[flag][1][-1]: sorted(vals)},
                              f"mapping.target={name}"))
    for c, where in items:
        check_constraint_keys(c, file, where)
        ctype = str(c.get("type", "")).strip()
        if ctype in _DATASPACE_TYPES:
            ctype = "dataspace"
        lvl = _level_index(arch, c.get("target", c.get("name")))
        for flag, (typ, keys) in _FLAG_KEYS.items():
            if ctype != typ:
                continue
            for k in keys:
                if k not in c:
                    continue
                vals = _ds_list(c[k], ds_names, file, f"{where}.{k}")
                if not vals:
                    continue
                if lvl is None:
                    raise SpecError(f"unknown constraint target {c.get('target')!r}", file=file,
                                    key=f"{where}.target", expected="one of " + ", ".join(arch.level_names))
                if flag == "no_coalesce":
                    raise SpecError("dataspace 'no_coalesce' is not supported by the model", file=file,
                                    key=f"{where}.no_coalesce", expected="an empty list or no key")
                for v in vals:
                    arrays[flag][lvl, ds_names.index(v)] = True
    arrays.pop("no_coalesce")
    return ModelFlags(**arrays)
