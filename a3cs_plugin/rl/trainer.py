"""The training loop behind ``a3cs train``: PPO or A2C (+ optional distillation) on one Atari game.

Frames are emulator frames (4 per agent step), the usual Atari accounting ("10M frames").

Reproducibility and resuming.  The run is cut into *segments* of ``checkpoint_every`` frames
(rounded to whole updates).  Each segment starts by re-seeding all envs from ``(seed, segment)``
and ends with an atomic checkpoint (model, optimiser, torch generators, update/frame counters,
config).  Since the env state at a segment start depends only on the seed, a run resumed from the
checkpoint of segment ``k`` continues exactly as the uninterrupted run would (same weights on the
same machine and thread count).  Episodes running at a boundary are cut (bootstrapped with the
critic, like a time-limit truncation); with the default 500k-frame segments this touches <1% of
the data.  On resume the saved hyper-parameters, segment length and (unless new ones are given)
distillation settings are used; ``frames`` may differ (it stretches the learning-rate schedule).
"""
from __future__ import annotations

import csv
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

import torch

from a3cs_plugin.agents.zoo import SEARCHED, build_model
from a3cs_plugin.errors import ConfigError
from a3cs_plugin.rl.checkpoint import RUN_FORMAT, checkpoint_path, load_checkpoint, save_atomic
from a3cs_plugin.rl.config import TrainConfig
from a3cs_plugin.rl.device import resolve_device
from a3cs_plugin.rl.envs import env_spec, game_label
from a3cs_plugin.rl.loop import Learner
from a3cs_plugin.rl.rollout import fast_layout

FRAME_SKIP = 4
_CSV_FIELDS = ("frames", "update", "wall_s", "fps", "lr", "episode_return", "episode_frames",
               "episodes", "loss", "policy_loss", "value_loss", "entropy", "approx_kl",
               "clipfrac", "explained_variance", "grad_norm", "distill_kl", "distill_value_mse")


def default_threads() -> int:
    """Torch intra-op threads: 1.  Measured on the 2-core shared machine (load ~8): batch-8
    inference 4.6 ms/step with 1 thread vs 146 ms with 2 (OpenMP barriers starve when cores are
    oversubscribed), PPO minibatch fwd+bwd 2.2 vs 5.5 ms/sample.  Raise ``--threads`` on an idle
    many-core machine."""
    return 1


def env_seed(seed: int, segment: int) -> int:
    return (int(seed) * 1_000_003 + int(segment) * 7_919) % (2 ** 31 - 1)


def _check_resume(cfg: TrainConfig, saved: TrainConfig, where: str) -> None:
    for key in ("agent", "game", "algo", "seed"):
        a, b = getattr(cfg, key), getattr(saved, key)
        if key == "game":
            a, b = game_label(a), game_label(b)
        if a != b:
            raise ConfigError(f"--resume with {key}={a!r} but the checkpoint has {b!r}",
                              file=where, key=key)


def train(cfg: TrainConfig, out_dir: str | Path, *, resume: bool = False, progress: bool = True,
          log: Callable[[str], None] | None = None,
          on_checkpoint: Callable[[int, Any], None] | None = None) -> dict:
    """Train (or resume) a run into ``out_dir``; returns a summary dict.

    ``on_checkpoint(frames, model)`` runs after every checkpoint is written (e.g. a test-score
    curve); it must leave the model's weights and the global torch RNG as it found them."""
    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    out = Path(out_dir)
    torch.set_num_threads(cfg.torch_threads or default_threads())
    cfg.algo_config()
    device = resolve_device(cfg.device, key="--device")
    spec = env_spec(cfg.game)

    ckpt_file = checkpoint_path(out)
    ckpt = None
    prior_wall = 0.0      # wall seconds of the segments before this one (from the checkpoint)
    if resume and ckpt_file.exists():
        ckpt = load_checkpoint(ckpt_file)
        if ckpt.get("format") != RUN_FORMAT:
            raise ConfigError("--resume needs a training checkpoint", file=str(ckpt_file))
        saved = TrainConfig.from_dict(ckpt["config"])
        _check_resume(cfg, saved, str(ckpt_file))
        cfg.hp, cfg.checkpoint_every = saved.hp, saved.checkpoint_every
        cfg.arch, cfg.num_cells, cfg.init, cfg.init_frames = (saved.arch, saved.num_cells,
                                                              saved.init, saved.init_frames)
        if not cfg.distill.enabled and saved.distill.enabled:
            cfg.distill, cfg.teacher = saved.distill, saved.teacher
    elif resume:
        log(f"a3cs train: no checkpoint in {out}, starting from scratch")

    teacher = None
    if cfg.distill.enabled:
        if not cfg.teacher:
            raise ConfigError("distillation weights given without a teacher", key="teacher",
                              expected="--teacher GAME or PATH")
        from a3cs_plugin.rl.teacher import load_teacher
        teacher = load_teacher(cfg.teacher, game=cfg.game, num_actions=spec.num_actions)

    torch.manual_seed(cfg.seed)
    model = fast_layout(build_model(cfg.agent, spec.num_actions, arch=cfg.arch,
                                    num_cells=cfg.num_cells)).to(device)   # initialised on the CPU
    learner = Learner(cfg.algo, cfg.hp, model, game=cfg.game, seed=cfg.seed, teacher=teacher,
                      distill=cfg.distill, env_threads=cfg.env_threads, device=device,
                      update_threads=cfg.update_threads)
    algo_cfg = learner.cfg
    frames_per_update = learner.frames_per_rollout
    total_updates = max(1, cfg.frames // frames_per_update)
    updates_per_segment = max(1, cfg.checkpoint_every // frames_per_update)
    update, segment = 0, 0
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        learner.load_state_dict({"optimizer": ckpt["optimizer"], "rng": ckpt["rng"],
                                 "frames": int(ckpt["update"]) * frames_per_update})
        torch.set_rng_state(ckpt["rng"]["torch"])
        update, segment = int(ckpt["update"]), int(ckpt["segment"]) + 1
        prior_wall = float(ckpt.get("wall_s", 0.0))
        log(f"a3cs train: resuming {out} at {update * frames_per_update} frames")
    elif cfg.init:
        init = load_checkpoint(cfg.init)
        init_arch = init.get("arch") or (init.get("config") or {}).get("arch")
        if int(init["num_actions"]) != spec.num_actions or init["agent"] != cfg.agent or \
                (cfg.arch and init_arch and dict(init_arch) != dict(cfg.arch)):
            raise ConfigError("--init weights are for another agent or game", file=cfg.init,
                              expected=f"{cfg.agent} with {spec.num_actions} actions",
                              got=f"{init['agent']} with {init['num_actions']} actions")
        model.load_state_dict({k: v.float() if v.is_floating_point() else v
                               for k, v in init["model"].items()})
        cfg.init_frames = int(init.get("frames") or 0)
        log(f"a3cs train: starting from the weights of {cfg.init} ({cfg.init_frames} frames), "
            f"fresh optimiser")
    out.mkdir(parents=True, exist_ok=True)

    frames = update * frames_per_update
    writer = _tb_writer(out, frames)
    csv_file = _open_csv(out / "metrics.csv", frames)
    recent = deque(maxlen=20)
    from tqdm import tqdm
    label = "searched agent" if cfg.agent == SEARCHED else cfg.agent
    bar = tqdm(total=total_updates * frames_per_update, initial=frames, unit="frame",
               unit_scale=True, dynamic_ncols=True, disable=not progress, mininterval=2.0,
               desc=f"{cfg.algo} {label} {spec.game}")
    t0 = time.time()
    start_frames = frames
    try:
        while update < total_updates:
            learner.reset_envs(env_seed(cfg.seed, segment))
            seg_end = min(total_updates, (segment + 1) * updates_per_segment)
            while update < seg_end:
                stats = learner.update(update, total_updates)
                lr = stats.pop("lr")
                update += 1
                frames = update * frames_per_update
                eps = learner.pop_episodes()
                recent.extend(eps)
                fps = (frames - start_frames) / max(1e-9, time.time() - t0)
                row = {"frames": frames, "update": update, "wall_s": round(time.time() - t0, 2),
                       "fps": round(fps, 1), "lr": lr, "episodes": len(eps),
                       "episode_return": (sum(r for r, _ in eps) / len(eps)) if eps else "",
                       "episode_frames": (sum(n for _, n in eps) / len(eps)) if eps else "",
                       **{k: v for k, v in stats.items() if k in _CSV_FIELDS}}
                csv_file[1].writerow(row)
                csv_file[0].flush()
                if writer is not None:
                    for k, v in stats.items():
                        writer.add_scalar(f"losses/{k}", v, frames)
                    writer.add_scalar("charts/lr", lr, frames)
                    writer.add_scalar("charts/fps", fps, frames)
                    for r, n in eps:
                        writer.add_scalar("charts/episode_return", r, frames)
                        writer.add_scalar("charts/episode_frames", n, frames)
                bar.update(frames_per_update)
                if recent:
                    bar.set_postfix(ret=f"{sum(r for r, _ in recent) / len(recent):.1f}",
                                    refresh=False)
            _save(ckpt_file, cfg, model, learner, update, segment, frames, spec.num_actions,
                  wall_s=prior_wall + time.time() - t0)
            if on_checkpoint is not None:
                with torch.random.fork_rng(devices=[]):
                    on_checkpoint(frames, model)
            csv_file[0].flush()
            if writer is not None:
                writer.flush()
            mean_ret = (sum(r for r, _ in recent) / len(recent)) if recent else float("nan")
            if not progress:
                rate = (frames - start_frames) / max(1e-9, time.time() - t0)
                left = (total_updates - update) * frames_per_update / rate if rate > 0 else float("nan")
                log(f"a3cs train: checkpoint at {frames} frames, recent episode return "
                    f"{mean_ret:.2f}, {rate:.0f} frames/s, ETA {left:.0f} s")
            segment += 1
    finally:
        bar.close()
        csv_file[0].close()
        if writer is not None:
            writer.close()
        learner.close()
    # null (not NaN, which is not JSON) when no episode ended in this segment, e.g. a finished run resumed
    recent_ret = (sum(r for r, _ in recent) / len(recent)) if recent else None
    return {"frames": frames, "updates": update, "checkpoint": str(ckpt_file),
            "recent_episode_return": recent_ret,
            "fps": (frames - start_frames) / max(1e-9, time.time() - t0),
            "wall_s": prior_wall + time.time() - t0}


def _save(path: Path, cfg: TrainConfig, model, learner: Learner, update: int, segment: int,
          frames: int, num_actions: int, wall_s: float = 0.0) -> None:
    state = learner.state_dict()
    save_atomic({
        "format": RUN_FORMAT, "agent": cfg.agent, "game": game_label(cfg.game),
        "num_actions": num_actions, "frames": frames, "update": update, "segment": segment,
        "config": cfg.to_dict(), "model": model.state_dict(), "optimizer": state["optimizer"],
        "rng": {**state["rng"], "torch": torch.get_rng_state()}, "wall_s": float(wall_s),
    }, path)


def _tb_writer(out: Path, frames: int):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # noqa: BLE001 - tensorboard missing: CSV metrics still written
        return None
    return SummaryWriter(str(out / "tb"), purge_step=frames if frames else None)


def _open_csv(path: Path, frames: int):
    """Open metrics.csv for appending, dropping rows past ``frames`` (from a killed run)."""
    rows = []
    if path.exists() and frames > 0:
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(float(r["frames"])) <= frames]
    f = open(path, "w", newline="")
    w = csv.DictWriter(f, fieldnames=_CSV_FIELDS, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    return f, w
