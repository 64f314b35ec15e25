"""``a3cs retrain``: train the derived agent of a search run from scratch (with distillation) and score it."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

from a3cs_plugin.errors import ConfigError

FRAME_SKIP = 4


def retrain(run_dir: str | Path, frames: int, *, episodes: int = 30, seed: int | None = None,
            log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Fresh weights for ``RUN_DIR/arch.json``, ``frames`` of PPO/A2C (+ distillation when the run had a
    teacher), evaluation over ``episodes`` games.  Writes ``RUN_DIR/retrain/{agent.pt,report.json}``."""
    from a3cs_plugin.agents.arch import load_arch
    from a3cs_plugin.agents.space import AgentSpace
    from a3cs_plugin.rl import a2c, ppo
    from a3cs_plugin.rl.config import DistillConfig
    from a3cs_plugin.rl.envs import env_spec, make_train_env
    from a3cs_plugin.rl.evaluate import evaluate
    from a3cs_plugin.rl.rollout import RolloutCollector
    from a3cs_plugin.strategy.config import load_config

    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    run = Path(run_dir)
    if not (run / "config.yaml").is_file() or not (run / "arch.json").is_file():
        raise ConfigError("not a finished search run", file=str(run), expected="config.yaml and arch.json")
    cfg = load_config(run / "config.yaml")
    seed = cfg.seed if seed is None else int(seed)
    torch.set_num_threads(cfg.threads or min(2, torch.get_num_threads()))
    spec = env_spec(cfg.game)
    space = AgentSpace(spec.num_actions, num_cells=cfg.search.num_cells)
    arch = load_arch(run / "arch.json", space)
    torch.manual_seed(seed)
    model = AgentSpace(spec.num_actions, num_cells=cfg.search.num_cells).freeze(arch)
    teacher = None
    distill = DistillConfig(actor=cfg.search.distill_actor, critic=cfg.search.distill_critic)
    if cfg.teacher and cfg.mode != "direct-nas" and distill.enabled:
        from a3cs_plugin.rl.teacher import load_teacher
        teacher = load_teacher(cfg.teacher, game=cfg.game, num_actions=spec.num_actions)
    algo = ppo if cfg.algo == "ppo" else a2c
    from a3cs_plugin.rl.config import algo_config
    acfg = algo_config(cfg.algo, **cfg.hp)
    update_fn = ppo.ppo_update if cfg.algo == "ppo" else a2c.a2c_update
    optimizer = algo.make_optimizer(model, acfg)
    gen = torch.Generator().manual_seed(seed)
    env = make_train_env(cfg.game, acfg.num_envs)
    collector = RolloutCollector(env, acfg.num_steps, generator=gen, frame_skip=FRAME_SKIP,
                                 precision=acfg.precision)
    collector.reset(seed=seed)
    per_update = acfg.num_envs * acfg.num_steps * FRAME_SKIP
    total = max(1, int(frames) // per_update)
    t0 = time.time()
    try:
        for update in range(total):
            for g in optimizer.param_groups:
                g["lr"] = algo.annealed_lr(acfg, update, total)
            rollout = collector.collect(model)
            update_fn(model, optimizer, rollout, acfg, generator=gen, teacher=teacher, distill=distill)
    finally:
        env.close()
    train_s = time.time() - t0
    log(f"a3cs retrain: {total * per_update} frames in {train_s:.0f} s; evaluating over {episodes} episodes")
    result = evaluate(model, cfg.game, episodes, seed=seed + 2000)
    out = run / "retrain"
    out.mkdir(parents=True, exist_ok=True)
    torch.save({"arch": arch, "num_actions": spec.num_actions, "num_cells": cfg.search.num_cells,
                "frames": total * per_update, "model": model.state_dict()}, out / "agent.pt")
    report = {"game": cfg.game, "arch": arch, "frames": total * per_update, "train_wall_s": train_s,
              "distillation": teacher is not None, "score": result.mean, "score_std": result.std,
              "scores": result.scores, "episodes": result.episodes}
    (out / "report.json").write_text(json.dumps(report, indent=2))
    return report
