"""Cost of one co-search update on CPU: single-path vs mixed (DARTS) supernet vs the teacher alone.

Each variant runs in its own process (peak RSS is per process) with ``--threads`` torch threads and
reports CPU seconds and environment frames per CPU second for full updates (rollout of
``num_envs x num_steps`` + PPO loss forward/backward + optimizer step), plus peak memory.

    python benchmarks/supernet_cost.py --updates 3 --threads 2
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def run_variant(kind: str, updates: int, threads: int, num_envs: int, num_steps: int) -> dict:
    import torch
    torch.set_num_threads(threads)
    from a3cs_plugin.agents.space import AgentSpace
    from a3cs_plugin.agents.zoo import build_agent
    from a3cs_plugin.rl.config import algo_config
    from a3cs_plugin.rl.envs import make_train_env
    from a3cs_plugin.rl.ppo import ppo_update
    from a3cs_plugin.rl.rollout import RolloutCollector

    cfg = algo_config("ppo", num_envs=num_envs, num_steps=num_steps, num_minibatches=1, update_epochs=1)
    if kind == "teacher":
        model = build_agent("nature_cnn", 6)
    else:
        from a3cs_plugin.strategy.a3cs import A3CS
        from a3cs_plugin.strategy.cost import CostModel

        class Zero(CostModel):   # the hardware term is negligible here; only the supernet is timed
            def accelerator_params(self):
                return {"x": [0, 1]}

            def featurize(self, problems):
                return torch.zeros(len(problems), 1)

            def layer_costs(self, feats, probs):
                return feats[:, 0] + 1, feats[:, 0] + 1

        model = AgentSpace(6)
        ops = {l: {o: [] for o in model.op_names} for l in model.cell_labels}
        strategy = A3CS(cost_model=Zero(), supernet=kind, op_problems=ops, fixed_problems=[])
        strategy.mutate_model(model)
    opt = torch.optim.Adam(model.parameters(), lr=2.5e-4)
    env = make_train_env("Pong", num_envs)
    col = RolloutCollector(env, num_steps)
    col.reset(seed=1)
    # warm-up update (allocations, first env frames)
    for m in model.modules():
        if hasattr(m, "resample") and hasattr(m, "_arch_alpha"):
            m.resample({})
    ppo_update(model, opt, col.collect(model), cfg)
    c0, w0 = time.process_time(), time.time()
    for _ in range(updates):
        for m in model.modules():
            if hasattr(m, "resample") and hasattr(m, "_arch_alpha"):
                m.resample({})
        ppo_update(model, opt, col.collect(model), cfg)
    cpu, wall = time.process_time() - c0, time.time() - w0
    env.close()
    frames = updates * num_envs * num_steps * 4
    return {"variant": kind, "updates": updates, "frames": frames, "cpu_s": round(cpu, 2),
            "wall_s": round(wall, 2), "frames_per_cpu_s": round(frames / cpu, 1),
            "peak_rss_MB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--updates", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--num-envs", type=int, default=8)
    ap.add_argument("--num-steps", type=int, default=32)
    ap.add_argument("--variant", choices=["teacher", "single-path", "mixed"])
    args = ap.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.updates, args.threads, args.num_envs, args.num_steps)))
        return 0
    for kind in ("teacher", "single-path", "mixed"):
        out = subprocess.run([sys.executable, __file__, "--variant", kind, "--updates", str(args.updates),
                              "--threads", str(args.threads), "--num-envs", str(args.num_envs),
                              "--num-steps", str(args.num_steps)], capture_output=True, text=True)
        lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
        print(lines[-1] if lines else out.stderr[-500:], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
