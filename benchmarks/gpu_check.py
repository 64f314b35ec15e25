"""GPU check of issue 14: a short ``a3cs train`` and a tiny ``a3cs search`` on ``--device cuda``
against the same on ``--device cpu``; prints frames/s of each and the GPU/CPU ratios.

Run on a machine with CUDA (a few minutes; the CPU side is kept short)::

    .venv/bin/python benchmarks/gpu_check.py            # or: bash benchmarks/gpu_check.sh
    .venv/bin/python benchmarks/gpu_check.py --json     # one JSON line

What it checks: both commands finish with ``--device cuda`` (exit code 0), the training
checkpoint written on the GPU loads and evaluates on the CPU (``a3cs evaluate --device cpu``),
and the frames/s of training (PPO, Nature-CNN, 8 envs x 128 steps, ``--precision auto``: bf16
where the GPU has it) and of the single-path co-search (``examples/tiny_pong.yaml`` with 8 envs,
``device: cuda``, the real surrogate) on each device.  ``--device cpu --cpu-only`` runs the same
script without a GPU (a smoke test of the script itself).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _a3cs() -> list[str]:
    exe = Path(sys.executable).parent / "a3cs"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "a3cs_plugin.cli.main"]


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    t0 = time.time()
    p = subprocess.run([*_a3cs(), *args], capture_output=True, text=True, timeout=timeout, env=env)
    p.wall_s = time.time() - t0  # type: ignore[attr-defined]
    if p.returncode != 0:
        tail = (p.stderr or p.stdout).strip().splitlines()[-5:]
        raise SystemExit(f"gpu_check: `a3cs {' '.join(args)}` failed (exit {p.returncode}):\n  "
                         + "\n  ".join(tail))
    return p


def train_fps(device: str, frames: str, out: Path, precision: str, timeout: float) -> dict:
    p = _run(["train", "--agent", "nature_cnn", "--game", "Pong", "--frames", frames, "--out", str(out),
              "--device", device, "--precision", precision, "--no-progress",
              "--checkpoint-every", frames], timeout)
    summary = json.loads(p.stdout.strip().splitlines()[-1])
    return {"device": device, "frames": summary["frames"], "fps": round(summary["fps"], 1),
            "wall_s": round(p.wall_s, 1)}


def search_fps(device: str, frames: int, out: Path, timeout: float) -> dict:
    cfg = yaml.safe_load((REPO / "examples" / "tiny_pong.yaml").read_text())
    cfg.update(device=device, frames=int(frames))
    cfg["hp"] = {**cfg.get("hp", {}), "num_envs": 8, "num_steps": 64, "num_minibatches": 4,
                 "update_epochs": 4, "precision": "auto"}
    cfg["search"] = {**cfg.get("search", {}), "num_cells": 14, "supernet": "single-path", "epochs": 2}
    cfg["finetune"] = {"frames": 0}
    cfg["eval"] = {"episodes": 1, "teacher": False, "random": False}
    out.mkdir(parents=True, exist_ok=True)
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    p = _run(["search", str(path), "--out", str(out), "--no-recost", "--no-retrain"], timeout)
    rates = re.findall(r"epoch (\d+)/(\d+), ([\d,]+)/[\d,]+ frames, (\d+) frames/s", p.stderr)
    fps = float(rates[-1][3]) if rates else float("nan")
    return {"device": device, "frames": int(rates[-1][2].replace(",", "")) if rates else None,
            "fps": fps, "wall_s": round(p.wall_s, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="the GPU to check (cuda, cuda:N)")
    ap.add_argument("--gpu-frames", default="400k", help="training frames on the GPU")
    ap.add_argument("--cpu-frames", default="32k", help="training frames on the CPU (slower)")
    ap.add_argument("--search-frames", type=int, default=32768, help="co-search frames per device")
    ap.add_argument("--precision", default="auto", help="--precision of the training runs")
    ap.add_argument("--cpu-only", action="store_true", help="no GPU: run both sides on the CPU "
                                                            "(checks the script, not the GPU)")
    ap.add_argument("--out", help="keep the runs here (default: a temporary folder)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per command")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    import torch
    gpu = "cpu" if a.cpu_only else a.device
    if not a.cpu_only and not torch.cuda.is_available():
        print("gpu_check: torch sees no CUDA device here (torch "
              f"{torch.__version__}, CUDA build {torch.version.cuda}); run it on a GPU machine, "
              "or --cpu-only to check the script", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="a3cs-gpu-check-") as tmp:
        root = Path(a.out or tmp)
        root.mkdir(parents=True, exist_ok=True)
        res: dict = {"gpu": (torch.cuda.get_device_name(torch.device(gpu)) if gpu != "cpu" else "none"),
                     "torch": torch.__version__, "cpus": os.cpu_count()}
        res["train_gpu"] = train_fps(gpu, a.gpu_frames if gpu != "cpu" else a.cpu_frames,
                                     root / "train_gpu", a.precision, a.timeout)
        res["train_cpu"] = train_fps("cpu", a.cpu_frames, root / "train_cpu", a.precision, a.timeout)
        # the GPU-written checkpoint on the CPU: loads, plays one game
        ev = _run(["evaluate", "--checkpoint", str(root / "train_gpu"), "--game", "Pong", "--episodes",
                   "1", "--device", "cpu", "--json"], a.timeout)
        res["gpu_checkpoint_on_cpu_score"] = json.loads(ev.stdout.strip().splitlines()[-1])["mean"]
        res["search_gpu"] = search_fps(gpu, a.search_frames, root / "search_gpu", a.timeout)
        res["search_cpu"] = search_fps("cpu", a.search_frames, root / "search_cpu", a.timeout)
        res["train_ratio_gpu_cpu"] = round(res["train_gpu"]["fps"] / res["train_cpu"]["fps"], 2)
        res["search_ratio_gpu_cpu"] = round(res["search_gpu"]["fps"] / res["search_cpu"]["fps"], 2)
        res["load_avg_1m"] = round(os.getloadavg()[0], 2)
    if a.json:
        print(json.dumps(res))
    else:
        print(f"GPU: {res['gpu']} (torch {res['torch']}, {res['cpus']} CPUs)")
        for kind in ("train", "search"):
            g, c = res[f"{kind}_gpu"], res[f"{kind}_cpu"]
            print(f"{kind:>6}: {g['device']} {g['fps']:.0f} frames/s vs cpu {c['fps']:.0f} frames/s "
                  f"-> {res[f'{kind}_ratio_gpu_cpu']}x")
        print(f"GPU checkpoint evaluated on the CPU: score {res['gpu_checkpoint_on_cpu_score']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
