"""Teacher -> student distillation (A3C-S, Fu et al. 2021).

The student is pulled toward the teacher's actor with ``KL(pi_T || pi_S)`` and toward its critic
with ``MSE(V_T, V_S)``.  :func:`distill_loss` is pure; :func:`teacher_outputs` evaluates a teacher
on a batch once (no_grad, chunked); :func:`distill_step` is one optimiser step of distillation
alone, for use without an RL loss.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def distill_loss(student_logits: torch.Tensor, student_values: torch.Tensor,
                 teacher_logits: torch.Tensor, teacher_values: torch.Tensor, *,
                 actor_weight: float = 1.0, critic_weight: float = 1.0
                 ) -> tuple[torch.Tensor, dict[str, float]]:
    """``actor_weight * KL(pi_T || pi_S) + critic_weight * MSE(V_T, V_S)``, batch means.

    Teacher tensors are constants (detached).  Returns ``(loss, stats)``.
    """
    t_logp = torch.log_softmax(teacher_logits.detach().float(), dim=-1)
    s_logp = torch.log_softmax(student_logits, dim=-1)
    kl = (t_logp.exp() * (t_logp - s_logp)).sum(-1).mean()
    mse = F.mse_loss(student_values, teacher_values.detach().float())
    loss = actor_weight * kl + critic_weight * mse
    return loss, {"distill_kl": kl.item(), "distill_value_mse": mse.item()}


@torch.no_grad()
def teacher_outputs(teacher: nn.Module, obs: torch.Tensor, chunk: int = 512
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher ``(logits, values)`` on a uint8 batch ``(B, C, H, W)``, in chunks of ``chunk``."""
    logits, values = [], []
    for i in range(0, obs.shape[0], chunk):
        lg, v = teacher(obs[i:i + chunk])
        logits.append(lg.float())
        values.append(v.float())
    return torch.cat(logits), torch.cat(values)


def distill_step(student: nn.Module, optimizer: torch.optim.Optimizer, obs: torch.Tensor,
                 teacher_logits: torch.Tensor, teacher_values: torch.Tensor, *,
                 actor_weight: float = 1.0, critic_weight: float = 1.0,
                 max_grad_norm: float | None = 0.5) -> dict[str, float]:
    """One optimiser step of pure distillation on ``obs`` toward the given teacher outputs."""
    logits, values = student(obs)
    loss, stats = distill_loss(logits, values, teacher_logits, teacher_values,
                               actor_weight=actor_weight, critic_weight=critic_weight)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if max_grad_norm:
        nn.utils.clip_grad_norm_(student.parameters(), max_grad_norm)
    optimizer.step()
    stats["distill_loss"] = loss.item()
    return stats
