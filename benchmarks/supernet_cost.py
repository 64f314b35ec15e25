"""Cost of the co-search against training a fixed agent of the derived size, same algorithm.

Two variants, each in its own process (peak RSS is per process), ``--threads`` torch threads,
the same PPO hyper-parameters (default: the paper's 8 envs x 128 steps, 4 epochs x 4 minibatches,
``--precision auto``: bf16 where the CPU has it), the shipped Pong teacher distilled in both:

* ``search``: the real co-search -- ``a3cs search``'s own :func:`build_search` and NNI strategy,
  Lightning, a 14-cell single-path supernet, the real surrogate cost model of ``eyeriss_like``
  (hardware term, area budget, Gumbel accelerator samples), one-level, every update a search
  update (no weight-only warm-up), ``--updates`` updates after one untimed;
* ``fixed``: the same PPO loop (:class:`a3cs_plugin.rl.loop.Learner`, what ``a3cs retrain`` and
  the fine-tune run) training fixed agents of the space of the same size as the supernet's: for
  every timed search update, the agent of the path the single-path supernet ran in it (one
  Gumbel-drawn op per cell; a random architecture costs 0.63-1.06 s per fwd+bwd of 256 frames
  here, so the same architectures are compared, not the luck of the draw), one untimed and one
  timed update each.

Frames per CPU-second (``time.process_time``: the emulator's threads included) are robust to
other jobs on a shared machine.  Prints one JSON line per variant, then a summary line with
``overhead`` = fixed / search frames per CPU-second (goal <= 1.5) and the peak memory of each.
``--mixed`` adds the DARTS mixed supernet (zero cost model) for reference.

    python benchmarks/supernet_cost.py [--updates 3] [--threads 1] [--num-steps 128]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _hp(a) -> dict:
    return {"num_envs": a.num_envs, "num_steps": a.num_steps, "update_epochs": 4, "num_minibatches": 4,
            "precision": a.precision}


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_fixed(a, archs: list[dict]) -> dict:
    import torch
    torch.set_num_threads(a.threads)
    from a3cs_plugin.agents.zoo import build_model
    from a3cs_plugin.rl.config import DistillConfig
    from a3cs_plugin.rl.loop import Learner
    from a3cs_plugin.rl.rollout import fast_layout
    from a3cs_plugin.rl.teacher import load_teacher

    teacher = load_teacher("Pong", game="Pong", num_actions=6)
    frames, cpu = 0, 0.0
    runs = []
    for i, arch in enumerate(archs):
        torch.manual_seed(i)
        model = fast_layout(build_model("searched", 6, arch=arch, num_cells=a.num_cells))
        lrn = Learner("ppo", _hp(a), model, game="Pong", seed=1, teacher=teacher,
                      distill=DistillConfig(actor=1.0, critic=0.5))
        lrn.update(0, 2)                            # untimed: allocations, first frames
        c0 = time.process_time()
        lrn.update(1, 2)
        dt = time.process_time() - c0
        lrn.close()
        frames, cpu = frames + lrn.frames_per_rollout, cpu + dt
        runs.append(round(lrn.frames_per_rollout / dt, 1))
    return {"variant": "fixed", "updates": len(archs), "frames_per_cpu_s_runs": runs,
            "frames_per_cpu_s": round(frames / cpu, 1), "peak_rss_MB": _rss_mb()}


def run_search(a) -> dict:
    import torch
    import pytorch_lightning as pl
    import nni.trial
    from nni.nas.execution import SequentialExecutionEngine
    from nni.nas.space import RawFormatModelSpace

    from a3cs_plugin.strategy.config import parse_config
    from a3cs_plugin.strategy.driver import _quiet_nni, build_search

    torch.set_num_threads(a.threads)
    _quiet_nni()
    per = a.num_envs * a.num_steps * 4
    cfg = parse_config({
        "game": "Pong", "teacher": "Pong", "frames": (a.updates + 1) * per, "mode": "one-level",
        "algo": "ppo", "hp": _hp(a), "seed": 1, "threads": a.threads, "device": "cpu",
        "hardware": {"template": "eyeriss_like", "cost_model": "surrogate", "metric": "edp",
                     "lambda": 0.5, "area_budget_mm2": 9.62, "baselines": []},
        "search": {"num_cells": a.num_cells, "supernet": a.supernet, "warmup_frac": 0.0, "epochs": 1},
        "finetune": {"frames": 0}, "eval": {"episodes": 1, "teacher": False, "random": False}},
        "supernet_cost")

    from a3cs_plugin.strategy.supernet import SinglePathMixedLayer

    class Clock(pl.Callback):
        """CPU seconds from the end of the first (untimed) update to the end of the last, and
        the path (one op per cell) each timed update ran."""
        def __init__(self):
            self.c0, self.cpu, self.n, self.archs = None, 0.0, 0, []

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            now = time.process_time()
            if self.c0 is None:
                self.c0 = now
                return
            self.n += 1
            self.cpu = now - self.c0
            self.archs.append({m.label: m.names[m.sampled_index()] for m in pl_module.modules()
                               if isinstance(m, SinglePathMixedLayer)})

    with tempfile.TemporaryDirectory() as tmp:
        space, evaluator, strategy, module, _teacher, plan = build_search(cfg, Path(tmp), progress=False)
        clock = Clock()
        evaluator.trainer.callbacks.append(clock)
        outer = nni.trial._params
        engine = SequentialExecutionEngine()
        try:
            strategy(RawFormatModelSpace(space, evaluator), engine)
        finally:
            nni.trial._params = outer
            engine.shutdown()
            module.close()
    m = strategy.oneshot_module
    hist = [h for h in m.history if h.get("searching")]
    return {"variant": f"search ({a.supernet})", "updates": clock.n, "search_updates": len(hist),
            "cost_model": type(strategy.cost_model).__name__,
            "frames_per_cpu_s": round(clock.n * per / clock.cpu, 1) if clock.cpu else None,
            "peak_rss_MB": _rss_mb(), "archs": clock.archs}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--updates", type=int, default=3, help="timed search updates (after one untimed)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--num-envs", type=int, default=8)
    ap.add_argument("--num-steps", type=int, default=128)
    ap.add_argument("--num-cells", type=int, default=14)
    ap.add_argument("--precision", default="auto", choices=["fp32", "bf16", "auto"])
    ap.add_argument("--archs", help=argparse.SUPPRESS)       # JSON file: the fixed agents
    ap.add_argument("--supernet", default="single-path", choices=["single-path", "mixed"])
    ap.add_argument("--mixed", action="store_true", help="also time the mixed (DARTS) supernet search")
    ap.add_argument("--variant", choices=["fixed", "search"], help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.variant:
        if a.variant == "fixed":
            out = run_fixed(a, json.loads(Path(a.archs).read_text()))
        else:
            out = run_search(a)
        print(json.dumps(out), flush=True)
        return 0
    common = ["--updates", str(a.updates), "--threads", str(a.threads), "--num-envs", str(a.num_envs),
              "--num-steps", str(a.num_steps), "--num-cells", str(a.num_cells), "--precision", a.precision]
    archs_file = Path(tempfile.mkdtemp(prefix="a3cs-supernet-cost-")) / "archs.json"
    runs = [("search", ["--variant", "search", "--supernet", "single-path"]),
            ("fixed", ["--variant", "fixed", "--archs", str(archs_file)])]
    if a.mixed:
        runs.append(("mixed", ["--variant", "search", "--supernet", "mixed"]))
    res = {}
    for name, extra in runs:
        out = subprocess.run([sys.executable, __file__, *common, *extra], capture_output=True, text=True)
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
        if not lines:
            print(json.dumps({"variant": name, "error": out.stderr.strip()[-800:]}), flush=True)
            return 1
        res[name] = json.loads(lines[-1])
        if name == "search":
            archs_file.write_text(json.dumps(res[name].pop("archs")))
        print(json.dumps(res[name]), flush=True)
    fixed, search = res["fixed"]["frames_per_cpu_s"], res["search"]["frames_per_cpu_s"]
    import os
    print(json.dumps({"supernet_overhead": round(fixed / search, 3), "goal": "<= 1.5",
                      "fixed_frames_per_cpu_s": fixed, "search_frames_per_cpu_s": search,
                      "precision": a.precision, "threads": a.threads, "num_envs": a.num_envs,
                      "num_steps": a.num_steps, "load_avg_1m": round(os.getloadavg()[0], 2)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
