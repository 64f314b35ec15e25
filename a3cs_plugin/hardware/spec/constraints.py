"""Timeloop constraints: the one parser, producing one typed :class:`Constraints`.

Everything Timeloop reads from a constraint (``constraints`` / ``architecture_constraints`` /
``mapspace_constraints`` targets and v0.4 node constraints) and from the flag keys of a mapping
directive is parsed here, once: the map-space restrictions the mapper searches within
(:class:`LevelConstraints`, see below) and the flags that change the model's numbers
(:class:`ModelFlags`).  To add a Timeloop constraint: its keys in :data:`ALLOWED_KEYS`, its
parsing in :func:`parse_constraints` (a model flag: one row of :data:`FLAG_KEYS`), and the reader
that uses it (the mapper's :class:`~a3cs_plugin.hardware.mapper.mapspace.MapSpace` or the model).

Map space (semantics of Timeloop's ``mapping/constraints.cpp`` and ``mapspaces/uber.cpp``):

* ``factors``: ``D=n`` fixes the loop bound of ``D`` at that level (``D n`` and ``Dn`` are accepted
  too); ``D=0`` means the full problem bound; a value larger than the problem bound is ignored (as
  Timeloop does); ``D<=n`` / ``D>=n`` are upper / lower bounds; ``default_max_factor`` /
  ``default_min_factor`` apply to every dimension not named.  A dimension the problem lacks is
  skipped where the term restricts nothing (``D=1``, ``D<=n``, ``D>=1``).
* ``permutation``: innermost loop first; a partial permutation fixes the innermost loops, the part
  after ``_`` fixes the outermost loops, the rest is free.
* ``split`` (spatial): dimensions at permutation positions ``< split`` map to mesh X, the others to Y.
* ``keep`` / ``bypass`` (type ``dataspace``, ``datatype``, ``bypass`` or ``bypassing``).
* ``utilization`` / ``parallelism`` ``min``: lower bound on the product of spatial utilisations.
* A target may name a container (its ``inter_<name>_spatial`` level is meant) or the compute unit
  (no loops: its map-space settings are ignored).

Map-space mistakes (a setting repeated with another value, an unknown dimension or a bad
permutation) raise :class:`MappingError` when the map space is read
(:meth:`Constraints.map_space`), as in Timeloop, where only the mapper reads them;
timeloop-model ignores them, and so does our model.

Model flags (Timeloop copies them per level and data space from the constraints (mapper) or the
mapping directives (model) into the loop nest; its nest analysis / tile collapse reads them):

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

import re
from dataclasses import dataclass, field

import numpy as np

from a3cs_plugin.errors import MappingError, SpecError

__all__ = ["ALLOWED_KEYS", "DIRECTIVE_KEYS", "FLAG_KEYS", "DATASPACE_TYPES", "Constraints",
           "LevelConstraints", "ModelFlags", "parse_constraints", "parse_targets", "constraint_entries",
           "spec_constraints", "model_flags",
           "check_constraints", "check_constraint_keys", "factor_terms", "factor_term",
           "constraint_factors", "mapping_factors", "permutation_tokens", "constraint_permutation",
           "mapping_permutation", "split_orientation", "directive_flags"]

_COMMON = {"target", "type", "name", "attributes", "constraints"}
_ITER = {"factors", "permutation", "default_max_factor", "default_min_factor", "remainders"}
#: constraint type -> the keys it may have
ALLOWED_KEYS = {
    "temporal": _COMMON | _ITER | {"no_reuse", "no_temporal_reuse", "rmw_first_update"},
    "spatial": _COMMON | _ITER | {"split", "no_reuse", "no_multicast_no_reduction", "no_link_transfer"},
    "dataspace": _COMMON | {"keep", "bypass", "no_coalesce"},
    "max_overbooked_proportion": _COMMON | {"proportion"},
    "utilization": _COMMON | {"min"},
}
DATASPACE_TYPES = ("dataspace", "datatype", "bypass", "bypassing")
for _alias in DATASPACE_TYPES[1:]:
    ALLOWED_KEYS[_alias] = ALLOWED_KEYS["dataspace"]
ALLOWED_KEYS["parallelism"] = ALLOWED_KEYS["utilization"]

#: model flag -> (constraint / directive type, keys that set it)
FLAG_KEYS = {
    "no_temporal_reuse": ("temporal", ("no_reuse", "no_temporal_reuse")),
    "rmw_first_update": ("temporal", ("rmw_first_update",)),
    "no_multicast": ("spatial", ("no_reuse", "no_multicast_no_reduction")),
    "no_link_transfer": ("spatial", ("no_link_transfer",)),
    "no_coalesce": ("dataspace", ("no_coalesce",)),
}
#: keys a mapping directive may have (Timeloop's mapping parser reads these)
DIRECTIVE_KEYS = ({"target", "type", "factors", "permutation", "split", "keep", "bypass",
                   "max_overbooked_proportion", "min_parallelism", "default_max_factor",
                   "default_min_factor"} | {k for _, keys in FLAG_KEYS.values() for k in keys})


def _base_type(ctype: str) -> str:
    return "dataspace" if ctype in DATASPACE_TYPES else ctype


# ------------------------------------------------------------------------------ typed results
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


@dataclass
class LevelConstraints:
    """Map-space constraints of one storage level (arrays are indexed by problem dimension)."""

    t_fixed: np.ndarray          # int [D], 0 = free
    t_max: np.ndarray            # int [D], 0 = unbounded
    t_min: np.ndarray            # int [D], 0 = unbounded
    s_fixed: np.ndarray          # spatial (X*Y) loop bound, 0 = free
    s_max: np.ndarray
    s_min: np.ndarray
    t_prefix: list = field(default_factory=list)   # dims fixed innermost (in order)
    t_suffix: list = field(default_factory=list)   # dims fixed outermost (in order)
    s_prefix: list = field(default_factory=list)
    s_suffix: list = field(default_factory=list)
    split: int | None = None
    s_orient: np.ndarray | None = None  # int [D] from permutation + split: 0 free, 1 X, 2 Y
    keep: np.ndarray | None = None   # int [S]: -1 free, 0 bypass, 1 keep
    sources: dict = field(default_factory=dict)    # what -> "file: target X" (for error messages)

    @staticmethod
    def empty(n_dims: int, n_spaces: int) -> "LevelConstraints":
        z = lambda: np.zeros(n_dims, dtype=np.int64)  # noqa: E731
        return LevelConstraints(z(), z(), z(), z(), z(), z(),
                                keep=np.full(n_spaces, -1, dtype=np.int64))


@dataclass
class Constraints:
    """Everything the constraints of one spec say, per level in ``level_names`` order.

    ``flags`` (what the model reads) are checked when parsed; the map-space part (``levels``,
    ``min_utilization``) is handed out by :meth:`map_space`, which raises the first map-space
    mistake (``mapspace_error``) instead.
    """

    level_names: list
    flags: ModelFlags
    levels: list
    min_utilization: float = 0.0
    mapspace_error: MappingError | None = None

    def map_space(self) -> tuple:
        """``(levels, min_utilization)``; raises the first map-space :class:`MappingError`."""
        if self.mapspace_error is not None:
            raise self.mapspace_error
        return self.levels, self.min_utilization


# ------------------------------------------------------------------------------ shared syntax
def constraint_entries(raw, flatten: bool = True):
    """The constraints of one entry: Timeloop accepts ``{target, type, ...}`` or ``{target,
    constraints: [...]}`` (non-mapping items of the list are skipped); with ``flatten`` the
    ``attributes`` of an entry are merged into it."""
    if isinstance(raw, dict) and isinstance(raw.get("constraints"), list):
        items = []
        for c in raw["constraints"]:
            if isinstance(c, dict):
                c = dict(c)
                c.setdefault("target", raw.get("target", raw.get("name")))
                items.append(c)
    elif isinstance(raw, dict):
        items = [dict(raw)]
    else:
        items = []
    for c in items:
        if flatten:
            attrs = c.pop("attributes", None)
            if isinstance(attrs, dict):
                c.update(attrs)
        yield c


def _level_index(level_names, target):
    """Index of ``target`` in ``level_names``: an index, a level name or a container's name (its
    ``inter_<name>_spatial`` level); ``None`` if none."""
    if isinstance(target, int) and 0 <= target < len(level_names):
        return target
    if target in level_names:
        return level_names.index(target)
    if f"inter_{target}_spatial" in level_names:
        return level_names.index(f"inter_{target}_spatial")
    return None


_TERM = re.compile(r"([A-Za-z_][A-Za-z0-9_]*?)\s*(<=|>=|=)?\s*([0-9]+)")


def factor_terms(value) -> list | None:
    """The terms of a ``factors`` value, or ``None`` for a value of the wrong type.  A string is
    split at whitespace and commas, a list gives one term per item, a dict ``{D: n}`` gives
    ``D=n`` terms; ``#`` starts a comment."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [f"{k}={v}" for k, v in value.items()]
    if isinstance(value, str):
        return [t for t in re.split(r"[\s,]+", value.split("#")[0].strip()) if t]
    if isinstance(value, (list, tuple)):
        return [t for t in (str(v).split("#")[0].strip() for v in value) if t]
    return None


def factor_term(term: str):
    """``"R=3"``, ``"R 3"``, ``"R3"``, ``"K<=4"``, ``"C>=2"`` -> ``(name, op, n)`` with ``op`` one of
    ``"="``, ``"<="``, ``">="``; ``None`` if the term is not of that form."""
    m = _TERM.fullmatch(term.strip())
    if m is None:
        return None
    return m.group(1), m.group(2) or "=", int(m.group(3))


def constraint_factors(value, dims, bounds, where: str = "constraints", file: str | None = None):
    """``(fixed, max, min)`` dicts dim index -> int from a constraint's ``factors`` value (see the
    module docstring); :class:`MappingError` for a term that is not ``D=N`` / ``D<=N`` / ``D>=N``
    or that restricts a dimension the problem lacks."""
    terms = factor_terms(value)
    if terms is None:
        raise MappingError(f"factors must be a list or a string, got {value!r}", file=file, key=where)
    index = {d: i for i, d in enumerate(dims)}
    fixed, vmax, vmin = {}, {}, {}
    parsed = []
    for t in terms:
        ft = factor_term(t)
        if ft is None:
            raise MappingError(f"cannot read factor {t!r}", file=file, key=where,
                               expected="D=N, D<=N or D>=N with N an integer")
        parsed.append(ft)
    text = (",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value or "")).split("#")[0]
    for op, out in (("<=", vmax), (">=", vmin)):
        for name, o, num in parsed:
            if o != op:
                continue
            if name not in index:
                if not (op == "<=" or num <= 1):
                    raise MappingError(f"unknown dimension '{name}' in factors {text!r}", file=file,
                                       key=where, expected=f"one of {list(dims)}")
                continue
            if num <= 0:
                raise MappingError(f"factor bound {name}{num} must be positive", file=file, key=where)
            out[index[name]] = num
    for name, o, num in parsed:
        if o != "=":
            continue
        if name not in index:
            if num != 1:
                raise MappingError(f"unknown dimension '{name}' in factors {text!r}", file=file,
                                   key=where, expected=f"one of {list(dims)}")
            continue
        d = index[name]
        if num == 0:
            num = int(bounds[d])
        elif num > bounds[d]:
            continue  # Timeloop: a factor above the problem bound is ignored
        fixed[d] = num
    return fixed, vmax, vmin


def mapping_factors(value, file: str, key: str) -> dict:
    """A mapping directive's ``factors`` (``"R=3 P=1"``, ``"C1 M8"``, ``"R=3,P=1"``, ``["R=3", ...]``
    or ``{R: 3}``) -> ``{"R": 3, "P": 1}``; exact factors only."""
    terms = factor_terms(value)
    if terms is None:
        raise MappingError("bad factors", file=file, key=key, expected="'D=N ...' string or list", got=value)
    out = {}
    for t in terms:
        ft = factor_term(t.replace(" ", ""))
        if ft is None or ft[1] != "=":
            raise MappingError("bad factor", file=file, key=key, expected="DIM=N", got=t)
        out[ft[0]] = ft[2]
    return out


def _run_together(word: str, dims, strict: bool) -> list | None:
    """``word`` cut into dimension names, the longest name at each position (``"HxWx"`` ->
    ``Hx, Wx``); where none fits: one character, or ``None`` when ``strict``."""
    names = sorted(dims, key=len, reverse=True)
    out, i = [], 0
    while i < len(word):
        n = next((n for n in names if word.startswith(n, i)), None)
        if n is None:
            if strict:
                return None
            n = word[i]
        out.append(n)
        i += len(n)
    return out


def permutation_tokens(value, dims, where: str = "constraints", file: str | None = None):
    """``(prefix, suffix)`` lists of dimension *names* as written (innermost first; ``_``
    separates the suffix).  Names may be separated by spaces / commas or run together
    (``"RSPQ"``, ``"HxWx"``: the longest dimension name at each position, else one character)."""
    if value is None:
        return [], []
    listed = isinstance(value, (list, tuple))
    if listed:
        words = [str(v).strip() for v in value]
    else:
        words = [t for t in re.split(r"[\s,]+", str(value).split("#")[0].strip()) if t]
    tokens = []
    for w in words:
        tokens += [w] if listed or w in dims or w == "_" else _run_together(w, dims, strict=False)
    prefix, suffix, after = [], [], False
    for tok in tokens:
        if tok == "_":
            after = True
            continue
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", tok):
            raise MappingError(f"bad dimension name '{tok}' in permutation {value!r}", file=file, key=where,
                               expected=f"names from {list(dims)}")
        (suffix if after else prefix).append(tok)
    if len(set(prefix + suffix)) != len(prefix + suffix):
        raise MappingError(f"dimension repeated in permutation {value!r}", file=file, key=where)
    return prefix, suffix


def constraint_permutation(value, dims, where: str = "constraints", file: str | None = None):
    """``(prefix, suffix)`` lists of dim indices; innermost first, ``_`` separates the suffix.
    Names of dimensions the problem does not have are skipped (they restrict no loop)."""
    index = {d: i for i, d in enumerate(dims)}
    pre, suf = permutation_tokens(value, dims, where, file)
    return [index[t] for t in pre if t in index], [index[t] for t in suf if t in index]


def mapping_permutation(value, dims: list, file: str, key: str) -> list:
    """A mapping directive's ``permutation`` (``"PRKC"``, ``"P R K"`` or a list; innermost
    first) -> list of dimension names, each a dimension of the problem."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        toks = [str(v) for v in value]
    else:
        s = str(value).strip()
        if any(sep in s for sep in (" ", ",")):
            toks = [t for t in re.split(r"[\s,]+", s) if t]
        elif s in dims:
            toks = [s]
        else:
            toks = _run_together(s, dims, strict=True)
            if toks is None:
                raise MappingError("unknown dimension in permutation", file=file, key=key,
                                   expected="a permutation of " + "".join(dims), got=s)
    for t in toks:
        if t not in dims:
            raise MappingError("unknown dimension in permutation", file=file, key=key,
                               expected="one of " + ", ".join(dims), got=t)
    return toks


def split_orientation(value, dims, split: int) -> np.ndarray:
    """Per dimension: 1 = mesh X, 2 = mesh Y, 0 = not determined, for a spatial ``permutation``
    and ``split`` (positions ``< split`` go to X).  Positions count every name written, also of
    dimensions the problem lacks; unnamed dimensions sit between prefix and suffix."""
    pre, suf = permutation_tokens(value, dims)
    out = np.zeros(len(dims), np.int64)
    if not pre and not suf:
        return out
    total = len(set(dims) | set(pre) | set(suf))
    pos = {t: i for i, t in enumerate(pre)}
    pos.update({t: total - len(suf) + j for j, t in enumerate(suf)})
    for d, name in enumerate(dims):
        if name in pos:
            out[d] = 1 if pos[name] < split else 2
        elif split <= len(pre):
            out[d] = 2
        elif split >= total - len(suf):
            out[d] = 1
    return out


def _ds_list(value, ds_names, error, file, key) -> list:
    if value is None:
        return []
    vals = [value] if isinstance(value, str) else list(value)
    for v in vals:
        if v not in ds_names:
            raise error(f"unknown data space '{v}'", file=file, key=key,
                        expected="one of " + ", ".join(ds_names))
    return vals


def directive_flags(d: dict, ds_names, file: str, key: str) -> dict:
    """Model flags a mapping directive sets: flag -> set of data-space names."""
    out: dict = {}
    typ = _base_type(str(d.get("type", "")))
    for flag, (ftype, keys) in FLAG_KEYS.items():
        if ftype != typ:
            continue
        for k in keys:
            vals = d.get(k)
            if vals is None:
                continue
            vals = [vals] if isinstance(vals, str) else list(vals)
            for v in vals:
                if v not in ds_names:
                    raise MappingError(f"unknown data space in {k}", file=file, key=f"{key}.{k}",
                                       expected="one of " + ", ".join(ds_names), got=v)
            if vals:
                out[flag] = out.get(flag, set()) | set(vals)
    return out


# ------------------------------------------------------------------------------ checks at load
def check_constraint_keys(c: dict, file: str, where: str) -> None:
    """Raise :class:`SpecError` for a key the constraint's type does not have (or we lack)."""
    ctype = str(c.get("type", "")).strip()
    allowed = ALLOWED_KEYS.get(ctype)
    if allowed is None:
        return  # unknown types are reported by check_constraints / the map space
    unknown = sorted(k for k in c if k not in allowed)
    if unknown:
        raise SpecError(f"constraint key '{unknown[0]}' is not supported for type '{ctype}'", file=file,
                        key=f"{where}.{unknown[0]}", expected="one of " + ", ".join(sorted(allowed - _COMMON)))


def check_constraints(constraints: list, arch, file: str, ds_names=None) -> None:
    """Every constraint is a mapping of a known ``type`` on a level of ``arch`` (or its compute
    unit), its keep / bypass names are data spaces and its ``factors`` read as ``D=N`` /
    ``D<=N`` / ``D>=N`` terms (:class:`SpecError` naming the first that is not)."""
    for i, raw in enumerate(constraints):
        where = f"constraints[{i}]"
        if not isinstance(raw, dict):
            raise SpecError("constraint entry is not a mapping", file=file, key=where,
                            expected="{target: ..., type: ..., ...}", got=raw)
        for c in constraint_entries(raw, flatten=False):
            target = c.get("target", c.get("name"))
            ctype = str(c.get("type", "")).strip()
            if ctype not in ALLOWED_KEYS:
                raise SpecError(f"unknown constraint type {ctype!r}", file=file, key=f"{where}.type",
                                expected="one of " + ", ".join(sorted(ALLOWED_KEYS)))
            if _level_index(arch.level_names, target) is None and target != arch.compute.name:
                raise SpecError(f"unknown constraint target {target!r}", file=file, key=f"{where}.target",
                                expected="one of " + ", ".join(map(str, arch.level_names)))
            if ds_names is not None and ctype in DATASPACE_TYPES:
                for flag in ("keep", "bypass"):
                    names = c.get(flag) or []
                    for s in [names] if isinstance(names, str) else names:
                        if s not in ds_names:
                            raise SpecError(f"unknown data space {s!r} in {flag} (target {target})",
                                            file=file, key=f"{where}.{flag}",
                                            expected="one of " + ", ".join(ds_names))
            factors = c.get("factors")
            if factors is None and isinstance(c.get("attributes"), dict):
                factors = c["attributes"].get("factors")
            if factors is None:
                continue
            terms = factor_terms(factors) if isinstance(factors, (str, list)) else None
            if terms is None:
                raise SpecError("factors must be a list or a string", file=file, key=f"{where}.factors",
                                expected="e.g. [C=1, M<=16] or 'C=1 M<=16'", got=factors)
            for t in terms:
                if factor_term(t) is None:
                    raise SpecError(f"cannot read factor {t!r} (target {target})", file=file,
                                    key=f"{where}.factors", expected="D=N, D<=N or D>=N with N an integer")


# ------------------------------------------------------------------------------ the parser
def spec_constraints(spec) -> list:
    """All constraint entries of ``spec``: its ``constraints`` list plus the per-level
    architecture constraints not already in it (targeting their level)."""
    out = list(spec.constraints or [])
    for lv in spec.arch.levels:
        for c in lv.constraints or []:
            if any(c is x for x in out):
                continue
            c = dict(c)
            c.setdefault("target", lv.name)
            out.append(c)
    return out


def _int(c: dict, name: str, key: str, file) -> int:
    try:
        return int(c[name])
    except (TypeError, ValueError):
        raise MappingError(f"{name} must be an integer", file=file, key=key, got=c[name]) from None


def _mapspace_entry(c: dict, lvl: int, lc: LevelConstraints, level_names, dims, bounds, spaces,
                    key: str, file) -> float | None:
    """Apply one constraint to ``lc`` (map-space part); returns a ``min`` utilisation if any."""
    ctype = str(c.get("type", "")).strip()
    space_index = {s: i for i, s in enumerate(spaces)}
    if ctype in ("temporal", "spatial"):
        pre = "t" if ctype == "temporal" else "s"
        fixed, vmax, vmin = constraint_factors(c.get("factors"), dims, bounds, key, file)
        for name, val in (("default_max_factor", vmax), ("default_min_factor", vmin)):
            if c.get(name) is not None:
                n = _int(c, name, key, file)
                for d in range(len(dims)):
                    val.setdefault(d, n)
        for arr_name, vals in (("fixed", fixed), ("max", vmax), ("min", vmin)):
            arr = getattr(lc, f"{pre}_{arr_name}")
            for d, v in vals.items():
                if arr[d] != 0 and arr[d] != v:
                    raise MappingError(f"re-specification of {ctype} factor {dims[d]} at level "
                                       f"{level_names[lvl]} ({arr[d]} vs {v})", file=file, key=key)
                arr[d] = v
                lc.sources[(pre, arr_name, d)] = key
        if c.get("permutation") is not None:
            p, s = constraint_permutation(c.get("permutation"), dims, key, file)
            if p or s:
                cur = (lc.t_prefix, lc.t_suffix) if pre == "t" else (lc.s_prefix, lc.s_suffix)
                if (cur[0] or cur[1]) and (cur[0], cur[1]) != (p, s):
                    raise MappingError(f"re-specification of {ctype} permutation at "
                                       f"level {level_names[lvl]}", file=file, key=key)
                if pre == "t":
                    lc.t_prefix, lc.t_suffix = p, s
                else:
                    lc.s_prefix, lc.s_suffix = p, s
        if ctype == "spatial" and c.get("split") is not None:
            split = _int(c, "split", key, file)
            if c.get("permutation") is not None:
                lc.s_orient = split_orientation(c["permutation"], dims, split)
            if lc.split is not None and lc.split != split:
                raise MappingError(f"re-specification of spatial split at level "
                                   f"{level_names[lvl]}", file=file, key=key)
            lc.split = split
    elif ctype in DATASPACE_TYPES:
        for flag, value in (("keep", 1), ("bypass", 0)):
            names = c.get(flag) or []
            if isinstance(names, str):
                names = [names]
            for s in names:
                if s not in space_index:
                    raise MappingError(f"unknown data space '{s}' in {flag}", file=file, key=key,
                                       expected=f"one of {list(spaces)}")
                si = space_index[s]
                if lc.keep[si] not in (-1, value):
                    raise MappingError(f"data space {s} is both kept and bypassed at "
                                       f"level {level_names[lvl]}", file=file, key=key)
                lc.keep[si] = value
                lc.sources[("keep", si)] = key
    elif ctype in ("utilization", "parallelism"):
        if c.get("min") is not None:
            try:
                return float(c["min"])
            except (TypeError, ValueError):
                raise MappingError("utilization min must be a number", file=file, key=key,
                                   got=c["min"]) from None
    elif ctype != "max_overbooked_proportion":
        raise MappingError(f"unknown constraint type {ctype!r}", file=file, key=key,
                           expected="temporal, spatial, dataspace/bypass, utilization")
    return None


def parse_targets(targets, level_names, dims, bounds, spaces, where: str = "constraints",
                  file: str | None = None, compute_name: str | None = None,
                  ds_names_for_flags=None) -> Constraints:
    """Parse constraint entries into :class:`Constraints` (levels in ``level_names`` order).

    Model flags are checked at once (:class:`SpecError`); the first map-space mistake is kept in
    ``mapspace_error`` (raised by :meth:`Constraints.map_space`).  Entries targeting
    ``compute_name`` have no map-space part.
    """
    L, S = len(level_names), len(spaces)
    flags = {f: np.zeros((L, S), dtype=bool) for f in FLAG_KEYS}
    levels = [LevelConstraints.empty(len(dims), S) for _ in level_names]
    min_par, error = 0.0, None
    for i, raw in enumerate(targets or []):
        if not isinstance(raw, dict):
            error = error or MappingError("constraint entry is not a mapping", file=file, key=where,
                                          expected="{target: ..., type: ...}", got=raw)
            continue
        for c in constraint_entries(raw):
            here = f"{where}[{i}]"
            check_constraint_keys(c, file, here)
            target = c.get("target", c.get("name"))
            ctype = str(c.get("type", "")).strip()
            lvl = _level_index(level_names, target)
            for flag, (ftype, keys) in FLAG_KEYS.items():
                if _base_type(ctype) != ftype:
                    continue
                for k in keys:
                    if k not in c:
                        continue
                    vals = _ds_list(c[k], spaces, SpecError, file, f"{here}.{k}")
                    if not vals:
                        continue
                    if lvl is None:
                        raise SpecError(f"unknown constraint target {target!r}", file=file,
                                        key=f"{here}.target", expected="one of " + ", ".join(level_names))
                    if flag == "no_coalesce":
                        raise SpecError("dataspace 'no_coalesce' is not supported by the model", file=file,
                                        key=f"{here}.no_coalesce", expected="an empty list or no key")
                    for v in vals:
                        flags[flag][lvl, spaces.index(v)] = True
            if error is not None or (lvl is None and target == compute_name):
                continue
            shown = level_names[lvl] if lvl is not None and target not in level_names \
                and isinstance(target, str) else target
            key = f"{where} target {shown} type {ctype}"
            if lvl is None:
                error = MappingError(f"unknown constraint target {target!r}", file=file, key=where,
                                     expected=f"one of {list(level_names)}")
                continue
            try:
                m = _mapspace_entry(c, lvl, levels[lvl], level_names, dims, bounds, spaces, key, file)
            except MappingError as exc:
                error = exc
                continue
            if m is not None:
                min_par = max(min_par, m)
    flags.pop("no_coalesce")
    return Constraints(list(level_names), ModelFlags(**flags), levels, min_par, error)


def parse_constraints(spec) -> Constraints:
    """The :class:`Constraints` of ``spec``: its constraints (``spec.constraints`` and the
    architecture's node constraints, as Timeloop's mapper reads them) and the model flags of its
    mapping directives (as timeloop-model reads them)."""
    arch, prob = spec.arch, spec.problem
    names, spaces = arch.level_names, prob.ds_names
    out = parse_targets(spec_constraints(spec), names, prob.dimensions, np.array(prob.sizes, dtype=np.int64),
                        spaces, "constraints", spec.source, arch.compute.name)
    mapping = spec.mapping
    if mapping is not None:
        for name, lm in mapping.levels.items():
            lvl = _level_index(names, name)
            for flag, vals in lm.flags.items():
                if not vals:
                    continue
                if lvl is None:
                    raise SpecError(f"unknown constraint target {name!r}", file=spec.source,
                                    key=f"mapping.target={name}.target", expected="one of " + ", ".join(names))
                if flag == "no_coalesce":
                    raise SpecError("dataspace 'no_coalesce' is not supported by the model", file=spec.source,
                                    key=f"mapping.target={name}.no_coalesce", expected="an empty list or no key")
                for v in vals:
                    getattr(out.flags, flag)[lvl, spaces.index(v)] = True
    return out


def model_flags(spec) -> ModelFlags:
    """The :class:`ModelFlags` of ``spec`` (:func:`parse_constraints`)."""
    return parse_constraints(spec).flags
