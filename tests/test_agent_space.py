"""The NNI agent search space: labels, ops, freeze, NNI one-shot mutation, arch JSON, op problems."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
import torch.nn as nn

torch.set_num_threads(1)

from a3cs_plugin.agents import (AgentNet, AgentSpace, OP_NAMES, export_arch, load_arch, make_op,  # noqa: E402
                                random_arch)
from a3cs_plugin.errors import ConfigError  # noqa: E402
from nni.mutable import Mutable  # noqa: E402
from nni.nas.nn.pytorch import LayerChoice, ModelSpace  # noqa: E402

OBS = torch.randint(0, 256, (8, 4, 84, 84), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def space():
    torch.manual_seed(0)
    return AgentSpace(num_actions=6)


def test_labels_ops_and_schedule(space):
    assert space.cell_labels == [f"cell_{i:02d}" for i in range(14)]
    assert OP_NAMES == ("k3_e1", "k3_e3", "k3_e6", "k5_e1", "k5_e3", "k5_e6", "k3_e1_g2", "k5_e1_g2", "skip")
    simple = space.simplify()
    assert list(simple) == space.cell_labels
    for label, cat in simple.items():
        assert list(cat.values) == list(OP_NAMES), label
    layer_choices = [m for m in space.modules() if isinstance(m, LayerChoice)]
    assert [lc.label for lc in layer_choices] == space.cell_labels
    assert [c["c_out"] for c in space.cell_configs] == [16] * 4 + [32] * 4 + [64] * 6
    assert [c["stride"] for c in space.cell_configs] == [1] * 4 + [2, 1, 1, 1, 2] + [1] * 5
    assert [c["in_hw"] for c in space.cell_configs] == [20] * 5 + [10] * 4 + [5] * 5
    assert space.feature_shape == (64, 5, 5)


def test_custom_schedule_and_bad_config():
    s = AgentSpace(4, num_cells=3, channels=[8, 16, 16], strides=[2, 1, 2])
    assert s.cell_labels == ["cell_00", "cell_01", "cell_02"]
    assert [c["in_hw"] for c in s.cell_configs] == [20, 10, 10]
    assert s.feature_shape == (16, 5, 5)
    logits, value = s(OBS[:2])
    assert logits.shape == (2, 4) and value.shape == (2,)
    with pytest.raises(ConfigError, match="channels"):
        AgentSpace(4, num_cells=3, channels=[8, 16])
    with pytest.raises(ConfigError, match="strides"):
        AgentSpace(4, num_cells=2, strides=[1, 3])
    with pytest.raises(ConfigError, match="even"):
        AgentSpace(4, num_cells=2, channels=[8, 7])


@pytest.mark.parametrize("op", OP_NAMES)
@pytest.mark.parametrize("c_in,c_out,stride", [(16, 16, 1), (16, 32, 2)])
def test_every_op_shape(op, c_in, c_out, stride):
    m = make_op(op, c_in, c_out, stride)
    y = m(torch.randn(2, c_in, 9, 9))
    assert y.shape == (2, c_out, 5 if stride == 2 else 9, 5 if stride == 2 else 9)
    convs = [x for x in m.modules() if isinstance(x, nn.Conv2d)]
    if op == "skip":
        assert len(convs) == (0 if (c_in == c_out and stride == 1) else 1)
    else:
        k = int(op[1])
        dw = [c for c in convs if c.groups == c.in_channels and c.groups > 1]
        assert len(dw) == 1 and dw[0].kernel_size == (k, k) and dw[0].stride == (stride, stride)
        e = int(op.split("_")[1][1:])
        assert len(convs) == (2 if e == 1 else 3)
        assert dw[0].in_channels == c_in * e
        if op.endswith("_g2"):
            assert convs[-1].groups == 2


def test_channel_shuffle_mixes_groups():
    from a3cs_plugin.agents.ops import ChannelShuffle
    x = torch.arange(8.0).view(1, 8, 1, 1)
    y = ChannelShuffle(2)(x).flatten().tolist()
    assert y == [0, 4, 1, 5, 2, 6, 3, 7]


def test_space_forward_shapes(space):
    logits, value = space(OBS)
    assert logits.shape == (8, 6) and value.shape == (8,)
    assert torch.isfinite(logits).all() and torch.isfinite(value).all()


def test_freeze_gives_plain_module_with_space_weights(space):
    arch = space.random_arch(seed=3)
    net = space.freeze(arch)
    assert isinstance(net, AgentNet) and not isinstance(net, (ModelSpace, Mutable))
    assert not any(isinstance(m, (Mutable, LayerChoice)) for m in net.modules())
    assert net.arch == arch
    # the chosen op's weights are those of the space's candidate (copied, not shared)
    for i, label in enumerate(space.cell_labels):
        src = space.cells[i][arch[label]].state_dict()
        dst = net.cells[i].state_dict()
        assert src.keys() == dst.keys()
        for k in src:
            assert torch.equal(src[k], dst[k])
    p_net = next(net.parameters())
    assert p_net.data_ptr() != next(space.parameters()).data_ptr()
    # the frozen net computes the same function as the space with that arch fixed by hand
    with torch.no_grad():
        x = OBS.float() / 255.0
        h = space.stem(x)
        for i, label in enumerate(space.cell_labels):
            h = space.cells[i][arch[label]](h)
        ref_logits, ref_value = space.head(h)
        logits, value = net(OBS)
    assert torch.allclose(logits, ref_logits, atol=1e-6) and torch.allclose(value, ref_value, atol=1e-6)
    # plain module: picklable state dict round trip into a fresh freeze of the same arch
    net2 = AgentSpace(num_actions=6).freeze(arch)
    net2.load_state_dict(net.state_dict())
    with torch.no_grad():
        assert torch.allclose(net2(OBS)[0], logits)


def test_freeze_random_samples_through_nni(space):
    rs = np.random.RandomState(0)
    seen_ops = set()
    for _ in range(5):
        memo: dict = {}
        net = space.random(memo=memo, random_state=rs)        # NNI's sampler -> our freeze
        assert isinstance(net, AgentNet) and set(memo) == set(space.cell_labels)
        assert net.arch == memo
        seen_ops.update(memo.values())
        logits, value = net(OBS[:2])
        assert logits.shape == (2, 6) and value.shape == (2,)
    assert len(seen_ops) >= 5


def test_freeze_bad_arch_errors(space):
    arch = space.random_arch(0)
    bad = dict(arch)
    del bad["cell_07"]
    with pytest.raises(ConfigError, match="cell_07"):
        space.freeze(bad)
    bad = dict(arch, cell_14="skip")
    with pytest.raises(ConfigError, match="cell_14") as ei:
        space.freeze(bad)
    assert "cell_00..cell_13" in str(ei.value)
    bad = dict(arch, cell_03="k7_e6")
    with pytest.raises(ConfigError, match="cell_03") as ei:
        space.freeze(bad)
    assert "k3_e1" in str(ei.value) and "skip" in str(ei.value) and "\n" not in str(ei.value)


def test_frozen_agent_is_fast(space):
    """A frozen agent runs a batch of 8 in a few ms on one CPU thread (median of 20 runs)."""
    net = space.freeze({label: "k3_e3" for label in space.cell_labels}).eval()
    with torch.no_grad():
        for _ in range(3):
            net(OBS)
        times = []
        for _ in range(20):
            t = time.perf_counter()
            net(OBS)
            times.append(time.perf_counter() - t)
    assert float(np.median(times)) < 0.1   # loose bound for a loaded shared 2-core machine; ~4 ms when idle


def test_nni_darts_mutation_and_gradients():
    """NNI's DARTS strategy turns every LayerChoice into a differentiable mixed op; the supernet
    runs, gradients reach the architecture logits, and it still freezes into an AgentNet."""
    from nni.nas.oneshot.pytorch.supermodule.differentiable import DifferentiableMixedLayer
    from nni.nas.strategy import DARTS

    torch.manual_seed(0)
    space = AgentSpace(num_actions=4, num_cells=4, channels=[8, 8, 16, 16], strides=[1, 1, 2, 1])
    supernet = DARTS().mutate_model(space)
    mixed = [m for m in supernet.modules() if isinstance(m, DifferentiableMixedLayer)]
    assert [m.label for m in mixed] == supernet.cell_labels
    alphas = [p for name, p in supernet.named_parameters() if "_arch_alpha" in name]
    assert len(alphas) == 4 and all(a.shape == (len(OP_NAMES),) for a in alphas)
    logits, value = supernet(OBS[:4])
    assert logits.shape == (4, 4) and value.shape == (4,)
    (logits.logsumexp(-1).sum() + value.pow(2).sum()).backward()
    assert all(a.grad is not None and a.grad.abs().sum() > 0 for a in alphas)
    # export through the mixed layers' own API (argmax of alpha), then freeze
    with torch.no_grad():
        alphas[0].copy_(torch.arange(len(OP_NAMES), dtype=torch.float))   # 'skip' (last) wins for cell_00
    exported: dict = {}
    for m in mixed:
        exported.update(m.export({}))
    assert exported["cell_00"] == "skip" and set(exported) == set(supernet.cell_labels)
    net = supernet.freeze(exported)
    assert isinstance(net, AgentNet) and net.cells[0].__class__.__name__ == "Skip"
    chosen = exported["cell_01"]
    src = mixed[1][chosen].state_dict()
    for k, v in net.cells[1].state_dict().items():
        assert torch.equal(v, src[k])


def test_arch_json_round_trip(tmp_path, space):
    arch = space.random_arch(seed=11)
    path = export_arch(arch, tmp_path / "a" / "arch.json", space)
    assert json.loads(path.read_text()) == arch
    assert load_arch(path) == arch
    assert load_arch(path, space) == arch
    net = space.freeze(load_arch(path, space))
    assert net.arch == arch


def test_arch_json_errors(tmp_path, space):
    p = tmp_path / "bad.json"
    p.write_text("{not json")
    with pytest.raises(ConfigError, match="bad.json"):
        load_arch(p)
    arch = random_arch(14, seed=1)
    arch["cell_05"] = "conv9"
    p.write_text(json.dumps(arch))
    with pytest.raises(ConfigError) as ei:
        load_arch(p, space)
    msg = str(ei.value)
    assert "bad.json" in msg and "cell_05" in msg and "k5_e1_g2" in msg
    arch = random_arch(14, seed=1)
    del arch["cell_13"]
    p.write_text(json.dumps(arch))
    with pytest.raises(ConfigError, match="cell_13"):
        load_arch(p, space)
    with pytest.raises(ConfigError, match="missing.json"):
        load_arch(tmp_path / "missing.json")
    p.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="JSON object"):
        load_arch(p)


def test_nni_darts_lightning_search_end_to_end(tmp_path):
    """The full NNI one-shot path: DARTS mutates the space and the evaluator, Lightning trains the
    supernet (alternating weight / alpha steps), the exported choice freezes into an AgentNet."""
    import torch.nn.functional as F
    from nni.nas.evaluator.pytorch import DataLoader, Lightning, LightningModule, Trainer
    from nni.nas.strategy import DARTS

    class BehaviourCloning(LightningModule):
        def training_step(self, batch, batch_idx):
            obs, y = batch
            logits, value = self.model(obs)
            return F.cross_entropy(logits, y) + F.mse_loss(value, y.float())

        def validation_step(self, batch, batch_idx):
            obs, y = batch
            return (self.model(obs)[0].argmax(-1) == y).float().mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    torch.manual_seed(0)
    obs = OBS.repeat(2, 1, 1, 1)
    y = (obs[:, :, :42].float().mean((1, 2, 3)) > obs[:, :, 42:].float().mean((1, 2, 3))).long()
    data = torch.utils.data.TensorDataset(obs, y)
    space = AgentSpace(2, num_cells=3, channels=[8, 16, 16], strides=[1, 2, 1])
    trainer = Trainer(max_epochs=1, limit_train_batches=4, limit_val_batches=1, enable_progress_bar=False,
                      logger=False, enable_checkpointing=False, enable_model_summary=False, accelerator="cpu",
                      default_root_dir=str(tmp_path))
    evaluator = Lightning(BehaviourCloning(), trainer, train_dataloaders=DataLoader(data, batch_size=4),
                          val_dataloaders=DataLoader(data, batch_size=4))
    strategy = DARTS()
    supernet = strategy.mutate_model(space)
    before = [p.detach().clone() for n, p in supernet.named_parameters() if "_arch_alpha" in n]
    oneshot = strategy.mutate_evaluator(evaluator)
    oneshot.evaluate(supernet)
    after = [p.detach().clone() for n, p in supernet.named_parameters() if "_arch_alpha" in n]
    assert len(after) == 3 and all(not torch.equal(a, b) for a, b in zip(before, after))
    arch = oneshot.module.export()
    assert set(arch) == {"cell_00", "cell_01", "cell_02"} and set(arch.values()) <= set(OP_NAMES)
    for label, alpha in zip(["cell_00", "cell_01", "cell_02"], after):
        assert arch[label] == OP_NAMES[int(alpha.argmax())]
    net = supernet.freeze(arch)
    assert isinstance(net, AgentNet) and net.arch == arch
    logits, value = net(OBS[:2])
    assert logits.shape == (2, 2) and value.shape == (2,)
