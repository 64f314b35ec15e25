"""Built-in cost-model plugin ``surrogate``: the fitted differentiable surrogate of a template.

Wraps :class:`a3cs_plugin.hardware.surrogate.Surrogate` (fitted on mapper labels) and
:class:`a3cs_plugin.hardware.space.DesignSpace` (the categorical parameters that beta searches).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from a3cs_plugin.errors import ConfigError
from a3cs_plugin.hardware.surrogate import Surrogate
from a3cs_plugin.hardware.surrogate.model import SURROGATE_DIR
from a3cs_plugin.hardware.workload import LayerProblem
from a3cs_plugin.strategy.cost import CostModel


def _load_surrogate(template: str, space: Any, path: str | Path | None):
    """The fitted surrogate for ``space``: ``path``, else the shipped one of the template's name, else
    ``<stem>.pt`` beside a template file; it must be fitted for the template's parameters."""
    key = "cost_model_options.surrogate"
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError("surrogate file not found", file=str(p), key=key,
                              expected="a .pt file written by a3cs hw fit-surrogate")
    else:
        tfile = Path(template)
        cands = [SURROGATE_DIR / f"{space.name}.pt"]
        if tfile.suffix:
            cands.append(tfile.with_suffix(".pt"))
        p = next((c for c in cands if c.is_file()), None)
        if p is None:
            raise ConfigError(f"no surrogate for template '{space.name}'", key=key,
                              expected=f"a3cs hw fit-surrogate --template {template} --out T.pt, then "
                                       "hardware.cost_model_options.surrogate: T.pt")
    model = Surrogate.load(p)
    want = [(n, list(prm.choices)) for n, prm in space.parameters.items()]
    have = list(zip(model.param_names, model.param_choices))
    if have != want:
        diff = next(((a, b) for a, b in zip(want + [None] * len(have), have + [None] * len(want))
                     if a != b), (None, None))
        raise ConfigError(f"surrogate was fitted for another design space than template '{space.name}' "
                          f"(first difference: template {diff[0]}, surrogate {diff[1]})", file=str(p), key=key,
                          expected=f"a surrogate fitted with a3cs hw fit-surrogate --template {template}")
    return model


def _problem_and_count(p: LayerProblem | Mapping) -> tuple[Mapping, int]:
    """A layer's Timeloop problem and how often it runs: a :class:`LayerProblem` (its ``count``) or a
    problem dict (count 1, or its ``count`` key beside ``problem``)."""
    if isinstance(p, LayerProblem):
        return p.problem, int(p.count)
    if isinstance(p, Mapping):
        return p, int(p.get("count", 1)) if "problem" in p and "count" in p else 1
    raise ConfigError("layer problem of unknown type", key="problems",
                      expected="LayerProblem or Timeloop problem dict", got=type(p).__name__)


class SurrogateCostModel(CostModel):
    """Cost model backed by the template's fitted surrogate.

    ``template``: a shipped template name or a template file. ``surrogate``: a fitted
    :class:`~a3cs_plugin.hardware.surrogate.Surrogate` or a ``.pt`` path (``hardware.cost_model_options.surrogate``); by default the shipped
    surrogate of the template's name, else ``<template file stem>.pt`` next to the template file.
    A surrogate fitted for other parameters or choices than the template's is refused.
    """

    def __init__(self, template: str, surrogate: Surrogate | str | Path | None = None, design_space: Any = None):
        super().__init__()
        from a3cs_plugin.hardware.space import DesignSpace
        self.template = str(template)
        self.space = design_space if design_space is not None else DesignSpace.from_template(template)
        if surrogate is None or isinstance(surrogate, (str, Path)):
            surrogate = _load_surrogate(self.template, self.space, surrogate)
        if not isinstance(surrogate, Surrogate):
            raise ConfigError("not a fitted surrogate", key="cost_model_options.surrogate",
                              expected="a Surrogate or a .pt file written by a3cs hw fit-surrogate",
                              got=type(surrogate).__name__)
        self.surrogate = surrogate
        for p in surrogate.parameters():
            p.requires_grad_(False)
        self.clock_hz = float(self.space.clock_hz())

    @classmethod
    def from_template(cls, template: str, **options: Any) -> "SurrogateCostModel":
        """Entry-point factory (``a3cs.cost_models: surrogate``)."""
        return cls(template, **options)

    def accelerator_params(self) -> dict[str, list[Any]]:
        return {n: list(c) for n, c in zip(self.surrogate.param_names, self.surrogate.param_choices)}

    def featurize(self, problems: Sequence[LayerProblem | Mapping]) -> torch.Tensor:
        from a3cs_plugin.hardware.surrogate.features import layer_features
        rows = []
        for p in problems:
            prob, count = _problem_and_count(p)
            rows.append(np.append(layer_features(prob), float(count)))
        return torch.tensor(np.stack(rows), dtype=torch.float32)

    def layer_costs(self, feats, accel_probs):
        counts = feats[:, -1]
        probs = {n: accel_probs[n] for n in self.accelerator_params()}
        energy, cycles = self.surrogate.predict(feats[:, :-1], probs)
        return energy.reshape(-1) * counts, cycles.reshape(-1) * counts

    def area_mm2(self, accel_probs: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        return self.surrogate.area_mm2(dict(accel_probs)).reshape(())

    def cycle_seconds(self, accel_probs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.surrogate.cycle_seconds(dict(accel_probs)).reshape(())

    def design_space(self) -> Any:
        return self.space

    def min_area_mm2(self, fixed: Mapping[str, Any] | None = None) -> float | None:
        s = self.surrogate
        if not s.area_params:
            return None
        table = s.area_table
        fixed = dict(fixed or {})
        for axis, i in reversed(list(enumerate(s.area_params))):
            name = s.param_names[i]
            if name in fixed:
                table = table.select(axis, s.param_choices[i].index(fixed[name]))
        return float(table.min())
