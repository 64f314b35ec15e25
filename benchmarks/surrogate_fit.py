"""Fit (or re-fit) the shipped surrogates and print their held-out accuracy.

    nice -n 10 .venv/bin/python benchmarks/surrogate_fit.py --template eyeriss_like --samples 2000 \
        --heldout 400 --workers 1

Labels are cached in ``runs/surrogate_labels/<template>.jsonl``, so a re-run only fits. Writes
``a3cs_plugin/surrogates/<template>.pt`` plus the report (``.json``, ``.md``) unless ``--out`` is given.
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from a3cs_plugin.hardware.surrogate.fit import fit_surrogate  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--template", default="eyeriss_like")
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--heldout", type=int, default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-limit", type=float, default=1.0, help="mapper seconds per point (cap)")
    ap.add_argument("--max-evaluations", type=int, default=10000,
                    help="mapper evaluations per point (deterministic labels; 0 = time limit only)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--cache", default=None)
    ap.add_argument("--noise-check", type=int, default=60,
                    help="re-label this many held-out pairs with another mapper seed (label noise)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    fit_surrogate(args.template, args.samples, args.out, args.seed, args.time_limit, args.workers,
                  heldout=args.heldout, cache=args.cache, max_evaluations=args.max_evaluations or None,
                  steps=args.steps, hidden=args.hidden, noise_check=args.noise_check)


if __name__ == "__main__":
    main()
