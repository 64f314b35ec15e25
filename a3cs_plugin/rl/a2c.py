"""A2C, the synchronous variant of A3C (Mnih et al. 2016): one gradient step per rollout.

Hyper-parameters: :class:`a3cs_plugin.rl.config.A2CConfig` (RMSprop, n-step returns).  The update
optionally adds the distillation loss of :mod:`a3cs_plugin.rl.distill`.
"""
from __future__ import annotations

import torch
from torch import nn

from a3cs_plugin.rl.config import A2CConfig, DistillConfig, annealed_lr  # noqa: F401 (part of the algo API)
from a3cs_plugin.rl.distill import distill_loss, teacher_outputs
from a3cs_plugin.rl.losses import a2c_loss
from a3cs_plugin.rl.precision import autocast
from a3cs_plugin.rl.rollout import Rollout, UpdateHooks, step_on_loss


class RMSpropTF(torch.optim.Optimizer):
    """RMSprop as in TensorFlow / the A3C paper: the squared-gradient average starts at 1 and eps
    sits inside the square root.  ``torch.optim.RMSprop`` starts the average at 0, so its first
    steps are ~10x lr per weight, which throws a fresh Atari agent off at lr 7e-4."""

    def __init__(self, params, lr: float = 7e-4, alpha: float = 0.99, eps: float = 1e-5):
        super().__init__(params, {"lr": lr, "alpha": alpha, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):
        """One step over all weights with the multi-tensor (``torch._foreach_*``) kernels: the same
        element-wise operations as a loop over the tensors, so the same numbers, in a few calls."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            for p in params:
                if not self.state[p]:
                    self.state[p]["square_avg"] = torch.ones_like(p, memory_format=torch.preserve_format)
            grads = [p.grad for p in params]
            sqs = [self.state[p]["square_avg"] for p in params]
            torch._foreach_mul_(sqs, group["alpha"])
            torch._foreach_addcmul_(sqs, grads, grads, value=1 - group["alpha"])
            denom = torch._foreach_add(sqs, group["eps"])
            torch._foreach_sqrt_(denom)
            torch._foreach_addcdiv_(params, grads, denom, value=-group["lr"])
        return loss


def make_optimizer(model: nn.Module | list, cfg: A2CConfig) -> torch.optim.Optimizer:
    """TF-style RMSprop over ``model``'s parameters or an explicit parameter list."""
    params = model.parameters() if isinstance(model, nn.Module) else model
    return RMSpropTF(params, lr=cfg.lr, alpha=cfg.rms_alpha, eps=cfg.rms_eps)


def a2c_update(model: nn.Module, optimizer: torch.optim.Optimizer, rollout: Rollout,
               cfg: A2CConfig, *, generator: torch.Generator | None = None,
               teacher: nn.Module | None = None, distill: DistillConfig | None = None,
               params: list | None = None, hooks: UpdateHooks | None = None) -> dict[str, float]:
    """One A2C step on the whole rollout; returns stats.  ``generator`` is unused (API parity);
    ``params`` and ``hooks`` as in :func:`a3cs_plugin.rl.ppo.ppo_update`."""
    params = list(model.parameters()) if params is None else list(params)
    b = rollout.with_gae(cfg.gamma, cfg.gae_lambda)
    dev = b["obs"].device             # the rollout's device is the model's (rl.device)
    with autocast(cfg.precision, dev):
        logits, values = model(b["obs"])
    logits, values = logits.float(), values.float()
    loss, stats = a2c_loss(logits, values, b["actions"], b["advantages"], b["returns"],
                           ent_coef=cfg.ent_coef, vf_coef=cfg.vf_coef, norm_adv=cfg.norm_adv)
    if teacher is not None and distill is not None and distill.enabled:
        with autocast(cfg.precision, dev):
            t_logits, t_values = teacher_outputs(teacher, b["obs"])
        d_loss, d_stats = distill_loss(logits, values, t_logits, t_values,
                                       actor_weight=distill.actor, critic_weight=distill.critic)
        loss = loss + d_loss
        stats.update(d_stats)
    stats.update(step_on_loss(loss, optimizer, params, cfg.max_grad_norm, hooks))
    return stats
