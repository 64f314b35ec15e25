"""The RL data pipeline inside Lightning: a loader of step indices, rollouts collected in ``training_step``.

:class:`RolloutModule` is the evaluator module of the co-search (an NNI ``LightningModule``).  Each
``training_step`` collects ``num_steps x num_envs`` transitions from an ALE vector env with the current
(super)net, computes GAE and returns ``{"loss": RL loss + distillation}`` (actor ``KL(pi_T||pi_S)``,
critic ``MSE(V_T, V_S)``).  NNI's one-shot module decides which parameters that loss updates.
"""
from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import torch
from torch import nn

from nni.nas.evaluator.pytorch import DataLoader
from nni.nas.evaluator.pytorch.lightning import LightningModule

from a3cs_plugin.errors import ConfigError
from a3cs_plugin.rl.config import algo_config
from a3cs_plugin.rl.distill import distill_loss, teacher_outputs
from a3cs_plugin.rl.envs import make_train_env
from a3cs_plugin.rl.losses import a2c_loss, ppo_loss
from a3cs_plugin.rl.precision import autocast
from a3cs_plugin.rl.rollout import RolloutCollector


class _Steps(torch.utils.data.Dataset):
    """``range(n)`` as a map-style dataset: one item = one update of the search."""

    def __init__(self, n: int):
        self.n = int(n)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


def step_loader(num_updates: int) -> Any:
    """Traced NNI DataLoader yielding update indices ``0..num_updates-1`` (no batching)."""
    if int(num_updates) < 1:
        raise ConfigError("a search needs at least one update", key="updates", expected=">= 1", got=num_updates)
    return DataLoader(_Steps(num_updates), batch_size=None, shuffle=False)


class RolloutModule(LightningModule):
    """Rollout + RL/distillation loss per ``training_step``.

    Parameters
    ----------
    game
        ALE game (``Pong``).
    algo
        ``"ppo"`` (one clipped-surrogate pass per rollout) or ``"a2c"``.
    hp
        Overrides of :class:`a3cs_plugin.rl.config.PPOConfig` / ``A2CConfig`` (``num_envs``, ``num_steps``, ``lr``...).
    teacher
        Teacher agent ``obs_uint8 -> (logits, value)`` or ``None`` (no distillation).
    distill_actor, distill_critic
        Weights of the actor KL and critic MSE terms.
    """

    def __init__(self, game: str = "Pong", algo: str = "ppo", hp: dict | None = None,
                 teacher: nn.Module | None = None, distill_actor: float = 1.0, distill_critic: float = 0.5,
                 seed: int = 1, env_threads: int = 1):
        super().__init__()
        self.game = game
        self.algo = str(algo).lower()
        self.cfg = algo_config(self.algo, **(hp or {}))
        self._teacher = [teacher.eval()] if teacher is not None else []   # list: not a submodule
        if teacher is not None:
            for p in teacher.parameters():
                p.requires_grad_(False)
        self.distill_actor, self.distill_critic = float(distill_actor), float(distill_critic)
        self.distill_enabled = teacher is not None and (self.distill_actor > 0 or self.distill_critic > 0)
        self.seed = int(seed)
        self.env_threads = int(env_threads)
        self.frames = 0
        self.episodes: deque[float] = deque(maxlen=20)
        self.all_episodes: list[tuple[int, float]] = []      # (frames, return)
        self._collector: RolloutCollector | None = None
        self._generator = torch.Generator().manual_seed(self.seed)

    # ----- setup ------------------------------------------------------------------------------
    @property
    def teacher(self) -> nn.Module | None:
        return self._teacher[0] if self._teacher else None

    def set_distillation(self, enabled: bool) -> None:
        """Switch distillation on/off (off for the direct-NAS baseline)."""
        self.distill_enabled = bool(enabled) and self.teacher is not None and \
            (self.distill_actor > 0 or self.distill_critic > 0)

    def collector(self) -> RolloutCollector:
        if self._collector is None:
            env = make_train_env(self.game, self.cfg.num_envs, num_threads=self.env_threads)
            self._collector = RolloutCollector(env, self.cfg.num_steps, generator=self._generator,
                                               precision=self.cfg.precision)
            self._collector.reset(seed=self.seed)
        return self._collector

    def close(self) -> None:
        if self._collector is not None:
            self._collector.env.close()
            self._collector = None

    def teardown(self, stage: str | None = None) -> None:
        self.close()

    def configure_optimizers(self):
        return torch.optim.Adam(self.model.parameters(), lr=self.cfg.lr, eps=1e-5)

    def forward(self, obs):
        return self.model(obs)

    # ----- one update -------------------------------------------------------------------------
    def rl_loss(self, rollout) -> tuple[torch.Tensor, dict[str, float]]:
        b = rollout.with_gae(self.cfg.gamma, self.cfg.gae_lambda)
        with autocast(self.cfg.precision):
            logits, values = self.model(b["obs"])
        logits, values = logits.float(), values.float()
        if self.algo == "ppo":
            loss, stats = ppo_loss(logits, values, b["actions"], b["logprobs"], b["values"], b["advantages"],
                                   b["returns"], clip_coef=self.cfg.clip_coef, clip_vloss=self.cfg.clip_vloss,
                                   ent_coef=self.cfg.ent_coef, vf_coef=self.cfg.vf_coef,
                                   norm_adv=self.cfg.norm_adv)
        else:
            loss, stats = a2c_loss(logits, values, b["actions"], b["advantages"], b["returns"],
                                   ent_coef=self.cfg.ent_coef, vf_coef=self.cfg.vf_coef,
                                   norm_adv=self.cfg.norm_adv)
        stats["rl_loss"] = float(loss)
        if self.distill_enabled:
            with autocast(self.cfg.precision):
                t_logits, t_values = teacher_outputs(self.teacher, b["obs"])
            d_loss, d_stats = distill_loss(logits, values, t_logits, t_values,
                                           actor_weight=self.distill_actor, critic_weight=self.distill_critic)
            loss = loss + d_loss
            stats.update(d_stats)
        return loss, stats

    def training_step(self, batch, batch_idx):
        col = self.collector()
        rollout = col.collect(self.model)
        self.frames += rollout.num_steps * rollout.num_envs * col.frame_skip
        for ret, _ in col.pop_episodes():
            self.episodes.append(ret)
            self.all_episodes.append((self.frames, ret))
        loss, stats = self.rl_loss(rollout)
        stats["frames"] = float(self.frames)
        self.log_dict({f"train/{k}": v for k, v in stats.items()})
        return {"loss": loss, **{k: torch.tensor(v) for k, v in stats.items()}}

    def recent_score(self) -> float | None:
        """Mean return of the last (up to 20) finished training episodes (clipped rewards)."""
        return float(np.mean(self.episodes)) if self.episodes else None

    def on_save_checkpoint(self, checkpoint):
        checkpoint["rollout_module"] = {"frames": self.frames, "episodes": list(self.episodes),
                                        "all_episodes": self.all_episodes}

    def on_load_checkpoint(self, checkpoint):
        state = checkpoint.get("rollout_module", {})
        self.frames = int(state.get("frames", 0))
        self.episodes = deque(state.get("episodes", []), maxlen=20)
        self.all_episodes = [tuple(e) for e in state.get("all_episodes", [])]


__all__ = ["RolloutModule", "step_loader"]
