"""Differentiable hardware cost of a whole agent on a searchable accelerator.

A *cost model* (plugin group ``a3cs.cost_models``) maps a batch of Timeloop layer problems and a
categorical distribution over accelerator parameters to per-layer energy (pJ) and cycles, differentiably
in the distribution.  :class:`NetworkCost` sums it over the agent: for every searchable cell the
expectation over ops under ``softmax(alpha)``, plus the fixed layers (stem and heads).
:class:`HardwarePenalty` is the NNI ``ExpectationProfilerPenalty`` whose penalty keeps its gradient.
"""
from __future__ import annotations


from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import torch
from torch import nn

from nni.nas.oneshot.pytorch.profiler import ExpectationProfilerPenalty

from a3cs_plugin.errors import ConfigError

METRICS = ("latency", "energy", "edp")

#: Where the hardware cost model runs, whatever the device of the search: the surrogate is a few
#: small tables and an MLP over ~100 layers, and keeps lookup caches outside its buffers.  alpha
#: and beta live with the supernet (on a GPU in a GPU search); their probabilities are moved here
#: with ``.to`` (differentiable), so the cost's gradient flows back to them on their device.
COST_DEVICE = torch.device("cpu")

if TYPE_CHECKING:   # the design-space type of the plugin contract
    from a3cs_plugin.hardware.space.design import DesignSpace


def to_cost_device(probs: Mapping[str, Any]) -> dict[str, Any]:
    """``probs`` with every tensor on :data:`COST_DEVICE` (a no-op on the CPU)."""
    return {k: (v.to(COST_DEVICE) if isinstance(v, torch.Tensor) else v) for k, v in probs.items()}


class CostModel(nn.Module):
    """Base class of cost-model plugins.

    Subclasses set ``template`` and ``clock_hz`` and implement :meth:`accelerator_params`,
    :meth:`featurize` and :meth:`layer_costs`.  A plugin's entry point is a factory
    ``factory(template: str, **options) -> CostModel``.
    """

    template: str = ""
    clock_hz: float = 1.0e9

    def accelerator_params(self) -> dict[str, list[Any]]:
        """Searchable categorical accelerator parameters: name -> ordered choices (beta's layout)."""
        raise NotImplementedError

    def featurize(self, problems: Sequence[Mapping[str, Any]]) -> torch.Tensor:
        """Layer problems -> a float tensor [L, F] (computed once per search)."""
        raise NotImplementedError

    def layer_costs(self, feats: torch.Tensor,
                    accel_probs: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-layer (energy_pJ [L], cycles [L]) for a distribution over the accelerator parameters."""
        raise NotImplementedError

    def area_mm2(self, accel_probs: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        """Optional (expected) area in mm^2; ``None`` when the model does not estimate area."""
        return None

    def cycle_seconds(self, accel_probs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(Expected) clock period; ``1 / clock_hz`` unless the model knows better."""
        return torch.tensor(1.0 / self.clock_hz)

    def design_space(self) -> "DesignSpace | None":
        """The template's :class:`~a3cs_plugin.hardware.space.DesignSpace` (renders a point as a
        Timeloop spec, gives its area), or ``None`` for a model without one: then the search
        reports the surrogate's numbers only (no ``accelerator.yaml``, no mapper re-costing)."""
        return None

    def pinned(self) -> dict[str, Any]:
        """Parameters held at one value during the search (template ``search: false``)."""
        space = self.design_space()
        return dict(space.pinned()) if space is not None else {}

    def min_area_mm2(self, fixed: Mapping[str, Any] | None = None) -> float | None:
        """Smallest area any design with ``fixed`` values can have (feasibility of a budget);
        ``None`` when unknown."""
        return None

    def point(self, choice_index: Mapping[str, int]) -> dict[str, Any]:
        """An accelerator design point (parameter -> value) from choice indices."""
        params = self.accelerator_params()
        return {name: params[name][int(choice_index[name])] for name in params}


def one_hot_probs(cost_model: CostModel, point: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """One-hot distributions for a concrete design point (parameter -> value)."""
    out = {}
    for name, choices in cost_model.accelerator_params().items():
        if name not in point:
            raise ConfigError("design point misses a parameter", key=name, expected=f"one of {choices}")
        if point[name] not in choices:
            raise ConfigError("design point value is not a choice", key=name, expected=f"one of {choices}",
                              got=point[name])
        p = torch.zeros(len(choices))
        p[choices.index(point[name])] = 1.0
        out[name] = p
    return out


def metric_value(metric: str, energy_pj: torch.Tensor, cycles: torch.Tensor) -> torch.Tensor:
    """The scalar that the search minimises: latency (cycles or seconds), energy, or their product (EDP)."""
    if metric == "latency":
        return cycles
    if metric == "energy":
        return energy_pj
    if metric == "edp":
        return energy_pj * cycles
    raise ConfigError("unknown hardware metric", key="metric", expected=f"one of {METRICS}", got=metric)


class NetworkCost(nn.Module):
    """Expected whole-agent cost for ``(alpha probabilities, accelerator probabilities)``.

    Parameters
    ----------
    cost_model
        A :class:`CostModel`.
    op_problems
        ``{cell_label: {op_name: [problem, ...]}}`` — the Timeloop problems of every candidate op.
    fixed_problems
        Problems of the layers present in every architecture (stem, heads).
    """

    def __init__(self, cost_model: CostModel, op_problems: Mapping[str, Mapping[str, Sequence[Mapping]]],
                 fixed_problems: Sequence[Mapping[str, Any]] = ()):
        super().__init__()
        self.cost_model = cost_model
        self.labels = list(op_problems)
        self.op_names = {label: list(ops) for label, ops in op_problems.items()}
        problems: list[Mapping[str, Any]] = []
        segment: list[int] = []          # layer -> (label, op) slot; fixed layers -> slot 0
        slot = 1
        self._slots: dict[tuple[str, str], int] = {}
        for p in fixed_problems:
            problems.append(p)
            segment.append(0)
        for label in self.labels:
            for op in self.op_names[label]:
                self._slots[(label, op)] = slot
                for p in op_problems[label][op]:
                    problems.append(p)
                    segment.append(slot)
                slot += 1
        self.num_slots = slot
        if problems:
            feats = cost_model.featurize(problems).float()
        else:
            feats = torch.zeros(0, 1)
        self.register_buffer("feats", feats, persistent=False)
        self.register_buffer("segment", torch.tensor(segment, dtype=torch.long), persistent=False)

    def _apply(self, fn, recurse=True):
        # pinned to COST_DEVICE: moving the search's modules to a GPU (Lightning's .to(device))
        # leaves the cost model, its surrogate and their buffers here; other conversions apply
        if fn(torch.zeros(())).device != COST_DEVICE:
            return self
        return super()._apply(fn, recurse)

    def slot_costs(self, accel_probs: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(energy_pJ, cycles) per slot: slot 0 is the fixed layers, then (cell, op) in order."""
        if self.feats.shape[0] == 0:
            z = torch.zeros(self.num_slots)
            return z, z
        e, c = self.cost_model.layer_costs(self.feats, to_cost_device(accel_probs))
        z = torch.zeros(self.num_slots, dtype=e.dtype)
        return z.index_add(0, self.segment, e), z.index_add(0, self.segment, c)

    def expected(self, alpha_probs: Mapping[str, torch.Tensor],
                 accel_probs: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Expected total (energy_pJ, cycles) of one inference (one forward of the agent)."""
        e_slot, c_slot = self.slot_costs(accel_probs)
        weights = [torch.ones(1, dtype=e_slot.dtype)]
        for label in self.labels:
            p = alpha_probs[label]
            if p.numel() != len(self.op_names[label]):
                raise ConfigError("alpha size does not match the ops of the cell", key=label,
                                  expected=f"{len(self.op_names[label])} probabilities", got=p.numel())
            weights.append(p.to(e_slot.device, e_slot.dtype).reshape(-1))
        w = torch.cat(weights)
        return (w * e_slot).sum(), (w * c_slot).sum()

    def objective(self, metric: str, alpha_probs: Mapping[str, torch.Tensor],
                  accel_probs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The searched scalar: latency (s), energy (pJ) or EDP (pJ*s) of one inference."""
        energy, cycles = self.expected(alpha_probs, accel_probs)
        latency = cycles * self.cost_model.cycle_seconds(to_cost_device(accel_probs))
        return metric_value(metric, energy, latency)

    def derived(self, arch: Mapping[str, str], accel_probs: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Total (energy_pJ, cycles) of one concrete architecture ``{label: op}``."""
        probs = {}
        for label in self.labels:
            p = torch.zeros(len(self.op_names[label]))
            p[self.op_names[label].index(arch[label])] = 1.0
            probs[label] = p
        return self.expected(probs, accel_probs)


class HardwarePenalty(ExpectationProfilerPenalty):
    """``ExpectationProfilerPenalty`` whose penalty is a differentiable tensor.

    NNI's version converts the probabilities to Python floats (``export_probs``) and evaluates a
    symbolic expression on them, so its penalty carries no gradient.  Here ``sample`` maps each
    cell label to a probability *tensor* (or ``{op: prob-tensor}``) and the key ``"__accelerator__"``
    to ``{parameter: prob-tensor}``; the profile is the metric of :class:`NetworkCost`.
    """

    ACCEL_KEY = "__accelerator__"

    def __init__(self, network_cost: NetworkCost, baseline: float, scale: float = 1.0, *,
                 metric: str = "edp", nonlinear: str = "linear", aggregate: str = "add"):
        if metric not in METRICS:
            raise ConfigError("unknown hardware metric", key="metric", expected=f"one of {METRICS}", got=metric)
        super().__init__(profiler=None, baseline=baseline, scale=scale,  # type: ignore[arg-type]
                         nonlinear=nonlinear, aggregate=aggregate)
        self.network_cost = network_cost
        self.metric = metric

    @staticmethod
    def _as_tensor(v: Any) -> torch.Tensor:
        if isinstance(v, torch.Tensor):
            return v
        if isinstance(v, Mapping):
            vals = list(v.values())
            if vals and all(isinstance(x, torch.Tensor) for x in vals):
                return torch.stack([x.reshape(()) for x in vals])
            return torch.tensor([float(x) for x in vals])
        return torch.as_tensor(v, dtype=torch.float32)

    def profile(self, sample: Mapping[str, Any]) -> torch.Tensor:  # type: ignore[override]
        accel = {k: self._as_tensor(v) for k, v in sample[self.ACCEL_KEY].items()}
        alpha = {k: self._as_tensor(v) for k, v in sample.items() if k != self.ACCEL_KEY}
        return self.network_cost.objective(self.metric, alpha, accel)


CostModelFactory = Callable[..., CostModel]
