"""Pure loss functions: GAE, PPO and A2C (distillation: :mod:`a3cs_plugin.rl.distill`).

They take tensors and return ``(loss, stats)``; none touches an optimizer, an env or a module, so
the co-search strategy can combine them with its own objectives.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.no_grad()
def compute_gae(rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor,
                last_value: torch.Tensor, last_done: torch.Tensor, gamma: float,
                gae_lambda: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016) over ``(T, N)`` tensors.

    ``dones[t] = 1`` means ``obs[t]`` starts a new episode; ``last_*`` describe ``obs[T]``.
    Returns ``(advantages, returns)`` with ``returns = advantages + values``.
    """
    T = rewards.shape[0]
    adv = torch.zeros_like(rewards)
    last = torch.zeros_like(last_value)
    for t in reversed(range(T)):
        if t == T - 1:
            next_nonterminal, next_value = 1.0 - last_done, last_value
        else:
            next_nonterminal, next_value = 1.0 - dones[t + 1], values[t + 1]
        delta = rewards[t] + gamma * next_value * next_nonterminal - values[t]
        last = delta + gamma * gae_lambda * next_nonterminal * last
        adv[t] = last
    return adv, adv + values


def policy_terms(logits: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of ``actions`` and the policy entropy, per sample."""
    logp_all = torch.log_softmax(logits, dim=-1)
    logp = logp_all.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    return logp, entropy


def ppo_loss(logits: torch.Tensor, values: torch.Tensor, actions: torch.Tensor,
             old_logprobs: torch.Tensor, old_values: torch.Tensor, advantages: torch.Tensor,
             returns: torch.Tensor, *, clip_coef: float = 0.1, clip_vloss: bool = True,
             ent_coef: float = 0.01, vf_coef: float = 0.5, norm_adv: bool = True
             ) -> tuple[torch.Tensor, dict[str, float]]:
    """Clipped-surrogate PPO loss with (optionally clipped) value loss and entropy bonus."""
    logp, entropy = policy_terms(logits, actions)
    log_ratio = logp - old_logprobs
    ratio = log_ratio.exp()
    if norm_adv and advantages.numel() > 1:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    pg_loss = torch.max(-advantages * ratio,
                        -advantages * ratio.clamp(1.0 - clip_coef, 1.0 + clip_coef)).mean()
    if clip_vloss:
        v_clipped = old_values + (values - old_values).clamp(-clip_coef, clip_coef)
        v_loss = 0.5 * torch.max((values - returns) ** 2, (v_clipped - returns) ** 2).mean()
    else:
        v_loss = 0.5 * ((values - returns) ** 2).mean()
    ent = entropy.mean()
    loss = pg_loss - ent_coef * ent + vf_coef * v_loss
    with torch.no_grad():
        approx_kl = ((ratio - 1) - log_ratio).mean()
        clipfrac = ((ratio - 1.0).abs() > clip_coef).float().mean()
    return loss, {"policy_loss": pg_loss.item(), "value_loss": v_loss.item(),
                  "entropy": ent.item(), "approx_kl": approx_kl.item(),
                  "clipfrac": clipfrac.item()}


def a2c_loss(logits: torch.Tensor, values: torch.Tensor, actions: torch.Tensor,
             advantages: torch.Tensor, returns: torch.Tensor, *, ent_coef: float = 0.01,
             vf_coef: float = 0.25, norm_adv: bool = False) -> tuple[torch.Tensor, dict[str, float]]:
    """Advantage actor-critic loss: ``-A log pi(a|s) + vf * (V - R)^2 - ent * H``."""
    logp, entropy = policy_terms(logits, actions)
    if norm_adv and advantages.numel() > 1:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    pg_loss = -(advantages.detach() * logp).mean()
    v_loss = F.mse_loss(values, returns)
    ent = entropy.mean()
    loss = pg_loss - ent_coef * ent + vf_coef * v_loss
    return loss, {"policy_loss": pg_loss.item(), "value_loss": v_loss.item(),
                  "entropy": ent.item()}

