"""The accelerator side of the search, shared by A3C-S (agent + accelerator) and DAS (accelerator
only, for a fixed agent): beta logits over a cost model's design space, hard straight-through
Gumbel samples, and the hardware objective (normalised cost + area-budget term).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from a3cs_plugin.errors import ConfigError
from a3cs_plugin.cost.base import NetworkCost, to_cost_device


class AcceleratorChoice(nn.Module):
    """beta: one logit vector per searched parameter of ``cost_model``; ``fixed`` parameters are
    constant one-hot vectors (the template's ``search: false`` ones plus any given)."""

    def __init__(self, cost_model, fixed: Mapping[str, Any] | None = None):
        super().__init__()
        params = cost_model.accelerator_params()
        self.params = {n: list(c) for n, c in params.items()}
        self.cost_model = [cost_model]            # list: not a submodule (it is the evaluator's)
        self.fixed = dict(fixed or {})
        for name, value in self.fixed.items():
            if name not in params or value not in params[name]:
                raise ConfigError("fixed accelerator parameter is not in the design space", key=f"fixed.{name}",
                                  expected=(f"one of {params[name]}" if name in params else
                                            "one of " + ", ".join(params)), got=value)
        self.beta = nn.ParameterDict({n: nn.Parameter(torch.zeros(len(c))) for n, c in params.items()
                                      if n not in self.fixed})
        self._fixed_probs = {n: F.one_hot(torch.tensor(params[n].index(v)), len(params[n])).float()
                             for n, v in self.fixed.items()}

    def probs(self, *, hard: bool = False, sample: bool = False, tau: float = 1.0) -> dict[str, torch.Tensor]:
        """``hard``: argmax one-hot (no gradient); ``sample``: a hard straight-through Gumbel sample
        (a concrete design drawn from softmax(beta), gradient of the tempered soft sample);
        otherwise softmax(beta).  Fixed parameters are one-hot.  On the cost model's device
        (:data:`a3cs_plugin.cost.base.COST_DEVICE`), with the gradient to beta wherever it is."""
        if hard:
            out = {n: F.one_hot(b.detach().argmax(), b.numel()).float() for n, b in self.beta.items()}
        elif sample:
            out = {n: F.gumbel_softmax(b, tau=tau, hard=True) for n, b in self.beta.items()}
        else:
            out = {n: F.softmax(b, dim=-1) for n, b in self.beta.items()}
        out.update(self._fixed_probs)
        return to_cost_device({n: out[n] for n in self.params})

    def export_point(self) -> dict[str, Any]:
        return self.cost_model[0].point({n: int(p.argmax()) for n, p in self.probs(hard=True).items()})

    def export_probs(self) -> dict[str, dict[str, float]]:
        out = {}
        for n, choices in self.params.items():
            p = self._fixed_probs[n] if n in self._fixed_probs else F.softmax(self.beta[n].detach(), -1)
            out[n] = {str(v): float(x) for v, x in zip(choices, p)}
        return out


def hardware_terms(network_cost: NetworkCost, metric: str, baseline: float, alpha: Mapping[str, torch.Tensor],
                   sample: Callable[[], Mapping[str, torch.Tensor]], n: int, *,
                   area_budget_mm2: float | None = None, area_weight: float = 1.0
                   ) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
    """``(cost, area_term, details)`` averaged over ``n`` accelerator draws of ``sample()``: the
    normalised metric of the expected agent under ``alpha`` and, with a budget,
    ``area_weight * relu(area / budget - 1)``."""
    cm = network_cost.cost_model
    cost = torch.zeros(())
    area_term = torch.zeros(())
    area_sum = 0.0
    for _ in range(n):
        accel = sample()
        cost = cost + network_cost.objective(metric, alpha, accel) / baseline
        if area_budget_mm2:
            area = cm.area_mm2(accel)
            if area is not None:
                area = area.reshape(())
                area_term = area_term + area_weight * F.relu(area / area_budget_mm2 - 1.0)
                area_sum += float(area.detach())
    cost, area_term = cost / n, area_term / n
    details = {"hw_cost": float(cost.detach())}
    if area_budget_mm2:
        details.update(expected_area_mm2=area_sum / n, area_over=float(area_term.detach()) / area_weight)
    return cost, area_term, details


def uniform_baseline(network_cost: NetworkCost, metric: str) -> float:
    """The metric at uniform alpha and beta (the normaliser of the hardware cost)."""
    with torch.no_grad():
        alpha = {l: torch.full((len(ops),), 1.0 / len(ops)) for l, ops in network_cost.op_names.items()}
        params = network_cost.cost_model.accelerator_params()
        beta = {n: torch.full((len(c),), 1.0 / len(c)) for n, c in params.items()}
        value = float(network_cost.objective(metric, alpha, beta))
    return value if value > 0 and math.isfinite(value) else 1.0
