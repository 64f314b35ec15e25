"""NNI trial: one A3C-S co-search with lambda / FPS target / template / seed from the tuner.

Reports with ``nni.report_final_result``::

    {"default": score, "score", "normalized_score", "fps", "energy_mJ", "area_mm2", "run_dir", "host",
     "lambda", "fps_target", "template", "seed"}

``default`` is the derived agent's evaluation score (the "Default metric" column of NNI's web UI);
``run_dir`` is the trial's search directory (``arch.json``, ``accelerator.yaml``, ``report.*``) on
``host``; the last four are the tuner parameters the trial ran with (those it was given).  Run by ``nnictl create --config examples/nni/local.yml`` (or ``remote.yml``); stand-alone:
``python trial.py --params '{"lambda": 2.0, "template": "simple_array"}' --out runs/t``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import socket
import sys
from pathlib import Path

import nni

from a3cs_plugin.errors import A3CSError
from a3cs_plugin.cosearch.config import load_config, parse_config
from a3cs_plugin.cosearch.driver import run_search
from a3cs_plugin.cosearch.sweep import trial_metrics

#: tuner parameters this trial understands
PARAMS = ("lambda", "fps_target", "template", "seed")


def apply_params(cfg, params: dict):
    """Copy tuner parameters into the run config (``fps_target`` 0 or null: fixed lambda)."""
    unknown = sorted(set(params) - set(PARAMS))
    if unknown:
        raise A3CSError(f"unknown tuner parameter(s) {', '.join(unknown)}", key="searchSpace",
                        expected=", ".join(PARAMS))
    data = cfg.model_dump(by_alias=True)
    hw = data["hardware"]
    if "lambda" in params:
        hw["lambda"] = float(params["lambda"])
    if "fps_target" in params:
        hw["fps_target"] = float(params["fps_target"] or 0) or None
    if "template" in params:
        hw["template"] = str(params["template"])
    if "seed" in params:
        data["seed"] = int(params["seed"])
        data["seeds"] = None
    return parse_config(data, "tuner parameters")


def result_of(report: dict, run_dir: Path, params: dict) -> dict:
    """The final result NNI records: the numbers (NaN where one is missing), where the derived
    pair lies, and the parameters this trial ran with (NNI 3.0's web UI may show a neighbour's in
    its "(space)" columns for trials started together, microsoft/nni#5726)."""
    m = trial_metrics(report)
    return {"default": m["score"], **m, "run_dir": str(run_dir.resolve()), "host": socket.gethostname(),
            **{k: params[k] for k in PARAMS if k in params}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="trial_pong.yaml", help="co-search config (relative: to the "
                    "working directory, then to this file's directory)")
    ap.add_argument("--out", default=None, help="default: $NNI_OUTPUT_DIR (the trial's directory)")
    ap.add_argument("--params", default=None, help="stand-alone runs: tuner parameters as JSON")
    args = ap.parse_args(argv)
    here = Path(__file__).resolve().parent
    cfg_path = Path(args.config)
    if not cfg_path.is_absolute() and not cfg_path.exists():
        cfg_path = here / cfg_path
    try:
        if args.params is not None:
            try:
                params = json.loads(args.params)
            except ValueError:
                raise A3CSError("not JSON", key="--params", expected='e.g. {"lambda": 0.5}') from None
        else:
            params = nni.get_next_parameter() or {}
        cfg = apply_params(load_config(cfg_path), params)
        out = Path(args.out or os.environ.get("NNI_OUTPUT_DIR", "runs/nni_trial")) / "search"
        report = run_search(cfg, out)     # restores nni.trial._params after the inner NAS run
    except A3CSError as exc:
        print(f"trial: error: {exc.message}", file=sys.stderr)
        return 2
    result = result_of(report, out, params)
    nni.report_final_result(result)
    shown = {k: (round(v, 4) if isinstance(v, float) and math.isfinite(v) else v) for k, v in result.items()}
    print(f"trial result: {json.dumps(shown)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
