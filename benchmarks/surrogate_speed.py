"""Surrogate prediction throughput: (layer, accelerator) points per second on CPU.

    .venv/bin/python benchmarks/surrogate_speed.py [--template eyeriss_like] [--points 1000000]

Cases: every point with its own concrete accelerator (one-hot rows [N, sum K]: labelling, design
sweeps; each derived input is one entry of a per-layer table), every point with its own soft
probability row (relaxed samples: the expectation path), and one shared accelerator (dict of [K]
vectors, the co-search case). Also the time of a forward+backward pass through the accelerator
probabilities. Prints one table; the goal is >= 1M points/s.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from a3cs_plugin.hardware.space import DesignSpace
from a3cs_plugin.hardware.surrogate import Surrogate, layer_features
from a3cs_plugin.hardware.surrogate.layers import layer_mix


def _rate(fn, n, repeat=3):
    """Best of ``repeat`` runs: (points/s by wall clock, seconds, points/s by process CPU time).
    On a shared machine the CPU-time rate is what one free core would give (one thread)."""
    fn()  # warm-up
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return n / best, best, n / max(best_cpu, 1e-9)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--template", default="eyeriss_like")
    ap.add_argument("--model", default=None, help="surrogate .pt (default: the shipped one)")
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--chunk", type=int, default=0,
                    help="split the batch into chunks here (0: one predict call; predict chunks itself)")
    ap.add_argument("--threads", type=int, nargs="*", default=[1])
    args = ap.parse_args(argv)

    model = Surrogate.load(args.model or args.template)
    space = DesignSpace.from_template(args.template)
    rng = np.random.default_rng(0)
    feats = np.stack([layer_features(p) for p in layer_mix("train", 200, 0)])
    x = torch.tensor(feats[rng.integers(len(feats), size=args.points)])
    a = torch.tensor(np.stack([space.encode(space.sample(rng)) for _ in range(4096)]))
    a = a[torch.as_tensor(rng.integers(4096, size=args.points))]
    shared = {n: torch.softmax(torch.randn(k), 0) for n, k in space.sizes.items()}
    soft = torch.cat([torch.softmax(torch.randn(4096, k), 1) for k in space.sizes.values()], dim=1)
    soft = soft[torch.as_tensor(rng.integers(4096, size=args.points))]
    n = args.points
    c = args.chunk or n

    def per_point():
        with torch.no_grad():
            for i in range(0, n, c):
                model.predict(x[i:i + c], a[i:i + c])

    def per_point_soft():
        with torch.no_grad():
            for i in range(0, n, c):
                model.predict(x[i:i + c], soft[i:i + c])

    def shared_accel():
        with torch.no_grad():
            for i in range(0, n, c):
                model.predict(x[i:i + c], shared)

    xb = x[:16384]

    def backward():
        logits = {k: torch.zeros(v.shape, requires_grad=True) for k, v in shared.items()}
        e, cyc = model.predict(xb, {k: torch.softmax(v, 0) for k, v in logits.items()})
        (e.sum() * cyc.sum()).backward()

    print(f"load average: {', '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} cores")
    print("| template | threads | case | points | wall s | points/s (wall) | points/s (CPU time) |")
    print("|---|---|---|---|---|---|---|")
    for t in args.threads:
        torch.set_num_threads(t)
        for name, fn, cnt in (("per-point accelerator", per_point, n),
                              ("per-point soft probabilities", per_point_soft, n),
                              ("shared accelerator", shared_accel, n),
                              ("forward+backward (shared)", backward, len(xb))):
            rate, sec, cpu_rate = _rate(fn, cnt)
            print(f"| {args.template} | {t} | {name} | {cnt} | {sec:.3f} | {rate:,.0f} | "
                  f"{cpu_rate:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
