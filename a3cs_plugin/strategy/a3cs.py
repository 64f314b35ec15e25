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

Modes: ``one-level`` (weights, alpha and beta stepped on the same minibatch losses), ``bi-level``
(alpha/beta on a separate rollout, as DARTS); ``distill=False`` (or mode ``direct-nas``, which is
one-level without distillation) is the paper's Direct-NAS baseline.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nni.nas.oneshot.pytorch.differentiable import DartsLightningModule
from nni.nas.oneshot.pytorch.strategy import DARTS
from nni.nas.oneshot.pytorch.supermodule.differentiable import DifferentiableMixedLayer

from a3cs_plugin.errors import ConfigError
from a3cs_plugin.strategy.accelerator import AcceleratorChoice, hardware_terms, uniform_baseline
from a3cs_plugin.cost.base import CostModel, HardwarePenalty, NetworkCost
from a3cs_plugin.strategy.settings import BALANCES, MODES, SUPERNETS, SearchSettings  # noqa: F401
from a3cs_plugin.strategy.supernet import SinglePathMixedLayer


class _ArchStep:
    """:class:`~a3cs_plugin.rl.rollout.UpdateHooks` that step alpha/beta on each minibatch loss."""

    def __init__(self, module: "A3CSModule"):
        self.module = module

    def zero_grad(self) -> None:
        self.module.architecture_optimizers().zero_grad(set_to_none=True)

    def step(self) -> dict[str, float]:
        return self.module.arch_step()


class A3CSModule(DartsLightningModule):
    """One-shot Lightning module of :class:`A3CS` (wraps the evaluator's :class:`RolloutModule`).

    Every ``training_step`` is one search update: a rollout and the algorithm's real update of the
    weights (PPO: ``update_epochs`` x ``num_minibatches`` clipped steps; A2C: its RMSprop step),
    with distillation.  After the warm-up, one-level search steps alpha and beta after every
    minibatch step on the same loss plus lambda x hardware cost; bi-level first runs the same
    losses over a separate rollout with the weights frozen, stepping only alpha/beta, then the
    weight update on a fresh rollout (DARTS' first-order alternation)."""

    def __init__(self, training_module, network_cost: NetworkCost, settings: SearchSettings | None = None,
                 **options: Any):
        """``settings``: the strategy's :class:`SearchSettings` (keyword ``options`` build one,
        for direct use of the module)."""
        st = settings if settings is not None else SearchSettings(**options)
        if settings is not None and options:
            raise ConfigError("give settings or keyword options, not both", key="A3CSModule",
                              got=sorted(options))
        self.settings = st
        baseline = self._baseline(network_cost, st.metric)
        penalty = HardwarePenalty(network_cost, baseline=baseline, scale=st.hw_lambda, metric=st.metric)
        super().__init__(training_module, arc_learning_rate=st.arc_learning_rate,
                         gradient_clip_val=st.gradient_clip_val, log_prob_every_n_step=max(1, st.log_every),
                         warmup_epochs=0, penalty=penalty)
        # read-only views of the settings under the names the module's code uses
        self.mode = st.optimisation
        self.network_cost = network_cost
        self.metric = st.metric
        self.baseline = baseline
        self.beta_learning_rate = st.beta_learning_rate or st.arc_learning_rate
        self.tau_init, self.tau_min = float(st.tau_init), float(st.tau_min)
        self.tau = float(st.tau_init)                 # annealed
        self.fps_target = st.fps_target
        self.lambda_rate = st.lambda_rate
        self.log_every = max(1, st.log_every)
        self.warmup_epochs_opt = int(st.warmup_epochs or 0)
        self.warmup_frac = float(st.warmup_frac)
        self.warmup_updates = st.warmup_updates
        self.total_updates = st.total_updates
        self.balance = st.balance
        self.beta_samples = st.beta_samples
        self.accel = AcceleratorChoice(network_cost.cost_model, dict(st.fixed))
        self.fixed = self.accel.fixed
        self.area_budget_mm2 = st.area_budget_mm2
        self.area_weight = float(st.area_weight)
        self.history: list[dict[str, Any]] = []
        self.order: list[str] = []          # "arch" / "weights" steps of the last update (tests, logs)
        self._task_norm_ema: float | None = None
        self._arch_steps = 0

    @staticmethod
    def _baseline(network_cost: NetworkCost, metric: str) -> float:
        return uniform_baseline(network_cost, metric)

    # ----- parameters and probabilities -------------------------------------------------------
    @property
    def hw_lambda(self) -> float:
        return float(self.penalty.scale)

    @hw_lambda.setter
    def hw_lambda(self, value: float) -> None:
        self.penalty.scale = float(value)

    def mixed_layers(self) -> dict[str, DifferentiableMixedLayer]:
        return {m.label: m for m in self.supernet_modules() if isinstance(m, DifferentiableMixedLayer)}

    def alpha_params(self) -> list[nn.Parameter]:
        layers = self.mixed_layers()
        return [layers[label]._arch_alpha for label in self.network_cost.labels]

    def alpha_probs(self) -> dict[str, torch.Tensor]:
        """softmax(alpha) per cell, in the op order of the cost model (with gradient)."""
        out = {}
        layers = self.mixed_layers()
        for label, ops in self.network_cost.op_names.items():
            m = layers[label]
            p = F.softmax(m._arch_alpha, dim=-1)
            out[label] = p[[m.names.index(op) for op in ops]]
        return out

    @property
    def beta(self) -> nn.ParameterDict:
        """The accelerator logits (searched parameters only)."""
        return self.accel.beta

    def beta_probs(self, hard: bool = False) -> dict[str, torch.Tensor]:
        """Accelerator choice probabilities, fixed parameters one-hot.  ``hard``: argmax (no
        gradient).  In training a *hard* Gumbel-softmax sample (straight-through): its value is a
        concrete design -- where the surrogate was fitted -- drawn from softmax(beta), so its
        expectation is the expected cost over concrete designs; the gradient is that of the
        tempered soft sample.  Otherwise softmax(beta)."""
        return self.accel.probs(hard=hard, sample=self.training, tau=self.tau)

    def alpha_parameters(self) -> list[nn.Parameter]:
        """The supernet's alphas in module order, each once.  NNI's ``arch_parameters`` returns
        ``list(set(...))``: an order that changes from process to process (ids), so the
        architecture optimiser's state, saved by position, would be restored onto other alphas
        in a resumed process."""
        out, seen = [], set()
        for m in self.supernet_modules():
            if hasattr(m, "arch_parameters"):
                for p in m.arch_parameters():
                    if id(p) not in seen:
                        seen.add(id(p))
                        out.append(p)
        return out

    def arch_parameters(self) -> list[nn.Parameter]:
        return self.alpha_parameters() + list(self.beta.values())

    def configure_architecture_optimizers(self):
        alphas = self.alpha_parameters()
        if not alphas:
            raise ConfigError("the model space has no LayerChoice to search", key="model_space",
                              expected="an NNI ModelSpace with LayerChoice cells")
        groups = [{"params": alphas, "lr": self.arc_learning_rate}]
        if len(self.beta):
            groups.append({"params": list(self.beta.values()), "lr": self.beta_learning_rate})
        return torch.optim.Adam(groups, betas=(0.5, 0.999), weight_decay=1.0e-3)

    # ----- derived pair -----------------------------------------------------------------------
    def export_accelerator(self) -> dict[str, Any]:
        """argmax(beta) as a design point (parameter -> value), fixed parameters included."""
        return self.accel.export_point()

    def export_beta_probs(self) -> dict[str, dict[str, float]]:
        return self.accel.export_probs()

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
    def _per_epoch(self) -> int:
        n = self.trainer.num_training_batches
        return int(n) if math.isfinite(n) else 1

    def _total(self) -> int:
        if self.total_updates is not None:
            return int(self.total_updates)
        return max(1, (self.trainer.max_epochs or 1) * self._per_epoch())

    def _warmup(self) -> int:
        if self.warmup_updates is not None:
            return int(self.warmup_updates)
        if self.warmup_epochs_opt:
            return self.warmup_epochs_opt * self._per_epoch()
        return int(round(self.warmup_frac * self._total()))

    def _anneal(self, update: int) -> None:
        warm, total = self._warmup(), self._total()
        frac = min(1.0, max(0.0, (update - warm) / max(1, total - warm - 1)))
        # exponential decay tau_init -> tau_min over the search updates (after the warm-up)
        self.tau = self.tau_init * (self.tau_min / self.tau_init) ** frac
        for m in self.supernet_modules():
            if isinstance(m, SinglePathMixedLayer):
                m.tau = self.tau

    def _adapt_lambda(self, fps: float) -> None:
        if not self.fps_target:
            return
        lo, hi = self.fps_target
        if fps < lo:
            self.hw_lambda = min(self.hw_lambda * (1 + self.lambda_rate), 1e4)
        elif fps > hi:
            self.hw_lambda = max(self.hw_lambda / (1 + self.lambda_rate), 1e-6)

    # ----- optimisation -----------------------------------------------------------------------
    def hardware_objective(self) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        """``(cost, area_term, details)``: the normalised hardware cost (metric / its value at
        uniform alpha, beta) of the expected agent under softmax(alpha), and with an area budget
        ``area_weight * relu(area / budget - 1)``, both averaged over ``beta_samples`` hard
        accelerator samples (one evaluation of softmax(beta) outside training)."""
        n = self.beta_samples if self.training else 1
        return hardware_terms(self.network_cost, self.metric, self.baseline, self.alpha_probs(), self.beta_probs, n,
                              area_budget_mm2=self.area_budget_mm2, area_weight=self.area_weight)

    def hardware_loss(self, loss: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        """``loss + lambda * cost + area_term`` (the unbalanced sum; for callers and tests)."""
        cost, area_term, details = self.hardware_objective()
        return loss + self.hw_lambda * cost + area_term, {**details, "penalty": float(cost.detach()) * self.baseline,
                                                          "normalized_penalty": float(cost.detach())}

    def arch_step(self) -> dict[str, float]:
        """Add the hardware term's gradient to the task gradient alpha already holds (from the
        minibatch loss's backward), then step alpha and beta.

        With ``balance="normalize"`` the hardware part of alpha's gradient is rescaled to
        ``lambda`` x a running mean of the task part's norm, so lambda is the ratio of the two
        and neither term drowns the other whatever the cost's units, the Gumbel temperature or
        the straight-through weight; beta (which only the hardware term moves) gets
        ``lambda x`` the cost's gradient.  ``balance="none"``: plain ``lambda x`` both.  The
        area-budget term is a constraint, added to beta's gradient as it is (independent of
        lambda)."""
        alphas = self.alpha_params()
        betas = list(self.beta.values())
        task = [a.grad.detach().clone() if a.grad is not None else torch.zeros_like(a) for a in alphas]
        t_norm = float(torch.sqrt(sum((g.float() ** 2).sum() for g in task)))
        cost, area_term, details = self.hardware_objective()
        grads = torch.autograd.grad(cost, alphas + betas, allow_unused=True, retain_graph=bool(betas))
        ga = [g if g is not None else torch.zeros_like(a) for g, a in zip(grads[:len(alphas)], alphas)]
        gb = [g if g is not None else torch.zeros_like(b) for g, b in zip(grads[len(alphas):], betas)]
        if betas and area_term.requires_grad:
            g_area = torch.autograd.grad(area_term, betas, allow_unused=True)
        else:
            g_area = [None] * len(betas)
        h_a = float(torch.sqrt(sum((g ** 2).sum() for g in ga)))
        h_b = float(torch.sqrt(sum((g ** 2).sum() for g in gb))) if gb else 0.0
        lam = self.hw_lambda
        if self.balance == "normalize":
            ema = self._task_norm_ema
            self._task_norm_ema = t_norm if ema is None else 0.9 * ema + 0.1 * t_norm
            scale = lam * self._task_norm_ema / h_a if h_a > 0 else 0.0
        else:
            scale = lam
        for a, g0, g in zip(alphas, task, ga):
            a.grad = g0 + scale * g
        for b, g, g2 in zip(betas, gb, g_area):
            b.grad = lam * g + (g2 if g2 is not None else 0.0)
        self.architecture_optimizers().step()
        self._arch_steps += 1
        return {"grad_alpha_task": t_norm, "grad_alpha_hw": scale * h_a, "grad_beta_hw": lam * h_b,
                "grad_beta_task": 0.0, **details}

    def _weight_optimizer(self):
        opts = self.optimizers()
        opts = opts if isinstance(opts, list) else [opts]
        opts = [o for o in opts if not getattr(o, "is_arch_optimizer", False)]
        if len(opts) != 1:
            raise ConfigError("the evaluator module must configure exactly one optimizer",
                              key="configure_optimizers", expected="1 optimizer", got=len(opts))
        return getattr(opts[0], "optimizer", opts[0])

    def _weights(self) -> list[nn.Parameter]:
        arch = set(self.arch_parameters())
        return [p for p in self.training_module.parameters() if p.requires_grad and p not in arch]

    def training_step(self, batch, batch_idx):
        update = self.trainer.current_epoch * self._per_epoch() + batch_idx
        if update >= self._total():
            return None
        tm = self.training_module
        learner = tm.learner(self._weights(), self._weight_optimizer())
        if batch_idx == 0:
            tm.start_epoch(self.trainer.current_epoch)
        searching = update >= self._warmup()
        self._anneal(update)
        self._arch_steps = 0
        self.order = []
        arch_stats: dict[str, float] = {}
        self.resample()
        if searching and self.mode == "bi-level":
            rollout = learner.collect()
            arch_stats = learner.learn(rollout, _ArchStep(self), step_weights=False)
            self.order.append("arch")
            self.resample()
        hooks = _ArchStep(self) if searching and self.mode == "one-level" else None
        stats = learner.update(tm.weight_updates, self._total(), hooks)
        self.order.append("weights+arch" if hooks is not None else "weights")
        tm.weight_updates += 1
        tm.record_episodes()
        if arch_stats:
            stats.update({k: v for k, v in arch_stats.items() if k.startswith("grad_") or k.startswith("hw_")
                          or k in ("expected_area_mm2", "area_over")})
        derived = self.derived_cost()
        if searching:
            self._adapt_lambda(derived["fps"])
        self._record(update, searching, stats, derived)
        return None

    def _record(self, update: int, searching: bool, stats: Mapping[str, float],
                derived: Mapping[str, float]) -> None:
        logs = {"search/tau": self.tau, "search/lambda": self.hw_lambda, "search/searching": float(searching),
                "search/derived_fps": derived["fps"], "search/derived_energy_pJ": derived["energy_pJ"],
                "search/derived_cycles": derived["cycles"], "search/arch_steps": float(self._arch_steps)}
        if "area_mm2" in derived:
            logs["search/derived_area_mm2"] = derived["area_mm2"]
        for k in ("grad_alpha_task", "grad_alpha_hw", "grad_beta_task", "grad_beta_hw",
                  "hw_cost", "expected_area_mm2", "area_over"):
            if k in stats and math.isfinite(stats[k]):
                logs[f"search/{k}"] = float(stats[k])
        if stats.get("grad_alpha_task"):
            # ratio of the update's mean norms (the per-minibatch ratio is noisier)
            logs["search/grad_ratio"] = float(stats["grad_alpha_hw"]) / float(stats["grad_alpha_task"])
        tm = self.training_module
        for k, v in stats.items():
            if not (k.startswith("grad_") and k != "grad_norm") and k not in ("hw_cost", "expected_area_mm2",
                                                                             "area_over"):
                logs[f"train/{k}"] = float(v)
        logs["train/frames"] = float(tm.frames)
        score = tm.recent_score()
        if score is not None:
            logs["search/score"] = float(score)
        self.log_dict(logs)
        if update % self.log_every == 0 or update == self._total() - 1:
            alpha = self.export_probs()
            beta = self.export_beta_probs()
            self.log_dict({f"alpha/{l}/{o}": float(p) for l, d in alpha.items() for o, p in d.items()})
            self.log_dict({f"beta/{n}/{v}": float(p) for n, d in beta.items() for v, p in d.items()})
            self.history.append({
                "step": int(update + 1), "epoch": int(self.trainer.current_epoch),
                "frames": int(tm.frames), "order": list(self.order),
                "alpha": {l: {o: float(p) for o, p in d.items()} for l, d in alpha.items()},
                "beta": beta, **{k.split("/", 1)[1]: v for k, v in logs.items()},
            })

    def on_save_checkpoint(self, checkpoint):
        checkpoint["a3cs"] = {"history": self.history, "hw_lambda": self.hw_lambda,
                              "task_norm_ema": self._task_norm_ema, "torch_rng": torch.get_rng_state()}
        hook = getattr(self.training_module, "on_save_checkpoint", None)
        if hook:
            hook(checkpoint)

    def on_load_checkpoint(self, checkpoint):
        sd = checkpoint.get("state_dict", {})
        for key in [k for k in sd if k.startswith("beta.")]:   # runs saved before AcceleratorChoice
            sd["accel." + key] = sd.pop(key)
        state = checkpoint.get("a3cs", {})
        self.history = list(state.get("history", []))
        if "hw_lambda" in state:
            self.hw_lambda = state["hw_lambda"]
        self._task_norm_ema = state.get("task_norm_ema")
        if state.get("torch_rng") is not None:
            torch.set_rng_state(state["torch_rng"])
        hook = getattr(self.training_module, "on_load_checkpoint", None)
        if hook:
            hook(checkpoint)


class A3CS(DARTS):
    """A3C-S co-search strategy (an NNI one-shot strategy).

    Parameters
    ----------
    cost_model
        A :class:`~a3cs_plugin.cost.base.CostModel` (e.g. from ``registry.cost_model``).
    hw_lambda
        Weight of the hardware cost.  With ``balance="normalize"`` (default) it is the ratio of the
        hardware term's alpha-gradient norm to the task term's; otherwise it multiplies
        ``cost / baseline`` directly.  Initial value when ``fps_target`` is set.
    metric
        ``"latency"``, ``"energy"`` or ``"edp"`` of one inference of the whole agent.
    mode
        ``"one-level"`` or ``"bi-level"``; ``"direct-nas"`` is ``"one-level"`` with ``distill=False``.
    distill
        Distil from the evaluator module's teacher (A3C-S); ``False``: Direct-NAS.
    supernet
        ``"single-path"`` (one sampled op per cell per forward) or ``"mixed"`` (DARTS weighted sum).
    fps_target
        ``(low, high)``: adapt lambda so the derived pair's FPS stays inside the band.
    area_budget_mm2, area_weight
        Adds ``area_weight * relu(area / budget - 1)`` when the cost model estimates area.
    warmup_frac, warmup_updates, total_updates
        Weight-only updates before alpha/beta move (a fraction of all updates, or a count), and
        the number of updates (default: epochs x loader length).
    fixed
        Accelerator parameters held at one value, on top of the cost model's ``pinned()``.
    op_problems, fixed_problems
        Timeloop problems per ``{cell: {op: [...]}}`` and of the fixed layers; taken from the
        model space's ``op_problems(label, op)`` / ``fixed_problems()`` when omitted.
    """

    def __init__(self, *, cost_model: CostModel, settings: SearchSettings | None = None,
                 op_problems: Mapping[str, Mapping[str, list]] | None = None,
                 fixed_problems: Sequence[Mapping] | None = None, **kwargs):
        # the settings are one frozen object; NNI-style keyword arguments build it (``fps_band``:
        # the old name of ``fps_target``); anything else goes to NNI's DARTS
        names = set(SearchSettings.fields())
        if "fps_band" in kwargs:
            kwargs["fps_target"] = kwargs.pop("fps_band")
        mine = {k: kwargs.pop(k) for k in list(kwargs) if k in names}
        if settings is None:
            settings = SearchSettings(**mine)
        elif mine:
            raise ConfigError("give settings or keyword options, not both", key="A3CS", got=sorted(mine))
        settings = settings.replace(fixed={**cost_model.pinned(), **dict(settings.fixed)})
        super().__init__(arc_learning_rate=settings.arc_learning_rate,
                         gradient_clip_val=settings.gradient_clip_val,
                         log_prob_every_n_step=settings.log_every, warmup_epochs=0, **kwargs)
        self.settings = settings
        self.cost_model = cost_model
        self.distill = settings.distilling
        self.mode = settings.optimisation
        self.fixed = dict(settings.fixed)
        supernet = settings.supernet
        self.supernet_kind = supernet
        self._op_problems = op_problems
        self._fixed_problems = fixed_problems
        self.network_cost: NetworkCost | None = None
        self._space = None

    @property
    def scheme(self) -> str:
        """``a3cs`` (with distillation) or ``direct-nas`` (without)."""
        return "a3cs" if self.distill else "direct-nas"

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
        self._space = model
        return super().mutate_model(model)

    def default_mutation_hooks(self):
        hooks = super().default_mutation_hooks()
        if self.supernet_kind == "single-path":
            hooks = [SinglePathMixedLayer.mutate if h == DifferentiableMixedLayer.mutate else h for h in hooks]
        return hooks

    def configure_oneshot_module(self, training_module):
        if self.network_cost is None:
            raise ConfigError("A3CS used before the model space was mutated", key="strategy")
        if hasattr(training_module, "set_distillation"):
            training_module.set_distillation(self.distill)
        return A3CSModule(training_module, self.network_cost, self.settings)

    def train_dataloader(self, train_dataloader_fn, val_dataloader_fn):
        # Rollouts are generated inside training_step; the loader only yields step indices.
        return train_dataloader_fn()

    def val_dataloader(self, train_dataloader_fn, val_dataloader_fn):
        return None

    # results ----------------------------------------------------------------------------------
    def export_accelerator(self) -> dict[str, Any]:
        return self.oneshot_module.export_accelerator()  # type: ignore[attr-defined]

    def export_report(self, out_dir: str | Path, *, recost: bool = True, metric: str = "edp",
                      time_limit: float = 2.0, area_budget_mm2: float | None = None,
                      teacher: nn.Module | None = None) -> dict[str, Any]:
        """The derived pair after ``NasExperiment(...).run()``: writes ``arch.json`` and (when the
        cost model has a design space) ``accelerator.yaml`` into ``out_dir``, re-costs the derived
        agent -- and ``teacher`` when given -- on it with the real engine + mapper, and returns
        ``{arch, accelerator, surrogate, derived, teacher}`` (the numbers of ``report.json``)."""
        from a3cs_plugin.strategy.derive import derive_pair
        m = self.oneshot_module
        return derive_pair(self._space, m, out_dir, recost_pair=recost, metric=metric, time_limit=time_limit,
                           area_budget_mm2=area_budget_mm2, teacher=teacher)


class DirectNAS(A3CS):
    """The paper's baseline: the same optimisation as :class:`A3CS` (``mode``, default
    one-level) without distillation."""

    def __init__(self, *, settings: SearchSettings | None = None, **kwargs):
        if settings is not None:
            settings = settings.replace(distill=False, mode=settings.optimisation)
        else:
            if kwargs.get("mode") == "direct-nas":
                kwargs["mode"] = "one-level"
            kwargs["distill"] = False
        super().__init__(settings=settings, **kwargs)
