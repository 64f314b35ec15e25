"""``a3cs retrain``: train the derived agent of a search run from scratch on the shared RL loop.

The agent of ``RUN_DIR/arch.json`` gets fresh weights and ``frames`` of the search's algorithm and
``hp`` (with the search's distillation when it had one), through
:func:`a3cs_plugin.rl.trainer.train` -- the loop of ``a3cs train``: checkpoints every tenth of the
budget, ``--resume``, ``metrics.csv`` and TensorBoard curves in ``RUN_DIR/retrain/``.  The result
is ``retrain/agent.pt`` (an ``a3cs-agent`` file that ``a3cs evaluate --checkpoint`` and a config's
``teacher:`` load) and ``retrain/report.json`` with the evaluation.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable

from a3cs_plugin.errors import ConfigError


def retrain(run_dir: str | Path, frames: int, *, episodes: int = 30, seed: int | None = None,
            resume: bool = False, progress: bool | None = None,
            log: Callable[[str], None] | None = None, device: str | None = None) -> dict[str, Any]:
    """Train ``RUN_DIR/arch.json`` from scratch for ``frames`` and evaluate it over ``episodes``
    (on ``device``: auto, cpu, cuda[:N]; default the search config's device)."""
    from a3cs_plugin.agents.arch import load_arch
    from a3cs_plugin.agents.space import AgentSpace
    from a3cs_plugin.rl.checkpoint import agent_file, checkpoint_path, load_agent, save_atomic
    from a3cs_plugin.rl.config import DistillConfig, TrainConfig
    from a3cs_plugin.rl.envs import env_spec
    from a3cs_plugin.rl.evaluate import evaluate
    from a3cs_plugin.rl.trainer import train
    from a3cs_plugin.cosearch.config import load_config

    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    run = Path(run_dir)
    if not (run / "config.yaml").is_file() or not (run / "arch.json").is_file():
        raise ConfigError("not a finished search run", file=str(run), expected="config.yaml and arch.json")
    out = run / "retrain"
    if not resume and checkpoint_path(out).exists():
        raise ConfigError("the run already holds a retraining", file=str(out),
                          expected="--resume to continue it, or remove the folder")
    cfg = load_config(run / "config.yaml")
    seed = cfg.seed if seed is None else int(seed)
    spec = env_spec(cfg.game)
    arch = load_arch(run / "arch.json", AgentSpace(spec.num_actions, num_cells=cfg.search.num_cells))
    distill = DistillConfig(actor=cfg.search.distill_actor, critic=cfg.search.distill_critic) \
        if cfg.distilling else DistillConfig()
    per = cfg.rollout_frames()
    tcfg = TrainConfig(agent="searched", arch=dict(arch), num_cells=cfg.search.num_cells, game=spec.game,
                       frames=int(frames), algo=cfg.algo, seed=seed, hp=dict(cfg.hp), distill=distill,
                       teacher=cfg.teacher if cfg.distilling else None,
                       checkpoint_every=max(per, int(frames) // 10), torch_threads=cfg.threads or 1,
                       device=device or cfg.device)
    show = sys.stderr.isatty() if progress is None else bool(progress)
    summary = train(tcfg, out, resume=resume, progress=show, log=log)
    train_s = float(summary["wall_s"])    # all segments, up to the last checkpoint of a killed one
    model, meta = load_agent(out)
    log(f"a3cs retrain: {summary['frames']} frames in {train_s:.0f} s; evaluating over {episodes} episodes")
    from a3cs_plugin.rl.device import resolve_device
    result = evaluate(model, cfg.game, episodes, seed=seed + 2000, device=resolve_device(tcfg.device))
    save_atomic(agent_file(model, agent="searched", game=spec.game, num_actions=spec.num_actions,
                           frames=int(summary["frames"]), fp16=False, arch=dict(arch),
                           num_cells=cfg.search.num_cells, source="a3cs retrain",
                           eval={"mean": result.mean, "std": result.std, "episodes": result.episodes}),
                out / "agent.pt")
    report = {"game": cfg.game, "arch": arch, "frames": int(summary["frames"]), "train_wall_s": train_s,
              "distillation": cfg.distilling, "score": result.mean, "score_std": result.std,
              "scores": result.scores, "episodes": result.episodes, "agent": "retrain/agent.pt"}
    (out / "report.json").write_text(json.dumps(report, indent=2))
    return report
