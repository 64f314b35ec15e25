"""Surrogate labels in shards: which pairs a shard labels, and merging shard caches.

``a3cs hw fit-surrogate --shard i/n`` labels every n-th pair (the i-th of each run of n, 1-based)
of the fit's pair sequence -- training pairs, then held-out pairs, then the noise-check pairs --
into its own cache and stops. The sequence depends only on the template, the seed and the sample
counts, so shards made on different machines cover it exactly once. ``a3cs hw merge-labels``
joins the caches (one record per key); a fit with ``--cache MERGED.jsonl`` then labels nothing.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from ...errors import ConfigError

__all__ = ["parse_shard", "shard_indices", "check_record", "merge_label_files", "LABEL_FIELDS"]

# fields every label record has (label_one writes them); a valid mapping adds energy_pJ and cycles
LABEL_FIELDS = ("key", "template", "point", "instance", "metric", "time_limit", "seed")


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"i/n"`` -> ``(i, n)`` with ``1 <= i <= n``; None stays None; anything else: ConfigError."""
    if text is None:
        return None
    m = re.match(r"^\s*(\d+)\s*/\s*(\d+)\s*$", str(text))
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise ConfigError("not a shard", key="--shard", expected="i/n with 1 <= i <= n (e.g. 1/4)", got=text)
    return int(m.group(1)), int(m.group(2))


def shard_indices(total: int, shard: tuple[int, int]) -> list[int]:
    """Positions (0-based) of the pair sequence that shard ``(i, n)`` labels."""
    i, n = shard
    return list(range(i - 1, total, n))


def check_record(rec, where: str) -> dict:
    """A label record (a dict with the label fields, numbers or an error); ConfigError otherwise."""
    if not isinstance(rec, dict) or any(k not in rec for k in LABEL_FIELDS):
        raise ConfigError("not a label record", file=where,
                          expected="JSON lines with " + ", ".join(LABEL_FIELDS)
                                   + " (a cache written by a3cs hw fit-surrogate)")
    if not isinstance(rec["key"], str) or not re.fullmatch(r"[0-9a-f]{40}", rec["key"]):
        raise ConfigError("label key is not a 40-digit hex hash", file=where, key="key", got=rec["key"])
    if "error" not in rec:
        for k in ("energy_pJ", "cycles"):
            v = rec.get(k)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise ConfigError(f"label without a positive '{k}'", file=where, key=k,
                                  expected="a number > 0 (or an 'error' for a pair without a mapping)", got=v)
    return rec


def _records(path: str | Path):
    from ..spec.yamlio import read_text
    p = Path(path)
    if not p.is_file():
        raise ConfigError("file not found" if not p.exists() else "not a file", file=str(p),
                          expected="a label cache (JSON lines)")
    lines = [(i, ln) for i, ln in enumerate(read_text(p, ConfigError).splitlines(), 1) if ln.strip()]
    if not lines:
        raise ConfigError("no labels", file=str(p), expected="a label cache written by a3cs hw fit-surrogate")
    for j, (i, line) in enumerate(lines):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            if j == len(lines) - 1 and j > 0:   # a line cut by an interrupted run: relabelled later
                continue
            raise ConfigError(f"line {i} is not JSON", file=str(p),
                              expected="a label cache written by a3cs hw fit-surrogate") from None
        yield check_record(rec, f"{p}:{i}")


def merge_label_files(paths, out: str | Path) -> dict:
    """Write the records of the caches ``paths`` to ``out``, one per key (the first valid label of
    a key wins over a record without a mapping; otherwise the first seen). Every input is checked
    before anything is written."""
    merged: dict[str, dict] = {}
    dup = 0
    for path in paths:
        for rec in _records(path):
            old = merged.get(rec["key"])
            if old is None:
                merged[rec["key"]] = rec
                continue
            dup += 1
            if "error" in old and "error" not in rec:
                merged[rec["key"]] = rec
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in merged.values()))
    tmp.replace(out)
    return {"records": len(merged), "duplicates": dup,
            "errors": sum(1 for r in merged.values() if "error" in r)}
