"""Zoo agents: shapes, exact parameter/MAC counts, depth, input scaling, bad names."""
import pytest
import torch
from torch import nn

from a3cs_plugin.agents.zoo import ZOO, build_agent, count_macs, count_params
from a3cs_plugin.errors import ConfigError

torch.set_num_threads(1)


@pytest.mark.parametrize("name", ZOO)
def test_forward_shapes_and_dtype(name):
    torch.manual_seed(0)
    m = build_agent(name, 6)
    obs = torch.randint(0, 256, (3, 4, 84, 84), dtype=torch.uint8)
    logits, value = m(obs)
    assert logits.shape == (3, 6) and value.shape == (3,)
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()


def test_nature_cnn_counts_match_hand_computation():
    m = build_agent("nature_cnn", 6)
    # conv 4->32 8x8, 32->64 4x4, 64->64 3x3, fc 3136->512, actor 512->6, critic 512->1
    params = (4 * 32 * 64 + 32) + (32 * 64 * 16 + 64) + (64 * 64 * 9 + 64) \
        + (3136 * 512 + 512) + (512 * 6 + 6) + (512 + 1)
    assert count_params(m) == params == 1_687_719
    macs = 20 * 20 * 32 * 4 * 64 + 9 * 9 * 64 * 32 * 16 + 7 * 7 * 64 * 64 * 9 \
        + 3136 * 512 + 512 * 6 + 512
    assert count_macs(m) == macs
    # MACs scale with the batch
    assert count_macs(m, (2, 4, 84, 84)) == 2 * macs


@pytest.mark.parametrize("name,depth", [("resnet14", 14), ("resnet20", 20), ("resnet38", 38),
                                        ("resnet74", 74)])
def test_resnet_depth(name, depth):
    m = build_agent(name, 4)
    # weight layers on the main path: everything except 1x1 shortcuts and the two heads
    convs = [x for x in m.trunk.modules() if isinstance(x, nn.Conv2d) and x.kernel_size != (1, 1)]
    fcs = [x for x in m.trunk.modules() if isinstance(x, nn.Linear)]
    assert len(convs) + len(fcs) == depth
    assert count_macs(m) > count_macs(build_agent("nature_cnn", 4))


def test_macs_grow_with_depth():
    macs = [count_macs(build_agent(n, 6)) for n in ("resnet14", "resnet20", "resnet38", "resnet74")]
    assert macs == sorted(macs) and len(set(macs)) == 4


def test_uint8_is_scaled_inside():
    torch.manual_seed(0)
    m = build_agent("nature_cnn", 3)
    obs = torch.full((1, 4, 84, 84), 255, dtype=torch.uint8)
    logits, value = m(obs)
    h = m.trunk(torch.ones(1, 4, 84, 84))
    assert torch.allclose(logits, m.actor(h)) and torch.allclose(value, m.critic(h).squeeze(-1))


def test_unknown_agent_lists_names():
    with pytest.raises(ConfigError) as e:
        build_agent("resnet15", 6)
    msg = str(e.value)
    assert "resnet15" in msg and all(n in msg for n in ZOO) and "\n" not in msg


def test_channels_last_layout_gives_same_outputs():
    from a3cs_plugin.rl.rollout import fast_layout
    torch.manual_seed(0)
    a = build_agent("resnet14", 6)
    b = fast_layout(build_agent("resnet14", 6))
    b.load_state_dict(a.state_dict())
    assert b.trunk[0].weight.is_contiguous(memory_format=torch.channels_last)
    obs = torch.randint(0, 256, (5, 4, 84, 84), dtype=torch.uint8)
    (la, va), (lb, vb) = a(obs), b(obs)
    assert torch.allclose(la, lb, atol=1e-5) and torch.allclose(va, vb, atol=1e-5)


def test_float_input_is_not_modified_in_place():
    m = build_agent("nature_cnn", 6)
    x = torch.full((2, 4, 84, 84), 255.0)
    l1, _ = m(x)
    assert float(x.max()) == 255.0                      # caller's tensor untouched
    l2, _ = m(x.to(torch.uint8))
    assert torch.allclose(l1, l2)
