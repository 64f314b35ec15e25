"""Does the co-search find an agent that plays?  A Pong co-search on the shipped teacher, judged.

Runs ``a3cs search`` (search, derive, fine-tune of the derived agent with distillation, 30-episode
evaluation of derived / teacher / random agent, mapper re-costing on the searched accelerator and
on the hand-designed ``arch_specs/eyeriss_like.yaml``) and prints the outcome table and the goals
of the issue "Make the co-search find agents that play":

* the derived agent's normalized score ``(score - random) / (teacher - random)`` >= 0.9 over 30
  episodes;
* >= 2x the teacher's FPS and lower energy per inference, on the derived accelerator and on
  ``eyeriss_like.yaml``.

    python benchmarks/search_outcome.py --out ~/a3cs-runs/outcome            # ~85 min on 2 cores
    python benchmarks/search_outcome.py --out ~/a3cs-runs/outcome --resume   # after a kill
    python benchmarks/search_outcome.py --out DIR --frames 400k --finetune-frames 3M  # other budget

Writes ``DIR/outcome.json`` (goals, measured values, wall time, load) beside the run's
``report.{json,md}``.  Exits 0 when every goal is met, 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import yaml

CONFIG = """\
# The search_outcome benchmark: Pong, the shipped teacher, eyeriss_like with its own area budget.
game: Pong
teacher: Pong
frames: 786432             # search: 384 updates of 8 envs x 64 steps x 4 frames (20 % weight-only)
mode: one-level
algo: ppo
hp: {num_envs: 8, num_steps: 64, num_minibatches: 4, update_epochs: 4, lr: 0.00025, precision: fp32}
seed: 1
threads: 1
hardware:
  template: eyeriss_like
  metric: edp
  lambda: 0.5
  area_budget_mm2: 9.62    # arch_specs/eyeriss_like.yaml
  recost_time_limit: 2.0
  baselines: [eyeriss_like]
search:
  num_cells: 14
  arc_lr: 0.003
  warmup_frac: 0.2
  epochs: 16
finetune:
  frames: 8000000
  checkpoint_every: 250000
eval:
  episodes: 30
"""


def _frames(text: str) -> int:
    from a3cs_plugin.cli.rl import parse_frames
    return parse_frames(text)


def goals(report: dict) -> list[tuple[str, float | None, str, bool]]:
    """(goal, measured, target, met) rows."""
    d, t = report["derived"], report.get("teacher") or {}
    rows = []
    ns = d.get("normalized_score")
    rows.append(("normalized score (30 episodes)", ns, ">= 0.9", ns is not None and ns >= 0.9))
    pairs = [("searched accelerator", d, t)]
    for name, b in (report.get("baselines") or {}).items():
        pairs.append((name, b.get("derived", {}), b.get("teacher", {})))
    for where, dd, tt in pairs:
        ratio = (dd.get("fps") or 0) / tt["fps"] if tt.get("fps") else None
        rows.append((f"FPS derived / teacher on {where}", ratio, ">= 2", ratio is not None and ratio >= 2))
        er = (dd.get("energy_mJ") or 0) / tt["energy_mJ"] if tt.get("energy_mJ") else None
        rows.append((f"energy derived / teacher on {where}", er, "< 1", er is not None and er < 1))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="run directory (outside the repository)")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--frames", help="search frames (default 786k)")
    ap.add_argument("--finetune-frames", help="fine-tune frames (default 8M)")
    ap.add_argument("--episodes", type=int, default=None, help="evaluation episodes (default 30)")
    ap.add_argument("--config", help="a search config instead of the embedded one")
    a = ap.parse_args(argv)

    from a3cs_plugin.cli.search import print_table
    from a3cs_plugin.cosearch.config import load_config, parse_config
    from a3cs_plugin.cosearch.driver import run_search

    cfg = load_config(a.config) if a.config else parse_config(yaml.safe_load(CONFIG), "search_outcome")
    if a.frames:
        cfg.frames = _frames(a.frames)
    if a.finetune_frames:
        cfg.finetune.frames = _frames(a.finetune_frames)
    if a.episodes:
        cfg.eval.episodes = a.episodes
    out = Path(a.out).expanduser()
    t0, load0 = time.time(), os.getloadavg()
    report = run_search(cfg, out, resume=a.resume)
    wall = time.time() - t0
    print_table(report)
    rows = goals(report)
    print()
    for g, v, target, ok in rows:
        print(f"{g:48s} {'n/a' if v is None else f'{v:.3g}':>8s}  goal {target:6s} {'met' if ok else 'NOT met'}")
    s = report["search"]
    print(f"\nsearch {s['frames']:,} frames + fine-tune {(report.get('finetune') or {}).get('frames', 0):,} "
          f"frames; {wall / 60:.1f} min wall this segment ({s['wall_s'] / 60:.1f} min in all); "
          f"load {load0[0]:.1f} at start, {os.getloadavg()[0]:.1f} at end")
    (out / "outcome.json").write_text(json.dumps({
        "goals": [{"goal": g, "measured": v, "target": t, "met": ok} for g, v, t, ok in rows],
        "derived": {k: report["derived"].get(k) for k in ("score", "score_std", "episodes", "normalized_score",
                                                          "fps", "energy_mJ", "area_mm2")},
        "teacher": {k: (report.get("teacher") or {}).get(k) for k in ("score", "score_std", "fps", "energy_mJ")},
        "random": {k: (report.get("random") or {}).get(k) for k in ("score", "score_std")},
        "frames": {"search": s["frames"], "finetune": (report.get("finetune") or {}).get("frames", 0)},
        "wall_s": s["wall_s"], "load_start": load0[0], "load_end": os.getloadavg()[0],
    }, indent=2))
    return 0 if all(ok for *_, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
