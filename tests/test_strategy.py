"""A3CS strategy: differentiable hardware penalty, single-path supernet, real short co-searches."""
from __future__ import annotations

import logging
import warnings

import pytest
import torch
import torch.nn.functional as F

import nni.nas.strategy  # noqa: F401  (first: NNI 3.0 circular-import order, see a3cs_plugin.strategy)
from nni.nas.evaluator.pytorch import Lightning, Trainer
from nni.nas.evaluator.pytorch.lightning import LightningModule
from nni.nas.experiment import NasExperiment
from nni.nas.oneshot.pytorch.profiler import ExpectationProfilerPenalty

from a3cs_plugin.errors import ConfigError
from a3cs_plugin.strategy import registry
from a3cs_plugin.strategy.a3cs import A3CS, A3CSModule, DirectNAS
from a3cs_plugin.cost.base import HardwarePenalty, NetworkCost
from a3cs_plugin.strategy.supernet import SinglePathMixedLayer

from test_strategy_standins import TableCostModel, TinySpace, agent_op_problems

torch.set_num_threads(1)
logging.getLogger("nni").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", category=UserWarning)


class _Holder(LightningModule):
    """Minimal evaluator module (only holds the model) for module-level tests."""

    def training_step(self, batch, batch_idx):
        logits, value = self.model(torch.randn(8, 4))
        return {"loss": logits.pow(2).mean() + value.pow(2).mean()}

    def configure_optimizers(self):
        return torch.optim.SGD(self.model.parameters(), lr=0.01)


def _mutated_tiny(supernet="single-path", **kw):
    space = TinySpace()
    strategy = A3CS(cost_model=TableCostModel(), supernet=supernet, **kw)
    strategy.mutate_model(space)
    holder = _Holder()
    holder.set_model(space)
    module = A3CSModule(holder, strategy.network_cost, hw_lambda=kw.get("hw_lambda", 1.0),
                        metric=kw.get("metric", "energy"))
    return space, strategy, module


def test_nni_expectation_penalty_loses_gradient_hardware_penalty_keeps_it():
    space, strategy, module = _mutated_tiny(metric="energy")
    # NNI's DARTS feeds the penalty with export_probs(): plain floats, so no gradient can flow.
    probs = module.export_probs()
    assert all(isinstance(p, float) for d in probs.values() for p in d.values())
    assert isinstance(module.penalty, ExpectationProfilerPenalty)
    sample = dict(probs)
    sample[HardwarePenalty.ACCEL_KEY] = {n: F.softmax(b, -1) for n, b in module.beta.items()}
    _, details = module.penalty(torch.zeros(()), sample)
    alphas = [m._arch_alpha for m in module.mixed_layers().values()]
    grads = torch.autograd.grad(details["penalty"], alphas, allow_unused=True)
    assert all(g is None for g in grads)          # floats: the alpha gradient is lost

    # Our path: tensor probabilities -> gradient reaches every alpha and beta.
    module.train()
    loss, details = module.hardware_loss(torch.zeros(()))
    loss.backward()
    for a in alphas:
        assert a.grad is not None and a.grad.abs().sum() > 0
    for b in module.beta.values():
        assert b.grad is not None and b.grad.abs().sum() > 0
    # d cost / d alpha: raising the logit of the expensive op raises the cost (positive gradient).
    m0 = module.mixed_layers()["cell_00"]
    assert m0._arch_alpha.grad[m0.names.index("big")] > 0 > m0._arch_alpha.grad[m0.names.index("skip")]


def test_hardware_penalty_value_matches_hand_computation():
    space, strategy, module = _mutated_tiny(metric="energy", hw_lambda=2.0)
    module.eval()                                     # beta -> plain softmax (uniform at init)
    sample = {label: torch.full((3,), 1 / 3) for label in ("cell_00", "cell_01")}
    sample[HardwarePenalty.ACCEL_KEY] = {"pe": torch.full((3,), 1 / 3), "buf_kb": torch.full((3,), 1 / 3)}
    value = float(module.penalty.profile(sample))
    e_buf, e_pe = sum((8, 32, 128)) / 3, sum((4, 16, 64)) / 3
    macs = TinySpace.MACS
    per_cell = sum(macs[o] * (1 + e_buf / 32) + (100 * e_pe if macs[o] else 0) for o in TinySpace.OPS) / 3
    fixed = 16 * (1 + e_buf / 32) + 100 * e_pe
    assert value == pytest.approx(2 * per_cell + fixed, rel=1e-5)
    assert module.penalty.baseline == pytest.approx(value, rel=1e-5)
    loss, details = module.penalty(torch.tensor(1.0), sample)
    assert float(loss) == pytest.approx(1.0 + 2.0 * (value / module.penalty.baseline - 1), abs=1e-5)


def test_area_budget_term_pushes_beta_to_smaller_accelerators():
    space = TinySpace()
    strategy = A3CS(cost_model=TableCostModel())
    strategy.mutate_model(space)
    holder = _Holder()
    holder.set_model(space)
    module = A3CSModule(holder, strategy.network_cost, hw_lambda=0.0, metric="energy", area_budget_mm2=1.0)
    module.eval()                                    # softmax(beta): expected area 2.8 + 0.56 mm^2 > 1
    loss, details = module.hardware_loss(torch.zeros(()))
    assert float(details["expected_area_mm2"]) == pytest.approx(0.1 * 84 / 3 + 0.01 * 168 / 3)
    # lambda = 0: the budget still acts (a constraint, not part of the lambda-weighted cost)
    assert float(loss) == pytest.approx(float(details["expected_area_mm2"]) / 1.0 - 1.0, rel=1e-5)
    loss.backward()
    g = module.beta["pe"].grad
    assert g[2] > 0 > g[0]                           # descending the gradient favours 4 PEs over 64
    module.beta["pe"].grad = None
    module.area_budget_mm2 = 100.0                   # within budget: no area term, no gradient
    loss, details = module.hardware_loss(torch.zeros(()))
    assert float(details["area_over"]) == 0.0


def test_single_path_layer_runs_one_op_and_passes_gradient_to_all_alphas():
    space, strategy, module = _mutated_tiny()
    layer = space.c0
    assert isinstance(layer, SinglePathMixedLayer)
    calls = {n: 0 for n in layer.names}
    for n in layer.names:
        layer[n].register_forward_hook(lambda m, i, o, n=n: calls.__setitem__(n, calls[n] + 1))
    module.resample()
    x = torch.randn(5, 4)
    y = layer(x)
    assert sum(calls.values()) == 1
    chosen = [n for n, c in calls.items() if c][0]
    assert torch.allclose(y, layer[chosen](x))        # straight-through weight has value 1
    y.pow(2).sum().backward()
    g = layer._arch_alpha.grad
    assert g is not None and (g != 0).sum() >= 2
    # the drawn op follows alpha + Gumbel noise: a dominant logit is drawn (almost) always
    with torch.no_grad():
        layer._arch_alpha.copy_(torch.tensor([0.0, 30.0, 0.0]))
    drawn = {layer.resample({})["cell_00"] for _ in range(20)}
    assert drawn == {"small"}
    assert module.export()["cell_00"] == "small"


def test_mixed_supernet_runs_every_op():
    space, strategy, module = _mutated_tiny(supernet="mixed")
    calls = []
    for n in space.c0.names:
        space.c0[n].register_forward_hook(lambda m, i, o, n=n: calls.append(n))
    space.c0(torch.randn(2, 4))
    assert sorted(calls) == sorted(space.c0.names)


def test_bad_strategy_options_raise_config_error():
    with pytest.raises(ConfigError, match="mode"):
        A3CS(cost_model=TableCostModel(), mode="three-level")
    with pytest.raises(ConfigError, match="fps_target"):
        A3CS(cost_model=TableCostModel(), fps_band=[10, 1])
    with pytest.raises(ConfigError, match="metric"):
        HardwarePenalty(NetworkCost(TableCostModel(), {"c": {"a": [{"macs": 1}]}}), 1.0, metric="power")


# ---------------------------------------------------------------------------------------------
# Real short co-searches: AgentSpace (2 cells) + ALE Pong + real PPO/A2C + the shipped
# eyeriss_like surrogate, through NNI's NasExperiment.

_SURROGATE = []


def _surrogate():
    if not _SURROGATE:
        _SURROGATE.append(registry.cost_model("surrogate", "eyeriss_like"))
    return _SURROGATE[0]


def _search(hw_lambda, workdir, *, metric="energy", mode="one-level", updates=8, teacher=None, fps_band=None,
            arc_lr=0.1, strategy_cls=A3CS, hp=None, algo="ppo", warmup_updates=0, area_budget_mm2=None,
            seed=3):
    from a3cs_plugin.agents.space import AgentSpace
    from a3cs_plugin.strategy.rl_module import RolloutModule, step_loader

    torch.manual_seed(0)
    space = AgentSpace(num_actions=6, num_cells=2)
    hp = dict(num_envs=2, num_steps=16, num_minibatches=2, update_epochs=2) if hp is None else hp
    module = RolloutModule("Pong", algo, hp=hp, teacher=teacher, seed=seed)
    trainer = Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False)
    ev = Lightning(module, trainer, train_dataloaders=step_loader(updates), val_dataloaders=step_loader(1))
    strategy = strategy_cls(cost_model=_surrogate(), hw_lambda=hw_lambda, metric=metric, mode=mode,
                            arc_learning_rate=arc_lr, fps_band=fps_band, warmup_updates=warmup_updates,
                            area_budget_mm2=area_budget_mm2)
    exp = NasExperiment(space, ev, strategy)
    exp.config.experiment_working_directory = str(workdir)
    exp.run()
    module.close()
    return strategy.oneshot_module, module, trainer


def _expected_at_default_accelerator(m):
    """Expected energy/cycles of the searchable cells under softmax(alpha) on one fixed
    accelerator (the stem and heads, the same in every agent, left out)."""
    from a3cs_plugin.cost.base import one_hot_probs
    cm = m.network_cost.cost_model
    accel = one_hot_probs(cm, cm.design_space().default_point())
    with torch.no_grad():
        e, c = m.network_cost.expected({k: v.detach() for k, v in m.alpha_probs().items()}, accel)
        e_fix, c_fix = m.network_cost.slot_costs(accel)
    return float(e - e_fix[0]), float(c - c_fix[0])


def test_ppo_inside_the_search_is_real_ppo(tmp_path):
    """The weight step of the search is PPO's update: several epochs of minibatches whose ratio
    moves away from 1 (approx_kl, clipfrac > 0 on the last epoch), LR annealed; alpha/beta step
    after every minibatch step once the warm-up is over."""
    m, mod, _ = _search(0.5, tmp_path, updates=6, warmup_updates=2,
                        hp=dict(num_envs=2, num_steps=32, num_minibatches=2, update_epochs=4, lr=2e-3))
    h = m.history
    assert [e["searching"] for e in h] == [0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
    assert all(e["arch_steps"] == 0 for e in h[:2]) and all(e["arch_steps"] == 8 for e in h[2:])
    assert all(e["approx_kl_last"] > 0 for e in h) and max(e["clipfrac_last"] for e in h) > 0
    lrs = [e["lr"] for e in h]
    assert lrs == sorted(lrs, reverse=True) and lrs[0] == pytest.approx(2e-3) and lrs[-1] < lrs[0]
    assert mod.frames == 6 * 2 * 32 * 4
    for e in h[2:]:     # both gradient norms logged, the balance keeps their ratio near lambda
        assert e["grad_alpha_task"] > 0 and e["grad_alpha_hw"] > 0 and e["grad_beta_hw"] > 0
        assert 0.05 < e["grad_ratio"] < 20


def test_export_report_recosts_the_derived_pair_for_nni_users(tmp_path):
    from a3cs_plugin.agents.space import AgentSpace
    from a3cs_plugin.strategy.rl_module import RolloutModule, step_loader

    space = AgentSpace(num_actions=6, num_cells=2)
    module = RolloutModule("Pong", "ppo", hp=dict(num_envs=2, num_steps=16, num_minibatches=2), seed=3)
    ev = Lightning(module, Trainer(max_epochs=1, logger=False, enable_checkpointing=False,
                                   enable_progress_bar=False, enable_model_summary=False),
                   train_dataloaders=step_loader(2), val_dataloaders=step_loader(1))
    strategy = A3CS(cost_model=_surrogate(), hw_lambda=0.5, metric="edp")
    exp = NasExperiment(space, ev, strategy)
    exp.config.experiment_working_directory = str(tmp_path)
    exp.run()
    module.close()
    rep = strategy.export_report(tmp_path / "pair", time_limit=0.2)
    assert (tmp_path / "pair" / "arch.json").is_file() and (tmp_path / "pair" / "accelerator.yaml").is_file()
    assert rep["recosted"] and rep["derived"]["fps"] > 0 and rep["derived"]["energy_mJ"] > 0
    assert rep["accelerator"] == strategy.export_accelerator()
    assert rep["derived"]["surrogate"]["energy_pJ"] == pytest.approx(rep["derived"]["energy_pJ"], rel=0.5)


def test_raising_lambda_gives_a_cheaper_agent_with_the_real_surrogate(tmp_path):
    m0, _, _ = _search(0.0, tmp_path, updates=8)
    m1, _, _ = _search(10.0, tmp_path, updates=8)
    e0, c0 = _expected_at_default_accelerator(m0)
    e1, c1 = _expected_at_default_accelerator(m1)
    assert e1 < 0.8 * e0 and c1 < c0
    assert m1.derived_cost()["energy_pJ"] <= m0.derived_cost()["energy_pJ"]
    # lambda = 0: beta gets no gradient at all and stays uniform
    assert all(max(d.values()) - min(d.values()) < 1e-6 for n, d in m0.export_beta_probs().items()
               if n != "clock_mhz")
    assert m1.export_accelerator() != m0.export_accelerator()


def test_area_budget_derives_a_different_smaller_accelerator(tmp_path):
    free, _, _ = _search(1.0, tmp_path, updates=6, metric="edp")
    tight, _, _ = _search(1.0, tmp_path, updates=6, metric="edp", area_budget_mm2=1.5)
    a_free, a_tight = free.derived_cost()["area_mm2"], tight.derived_cost()["area_mm2"]
    assert free.export_accelerator() != tight.export_accelerator()
    assert a_tight < a_free
    # the clock is pinned by the template (no voltage-frequency cost model): never searched
    assert free.export_accelerator()["clock_mhz"] == tight.export_accelerator()["clock_mhz"] == 1000
    assert "clock_mhz" not in free.beta


def test_adaptive_lambda_moves_only_outside_the_band(tmp_path):
    m, _, _ = _search(0.5, tmp_path, metric="latency", updates=1)
    fps0 = m.derived_cost()["fps"]
    inside, _, _ = _search(0.5, tmp_path, metric="latency", updates=4, fps_band=[0.2 * fps0, 5 * fps0])
    assert [h["lambda"] for h in inside.history] == [0.5] * 4
    up, _, _ = _search(0.5, tmp_path, metric="latency", updates=4, fps_band=[1e3 * fps0, 2e3 * fps0])
    assert up.hw_lambda == pytest.approx(0.5 * 1.05 ** 4)
    down, _, _ = _search(0.5, tmp_path, metric="latency", updates=4, fps_band=[1e-3 * fps0, 2e-3 * fps0])
    assert down.hw_lambda == pytest.approx(0.5 / 1.05 ** 4)


def test_bilevel_order_of_updates_and_direct_nas_switch(tmp_path):
    from a3cs_plugin.agents.zoo import build_agent

    teacher = build_agent("nature_cnn", 6)
    m, mod, trainer = _search(1.0, tmp_path, mode="bi-level", updates=3, teacher=teacher, warmup_updates=1)
    assert mod.distill_enabled and "train/distill_kl" in trainer.callback_metrics
    assert [h["order"] for h in m.history] == [["weights"], ["arch", "weights"], ["arch", "weights"]]
    assert mod.frames == (1 + 2 * 2) * 2 * 16 * 4               # warm-up: 1 rollout; then 2 per update
    assert all(h["arch_steps"] == 2 for h in m.history[1:])     # one epoch of 2 minibatches, weights frozen
    m, mod, trainer = _search(1.0, tmp_path, updates=2, teacher=teacher, strategy_cls=DirectNAS, mode="bi-level")
    assert m.mode == "bi-level" and not mod.distill_enabled
    assert "train/distill_kl" not in trainer.callback_metrics
    d = DirectNAS(cost_model=TableCostModel())
    assert d.mode == "one-level" and d.scheme == "direct-nas" and not d.distill


def test_a2c_inside_the_search_uses_its_own_optimizer(tmp_path):
    from a3cs_plugin.rl.a2c import RMSpropTF

    m, mod, _ = _search(0.5, tmp_path, updates=3, algo="a2c", hp=dict(num_envs=2, num_steps=5))
    assert isinstance(mod.learner().optimizer, RMSpropTF)
    assert mod.frames == 3 * 2 * 5 * 4
    assert all("approx_kl" not in h for h in m.history)


def test_registry_builtins_and_entry_point_plugin(tmp_path, monkeypatch):
    assert {"a3cs", "direct-nas"} <= set(registry.available(registry.STRATEGY_GROUP))
    assert "surrogate" in registry.available(registry.COST_MODEL_GROUP)
    assert registry.load(registry.STRATEGY_GROUP, "a3cs") is A3CS
    s = registry.strategy("direct-nas", cost_model=TableCostModel())
    assert isinstance(s, DirectNAS) and s.mode == "one-level" and not s.distill
    # a third-party plugin, installed the standard way (a dist-info with entry_points.txt)
    dist = tmp_path / "tableplug-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tableplug\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[a3cs.cost_models]\ntable = test_strategy_standins:TableCostModel.factory\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert registry.available(registry.COST_MODEL_GROUP)["table"] == "test_strategy_standins:TableCostModel.factory"
    cm = registry.cost_model("table", "my_template")
    assert isinstance(cm, TableCostModel) and cm.template == "my_template"
    with pytest.raises(ConfigError, match="no plugin 'nope'"):
        registry.cost_model("nope", "x")


def test_surrogate_cost_model_plugin_gradients_on_agent_space():
    from a3cs_plugin.agents.space import AgentSpace
    from a3cs_plugin.hardware.space import DesignSpace

    cm = registry.cost_model("surrogate", "eyeriss_like")
    design = DesignSpace.from_template("eyeriss_like")
    params = cm.accelerator_params()
    assert set(params) == set(design.parameters)
    space = AgentSpace(6, num_cells=2)
    nc = NetworkCost(cm, {l: {o: space.op_problems(l, o) for o in space.op_names} for l in space.cell_labels},
                     space.fixed_problems())
    alpha = {l: torch.zeros(len(space.op_names), requires_grad=True) for l in space.cell_labels}
    beta = {n: torch.zeros(len(c), requires_grad=True) for n, c in params.items()}
    obj = nc.objective("edp", {l: a.softmax(-1) for l, a in alpha.items()},
                       {n: b.softmax(-1) for n, b in beta.items()})
    obj.backward()
    assert float(obj) > 0
    for a in alpha.values():
        assert a.grad.abs().sum() > 0
    assert sum(float(b.grad.abs().sum()) for b in beta.values()) > 0
    # a one-hot design point: surrogate cycles and energy of a concrete agent are positive and finite
    point = design.default_point()
    hard = {n: torch.tensor([1.0 if c == point[n] else 0.0 for c in ch]) for n, ch in params.items()}
    e, c = nc.derived({l: "k3_e1" for l in space.cell_labels}, hard)
    assert 0 < float(e) < float("inf") and 0 < float(c) < float("inf")
    e_big, c_big = nc.derived({l: "k5_e6" for l in space.cell_labels}, hard)
    assert float(e_big) > float(e)                  # a bigger op costs more energy


def test_importing_our_strategy_first_keeps_nni_oneshot_strategies_intact():
    """NNI 3.0 has an import-order cycle: importing ``nni.nas.oneshot.pytorch.*`` before
    ``nni.nas.strategy`` turns DARTS into ``ImportFailedStrategy`` for the whole process.  Importing
    any a3cs strategy module first must not trigger it (fresh interpreter: import state is global)."""
    import subprocess
    import sys

    code = ("import a3cs_plugin.cost.base, a3cs_plugin.strategy.supernet\n"
            "from nni.nas.strategy import DARTS\n"
            "print(DARTS.__module__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "nni.nas.oneshot.pytorch.strategy"
