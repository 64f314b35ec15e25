"""Parity of a3cs's analytical model with Timeloop (15 reference cases, 32 oracle cases in three
Timeloop variants) + batched throughput.

Usage: ``python benchmarks/model_parity.py [--batch 100000]``.  Prints Markdown.
Reference data: ``<repo>/../shared/timeloop-reference`` and ``<repo>/../shared/timeloop-oracle-cases``
(each skipped with a message when absent).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
REF = REPO.parent / "shared" / "timeloop-reference"
ORACLE = REPO.parent / "shared" / "timeloop-oracle-cases"
sys.path.insert(0, str(REPO))

from a3cs_plugin.hardware.model import MappingBatch, batch_from_mapping, evaluate, evaluate_batch  # noqa: E402
from a3cs_plugin.hardware.spec import load_spec, load_yaml_file  # noqa: E402


def load_case(case: dict):
    srcs = [REF / case["processed_input"]]
    if not (load_yaml_file(srcs[0]).get("mapping") or []):
        srcs.append(REF / case["mapping"])
    return load_spec(srcs, ert=REF / case["ert"], art=REF / case["art"])


def dev(ours: float, exp: float) -> float:
    return 0.0 if exp == ours else (float("inf") if exp == 0 else 100.0 * (ours - exp) / exp)


def parity_table(cases: list) -> float:
    print("| case | quantity | Timeloop | a3cs | deviation |")
    print("|---|---|---:|---:|---:|")
    worst = 0.0
    for case in cases:
        r = evaluate(load_case(case))
        e = case["expected"]
        rows = [("cycles", e["cycles"], r.cycles), ("energy (pJ)", e["energy_pJ"], r.energy_pJ)]
        rows += [(f"{k} (pJ)", v, r.levels_pJ.get(k, float("nan"))) for k, v in e["levels_pJ"].items()]
        for q, exp, ours in rows:
            d = dev(ours, exp)
            worst = max(worst, abs(d))
            print(f"| {case['id']} | {q} | {exp:.4f} | {ours:.4f} | {d:+.4f} % |")
    print(f"\nWorst deviation over {len(cases)} cases: {worst:.4f} %\n")
    return worst


def oracle_table() -> float:
    """Worst deviations per Timeloop variant over the oracle cases, both mappings."""
    import glob
    import warnings
    from a3cs_plugin.hardware.model import engine
    if not (ORACLE / "cases.yaml").is_file():
        print(f"oracle data not found at {ORACLE}; skipped\n")
        return 0.0
    cases = yaml.safe_load((ORACLE / "cases.yaml").read_text())["cases"]
    variants = {"ref": ("ref", True), "head": ("head", True), "nolink": ("ref", False)}
    print("| variant (our settings) | mapping | cases | worst cycles | worst energy | worst level | energy differs from ref |")
    print("|---|---|---:|---:|---:|---:|---:|")
    worst_all = 0.0
    saved = engine.HALO_RULE, engine.LINK_TRANSFERS
    for name, (version, links) in variants.items():
        engine.set_timeloop_semantics(version, links)
        for mk in ("tl", "a3cs"):
            wc = we = wl = 0.0
            differ = 0
            for c in cases:
                srcs = []
                for p in c["inputs"]:
                    srcs += sorted(glob.glob(str(ORACLE / p))) if "*" in p else [str(ORACLE / p)]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    spec = load_spec(srcs + [str(ORACLE / c["expected"][mk]["mapping"])],
                                     ert=ORACLE / c["ert"], art=ORACLE / c["art"])
                r = evaluate(spec)
                e = c["expected"][mk][name]
                differ += e["energy_pJ"] != c["expected"][mk]["ref"]["energy_pJ"]
                wc = max(wc, abs(dev(r.cycles, e["cycles"])))
                we = max(we, abs(dev(r.energy_pJ, e["energy_pJ"])))
                wl = max([wl] + [abs(dev(r.levels_pJ.get(k, float("nan")), v)) for k, v in e["levels_pJ"].items()])
            worst_all = max(worst_all, wc, we)
            label = {"ref": "ref (default)", "head": "head (--timeloop-version head)",
                     "nolink": "nolink (--no-link-transfers)"}[name]
            print(f"| {label} | {'Timeloop' if mk == 'tl' else 'a3cs'}'s | {len(cases)} | {wc:.4f} % | "
                  f"{we:.4f} % | {wl:.4f} % | {differ if name != 'ref' else '-'} |")
    engine.HALO_RULE, engine.LINK_TRANSFERS = saved
    engine._CACHE.clear()
    print()
    return worst_all


def random_batch(spec, n: int, rng) -> MappingBatch:
    """The spec's mapping with random loop orders and random bypass above the innermost level."""
    one = batch_from_mapping(spec)
    b = MappingBatch(*(np.repeat(getattr(one, f), n, 0)
                       for f in ("temporal", "spatial_x", "spatial_y", "perm", "keep")))
    b.perm = np.argsort(rng.random(b.perm.shape), axis=2)
    flip = rng.random(b.keep.shape) < 0.2
    flip[:, -1, :] = False
    b.keep = b.keep ^ flip
    return b


def throughput(cases: list, n: int) -> None:
    print("| spec | storage levels | dims | batch | mappings/s (CPU time) | mappings/s (wall) |")
    print("|---|---:|---:|---:|---:|---:|")
    rng = np.random.default_rng(0)
    for cid in ("03-3level-nobypass", "04-spatial-kp", "06-eyeriss-vgg02l5"):
        case = next(c for c in cases if c["id"] == cid)
        spec = load_case(case)
        batch = random_batch(spec, n, rng)
        evaluate_batch(spec, batch.take(slice(0, 256)))  # warm-up (tables)
        t0, c0 = time.perf_counter(), time.process_time()
        out = evaluate_batch(spec, batch)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        assert out["energy_pJ"].shape == (n,)
        L = sum(not lv.is_dummy for lv in spec.arch.levels)
        print(f"| {cid} | {L} (+{len(spec.arch.levels) - L} dummy) | {len(spec.problem.dimensions)} | "
              f"{n} | {n / cpu:,.0f} | {n / wall:,.0f} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch", type=int, default=100_000)
    args = ap.parse_args(argv)
    if not (REF / "cases.yaml").is_file():
        print(f"reference data not found at {REF}; nothing to compare")
        return 0
    cases = yaml.safe_load((REF / "cases.yaml").read_text())["cases"]
    print("## Model parity with Timeloop\n")
    worst = parity_table(cases)
    print("## Against a real Timeloop on 32 random layers (oracle cases)\n")
    worst = max(worst, oracle_table())
    print("## Batched evaluation throughput (one process, numpy)\n")
    throughput(cases, args.batch)
    return 0 if worst <= 0.5 else 1


if __name__ == "__main__":
    sys.exit(main())
