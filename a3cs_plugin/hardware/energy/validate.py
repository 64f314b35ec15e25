"""Compare the built-in tables with Accelergy's reference ERT/ART files.

For every ``*ERT.yaml`` under the reference folder that has a ``*flattened_architecture.yaml``
beside it, each table's component (same class and attributes) is re-estimated with
:func:`component_actions` and ``ours / Accelergy`` is recorded per action. Actions that carry
several argument variants (Accelergy 0.3 ``address_delta``/``data_delta``) are compared with
their largest variant (a random access). Folders named ``output`` are skipped: in the
reference set they hold re-runs made with Accelergy's dummy estimator (placeholder values
1/2/3 pJ), not estimates.

``python -m a3cs_plugin.hardware.energy.validate [REFERENCE_DIR]`` prints the Markdown tables.
"""
from __future__ import annotations

import math
import sys
from collections import defaultdict
from pathlib import Path

import yaml

from a3cs_plugin.errors import SpecError
from a3cs_plugin.hardware.energy.builtin import CLASS_ALIASES, component_actions

DYNAMIC = ("read", "write", "update", "compute", "mac_random")
STATIC = ("leak",)


def _load(path: Path) -> dict:
    with open(path) as f:
        return yaml.safe_load(f) or {}


def reference_pairs(ref_dir: Path) -> list[tuple[Path, Path, Path | None]]:
    """(ERT, flattened architecture, ART or None) triples, skipping dummy ``output`` folders."""
    out = []
    for ert in sorted(Path(ref_dir).rglob("*ERT.yaml")):
        if "output" in ert.relative_to(ref_dir).parts:
            continue
        flat = sorted(ert.parent.glob("*flattened_architecture.yaml"))
        if not flat:
            continue
        arts = sorted(ert.parent.glob("*ART.yaml"))
        out.append((ert, flat[0], arts[0] if arts else None))
    return out


def compare(ref_dir: Path) -> dict:
    """Ratios ours/reference: ``{"rows": [...], "unsupported": {class: [files]}, "not_modelled"}``.

    Each row: file, component, class, action ('area' for ART), ours, ref, ratio.
    """
    rows, unsupported, zero = [], defaultdict(set), set()
    for ert_path, flat_path, art_path in reference_pairs(ref_dir):
        rel = str(ert_path.relative_to(ref_dir))
        arch = _load(flat_path)["architecture"]["local"]
        comps = {c["name"]: c for c in arch}
        areas = {}
        if art_path is not None:
            areas = {t["name"]: t.get("area") for t in _load(art_path)["ART"]["tables"]}
        for table in _load(ert_path)["ERT"]["tables"]:
            comp = comps.get(table["name"])
            if comp is None:
                continue
            cls = comp.get("class")
            if str(cls).lower() not in CLASS_ALIASES:
                unsupported[str(cls)].add(rel)
                continue
            try:
                ours, area = component_actions(table["name"], cls, comp.get("attributes") or {})
            except SpecError as e:  # recorded, never silently dropped
                unsupported[f"{cls} ({e})"].add(rel)
                continue
            ref = defaultdict(float)
            for a in table["actions"]:
                ref[a["name"]] = max(ref[a["name"]], float(a["energy"]))
            for action, r in ref.items():
                if action in ours and r > 0 and ours[action] == 0:
                    zero.add(f"{cls}.{action}")  # not modelled (e.g. fpmac leak): no ratio
                elif action in ours and r > 0:
                    rows.append(dict(file=rel, component=table["name"], cls=cls, action=action,
                                     ours=ours[action], ref=r, ratio=ours[action] / r))
            ra = areas.get(table["name"])
            if ra:
                rows.append(dict(file=rel, component=table["name"], cls=cls, action="area",
                                 ours=area, ref=float(ra), ratio=area / float(ra)))
    return {"rows": rows, "unsupported": {k: sorted(v) for k, v in unsupported.items()},
            "not_modelled": sorted(zero)}


def summarize(rows: list[dict], actions: tuple[str, ...]) -> dict[str, dict]:
    """Per class: n, min, max, geometric mean of the ratios over ``actions``."""
    by = defaultdict(list)
    for r in rows:
        if r["action"] in actions:
            by[r["cls"]].append(r["ratio"])
    return {c: dict(n=len(v), min=min(v), max=max(v),
                    geomean=math.exp(sum(math.log(x) for x in v) / len(v)))
            for c, v in sorted(by.items())}


def markdown(result: dict) -> str:
    lines = []
    for title, acts in (("Dynamic energy (read/write/update/compute/mac_random)", DYNAMIC),
                        ("Leakage per cycle", STATIC), ("Area (ART)", ("area",))):
        s = summarize(result["rows"], acts)
        lines += [f"### {title}: built-in / Accelergy", "",
                  "| class | n | min | max | geo-mean |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {c} | {v['n']} | {v['min']:.3g} | {v['max']:.3g} | {v['geomean']:.3g} |"
                  for c, v in s.items()]
        lines.append("")
    if result.get("not_modelled"):
        lines.append("Reference actions the tables give 0 for (no ratio): "
                     + ", ".join(result["not_modelled"]) + ".")
    if result["unsupported"]:
        lines.append("Classes in the reference without a built-in model: "
                     + ", ".join(sorted(result["unsupported"])) + ".")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    default = Path(__file__).resolve().parents[3] / ".." / "shared" / "timeloop-reference"
    ref = Path(argv[0]) if argv else default.resolve()
    print(markdown(compare(ref)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
