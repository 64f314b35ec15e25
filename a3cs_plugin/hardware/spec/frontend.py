"""What Timeloop's v0.4 Python front-end does to per-node constraints before Timeloop reads them.

Only one rewrite changes the map space: a spatial ``permutation`` gets the problem's unit
dimensions put in front of it (innermost), first those the constraint's ``factors`` fix to 1 (each
inserted at the front in the order written), then those of problem size 1, while ``split`` stays
as written.  So on ``spatial: {permutation: [C, M], split: 1, factors: [R=1, S=1, P=1, Q=1]}``
with ``N = 1`` Timeloop reads ``NQPSRCM`` with split 1: mesh X gets N (a unit loop) and C and M
both go to Y -- not "C on X, M on Y" as the constraint seems to say.

``SPLIT_SEMANTICS = "timeloopfe"`` (default, also ``A3CS_SPLIT_SEMANTICS``) applies the rewrite and
warns in one line where it moves a dimension from one mesh axis to the other; ``"literal"`` keeps
the permutation as written.  The rewrite is idempotent (a processed input is left as it is).
"""
from __future__ import annotations

import os
import re
import warnings

from a3cs_plugin.errors import SpecError

SPLIT_SEMANTICS = os.environ.get("A3CS_SPLIT_SEMANTICS", "timeloopfe")
CHOICES = ("timeloopfe", "literal")

class SplitWarning(UserWarning):
    """A spatial split lands differently from what the written permutation seems to say."""


_UNIT_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=?\s*([0-9]+)\s*$")


def _tokens(value, dims) -> list | None:
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value]
    text = str(value).split("#")[0].strip()
    if any(c in text for c in " ,"):
        return [t for t in re.split(r"[\s,]+", text) if t]
    if text in dims:
        return [text]
    return [c for c in text]


def _unit_factors(value) -> list:
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else re.split(r"[\s,]+", str(value).split("#")[0])
    out = []
    for it in items:
        m = _UNIT_RE.match(str(it))
        if m and int(m.group(2)) == 1 and "<" not in str(it) and ">" not in str(it):
            out.append(m.group(1))
    return out


def frontend_permutation(perm: list, factors, dims: list, sizes: dict) -> list:
    """The spatial permutation Timeloop reads for ``perm`` (names, innermost first)."""
    out = list(perm)
    for name in _unit_factors(factors):
        if name in dims and name not in out:
            out.insert(0, name)
    for name in dims:
        if int(sizes.get(name, 0)) == 1 and name not in out:
            out.insert(0, name)
    return out


def _axes(perm: list, split: int, dims: list) -> dict:
    return {d: ("X" if perm.index(d) < split else "Y") for d in dims if d in perm}


def apply_frontend(arch, problem, file: str, semantics: str | None = None) -> None:
    """Rewrite the spatial permutations of ``arch``'s per-node (v0.4) constraints in place."""
    semantics = SPLIT_SEMANTICS if semantics is None else semantics
    if semantics not in CHOICES:
        raise SpecError(f"unknown split semantics {semantics!r}", key="A3CS_SPLIT_SEMANTICS",
                        expected=" or ".join(CHOICES))
    if semantics == "literal" or arch.version != "0.4":
        return
    dims = list(problem.dimensions)
    sizes = dict(problem.instance)
    for lv in arch.levels:
        for c in lv.constraints:
            if c.get("type") != "spatial" or c.get("permutation") is None:
                continue
            perm = _tokens(c["permutation"], dims)
            if perm is None or "_" in perm:
                continue
            new = frontend_permutation(perm, c.get("factors"), dims, sizes)
            if new == perm:
                continue
            c["permutation"] = new
            if c.get("split") is None:
                continue
            split = int(c["split"])
            units = set(_unit_factors(c.get("factors"))) | {d for d in dims if int(sizes.get(d, 0)) == 1}
            free = [d for d in perm if d in dims and d not in units]
            before, after = _axes(perm, split, free), _axes(new, split, free)
            if before != after:
                xs = [d for d in free if after[d] == "X"]
                ys = [d for d in free if after[d] == "Y"]
                where = (f"X: {', '.join(xs)}; Y: {', '.join(ys) or 'no free dimension'}" if xs
                         else f"{', '.join(ys)} all on Y, X gets unit loops only")
                warnings.warn(
                    f"{file}: {c.get('target', lv.name)}: spatial permutation [{', '.join(perm)}] with "
                    f"split {split} is {''.join(new)} in Timeloop's front-end (unit dimensions go first), "
                    f"so {where}; --split literal (A3CS_SPLIT_SEMANTICS=literal) reads it as written",
                    SplitWarning, stacklevel=4)
