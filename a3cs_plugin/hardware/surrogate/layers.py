"""Layer mixes for surrogate labels: conv / linear problems a DRL agent on Atari runs.

* ``nature_cnn_layers`` -- the Nature-CNN (Mnih et al., 2015) layers on 4x84x84 frames;
* ``agent_cell_layers`` -- every op of every cell of the default agent schedule (16/32/64 channels
  at 20x20 / 10x10 / 5x5), stem and heads;
* ``mbconv_layers`` -- the convolutions inside inverted-residual ops (kernel 3/5, expansion 1/3/6,
  group-2 pointwise for the expansion-1 variants, 1x1 projection of ``skip``) at cell shapes of an
  Atari agent (channels 8..128, feature maps 3..42);
* ``random_conv_layers`` -- random conv / depthwise / linear shapes around those (channel counts
  multiples of 4 above 8, as agent widths are; odd primes like 13 or 251 channels are out of scope).

``layer_mix(kind, n, seed)`` draws ``n`` distinct problems: ``kind="train"`` and ``kind="heldout"`` use
different shape grids (held-out cells use channel counts and feature-map sizes not in training).
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from ...errors import ConfigError

__all__ = ["conv", "linear", "nature_cnn_layers", "mbconv_op_layers", "mbconv_layers",
           "random_conv_layers", "agent_cell_layers", "layer_mix", "problem_key"]


def conv(n, c, m, p, q, r, s, stride=1, g=1, name="conv"):
    from ..spec.problem import conv2d_problem
    return conv2d_problem(N=int(n), C=int(c), M=int(m), P=int(p), Q=int(q), R=int(r), S=int(s),
                          Hstride=int(stride), Wstride=int(stride), G=int(g), name=name)


def linear(n, c, m, name="linear"):
    """A fully-connected layer as a 1x1 conv on a 1x1 map (keeps the conv dimension names that
    the dataflow constraints refer to)."""
    return conv(n, c, m, 1, 1, 1, 1, name=name)


def _out(size, k, stride):
    return max(1, (size + 2 * (k // 2) - k) // stride + 1)


def nature_cnn_layers(num_actions: int = 6, batch: int = 1) -> list[dict]:
    b = batch
    return [conv(b, 4, 32, 20, 20, 8, 8, 4, name="nature_conv1"),
            conv(b, 32, 64, 9, 9, 4, 4, 2, name="nature_conv2"),
            conv(b, 64, 64, 7, 7, 3, 3, 1, name="nature_conv3"),
            linear(b, 3136, 512, name="nature_fc"),
            linear(b, 512, num_actions, name="nature_policy"),
            linear(b, 512, 1, name="nature_value")]


def mbconv_op_layers(cin, cout, hw, stride, k, e, groups=1, batch=1, name="op") -> list[dict]:
    """Convolutions of one inverted-residual op (1x1 expand, kxk depthwise, 1x1 project)."""
    mid = cin * e
    out_hw = _out(hw, k, stride)
    layers = []
    if e > 1:
        layers.append(conv(batch, cin, mid, hw, hw, 1, 1, name=f"{name}_expand"))
    layers.append(conv(batch, 1, 1, out_hw, out_hw, k, k, stride, g=mid, name=f"{name}_dw"))
    if groups > 1 and mid % groups == 0 and cout % groups == 0:
        layers.append(conv(batch, mid // groups, cout // groups, out_hw, out_hw, 1, 1, g=groups,
                           name=f"{name}_project_g{groups}"))
    else:
        layers.append(conv(batch, mid, cout, out_hw, out_hw, 1, 1, name=f"{name}_project"))
    return layers


_OPS = [(3, 1, 1), (3, 3, 1), (3, 6, 1), (5, 1, 1), (5, 3, 1), (5, 6, 1), (3, 1, 2), (5, 1, 2)]
_GRIDS = {
    "train": {"channels": [8, 16, 24, 32, 48, 64, 96], "hw": [5, 7, 10, 11, 20, 21]},
    "heldout": {"channels": [12, 20, 40, 56, 80, 128], "hw": [3, 6, 9, 14, 16, 42]},
}


def mbconv_layers(rng: np.random.Generator, n_ops: int, grid: str = "train") -> list[dict]:
    g = _GRIDS[grid]
    out = []
    for i in range(n_ops):
        cin = int(rng.choice(g["channels"]))
        cout = int(rng.choice([cin, cin * 2 if cin < 96 else cin, int(rng.choice(g["channels"]))]))
        hw = int(rng.choice(g["hw"]))
        stride = 2 if (hw >= 9 and rng.random() < 0.3) else 1
        k, e, groups = _OPS[int(rng.integers(len(_OPS)))]
        out.extend(mbconv_op_layers(cin, cout, hw, stride, k, e, groups, name=f"mb{i}"))
        if rng.random() < 0.15:  # skip op with a 1x1 projection where the shape changes
            out.append(conv(1, cin, cout, _out(hw, 1, stride), _out(hw, 1, stride), 1, 1, stride,
                            name=f"mb{i}_skip"))
    return out


def agent_cell_layers(stem=(16, 8, 4), widths=(16, 32, 64), split=(4, 4, 6), hidden=256,
                      num_actions=6) -> list[dict]:
    """Every op of every cell of an AgentSpace-like schedule (Nature-CNN-like stem 84 -> 20, three
    stages with stride 2 at the start of stages 2 and 3) plus stem and heads."""
    c0, k0, s0 = stem
    hw = (84 - k0) // s0 + 1
    out = [conv(1, 4, c0, hw, hw, k0, k0, s0, name="stem")]
    cin = c0
    for stage, (width, n) in enumerate(zip(widths, split)):
        for j in range(n):
            stride = 2 if (j == 0 and stage > 0) else 1
            for k, e, g in _OPS:
                out.extend(mbconv_op_layers(cin, width, hw, stride, k, e, g, name=f"s{stage}c{j}"))
            if stride != 1 or cin != width:
                out.append(conv(1, cin, width, _out(hw, 1, stride), _out(hw, 1, stride), 1, 1, stride,
                                name=f"s{stage}c{j}_skip"))
            hw, cin = _out(hw, 3, stride), width
    out += [linear(1, cin * hw * hw, hidden, name="fc"), linear(1, hidden, num_actions, name="policy"),
            linear(1, hidden, 1, name="value")]
    return out


def _channels(rng, lo, hi) -> int:
    """Channel count log-uniform in [2**lo, 2**hi], a multiple of 4 above 8 (agent widths are)."""
    c = int(round(2 ** rng.uniform(lo, hi)))
    return c if c <= 8 else max(12, int(round(c / 4)) * 4)


def random_conv_layers(rng: np.random.Generator, n: int) -> list[dict]:
    """Random conv / depthwise / linear layers of DRL-agent scale: channels 2..~180 (multiples of 4
    above 8), maps 2..42, kernels 1/3/4/5/8, strides 1/2/4."""
    out = []
    for i in range(n):
        kind = rng.random()
        if kind < 0.15:
            out.append(linear(1, _channels(rng, 5, 12), int(2 ** rng.uniform(0, 9.5)), name=f"rnd{i}_fc"))
            continue
        c = _channels(rng, 1.5, 7.5)
        m = _channels(rng, 2, 7.5)
        hw = int(round(2 ** rng.uniform(1, 5.4)))
        k = int(rng.choice([1, 3, 5, 4, 8], p=[0.3, 0.35, 0.15, 0.1, 0.1]))
        stride = int(rng.choice([1, 2, 4], p=[0.6, 0.3, 0.1])) if k > 1 else 1
        if kind < 0.35:
            out.append(conv(1, 1, 1, hw, hw, k if k in (3, 5) else 3, k if k in (3, 5) else 3,
                            min(stride, 2), g=m, name=f"rnd{i}_dw"))
        else:
            out.append(conv(1, c, m, hw, hw, k, k, stride, name=f"rnd{i}"))
    return out


def problem_key(problem: dict) -> str:
    inst = problem.get("problem", problem)["instance"]
    return ",".join(f"{k}={inst[k]}" for k in sorted(inst))


def _unique(problems: Iterable[dict]) -> list[dict]:
    seen, out = set(), []
    for p in problems:
        key = problem_key(p)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def layer_mix(kind: str, n: int, seed: int) -> list[dict]:
    """``n`` distinct layer problems of the ``train`` or ``heldout`` mix."""
    if kind not in _GRIDS:
        raise ConfigError(f"unknown layer mix '{kind}'", key="kind", expected="train or heldout")
    rng = np.random.default_rng(seed)
    pool = nature_cnn_layers(6) + nature_cnn_layers(18)
    if kind == "train":
        pool += agent_cell_layers()
    pool += mbconv_layers(rng, max(4, n), kind)
    pool += random_conv_layers(rng, max(4, n // 2))
    pool = _unique(pool)
    idx = rng.permutation(len(pool))[:n]
    return [pool[i] for i in sorted(idx)]
