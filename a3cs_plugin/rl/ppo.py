"""PPO (Schulman et al. 2017): optimiser, learning-rate schedule and the update on one rollout.

The update optionally adds the distillation loss of :mod:`a3cs_plugin.rl.distill` (teacher outputs
computed once per rollout).  Hyper-parameters: :class:`a3cs_plugin.rl.config.PPOConfig`.
"""
from __future__ import annotations

from collections import defaultdict

import torch
from torch import nn

from a3cs_plugin.rl.config import DistillConfig, PPOConfig, annealed_lr  # noqa: F401 (part of the algo API)
from a3cs_plugin.rl.distill import distill_loss, teacher_outputs
from a3cs_plugin.rl.losses import ppo_loss
from a3cs_plugin.rl.precision import autocast
from a3cs_plugin.rl.rollout import Rollout


def make_optimizer(model: nn.Module, cfg: PPOConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, eps=cfg.adam_eps)


def ppo_update(model: nn.Module, optimizer: torch.optim.Optimizer, rollout: Rollout,
               cfg: PPOConfig, *, generator: torch.Generator | None = None,
               teacher: nn.Module | None = None, distill: DistillConfig | None = None
               ) -> dict[str, float]:
    """GAE on ``rollout`` then ``update_epochs`` epochs of minibatch PPO; returns mean stats."""
    b = rollout.with_gae(cfg.gamma, cfg.gae_lambda)
    use_teacher = teacher is not None and distill is not None and distill.enabled
    if use_teacher:
        with autocast(cfg.precision):
            b["t_logits"], b["t_values"] = teacher_outputs(teacher, b["obs"])
    n = b["actions"].shape[0]
    mb = max(1, n // cfg.num_minibatches)
    sums: dict[str, float] = defaultdict(float)
    count = 0
    for _ in range(cfg.update_epochs):
        perm = torch.randperm(n, generator=generator)
        for start in range(0, n, mb):
            idx = perm[start:start + mb]
            with autocast(cfg.precision):
                logits, values = model(b["obs"][idx])
            logits, values = logits.float(), values.float()
            loss, stats = ppo_loss(
                logits, values, b["actions"][idx], b["logprobs"][idx], b["values"][idx],
                b["advantages"][idx], b["returns"][idx], clip_coef=cfg.clip_coef,
                clip_vloss=cfg.clip_vloss, ent_coef=cfg.ent_coef, vf_coef=cfg.vf_coef,
                norm_adv=cfg.norm_adv)
            if use_teacher:
                d_loss, d_stats = distill_loss(logits, values, b["t_logits"][idx],
                                               b["t_values"][idx], actor_weight=distill.actor,
                                               critic_weight=distill.critic)
                loss = loss + d_loss
                stats.update(d_stats)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            stats["grad_norm"] = float(nn.utils.clip_grad_norm_(model.parameters(),
                                                                cfg.max_grad_norm))
            optimizer.step()
            stats["loss"] = loss.item()
            for k, v in stats.items():
                sums[k] += v
            count += 1
    out = {k: v / count for k, v in sums.items()}
    with torch.no_grad():
        var_y = rollout.returns.var()
        out["explained_variance"] = float(1 - (rollout.returns - rollout.values).var() / var_y) \
            if var_y > 0 else float("nan")
    return out
