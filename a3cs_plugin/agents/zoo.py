"""Fixed DRL agents for Atari: Nature-CNN and residual agents ResNet-14/20/38/74.

Every agent maps a uint8 observation batch ``(N, 4, 84, 84)`` (four stacked 84x84 grey frames) to
``(logits, value)`` with shapes ``(N, num_actions)`` and ``(N,)``; the /255 scaling happens inside
(float inputs in 0..255 work too and are never modified in place).

* ``nature_cnn`` -- the network of Mnih et al. 2015 (Nature DQN) with an actor and a critic head, as
  used by PPO (Schulman et al. 2017) on Atari.
* ``resnet14/20/38/74`` -- basic-block residual agents of depth ``6n + 2`` (n = 2, 3, 6, 12 blocks
  per stage): an 8x8/4 convolutional stem (32 ch, 84 -> 20), three stages of ``n`` basic blocks
  (32, 64, 64 channels, strides 1, 2, 2: 20 -> 10 -> 5), a 512-unit fully connected layer, then the
  two heads.  Depth counts the stem, the 6n block convolutions and the fc layer, as in He et al. 2016.

Initialisation is orthogonal (gain sqrt(2) for hidden layers, 0.01 actor, 1.0 critic), the usual
choice for policy-gradient Atari agents.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from a3cs_plugin.agents.inputs import scale_obs
from a3cs_plugin.errors import ConfigError

OBS_SHAPE = (4, 84, 84)


def _init(layer: nn.Module, gain: float = math.sqrt(2.0)) -> nn.Module:
    nn.init.orthogonal_(layer.weight, gain)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


class ActorCritic(nn.Module):
    """A feature trunk (uint8 frames -> ``hidden`` features) followed by actor and critic heads."""

    def __init__(self, trunk: nn.Module, hidden: int, num_actions: int):
        super().__init__()
        if int(num_actions) < 1:
            raise ConfigError("num_actions must be positive", got=num_actions)
        self.num_actions = int(num_actions)
        self.trunk = trunk
        self.actor = _init(nn.Linear(hidden, self.num_actions), 0.01)
        self.critic = _init(nn.Linear(hidden, 1), 1.0)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # one copy does uint8 -> float and, when the convs are channels-last, the layout change
        first = next(self.trunk.parameters())
        fmt = (torch.channels_last if obs.dim() == 4 and first.dim() == 4
               and first.is_contiguous(memory_format=torch.channels_last)
               else torch.contiguous_format)
        x = scale_obs(obs, fmt)      # fp32, or bf16 straight from uint8 under bf16 autocast
        h = self.trunk(x)
        return self.actor(h), self.critic(h).squeeze(-1)


def nature_trunk() -> nn.Module:
    return nn.Sequential(
        _init(nn.Conv2d(4, 32, 8, stride=4)), nn.ReLU(),
        _init(nn.Conv2d(32, 64, 4, stride=2)), nn.ReLU(),
        _init(nn.Conv2d(64, 64, 3, stride=1)), nn.ReLU(),
        nn.Flatten(),
        _init(nn.Linear(64 * 7 * 7, 512)), nn.ReLU(),
    )


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with an identity (or 1x1 strided projection) shortcut; no batch norm
    (batch statistics interact badly with on-policy RL and hardware costing)."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = _init(nn.Conv2d(cin, cout, 3, stride=stride, padding=1))
        self.conv2 = _init(nn.Conv2d(cout, cout, 3, stride=1, padding=1), 1.0)
        self.shortcut = (nn.Identity() if stride == 1 and cin == cout
                         else _init(nn.Conv2d(cin, cout, 1, stride=stride), 1.0))
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv2(self.relu(self.conv1(x))) + self.shortcut(x))


def resnet_trunk(blocks_per_stage: int, widths: tuple[int, int, int] = (32, 64, 64)) -> nn.Module:
    layers: list[nn.Module] = [_init(nn.Conv2d(4, widths[0], 8, stride=4)), nn.ReLU()]
    cin = widths[0]
    for stage, (width, stride) in enumerate(zip(widths, (1, 2, 2))):
        for b in range(blocks_per_stage):
            layers.append(BasicBlock(cin, width, stride if b == 0 else 1))
            cin = width
    # 84 -> 20 (stem) -> 20 -> 10 -> 5
    layers += [nn.Flatten(), _init(nn.Linear(cin * 5 * 5, 512)), nn.ReLU()]
    return nn.Sequential(*layers)


_BUILDERS: dict[str, Callable[[], nn.Module]] = {
    "nature_cnn": nature_trunk,
    "resnet14": lambda: resnet_trunk(2),
    "resnet20": lambda: resnet_trunk(3),
    "resnet38": lambda: resnet_trunk(6),
    "resnet74": lambda: resnet_trunk(12),
}

#: Names accepted by :func:`build_agent`.
ZOO: tuple[str, ...] = tuple(_BUILDERS)


def build_agent(name: str, num_actions: int) -> ActorCritic:
    """Build the zoo agent ``name`` with ``num_actions`` discrete actions."""
    key = str(name).lower().replace("-", "")
    if key == "naturecnn":
        key = "nature_cnn"
    if key not in _BUILDERS:
        raise ConfigError(f"unknown agent '{name}'", key="agent", expected=f"one of {', '.join(ZOO)}")
    return ActorCritic(_BUILDERS[key](), 512, num_actions)


SEARCHED = "searched"


def build_model(agent: str, num_actions: int, *, arch: dict | None = None,
                num_cells: int | None = None) -> nn.Module:
    """A zoo agent, or (``agent="searched"``) the :class:`AgentSpace` agent ``arch`` with
    ``num_cells`` cells -- the one builder behind training, retraining and checkpoint loading."""
    if str(agent) != SEARCHED:
        return build_agent(agent, num_actions)
    if not arch:
        raise ConfigError("a searched agent needs its architecture", key="arch",
                          expected="{cell_00: op, ...} (a search run's arch.json)")
    from a3cs_plugin.agents.space import AgentSpace
    n = int(num_cells) if num_cells else len(arch)
    return AgentSpace(int(num_actions), num_cells=n).freeze(arch)


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_macs(model: nn.Module, input_shape: tuple[int, ...] = (1, *OBS_SHAPE)) -> int:
    """Multiply-accumulates of one forward pass on a zero uint8 batch of ``input_shape``, counted by
    forward hooks on every ``Conv2d`` and ``Linear`` (bias additions and activations excluded)."""
    total = 0

    def conv_hook(mod: nn.Conv2d, _inp, out: torch.Tensor) -> None:
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1] * (mod.in_channels // mod.groups)
        total += out.numel() * k

    def linear_hook(mod: nn.Linear, _inp, out: torch.Tensor) -> None:
        nonlocal total
        total += out.numel() * mod.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    try:
        with torch.no_grad():
            model(torch.zeros(input_shape, dtype=torch.uint8))
    finally:
        for h in handles:
            h.remove()
    return int(total)
