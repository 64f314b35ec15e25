"""Timeloop mapspace constraints -> per-level arrays.

Semantics follow Timeloop's ``mapping/constraints.cpp`` and ``mapspaces/uber.cpp``:

* ``factors``: ``D=n`` fixes the loop bound of ``D`` at that level (``D n`` and ``Dn`` are accepted
  too); ``D=0`` means the full problem bound; a value larger than the problem bound is ignored (as
  Timeloop does, with a warning); ``D<=n`` / ``D>=n`` are upper / lower bounds;
  ``default_max_factor`` / ``default_min_factor`` apply to every dimension not named.
* ``permutation``: innermost loop first; a partial permutation fixes the innermost loops, the part
  after ``_`` fixes the outermost loops, the rest is free.
* ``split`` (spatial): dimensions at permutation positions ``< split`` map to mesh X, the others to Y.
  A v0.4 node constraint reaches this point rewritten as Timeloop's front-end rewrites it (unit
  dimensions first, :mod:`a3cs_plugin.hardware.spec.frontend`), so the split lands where Timeloop's does.
* ``keep`` / ``bypass`` (type ``dataspace``, ``datatype``, ``bypass`` or ``bypassing``): fixed
  keep/bypass flags; unspecified flags are free except at the outermost level (always kept).
* ``utilization`` / ``parallelism`` ``min``: lower bound on the product of spatial utilisations.
* ``max_overbooked_proportion``, ``no_reuse``, ``no_multicast_no_reduction``, ``no_link_transfer``,
  ``no_temporal_reuse``, ``rmw_first_update``, ``no_coalesce`` and ``remainders`` do not restrict the
  map space; the model reads the ones that change its numbers from the spec
  (:func:`a3cs_plugin.hardware.spec.constraints.model_flags`), so the mapper's evaluations honour them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ...errors import MappingError

__all__ = ["LevelConstraints", "parse_targets", "parse_factors", "parse_permutation"]

_FIX_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*=*\s*([0-9]+)")
_MAX_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*<=\s*([0-9]+)")
_MIN_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*>=\s*([0-9]+)")
_DATASPACE_TYPES = ("dataspace", "datatype", "bypass", "bypassing")


@dataclass
class LevelConstraints:
    """Constraints of one storage level (arrays are indexed by problem dimension)."""

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


def _err(file, message, **kw) -> MappingError:
    return MappingError(message, file=file, **kw)


def _as_text(value, joiner=" ") -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return joiner.join(str(v) for v in value)
    return str(value)


def parse_factors(value, dims, bounds, where: str = "constraints", file: str | None = None):
    """``(fixed, max, min)`` dicts dim index -> int from a Timeloop ``factors`` value.

    A dimension the problem does not have is skipped when the term cannot restrict anything
    (``D=1``, ``D<=n``, ``D>=1``), so that one architecture's constraints serve e.g. convolutions
    and matrix multiplications alike; any other term on it raises :class:`MappingError`.
    """
    text = _as_text(value, ",").split("#")[0]
    index = {d: i for i, d in enumerate(dims)}
    fixed, vmax, vmin = {}, {}, {}

    def unknown(name, harmless):
        if not harmless:
            raise _err(file, f"unknown dimension '{name}' in factors {text!r}", key=where,
                       expected=f"one of {list(dims)}")

    for regex, out in ((_MAX_RE, vmax), (_MIN_RE, vmin)):
        for name, num in regex.findall(text):
            if name not in index:
                unknown(name, out is vmax or int(num) <= 1)
                continue
            if int(num) <= 0:
                raise _err(file, f"factor bound {name}{num} must be positive", key=where)
            out[index[name]] = int(num)
    # strip the <= / >= terms so that the fixed-factor regex cannot see them
    rest = _MIN_RE.sub(" ", _MAX_RE.sub(" ", text))
    for name, num in _FIX_RE.findall(rest):
        if name not in index:
            unknown(name, int(num) == 1)
            continue
        d, n = index[name], int(num)
        if n == 0:
            n = int(bounds[d])
        elif n > bounds[d]:
            continue  # Timeloop: a factor above the problem bound is ignored
        fixed[d] = n
    return fixed, vmax, vmin


def permutation_tokens(value, dims, where: str = "constraints", file: str | None = None):
    """``(prefix, suffix)`` lists of dimension *names* as written (innermost first; ``_``
    separates the suffix).  Single-letter names may be run together (``"RSPQ"``)."""
    if value is None:
        return [], []
    if isinstance(value, (list, tuple)):
        tokens = [str(v).strip() for v in value]
    else:
        text = str(value).split("#")[0].strip()
        tokens = [t for t in re.split(r"[\s,]+", text) if t] if any(c in text for c in " ,") else []
        if not tokens or all(len(t) > 1 and t not in dims for t in tokens if t != "_"):
            tokens = [c for c in text if not c.isspace() and c != ","]
    prefix, suffix, after = [], [], False
    for tok in tokens:
        if tok == "_":
            after = True
            continue
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", tok):
            raise _err(file, f"bad dimension name '{tok}' in permutation {value!r}", key=where,
                       expected=f"names from {list(dims)}")
        (suffix if after else prefix).append(tok)
    if len(set(prefix + suffix)) != len(prefix + suffix):
        raise _err(file, f"dimension repeated in permutation {value!r}", key=where)
    return prefix, suffix


def parse_permutation(value, dims, where: str = "constraints", file: str | None = None):
    """``(prefix, suffix)`` lists of dim indices; innermost first, ``_`` separates the suffix.

    Names of dimensions the problem does not have are skipped (a permutation cannot restrict a
    loop that does not exist).
    """
    index = {d: i for i, d in enumerate(dims)}
    pre, suf = permutation_tokens(value, dims, where, file)
    return [index[t] for t in pre if t in index], [index[t] for t in suf if t in index]


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


def _target_entries(entry):
    """Timeloop accepts ``{target, type, ...}`` or ``{target, constraints: [ ... ]}``."""
    if isinstance(entry, dict) and isinstance(entry.get("constraints"), list):
        for c in entry["constraints"]:
            c = dict(c)
            c.setdefault("target", entry.get("target", entry.get("name")))
            attrs = c.pop("attributes", None)
            if isinstance(attrs, dict):
                c.update(attrs)
            yield c
    else:
        c = dict(entry)
        attrs = c.pop("attributes", None)
        if isinstance(attrs, dict):
            c.update(attrs)
        yield c


def parse_targets(targets, level_names, dims, bounds, spaces, where: str = "constraints",
                  file: str | None = None):
    """Parse a Timeloop constraint ``targets`` list into ``(levels, min_parallelism)``.

    ``levels`` is a list of :class:`LevelConstraints` in ``level_names`` order.  A setting repeated
    for the same level, target names not in ``level_names`` and unknown dimension / data-space names
    raise :class:`MappingError` (as Timeloop exits on them).
    """
    level_index = {n: i for i, n in enumerate(level_names)}
    space_index = {s: i for i, s in enumerate(spaces)}
    out = [LevelConstraints.empty(len(dims), len(spaces)) for _ in level_names]
    min_par = 0.0
    for raw in targets or []:
        if not isinstance(raw, dict):
            raise _err(file, "constraint entry is not a mapping", key=where,
                               expected="{target: ..., type: ...}", got=raw)
        for c in _target_entries(raw):
            target = c.get("target", c.get("name"))
            ctype = str(c.get("type", "")).strip()
            key = f"{where} target {target} type {ctype}"
            if isinstance(target, int) and 0 <= target < len(level_names):
                lvl = target
            elif target in level_index:
                lvl = level_index[target]
            else:
                raise _err(file, f"unknown constraint target {target!r}", key=where,
                                   expected=f"one of {list(level_names)}")
            lc = out[lvl]
            if ctype in ("temporal", "spatial"):
                pre = "t" if ctype == "temporal" else "s"
                fixed, vmax, vmin = parse_factors(c.get("factors"), dims, bounds, key, file)
                for name, val in (("default_max_factor", vmax), ("default_min_factor", vmin)):
                    if c.get(name) is not None:
                        for d in range(len(dims)):
                            val.setdefault(d, int(c[name]))
                for arr_name, vals in (("fixed", fixed), ("max", vmax), ("min", vmin)):
                    arr = getattr(lc, f"{pre}_{arr_name}")
                    for d, v in vals.items():
                        if arr[d] != 0 and arr[d] != v:
                            raise _err(file, 
                                f"re-specification of {ctype} factor {dims[d]} at level "
                                f"{level_names[lvl]} ({arr[d]} vs {v})", key=key)
                        arr[d] = v
                        lc.sources[(pre, arr_name, d)] = key
                if c.get("permutation") is not None:
                    p, s = parse_permutation(c.get("permutation"), dims, key, file)
                    if p or s:
                        cur = (lc.t_prefix, lc.t_suffix) if pre == "t" else (lc.s_prefix, lc.s_suffix)
                        if (cur[0] or cur[1]) and (cur[0], cur[1]) != (p, s):
                            raise _err(file, f"re-specification of {ctype} permutation at "
                                               f"level {level_names[lvl]}", key=key)
                        if pre == "t":
                            lc.t_prefix, lc.t_suffix = p, s
                        else:
                            lc.s_prefix, lc.s_suffix = p, s
                if ctype == "spatial" and c.get("split") is not None:
                    split = int(c["split"])
                    if c.get("permutation") is not None:
                        lc.s_orient = split_orientation(c["permutation"], dims, split)
                    if lc.split is not None and lc.split != split:
                        raise _err(file, f"re-specification of spatial split at level "
                                           f"{level_names[lvl]}", key=key)
                    lc.split = split
            elif ctype in _DATASPACE_TYPES:
                for flag, value in (("keep", 1), ("bypass", 0)):
                    names = c.get(flag) or []
                    if isinstance(names, str):
                        names = [names]
                    for s in names:
                        if s not in space_index:
                            raise _err(file, f"unknown data space '{s}' in {flag}", key=key,
                                               expected=f"one of {list(spaces)}")
                        si = space_index[s]
                        if lc.keep[si] not in (-1, value):
                            raise _err(file, f"data space {s} is both kept and bypassed at "
                                               f"level {level_names[lvl]}", key=key)
                        lc.keep[si] = value
                        lc.sources[("keep", si)] = key
            elif ctype in ("utilization", "parallelism"):
                if c.get("min") is not None:
                    min_par = max(min_par, float(c["min"]))
            elif ctype in ("max_overbooked_proportion",):
                pass
            else:
                raise _err(file, f"unknown constraint type {ctype!r}", key=key,
                                   expected="temporal, spatial, dataspace/bypass, utilization")
    return out, min_par
