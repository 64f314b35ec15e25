"""Candidate operations of the agent search space.

Nine ops per cell, all mapping ``(N, c_in, H, W)`` to ``(N, c_out, ceil(H/stride), ceil(W/stride))``:

* ``k{3,5}_e{1,3,6}`` — inverted-residual (MBConv) block: 1x1 expansion to ``e * c_in`` channels
  (omitted for ``e = 1``), ReLU, depthwise ``k x k`` conv with the cell's stride, ReLU, 1x1 projection
  to ``c_out``.  A residual connection is added when ``stride == 1`` and ``c_in == c_out``.
* ``k{3,5}_e1_g2`` — the expansion-1 block with its 1x1 projection split into 2 groups, followed by
  a channel shuffle (ShuffleNet-style) so information crosses the groups.
* ``skip`` — identity, or a 1x1 projection conv (stride = cell stride) where the shape changes.

No normalisation layers: batch statistics are a poor fit for on-policy RL rollouts, and the ops then
map one-to-one onto Timeloop conv problems.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn

from ..errors import ConfigError

#: The nine built-in ops, in their choice order (the registry below may hold more).
OP_NAMES: tuple[str, ...] = ("k3_e1", "k3_e3", "k3_e6", "k5_e1", "k5_e3", "k5_e6", "k3_e1_g2", "k5_e1_g2", "skip")


@dataclass(frozen=True)
class OpSpec:
    """A candidate op: ``build(c_in, c_out, stride) -> nn.Module`` and its shape parameters
    (``kernel``, ``expansion``, ``groups``; all 0 for ``skip``).  Its Timeloop problems come from
    the built module itself (:func:`a3cs_plugin.hardware.workload.problems_from_module`), so a
    new op needs nothing else to be costed."""

    name: str
    build: Callable[[int, int, int], nn.Module]
    kernel: int = 0
    expansion: int = 0
    groups: int = 0


_REGISTRY: dict[str, OpSpec] = {}


def register_op(name: str, build: Callable[[int, int, int], nn.Module], *, kernel: int = 0,
                expansion: int = 0, groups: int = 0) -> OpSpec:
    """Add a candidate op to every :class:`~a3cs_plugin.agents.space.AgentSpace` built after this
    call (appended to the choice order).  The surrogates shipped with a3cs were fitted on the
    layer mix of the built-in ops: refit one (``a3cs hw fit-surrogate``) to cost a new shape well."""
    if not isinstance(name, str) or not name or name in _REGISTRY:
        raise ConfigError(f"op {name!r} is already registered or not a name", key="op",
                          expected="a new op name")
    spec = OpSpec(name, build, int(kernel), int(expansion), int(groups))
    _REGISTRY[name] = spec
    return spec


def unregister_op(name: str) -> None:
    """Remove an op added with :func:`register_op` (the built-ins stay)."""
    if name in OP_NAMES:
        raise ConfigError(f"op {name!r} is built in", key="op", expected="an op added with register_op")
    _REGISTRY.pop(name, None)


def op_names() -> tuple[str, ...]:
    """Every registered op, built-ins first, in choice order."""
    return tuple(_REGISTRY)


def op_spec(name: str) -> OpSpec:
    if name not in _REGISTRY:
        raise ConfigError(f"unknown op {name!r}", expected="one of " + ", ".join(_REGISTRY))
    return _REGISTRY[name]


def parse_op(name: str) -> tuple[int, int, int]:
    """``"k5_e3"`` -> (kernel 5, expansion 3, groups 1); ``"k3_e1_g2"`` -> (3, 1, 2).  ``skip`` -> (0, 0, 0)."""
    spec = op_spec(name)
    return spec.kernel, spec.expansion, spec.groups


class ChannelShuffle(nn.Module):
    """Interleave the channels of ``groups`` groups: (N, g*c, H, W) -> view (N, g, c) -> transpose."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = int(groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = self.groups
        return x.view(n, g, c // g, h, w).transpose(1, 2).reshape(n, c, h, w)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


class DepthwiseConv2d(nn.Conv2d):
    """The depthwise ``k x k`` conv of an MBConv block: an ``nn.Conv2d`` (same weights, state-dict
    keys and hardware problem) that runs in fp32 under CPU bf16 autocast.  oneDNN's bf16
    depthwise *backward* is ~5x slower than its fp32 one on this CPU (96 channels 20x20 -> 10x10,
    k3, batch 256, channels-last: 686 vs 134 ms forward+backward; 48 ch k5: 488 vs 117 ms) while the
    forwards cost the same, so a bf16 search or training of these agents spent most of its time
    there.  The 1x1 convs around it stay bf16 (autocast casts its fp32 output back)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            with torch.autocast("cpu", enabled=False):
                return super().forward(x.float())
        return super().forward(x)


class MBConv(nn.Module):
    """Inverted-residual block (see the module docstring)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, expansion: int, stride: int = 1, groups: int = 1):
        super().__init__()
        if groups > 1 and (c_in % groups or c_out % groups):
            raise ConfigError(f"grouped op needs channels divisible by {groups}",
                              expected=f"c_in, c_out multiples of {groups}", got=(c_in, c_out))
        hidden = c_in * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers += [nn.Conv2d(c_in, hidden, 1, bias=False), nn.ReLU(inplace=True)]
        layers += [DepthwiseConv2d(hidden, hidden, kernel, stride=stride, padding=kernel // 2, groups=hidden,
                                   bias=False),
                   nn.ReLU(inplace=True),
                   nn.Conv2d(hidden, c_out, 1, groups=groups, bias=True)]
        if groups > 1:
            layers.append(ChannelShuffle(groups))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out
        self.kernel, self.expansion, self.stride, self.groups = kernel, expansion, stride, groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class Skip(nn.Module):
    """Identity, or a 1x1 (strided) projection when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.proj = None if (stride == 1 and c_in == c_out) else nn.Conv2d(c_in, c_out, 1, stride=stride, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.proj is None else self.proj(x)


def make_op(name: str, c_in: int, c_out: int, stride: int = 1) -> nn.Module:
    """Build candidate op ``name`` for a cell with ``c_in -> c_out`` channels and the given stride."""
    return op_spec(name).build(c_in, c_out, stride)


def _mbconv(kernel: int, expansion: int, groups: int):
    def build(c_in: int, c_out: int, stride: int) -> nn.Module:
        return MBConv(c_in, c_out, kernel=kernel, expansion=expansion, stride=stride, groups=groups)
    return build


for _name in OP_NAMES[:-1]:
    _parts = _name.split("_")
    _k, _e = int(_parts[0][1:]), int(_parts[1][1:])
    _g = int(_parts[2][1:]) if len(_parts) > 2 else 1
    register_op(_name, _mbconv(_k, _e, _g), kernel=_k, expansion=_e, groups=_g)
register_op("skip", lambda c_in, c_out, stride: Skip(c_in, c_out, stride))
