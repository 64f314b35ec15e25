"""NNI trial: one tiny A3C-S co-search with lambda / FPS target / template from the tuner.

Reports ``{"default": score, "score", "normalized_score", "fps", "energy_mJ", "area_mm2"}`` with
``nni.report_final_result`` (``default`` is the derived agent's evaluation score).
Run by ``nnictl create --config examples/nni/sweep.yml``; also runs stand-alone (defaults).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import nni

from a3cs_plugin.strategy.config import load_config
from a3cs_plugin.strategy.driver import run_search


def apply_params(cfg, params: dict):
    """Copy tuner parameters into the run config (``fps_target`` 0 or null: fixed lambda)."""
    data = cfg.model_dump(by_alias=True)
    hw = data["hardware"]
    if "lambda" in params:
        hw["lambda"] = float(params["lambda"])
    if "fps_target" in params:
        hw["fps_target"] = float(params["fps_target"]) or None
    if "template" in params:
        hw["template"] = str(params["template"])
    from a3cs_plugin.strategy.config import parse_config
    return parse_config(data, "tuner parameters")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default="trial_pong.yaml")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    here = Path(__file__).resolve().parent
    cfg_path = Path(args.config)
    if not cfg_path.is_absolute() and not cfg_path.exists():
        cfg_path = here / cfg_path
    params = nni.get_next_parameter() or {}
    cfg = apply_params(load_config(cfg_path), params)
    out = Path(args.out or os.environ.get("NNI_OUTPUT_DIR", "runs/nni_trial")) / "search"
    report = run_search(cfg, out)        # restores nni.trial._params after the inner NAS run
    d = report["derived"]
    score = float(d["score"] if d.get("score") is not None else float("nan"))
    ns = d.get("normalized_score")
    result = {"default": score, "score": score,
              "normalized_score": float(ns) if ns is not None else float("nan"),
              "fps": float(d.get("fps") or d["surrogate"]["fps"]),
              "energy_mJ": float(d.get("energy_mJ") or d["surrogate"]["energy_pJ"] * 1e-9),
              "area_mm2": float(d.get("area_mm2") or d["surrogate"].get("area_mm2") or float("nan"))}
    nni.report_final_result(result)
    print(f"trial result: {result}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
