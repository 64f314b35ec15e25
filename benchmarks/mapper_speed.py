"""Mapper benchmark: quality against Timeloop's mapper and batched evaluation speed.

For every ``kind: mapper`` case of the Timeloop reference (``<repo>/../shared/timeloop-reference``)
the mapper searches the case's map space (its constraints, mapper metric, ERT/ART) within the time
limit; Timeloop's value is the model evaluated on the mapping Timeloop's mapper chose.  Then the
model's ``evaluate_batch`` is timed on batches of random map-space points, and compared with
AccelForge's 0.12 s per evaluation measured on this machine.

    .venv/bin/python benchmarks/mapper_speed.py [--time-limit 10] [--seed 0] [--evals 100000]
                                                [--speed-only] [--cases 06-eyeriss-vgg02l5]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
REF = ROOT.parent / "shared" / "timeloop-reference"
ACCELFORGE_S_PER_EVAL = 0.12

from a3cs_plugin.hardware.mapper.search import _better  # noqa: E402  (the mapper's own metric order)


def _load(case, with_mapping=False):
    from a3cs_plugin.hardware.spec import load_spec
    paths = [REF / p for p in case["inputs"]] + ([REF / case["mapping"]] if with_mapping else [])
    return load_spec(paths, ert=REF / case["ert"], art=REF / case["art"])


def _lex_le(a, b, rtol=1e-9):
    """a <= b lexicographically (within rtol): not strictly better the other way round."""
    return not _better(np.asarray(b, dtype=float), np.asarray(a, dtype=float), rtol)


def quality(cases, time_limit, seed):
    from a3cs_plugin.hardware.mapper import search
    from a3cs_plugin.hardware.model.batch import batch_from_mapping, evaluate_batch
    rows = []
    print(f"## Mapper vs Timeloop's mapper (time limit {time_limit:g} s per layer, seed {seed})\n")
    print("| case | metric | Timeloop cycles | ours cycles | Timeloop energy pJ | ours energy pJ "
          "| EDP ours/Timeloop | metric <= Timeloop | evaluated | search s | stop |")
    print("|---|---|---:|---:|---:|---:|---:|:---:|---:|---:|---|")
    for c in cases:
        spec = _load(c)
        tspec = _load(c, with_mapping=True)
        t = evaluate_batch(tspec, batch_from_mapping(tspec))
        t_cyc, t_en = float(t["cycles"][0]), float(t["energy_pJ"][0])
        r = search(spec, metric=None, time_limit=time_limit, seed=seed)
        o_cyc, o_en = float(r.result.cycles), float(r.result.energy_pJ)
        key = {"delay": 0, "cycles": 0, "energy": 1}
        pick = lambda cyc, en, m: cyc * en if m == "edp" else (cyc, en)[key[m]]  # noqa: E731
        ok = _lex_le([pick(o_cyc, o_en, m) for m in r.metric], [pick(t_cyc, t_en, m) for m in r.metric])
        ratio = (o_cyc * o_en) / (t_cyc * t_en)
        rows.append((c["id"], ok, ratio, r.search_seconds))
        print(f"| {c['id']} | {','.join(r.metric)} | {t_cyc:.0f} | {o_cyc:.0f} | {t_en:.6g} | {o_en:.6g} "
              f"| {ratio:.4f} | {'yes' if ok else 'NO'} | {r.evaluated} | {r.search_seconds:.2f} "
              f"| {r.stopped} |", flush=True)
    n_ok = sum(1 for r in rows if r[1])
    print(f"\n{n_ok}/{len(rows)} cases at or below Timeloop's mapper on the case's metric; "
          f"geo-mean EDP ratio ours/Timeloop = {np.exp(np.mean(np.log([r[2] for r in rows]))):.4f}; "
          f"max search time {max(r[3] for r in rows):.2f} s\n")
    return rows


def speed(cases, n_evals, batch, seed):
    from a3cs_plugin.hardware.mapper import build_mapspace
    from a3cs_plugin.hardware.model.batch import evaluate_batch
    print(f"## Batched fixed-mapping evaluation ({n_evals} random map-space points, batches of "
          f"{batch}, one process)\n")
    print("| spec | levels x dims | mappings/s | s per mapping | vs AccelForge 0.12 s/eval |")
    print("|---|---|---:|---:|---:|")
    rng = np.random.default_rng(seed)
    out = []
    for c in cases:
        spec = _load(c)
        sp = build_mapspace(spec)
        g, _ = sp.sample(rng, batch)
        b = sp.to_batch(g)
        evaluate_batch(spec, b)                      # warm-up (table set-up)
        done, t0 = 0, time.perf_counter()
        while done < n_evals:
            evaluate_batch(spec, b)
            done += len(b)
        dt = time.perf_counter() - t0
        rate = done / dt
        out.append(rate)
        print(f"| {c['id']} | {sp.L} x {sp.D} | {rate:,.0f} | {1 / rate:.2e} | "
              f"{rate * ACCELFORGE_S_PER_EVAL:,.0f}x |", flush=True)
    print()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--evals", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=8192)
    ap.add_argument("--cases", default="", help="comma-separated case ids (default: all mapper cases)")
    ap.add_argument("--speed-only", action="store_true", help="skip the mapper-quality table")
    args = ap.parse_args(argv)
    if not (REF / "cases.yaml").is_file():
        print(f"Timeloop reference data not found at {REF}", file=sys.stderr)
        return 1
    cases = [c for c in yaml.safe_load((REF / "cases.yaml").read_text())["cases"] if c["kind"] == "mapper"]
    if args.cases:
        want = set(args.cases.split(","))
        cases = [c for c in cases if c["id"] in want]
    if not args.speed_only:
        quality(cases, args.time_limit, args.seed)
    uniq = {}
    for c in cases:   # one spec per distinct architecture/problem for the speed table
        key = tuple(p for p in c["inputs"]
                    if "constraints" not in Path(p).name and "mapper" not in Path(p).name)
        uniq.setdefault(key, c)
    rates = speed(list(uniq.values()), args.evals, args.batch, args.seed)
    print(f"slowest batched rate {min(rates):,.0f} mappings/s "
          f"({'>=' if min(rates) >= 100_000 else '<'} 100,000 goal); "
          f"{min(rates) * ACCELFORGE_S_PER_EVAL:,.0f}x AccelForge's per-evaluation time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
