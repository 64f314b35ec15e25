"""The NNI 3.0 model space of DRL agents searched by A3C-S.

``AgentSpace(num_actions)`` is an :class:`nni.nas.nn.pytorch.ModelSpace` over Atari observations
(uint8 ``(N, 4, 84, 84)``, scaled by 1/255 inside):

* stem: ``Conv 8x8 / 4`` (4 -> 16 channels, 84 -> 20) + ReLU, as the Nature-CNN's first layer,
  so every cell works on small maps;
* 14 searchable cells, each a :class:`~nni.nas.nn.pytorch.LayerChoice` labelled ``cell_00`` ..
  ``cell_13`` over the nine ops of :mod:`a3cs_plugin.agents.ops`.  Default channel / stride schedule
  (three stages in a 4:4:6 split, like the zoo ResNets)::

      cells  0-3 : 16 channels, 20x20   (stride 1)
      cells  4-7 : 32 channels, 10x10   (cell 4 has stride 2)
      cells 8-13 : 64 channels,  5x5    (cell 8 has stride 2)

  For other ``num_cells`` the stage boundaries are ``round(n*4/14)`` and ``round(n*8/14)``;
  ``channels`` / ``strides`` override the schedule (one entry per cell, strides 1 or 2, even channels);
* head: flatten (``pool="flatten"``, default) or global average pooling (``pool="avg"``), a
  ``hidden``-unit (256) fully connected layer + ReLU, then the policy logits ``(N, num_actions)`` and
  the value ``(N,)``, as the zoo agents.

``space.freeze(arch)`` returns a plain :class:`AgentNet` (weights copied from the space, so a trained
one-shot supernet passes its weights on).  ``space.op_problems(label, op)`` and
``space.fixed_problems()`` give the Timeloop problems per op per cell and for the stem + heads.
"""
from __future__ import annotations

import math
import warnings
from collections import OrderedDict
from typing import Any, Mapping, Sequence

import torch
import torch.nn as nn

with warnings.catch_warnings():  # nni 3.0 warns about torch classes it does not know; harmless
    warnings.simplefilter("ignore", RuntimeWarning)
    from nni.nas.nn.pytorch import LayerChoice, ModelSpace
    from nni.nas.nn.pytorch.base import recursive_freeze

from ..errors import ConfigError
from .inputs import scale_obs
from ..hardware.workload import LayerProblem, problems_from_module
from .arch import cell_labels, random_arch, validate_arch
from .ops import make_op, op_names

__all__ = ["AgentSpace", "AgentNet", "Head", "default_schedule", "DEFAULT_STEM"]

#: Stem convolutions as (out_channels, kernel, stride), no padding.
DEFAULT_STEM: tuple[tuple[int, int, int], ...] = ((16, 8, 4),)


def default_schedule(num_cells: int, widths: Sequence[int] = (16, 32, 64)) -> tuple[list[int], list[int]]:
    """Channels and strides per cell: three stages split 4:4:6, stride 2 at the start of stages 2 and 3."""
    n = int(num_cells)
    b1, b2 = round(n * 4 / 14), round(n * 8 / 14)
    channels, strides = [], []
    for i in range(n):
        stage = 0 if i < b1 else (1 if i < b2 else 2)
        channels.append(int(widths[stage]))
        strides.append(2 if (i == b1 and stage == 1 and i > 0) or (i == b2 and stage == 2 and i > 0) else 1)
    return channels, strides


def _init_weights(module: nn.Module) -> None:
    """Orthogonal init (gain sqrt 2) for every conv / linear, zero biases (as the zoo agents)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.orthogonal_(m.weight, math.sqrt(2.0))
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class Head(nn.Module):
    """Pooling / flatten, a hidden fully connected layer, and the actor and critic heads."""

    def __init__(self, in_features: int, hidden: int, num_actions: int, pool: str = "flatten"):
        super().__init__()
        self.pool = pool
        self.fc = nn.Linear(in_features, hidden)
        self.actor = nn.Linear(hidden, num_actions)
        self.critic = nn.Linear(hidden, 1)
        nn.init.orthogonal_(self.fc.weight, math.sqrt(2.0))
        nn.init.orthogonal_(self.actor.weight, 0.01)
        nn.init.orthogonal_(self.critic.weight, 1.0)
        for lin in (self.fc, self.actor, self.critic):
            nn.init.zeros_(lin.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.mean(dim=(2, 3)) if self.pool == "avg" else torch.flatten(x, 1)
        h = torch.relu(self.fc(x))
        return self.actor(h), self.critic(h).squeeze(-1)


def _agent_forward(stem: nn.Module, cells: nn.ModuleList, head: nn.Module, obs: torch.Tensor):
    x = scale_obs(obs)       # fp32, or bf16 straight from uint8 under bf16 autocast
    x = stem(x)
    for cell in cells:
        x = cell(x)
    return head(x)


class AgentNet(nn.Module):
    """A concrete agent: ``forward(obs_uint8) -> (logits (N, A), value (N,))``.  ``arch`` is its
    ``{label: op}`` dict."""

    def __init__(self, stem: nn.Module, cells: nn.ModuleList, head: Head, arch: Mapping[str, str],
                 num_actions: int):
        super().__init__()
        self.stem, self.cells, self.head = stem, cells, head
        self.arch = dict(arch)
        self.num_actions = int(num_actions)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return _agent_forward(self.stem, self.cells, self.head, obs)


class AgentSpace(ModelSpace):
    """NNI model space of Atari actor-critic agents (see the module docstring)."""

    def __init__(self, num_actions: int, num_cells: int = 14, channels: Sequence[int] | None = None,
                 strides: Sequence[int] | None = None, stem: Sequence[Sequence[int]] = DEFAULT_STEM,
                 hidden: int = 256, pool: str = "flatten", in_channels: int = 4, input_size: int = 84,
                 widths: Sequence[int] = (16, 32, 64)):
        super().__init__()
        num_actions, num_cells = int(num_actions), int(num_cells)
        if num_actions < 1:
            raise ConfigError("num_actions must be positive", key="num_actions", expected=">= 1", got=num_actions)
        if num_cells < 1:
            raise ConfigError("num_cells must be positive", key="num_cells", expected=">= 1", got=num_cells)
        if pool not in ("flatten", "avg"):
            raise ConfigError("unknown pooling", key="pool", expected="'flatten' or 'avg'", got=pool)
        d_channels, d_strides = default_schedule(num_cells, widths)
        channels = list(d_channels if channels is None else channels)
        strides = list(d_strides if strides is None else strides)
        for key, seq in (("channels", channels), ("strides", strides)):
            if len(seq) != num_cells:
                raise ConfigError(f"{key} needs one entry per cell", key=key,
                                  expected=f"{num_cells} entries", got=seq)
        for c in channels:
            if not isinstance(c, int) or c < 2 or c % 2:
                raise ConfigError("cell channels must be even positive integers (group-2 ops)",
                                  key="channels", expected="even ints >= 2", got=channels)
        for s in strides:
            if s not in (1, 2):
                raise ConfigError("cell strides must be 1 or 2", key="strides", expected="1 or 2", got=strides)

        self.num_actions = num_actions
        self.num_cells = num_cells
        self.op_names: tuple[str, ...] = op_names()   # the registry at construction time
        self.cell_labels: list[str] = cell_labels(num_cells)
        self.input_shape = (int(in_channels), int(input_size), int(input_size))

        # stem
        layers: list[nn.Module] = []
        c, h = int(in_channels), int(input_size)
        for spec in stem:
            if len(spec) != 3:
                raise ConfigError("stem entries are (out_channels, kernel, stride)", key="stem", got=list(stem))
            co, k, s = (int(v) for v in spec)
            layers += [nn.Conv2d(c, co, k, stride=s), nn.ReLU(inplace=True)]
            c, h = co, (h - k) // s + 1
            if h < 1:
                raise ConfigError("stem reduces the input below 1x1", key="stem", got=list(stem))
        self.stem = nn.Sequential(*layers)

        # cells
        self.cell_configs: list[dict[str, Any]] = []
        cells = []
        for i, (co, s) in enumerate(zip(channels, strides)):
            label = self.cell_labels[i]
            self.cell_configs.append({"label": label, "c_in": c, "c_out": co, "stride": s, "in_hw": h,
                                      "out_hw": -(-h // s)})
            ops = OrderedDict((name, make_op(name, c, co, s)) for name in self.op_names)
            cells.append(LayerChoice(ops, label=label))
            c, h = co, -(-h // s)
        self.cells = nn.ModuleList(cells)
        self.feature_shape = (c, h, h)
        feat = c if pool == "avg" else c * h * h
        self.head = Head(feat, int(hidden), num_actions, pool)
        _init_weights(self.stem)
        for cell in self.cells:
            _init_weights(cell)
        self._problem_cache: dict[tuple, list[LayerProblem]] = {}

    # -- forward ------------------------------------------------------------------------------------
    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``obs``: uint8 ``(N, 4, 84, 84)`` -> ``(logits (N, num_actions), value (N,))``."""
        return _agent_forward(self.stem, self.cells, self.head, obs)

    # -- architectures --------------------------------------------------------------------------------
    def validate(self, arch: Any, file: str | None = None) -> dict[str, str]:
        """Clean ``{label: op}`` dict; missing / unknown label or op -> ``ConfigError``."""
        return validate_arch(arch, self.cell_labels, self.op_names, file=file)

    def random_arch(self, seed: int | None = None) -> dict[str, str]:
        return random_arch(self.cell_labels, seed, self.op_names)

    def freeze(self, sample: Mapping[str, Any]) -> AgentNet:
        """Concrete :class:`AgentNet` for ``sample`` (``{label: op}``), with weights copied from this
        space (or from the supernet after an NNI one-shot strategy mutated it)."""
        arch = self.validate(dict(sample))
        frozen, _ = recursive_freeze(self, arch, include_root=False)
        cells = nn.ModuleList(list(frozen.cells))
        return AgentNet(frozen.stem, cells, frozen.head, arch, self.num_actions)

    # -- workloads ------------------------------------------------------------------------------------
    def _cell(self, label: str) -> dict[str, Any]:
        for cfg in self.cell_configs:
            if cfg["label"] == label:
                return cfg
        raise ConfigError(f"unknown cell label {label!r}", key=str(label),
                          expected=f"labels {self.cell_labels[0]}..{self.cell_labels[-1]}")

    def op_problems(self, label: str, op_name: str, batch: int = 1) -> list[LayerProblem]:
        """Timeloop problems (one per conv inside the op) of op ``op_name`` placed at cell ``label``,
        with that cell's real input shape.  ``skip`` as identity has none."""
        cfg = self._cell(label)
        if op_name not in self.op_names:
            raise ConfigError(f"unknown op {op_name!r} for {label}", key=label,
                              expected="one of " + ", ".join(self.op_names))
        key = (label, op_name, int(batch))
        if key not in self._problem_cache:
            op = make_op(op_name, cfg["c_in"], cfg["c_out"], cfg["stride"])
            x = torch.zeros(int(batch), cfg["c_in"], cfg["in_hw"], cfg["in_hw"])
            self._problem_cache[key] = problems_from_module(op, x, prefix=f"{label}.{op_name}")
        return list(self._problem_cache[key])

    def fixed_problems(self, batch: int = 1) -> list[LayerProblem]:
        """Problems of the layers every architecture has: the stem, the hidden fc and both heads."""
        key = ("__fixed__", int(batch))
        if key not in self._problem_cache:
            x = torch.zeros((int(batch),) + self.input_shape)
            probs = problems_from_module(self.stem, x, prefix="stem")
            probs += problems_from_module(self.head, torch.zeros((int(batch),) + self.feature_shape), prefix="head")
            self._problem_cache[key] = probs
        return list(self._problem_cache[key])

    def arch_problems(self, arch: Mapping[str, str], batch: int = 1) -> list[LayerProblem]:
        """All problems of one architecture in execution order: stem, cells, head."""
        arch = self.validate(arch)
        fixed = self.fixed_problems(batch)
        stem = [p for p in fixed if p.name.startswith("stem")]
        head = [p for p in fixed if not p.name.startswith("stem")]
        cells: list[LayerProblem] = []
        for label in self.cell_labels:
            cells += self.op_problems(label, arch[label], batch)
        return stem + cells + head

    def op_macs(self, batch: int = 1) -> dict[str, dict[str, int]]:
        """``{label: {op: MACs}}`` for every op in every cell."""
        return {label: {op: sum(p.total_macs for p in self.op_problems(label, op, batch)) for op in self.op_names}
                for label in self.cell_labels}
