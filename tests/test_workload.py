"""PyTorch modules -> Timeloop problems: shapes, MAC counts, grouped/depthwise/dilated convs, linears."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

torch.set_num_threads(1)

from a3cs_plugin.errors import ConfigError  # noqa: E402
from a3cs_plugin.hardware.workload import (LayerProblem, problem_key, problems_from_module,  # noqa: E402
                                           total_macs)


def direct_macs(module: nn.Module, x: torch.Tensor) -> int:
    """MACs counted from the modules' weights and real output sizes (independent of the problems)."""
    total = 0

    def hook(m, inp, out):
        nonlocal total
        if isinstance(m, nn.Conv2d):
            total += m.weight.numel() * out.shape[0] * out.shape[2] * out.shape[3]
        else:
            total += m.weight.numel() * (inp[0].numel() // inp[0].shape[-1])

    hs = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        module(x)
    for h in hs:
        h.remove()
    return total


def inst(lp: LayerProblem) -> dict:
    return lp.problem["problem"]["instance"]


def instance_product(lp: LayerProblem) -> int:
    p = lp.problem["problem"]
    return math.prod(int(p["instance"].get(d, 1)) for d in p["shape"]["dimensions"])


def test_nature_cnn_layers_and_macs():
    from a3cs_plugin.agents.zoo import build_agent, count_macs
    net = build_agent("nature_cnn", 6)
    x = torch.zeros(1, 4, 84, 84, dtype=torch.uint8)
    probs = problems_from_module(net, x)
    assert [p.kind for p in probs] == ["conv2d"] * 3 + ["linear"] * 3
    assert [p.name for p in probs] == ["trunk.0", "trunk.2", "trunk.4", "trunk.7", "actor", "critic"]
    expect = [  # C, M, P(=Q), R(=S), stride
        (4, 32, 20, 8, 4), (32, 64, 9, 4, 2), (64, 64, 7, 3, 1)]
    for lp, (c, m, p, r, s) in zip(probs, expect):
        i = inst(lp)
        assert (i["C"], i["M"], i["P"], i["Q"], i["R"], i["S"], i["N"]) == (c, m, p, p, r, r, 1)
        assert i["Wstride"] == s and i["Hstride"] == s
        assert int(i.get("G", 1)) == 1
    assert [(inst(p)["C"], inst(p)["M"]) for p in probs[3:]] == [(3136, 512), (512, 6), (512, 1)]
    for lp in probs[3:]:        # fully connected = 1x1 conv on a 1x1 map (Timeloop convention)
        assert all(inst(lp)[d] == 1 for d in "PQRS")
    plain = problems_from_module(net, x, linear_as_conv=False)
    assert [p.problem["problem"]["shape"]["dimensions"] for p in plain[3:]] == [["C", "M", "N"]] * 3
    assert [p.macs for p in plain] == [p.macs for p in probs]
    macs = total_macs(probs)
    assert macs == direct_macs(net, x) == count_macs(net) == 9_346_560   # 3,276,800 + 2,654,208 + 1,806,336 + 1,605,632 + 3,072 + 512
    for lp in probs:
        assert lp.macs == instance_product(lp)          # the problem itself encodes exactly these MACs


def test_batch_goes_to_N():
    from a3cs_plugin.agents.zoo import build_agent
    net = build_agent("nature_cnn", 4)
    probs = problems_from_module(net, torch.zeros(8, 4, 84, 84, dtype=torch.uint8))
    assert all(inst(p)["N"] == 8 for p in probs)
    assert total_macs(probs) == 8 * total_macs(problems_from_module(net, torch.zeros(1, 4, 84, 84)))


@pytest.mark.parametrize("c_in,c_out,groups,k,stride,pad,dil", [
    (16, 32, 2, 1, 1, 0, 1),        # group-2 pointwise
    (8, 8, 8, 3, 2, 1, 1),          # depthwise, strided, padded
    (12, 24, 4, 5, 1, 2, 1),        # grouped 5x5
    (6, 9, 3, 3, 1, 2, 2),          # grouped, dilated
    (5, 7, 1, (3, 5), (1, 2), (1, 2), 1),   # rectangular kernel / stride / padding
])
def test_grouped_and_odd_convs(c_in, c_out, groups, k, stride, pad, dil):
    conv = nn.Conv2d(c_in, c_out, k, stride=stride, padding=pad, dilation=dil, groups=groups)
    x = torch.zeros(2, c_in, 13, 11)
    (lp,) = problems_from_module(conv, x)
    y = conv(x)
    i = inst(lp)
    kh, kw = conv.kernel_size
    assert int(i.get("G", 1)) == groups
    assert i["C"] == c_in // groups and i["M"] == c_out // groups and i["N"] == 2
    assert (i["Q"], i["P"]) == tuple(y.shape[2:]) and (i["S"], i["R"]) == (kh, kw)
    assert (i["Hstride"], i["Wstride"]) == conv.stride
    assert int(i.get("Hdilation", 1)) == conv.dilation[0] and int(i.get("Wdilation", 1)) == conv.dilation[1]
    assert lp.macs == direct_macs(conv, x) == instance_product(lp)
    # padding: the implied input extent is the padded input that the outputs actually touch
    w_implied = (i["P"] - 1) * i["Wstride"] + (kw - 1) * conv.dilation[1] + 1
    h_implied = (i["Q"] - 1) * i["Hstride"] + (kh - 1) * conv.dilation[0] + 1
    assert w_implied <= 11 + 2 * conv.padding[1] and w_implied > 11 + 2 * conv.padding[1] - conv.stride[1]
    assert h_implied <= 13 + 2 * conv.padding[0] and h_implied > 13 + 2 * conv.padding[0] - conv.stride[0]
    if groups > 1:
        g_spaces = [ds["name"] for ds in lp.problem["problem"]["shape"]["data_spaces"]
                    if any("G" in str(term) for term in ds["projection"])]
        assert len(g_spaces) == 3          # G projects into weights, inputs and outputs


def test_repeated_module_counts_and_shape_variants():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            for _ in range(3):
                x = self.conv(x)
            y = self.conv(x[:, :, :4, :4])          # same module, other shape -> separate entry
            return self.fc(y.mean((2, 3))), self.fc(x.flatten(2).transpose(1, 2))   # linear on (N, T, C)

    net = Net()
    x = torch.zeros(1, 4, 8, 8)
    probs = problems_from_module(net, x)
    assert [(p.name, p.count) for p in probs] == [("conv", 3), ("conv#1", 1), ("fc", 1), ("fc#1", 1)]
    assert inst(probs[3])["N"] == 64            # leading dims of a (1, 64, 4) input
    assert total_macs(probs) == 3 * 8 * 8 * 4 * 36 + 4 * 4 * 4 * 36 + 12 + 64 * 12
    assert probs[0].key != probs[1].key
    # same problem, different name -> same key (used to search identical layers once)
    a = problems_from_module(nn.Conv2d(4, 4, 3), torch.zeros(1, 4, 6, 6), prefix="a")[0]
    b = problems_from_module(nn.Conv2d(4, 4, 3), torch.zeros(1, 4, 6, 6), prefix="b")[0]
    assert a.name != b.name and problem_key(a.problem) == problem_key(b.problem)


def test_problems_parse_as_timeloop_problems():
    """Every produced dict parses as a Timeloop v0.4 problem whose compute count is the layer's MACs."""
    from a3cs_plugin.hardware.spec.problem import parse_problem
    from a3cs_plugin.agents.zoo import build_agent
    probs = problems_from_module(build_agent("resnet14", 6), torch.zeros(1, 4, 84, 84))
    probs += problems_from_module(nn.Conv2d(8, 8, 3, groups=8), torch.zeros(1, 8, 5, 5))
    for lp in probs:
        p = lp.problem["problem"]
        assert p["version"] == 0.4
        parsed = parse_problem(p, file=lp.name)
        assert parsed.computes == lp.macs, lp.name
        assert parsed.name == lp.name


def test_not_a_module():
    with pytest.raises(ConfigError, match="nn.Module"):
        problems_from_module("conv", torch.zeros(1))


def test_agent_space_op_problems_match_ops():
    """space.op_problems: one problem per conv of the op, at that cell's input shape, MACs exact."""
    from a3cs_plugin.agents import AgentSpace, make_op
    space = AgentSpace(num_actions=6)
    for label in ("cell_00", "cell_04", "cell_08", "cell_13"):
        cfg = next(c for c in space.cell_configs if c["label"] == label)
        for op in space.op_names:
            probs = space.op_problems(label, op)
            m = make_op(op, cfg["c_in"], cfg["c_out"], cfg["stride"])
            x = torch.zeros(1, cfg["c_in"], cfg["in_hw"], cfg["in_hw"])
            n_convs = sum(isinstance(mm, nn.Conv2d) for mm in m.modules())
            assert len(probs) == n_convs
            assert total_macs(probs) == direct_macs(m, x)
            assert all(p.name.startswith(f"{label}.{op}.") for p in probs)
            if probs:
                assert inst(probs[0])["P"] == cfg["in_hw"] or cfg["stride"] == 2
    assert space.op_problems("cell_01", "skip") == []            # identity
    assert len(space.op_problems("cell_04", "skip")) == 1         # 1x1 strided projection
    fixed = space.fixed_problems()
    assert [p.name for p in fixed] == ["stem.0", "head.fc", "head.actor", "head.critic"]
    assert total_macs(fixed) == 20 * 20 * 16 * 4 * 64 + 1600 * 256 + 256 * 6 + 256
    arch = space.random_arch(5)
    all_probs = space.arch_problems(arch)
    assert total_macs(all_probs) == direct_macs(space.freeze(arch), torch.zeros(1, 4, 84, 84, dtype=torch.uint8))
    with pytest.raises(ConfigError, match="cell_99"):
        space.op_problems("cell_99", "skip")
    with pytest.raises(ConfigError, match="k3_e1"):
        space.op_problems("cell_00", "conv")
    macs = space.op_macs()
    assert macs["cell_00"]["k5_e6"] > macs["cell_00"]["k3_e6"] > macs["cell_00"]["k3_e3"] > macs["cell_00"]["k3_e1"]
    assert macs["cell_00"]["k3_e1_g2"] < macs["cell_00"]["k3_e1"] and macs["cell_00"]["skip"] == 0


def test_network_problems_resolves_zoo_and_arch(tmp_path):
    from a3cs_plugin.agents import AgentSpace, export_arch, network_problems
    from a3cs_plugin.agents.zoo import build_agent, count_macs
    probs = network_problems(model="resnet14", num_actions=6)
    assert total_macs(probs) == count_macs(build_agent("resnet14", 6))
    space = AgentSpace(6)
    arch = space.random_arch(2)
    path = export_arch(arch, tmp_path / "arch.json")
    probs = network_problems(agent_arch=path, num_actions=6)
    assert total_macs(probs) == total_macs(space.arch_problems(arch))
    with pytest.raises(ConfigError, match="exactly one"):
        network_problems()
    with pytest.raises(ConfigError, match="nature_cnn"):
        network_problems(model="vgg16")
