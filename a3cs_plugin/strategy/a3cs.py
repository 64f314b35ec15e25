"""The A3C-S one-shot strategy: DARTS over the agent (alpha) + Gumbel-softmax over the accelerator (beta).

Usage, the NNI way::

    strategy = A3CS(cost_model=registry.cost_model("surrogate", "eyeriss_like"), hw_lambda=0.1)
    NasExperiment(AgentSpace(num_actions=6), evaluator, strategy).run()

``evaluator`` is a ``nni.nas.evaluator.pytorch.Lightning`` whose module's ``training_step`` collects a
rollout and returns ``{"loss": rl + distillation}`` (see :mod:`a3cs_plugin.strategy.rl_module`).  The
strategy adds ``lambda * cost / baseline`` where ``cost`` is the latency, energy or EDP of the whole
agent: the expectation over ``softmax(alpha)`` of every cell's op cost plus the fixed layers, for an
accelerator drawn by Gumbel-softmax over ``beta`` with a temperature annealed from ``tau_init`` to
``tau_min``, through the cost-model plugin (differentiable in both).

Modes: ``one-level`` (weights, alpha and beta stepped on the same rollout), ``bi-level`` (alpha/beta
on a separate rollout, as DARTS), ``direct-nas`` (bi-level, no distillation: the paper's baseline).
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nni.nas.oneshot.pytorch.differentiable import DartsLightningModule
from nni.nas.oneshot.pytorch.strategy import DARTS
from nni.nas.oneshot.pytorch.supermodule.differentiable import DifferentiableMixedLayer

from a3cs_plugin.errors import ConfigError
from a3cs_plugin.strategy.cost import CostModel, HardwarePenalty, NetworkCost
from a3cs_plugin.strategy.supernet import SinglePathMixedLayer

MODES = ("one-level", "bi-level", "direct-nas")
SUPERNETS = ("single-path", "mixed")


class A3CSModule(DartsLightningModule):
    """One-shot Lightning module of :class:`A3CS` (wraps the evaluator's training module)."""

    def __init__(self, training_module, network_cost: NetworkCost, *, hw_lambda: float = 0.1,
                 metric: str = "edp", mode: str = "one-level", arc_learning_rate: float = 3e-3,
                 beta_learning_rate: float | None = None, tau_init: float = 5.0, tau_min: float = 0.5,
                 fps_band: Sequence[float] | None = None, lambda_rate: float = 0.05,
                 gradient_clip_val: float | None = 0.5, log_every: int = 1, warmup_epochs: int = 0,
                 area_budget_mm2: float | None = None, area_weight: float = 1.0):
        baseline = self._baseline(network_cost, metric)
        penalty = HardwarePenalty(network_cost, baseline=baseline, scale=hw_lambda, metric=metric)
        super().__init__(training_module, arc_learning_rate=arc_learning_rate,
                         gradient_clip_val=gradient_clip_val, log_prob_every_n_step=max(1, log_every),
                         warmup_epochs=warmup_epochs, penalty=penalty)
        if mode not in MODES:
            raise ConfigError("unknown search mode", key="mode", expected=f"one of {MODES}", got=mode)
        self.mode = mode
        self.network_cost = network_cost
        self.metric = metric
        self.beta_learning_rate = beta_learning_rate or arc_learning_rate
        self.tau_init, self.tau_min = float(tau_init), float(tau_min)
        self.tau = float(tau_init)
        self.fps_band = tuple(fps_band) if fps_band else None
        self.lambda_rate = lambda_rate
        self.log_every = max(1, log_every)
        params = network_cost.cost_model.accelerator_params()
        self.beta = nn.ParameterDict({name: nn.Parameter(torch.zeros(len(ch))) for name, ch in params.items()})
        self.area_budget_mm2 = area_budget_mm2
        self.area_weight = float(area_weight)
        self.history: list[dict[str, Any]] = []

    @staticmethod
    def _baseline(network_cost: NetworkCost, metric: str) -> float:
        with torch.no_grad():
            alpha = {l: torch.full((len(ops),), 1.0 / len(ops)) for l, ops in network_cost.op_names.items()}
            params = network_cost.cost_model.accelerator_params()
            beta = {n: torch.full((len(c),), 1.0 / len(c)) for n, c in params.items()}
            value = float(network_cost.objective(metric, alpha, beta))
        return value if value > 0 and math.isfinite(value) else 1.0

    # ----- parameters and probabilities -------------------------------------------------------
    @property
    def hw_lambda(self) -> float:
        return float(self.penalty.scale)

    @hw_lambda.setter
    def hw_lambda(self, value: float) -> None:
        self.penalty.scale = float(value)

    def mixed_layers(self) -> dict[str, DifferentiableMixedLayer]:
        return {m.label: m for m in self.supernet_modules() if isinstance(m, DifferentiableMixedLayer)}

    def alpha_probs(self) -> dict[str, torch.Tensor]:
        """softmax(alpha) per cell, in the op order of the cost model (with gradient)."""
        out = {}
        layers = self.mixed_layers()
        for label, ops in self.network_cost.op_names.items():
            m = layers[label]
            p = F.softmax(m._arch_alpha, dim=-1)
            out[label] = p[[m.names.index(op) for op in ops]]
        return out

    def beta_probs(self, hard: bool = False) -> dict[str, torch.Tensor]:
        """Accelerator choice probabilities: Gumbel-softmax samples in training, softmax otherwise."""
        if hard:
            return {n: F.one_hot(b.detach().argmax(), b.numel()).float() for n, b in self.beta.items()}
        if self.training:
            return {n: F.gumbel_softmax(b, tau=self.tau, hard=False) for n, b in self.beta.items()}
        return {n: F.softmax(b, dim=-1) for n, b in self.beta.items()}

    def arch_parameters(self) -> list[nn.Parameter]:
        return super().arch_parameters() + list(self.beta.values())

    def configure_architecture_optimizers(self):
        alphas = DartsLightningModule.arch_parameters(self)
        if not alphas:
            raise ConfigError("the model space has no LayerChoice to search", key="model_space",
                              expected="an NNI ModelSpace with LayerChoice cells")
        return torch.optim.Adam([
            {"params": alphas, "lr": self.arc_learning_rate},
            {"params": list(self.beta.values()), "lr": self.beta_learning_rate},
        ], betas=(0.5, 0.999), weight_decay=1.0e-3)

    # ----- derived pair -----------------------------------------------------------------------
    def export_accelerator(self) -> dict[str, Any]:
        """argmax(beta) as a design point (parameter -> value)."""
        cm = self.network_cost.cost_model
        return cm.point({n: int(b.detach().argmax()) for n, b in self.beta.items()})

    def export_beta_probs(self) -> dict[str, dict[str, float]]:
        params = self.network_cost.cost_model.accelerator_params()
        return {n: {str(v): float(p) for v, p in zip(params[n], F.softmax(b.detach(), -1))}
                for n, b in self.beta.items()}

    def derived_cost(self) -> dict[str, float]:
        """Cost-model estimate of the argmax pair: energy_pJ, cycles, fps."""
        with torch.no_grad():
            hard = self.beta_probs(hard=True)
            e, c = self.network_cost.derived(self.export(), hard)
            latency = max(float(c) * float(self.network_cost.cost_model.cycle_seconds(hard)), 1e-15)
            area = self.network_cost.cost_model.area_mm2(hard)
        out = {"energy_pJ": float(e), "cycles": float(c), "fps": 1.0 / latency}
        if area is not None:
            out["area_mm2"] = float(area)
        return out

    # ----- schedules --------------------------------------------------------------------------
    def _progress(self, batch_idx: int) -> float:
        trainer = self.trainer
        per_epoch = trainer.num_training_batches if math.isfinite(trainer.num_training_batches) else 1
        total = max(1, (trainer.max_epochs or 1) * per_epoch)
        return min(1.0, (trainer.current_epoch * per_epoch + batch_idx) / total)

    def _anneal(self, batch_idx: int) -> None:
        frac = self._progress(batch_idx)
        # exponential decay tau_init -> tau_min
        self.tau = self.tau_init * (self.tau_min / self.tau_init) ** frac
        for m in self.supernet_modules():
            if isinstance(m, SinglePathMixedLayer):
                m.tau = self.tau

    def _adapt_lambda(self, fps: float) -> None:
        if not self.fps_band:
            return
        lo, hi = self.fps_band
        if fps < lo:
            self.hw_lambda = min(self.hw_lambda * (1 + self.lambda_rate), 1e4)
        elif fps > hi:
            self.hw_lambda = max(self.hw_lambda / (1 + self.lambda_rate), 1e-6)

    # ----- optimisation -----------------------------------------------------------------------
    def hardware_loss(self, loss: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        sample: dict[str, Any] = dict(self.alpha_probs())
        accel = self.beta_probs()
        sample[HardwarePenalty.ACCEL_KEY] = accel
        total, details = self.penalty(loss, sample)
        if self.area_budget_mm2:
            area = self.network_cost.cost_model.area_mm2(accel)
            if area is not None:
                over = F.relu(area / self.area_budget_mm2 - 1.0)
                total = total + self.area_weight * over
                details = {**details, "area_mm2": area, "area_over": over}
        return total, details

    def _weight_optimizer(self):
        opts = self.optimizers()
        opts = opts if isinstance(opts, list) else [opts]
        opts = [o for o in opts if not getattr(o, "is_arch_optimizer", False)]
        if len(opts) != 1:
            raise ConfigError("the evaluator module must configure exactly one optimizer",
                              key="configure_optimizers", expected="1 optimizer", got=len(opts))
        return opts[0]

    def _weights(self) -> list[nn.Parameter]:
        arch = set(self.arch_parameters())
        return [p for p in self.training_module.parameters() if p.requires_grad and p not in arch]

    def training_step(self, batch, batch_idx):
        arc_optim = self.architecture_optimizers()
        self._anneal(batch_idx)
        search = self.warmup_epochs == 0 or self.trainer.current_epoch >= self.warmup_epochs
        details: dict[str, Any] = {}
        if self.mode == "one-level":
            self.resample()
            out = self.training_module.training_step(batch, batch_idx)
            loss = out["loss"] if isinstance(out, dict) else out
            total = loss
            if search:
                total, details = self.hardware_loss(loss)
            w_opt = self._weight_optimizer()
            w_opt.zero_grad()
            arc_optim.zero_grad()
            self.manual_backward(total)
            if self.gradient_clip_val:
                nn.utils.clip_grad_norm_(self._weights(), self.gradient_clip_val)
            w_opt.step()
            if search:
                arc_optim.step()
            result = out
        else:
            if search:
                self.resample()
                arc_optim.zero_grad()
                out_a = self.training_module.training_step(batch, 2 * batch_idx)
                loss_a = out_a["loss"] if isinstance(out_a, dict) else out_a
                total, details = self.hardware_loss(loss_a)
                self.manual_backward(total)
                arc_optim.step()
            self.resample()
            result = self.training_module.training_step(batch, 2 * batch_idx + 1)
            w_loss = result["loss"] if isinstance(result, dict) else result
            self.advance_optimization(w_loss, batch_idx, self.gradient_clip_val)
        self.advance_lr_schedulers(batch_idx)

        derived = self.derived_cost()
        if search:
            self._adapt_lambda(derived["fps"])
        self._record(batch_idx, details, derived)
        return result

    def _record(self, batch_idx: int, details: Mapping[str, Any], derived: Mapping[str, float]) -> None:
        logs = {"search/tau": self.tau, "search/lambda": self.hw_lambda,
                "search/derived_fps": derived["fps"], "search/derived_energy_pJ": derived["energy_pJ"],
                "search/derived_cycles": derived["cycles"]}
        if details:
            logs["search/hw_penalty"] = float(details["penalty"])
            logs["search/hw_normalized"] = float(details["normalized_penalty"])
            if "area_mm2" in details:
                logs["search/expected_area_mm2"] = float(details["area_mm2"])
        if "area_mm2" in derived:
            logs["search/derived_area_mm2"] = derived["area_mm2"]
        score = getattr(self.training_module, "recent_score", lambda: None)()
        if score is not None:
            logs["search/score"] = float(score)
        self.log_dict(logs)
        if batch_idx % self.log_every == 0:
            alpha = self.export_probs()
            beta = self.export_beta_probs()
            self.log_dict({f"alpha/{l}/{o}": float(p) for l, d in alpha.items() for o, p in d.items()})
            self.log_dict({f"beta/{n}/{v}": float(p) for n, d in beta.items() for v, p in d.items()})
            per_epoch = self.trainer.num_training_batches
            per_epoch = int(per_epoch) if math.isfinite(per_epoch) else 0
            self.history.append({
                "step": int(self.trainer.current_epoch * per_epoch + batch_idx + 1),
                "epoch": int(self.trainer.current_epoch),
                "frames": int(getattr(self.training_module, "frames", 0)),
                "alpha": {l: {o: float(p) for o, p in d.items()} for l, d in alpha.items()},
                "beta": beta, **{k.split("/", 1)[1]: v for k, v in logs.items()},
            })

    def on_save_checkpoint(self, checkpoint):
        checkpoint["a3cs"] = {"history": self.history, "hw_lambda": self.hw_lambda}
        hook = getattr(self.training_module, "on_save_checkpoint", None)
        if hook:
            hook(checkpoint)

    def on_load_checkpoint(self, checkpoint):
        state = checkpoint.get("a3cs", {})
        self.history = list(state.get("history", []))
        if "hw_lambda" in state:
            self.hw_lambda = state["hw_lambda"]
        hook = getattr(self.training_module, "on_load_checkpoint", None)
        if hook:
            hook(checkpoint)


class A3CS(DARTS):
    """A3C-S co-search strategy (an NNI one-shot strategy).

    Parameters
    ----------
    cost_model
        A :class:`~a3cs_plugin.strategy.cost.CostModel` (e.g. from ``registry.cost_model``).
    hw_lambda
        Weight of the normalised hardware cost (initial value when ``fps_band`` is set).
    metric
        ``"latency"``, ``"energy"`` or ``"edp"`` of one inference of the whole agent.
    mode
        ``"one-level"``, ``"bi-level"`` or ``"direct-nas"``.
    supernet
        ``"single-path"`` (one sampled op per cell per forward) or ``"mixed"`` (DARTS weighted sum).
    fps_band
        ``(low, high)``: adapt lambda so the derived pair's FPS stays inside the band.
    area_budget_mm2, area_weight
        Adds ``area_weight * relu(E[area] / budget - 1)`` when the cost model estimates area.
    op_problems, fixed_problems
        Timeloop problems per ``{cell: {op: [...]}}`` and of the fixed layers; taken from the
        model space's ``op_problems(label, op)`` / ``fixed_problems()`` when omitted.
    """

    def __init__(self, *, cost_model: CostModel, hw_lambda: float = 0.1, metric: str = "edp",
                 mode: str = "one-level", supernet: str = "single-path",
                 arc_learning_rate: float = 3e-3, beta_learning_rate: float | None = None,
                 tau_init: float = 5.0, tau_min: float = 0.5, fps_band: Sequence[float] | None = None,
                 lambda_rate: float = 0.05, gradient_clip_val: float | None = 0.5, log_every: int = 1,
                 warmup_epochs: int = 0, area_budget_mm2: float | None = None, area_weight: float = 1.0,
                 op_problems: Mapping[str, Mapping[str, list]] | None = None,
                 fixed_problems: Sequence[Mapping] | None = None, **kwargs):
        super().__init__(arc_learning_rate=arc_learning_rate, gradient_clip_val=gradient_clip_val,
                         log_prob_every_n_step=log_every, warmup_epochs=warmup_epochs, **kwargs)
        if mode not in MODES:
            raise ConfigError("unknown search mode", key="mode", expected=f"one of {MODES}", got=mode)
        if supernet not in SUPERNETS:
            raise ConfigError("unknown supernet execution", key="supernet", expected=f"one of {SUPERNETS}",
                              got=supernet)
        if fps_band is not None and (len(fps_band) != 2 or not 0 < fps_band[0] <= fps_band[1]):
            raise ConfigError("bad FPS band", key="fps_band", expected="[low, high] with 0 < low <= high",
                              got=fps_band)
        self.cost_model = cost_model
        self.options = dict(hw_lambda=hw_lambda, metric=metric, mode=mode, arc_learning_rate=arc_learning_rate,
                            beta_learning_rate=beta_learning_rate, tau_init=tau_init, tau_min=tau_min,
                            fps_band=fps_band, lambda_rate=lambda_rate, gradient_clip_val=gradient_clip_val,
                            log_every=log_every, warmup_epochs=warmup_epochs,
                            area_budget_mm2=area_budget_mm2, area_weight=area_weight)
        self.mode = mode
        self.supernet_kind = supernet
        self._op_problems = op_problems
        self._fixed_problems = fixed_problems
        self.network_cost: NetworkCost | None = None

    # NNI hooks --------------------------------------------------------------------------------
    def mutate_model(self, model):
        labels = {label: list(m.values) for label, m in model.simplify().items()}
        op_problems = self._op_problems
        if op_problems is None:
            if not hasattr(model, "op_problems"):
                raise ConfigError("model space has no op_problems(label, op) and none were given",
                                  key="op_problems", expected="{cell: {op: [problem, ...]}}")
            op_problems = {label: {op: list(model.op_problems(label, op)) for op in ops}
                           for label, ops in labels.items()}
        fixed = self._fixed_problems
        if fixed is None:
            fixed = list(model.fixed_problems()) if hasattr(model, "fixed_problems") else []
        missing = sorted(set(labels) - set(op_problems))
        if missing:
            raise ConfigError("no hardware problems for searchable cells", key="op_problems",
                              expected=f"entries for {missing}")
        self.network_cost = NetworkCost(self.cost_model, op_problems, fixed)
        return super().mutate_model(model)

    def default_mutation_hooks(self):
        hooks = super().default_mutation_hooks()
        if self.supernet_kind == "single-path":
            hooks = [SinglePathMixedLayer.mutate if h == DifferentiableMixedLayer.mutate else h for h in hooks]
        return hooks

    def configure_oneshot_module(self, training_module):
        if self.network_cost is None:
            raise ConfigError("A3CS used before the model space was mutated", key="strategy")
        distill = self.mode != "direct-nas"
        if hasattr(training_module, "set_distillation"):
            training_module.set_distillation(distill)
        opts = dict(self.options)
        opts["mode"] = "bi-level" if self.mode == "direct-nas" else self.mode
        return A3CSModule(training_module, self.network_cost, **opts)

    def train_dataloader(self, train_dataloader_fn, val_dataloader_fn):
        # Rollouts are generated inside training_step; the loader only yields step indices.
        return train_dataloader_fn()

    def val_dataloader(self, train_dataloader_fn, val_dataloader_fn):
        return None

    # results ----------------------------------------------------------------------------------
    def export_accelerator(self) -> dict[str, Any]:
        return self.oneshot_module.export_accelerator()  # type: ignore[attr-defined]


class DirectNAS(A3CS):
    """The paper's baseline: A3CS in ``direct-nas`` mode (bi-level, no distillation)."""

    def __init__(self, **kwargs):
        kwargs["mode"] = "direct-nas"
        super().__init__(**kwargs)
