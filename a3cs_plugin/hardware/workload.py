"""PyTorch modules -> Timeloop v0.4 problems.

:func:`problems_from_module` runs one forward pass of a module on an example input with forward hooks
on every ``nn.Conv2d`` and ``nn.Linear`` and turns each call into a Timeloop problem built by
:func:`a3cs_plugin.hardware.spec.problem.conv2d_problem` / ``linear_problem``.

Dimension conventions (Timeloop's ``conv2D`` shape):

* ``N`` batch, ``C`` input channels per group, ``M`` output channels per group, ``G`` groups
  (``G > 1`` only for grouped / depthwise convolutions), ``P``/``Q`` output width/height,
  ``R``/``S`` kernel width/height; ``Wstride``/``Hstride`` and ``Wdilation``/``Hdilation`` from the
  module.  In Timeloop ``R`` and ``P`` project onto the input width ``W``, ``S`` and ``Q`` onto ``H``.
* Padding: Timeloop's problem has no padding term; the input extent is implied by the projection,
  ``W = (P-1)*Wstride + (R-1)*Wdilation + 1``.  We take ``P``/``Q`` from the real output of the layer,
  so the problem describes the *padded* input (zeros included; minus trailing rows/columns a stride
  never reaches), which is how Timeloop users model padded layers.  MACs therefore count every multiply of the padded convolution, matching
  ``weight.numel() * P * Q * N``.
* ``nn.Linear`` on an input of shape ``(..., C)``: ``N`` is the product of the leading dimensions.
  By default it becomes a 1x1 convolution on a 1x1 map (``P = Q = R = S = 1``), the usual Timeloop
  way to write a fully connected layer: architecture constraints written for the conv dimensions
  (Eyeriss-, Simba-like designs name ``P``, ``Q``, ``R``, ``S``) then apply unchanged, whereas
  Timeloop rejects constraints on dimensions a problem lacks.  ``linear_as_conv=False`` uses
  ``linear_problem`` (dimensions ``C``, ``M``, ``N`` only).
* Other layers (Conv1d/3d, transposed convs, attention, pooling, activations) are not converted.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterable

import torch
import torch.nn as nn

from ..errors import ConfigError

__all__ = ["LayerProblem", "problems_from_module", "conv_problem_from_module", "linear_problem_from_module",
           "problem_key", "total_macs"]


@dataclass
class LayerProblem:
    """One layer of a network as a Timeloop problem.

    ``problem`` is the plain Timeloop v0.4 dict ``{"problem": {"version": 0.4, "shape": ..., "instance": ...}}``.
    ``count`` is how often the layer runs per forward pass; ``macs`` is for one run (so the layer's
    total is ``macs * count``).
    """

    name: str
    kind: str                      # "conv2d" or "linear"
    problem: dict
    macs: int
    count: int = 1
    info: dict = field(default_factory=dict)   # module hyper-parameters (kernel, stride, groups, shapes)

    @property
    def total_macs(self) -> int:
        return self.macs * self.count

    @property
    def key(self) -> str:
        """Hash of the problem dict; equal problems have equal keys whatever their name."""
        return problem_key(self.problem)

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "macs": self.macs, "count": self.count,
                "info": dict(self.info), "problem": self.problem}


def problem_key(problem: dict) -> str:
    """Stable hash of a problem dict, ignoring the problem's (layer) name in ``shape.name``."""
    body = problem.get("problem", problem) if isinstance(problem, dict) else problem
    if isinstance(body, dict) and isinstance(body.get("shape"), dict):
        body = dict(body, shape={k: v for k, v in body["shape"].items() if k != "name"})
    text = json.dumps(body, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _builders():
    from .spec.problem import conv2d_problem, linear_problem
    return conv2d_problem, linear_problem


def _pair(v) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def conv_problem_from_module(conv: nn.Conv2d, in_shape: Iterable[int], out_shape: Iterable[int],
                             name: str = "conv") -> LayerProblem:
    """Timeloop problem of one ``nn.Conv2d`` call with input ``(N, C, H, W)`` and output ``(N, M, Q, P)``."""
    conv2d_problem, _ = _builders()
    in_shape, out_shape = tuple(in_shape), tuple(out_shape)
    if len(in_shape) == 3:       # unbatched conv input (C, H, W)
        in_shape, out_shape = (1,) + in_shape, (1,) + out_shape
    n, c_in = int(in_shape[0]), int(in_shape[1])
    m_out, q, p = int(out_shape[1]), int(out_shape[2]), int(out_shape[3])
    g = int(conv.groups)
    kh, kw = _pair(conv.kernel_size)
    sh, sw = _pair(conv.stride)
    dh, dw = _pair(conv.dilation)
    if isinstance(conv.padding, str):
        pad = conv.padding
    else:
        pad = _pair(conv.padding)
    c, m = c_in // g, m_out // g
    problem = conv2d_problem(N=n, C=c, M=m, P=p, Q=q, R=kw, S=kh, Hstride=sh, Wstride=sw,
                             Hdilation=dh, Wdilation=dw, G=g, name=name)
    macs = g * n * m * c * p * q * kw * kh
    info = {"in_shape": list(in_shape), "out_shape": list(out_shape), "kernel": [kh, kw],
            "stride": [sh, sw], "dilation": [dh, dw], "padding": pad if isinstance(pad, str) else list(pad),
            "groups": g, "bias": conv.bias is not None}
    return LayerProblem(name=name, kind="conv2d", problem=problem, macs=macs, info=info)


def linear_problem_from_module(linear: nn.Linear, in_shape: Iterable[int], name: str = "linear",
                               as_conv: bool = True) -> LayerProblem:
    """Timeloop problem of one ``nn.Linear`` call on an input of shape ``(..., C)`` (a 1x1 conv
    problem when ``as_conv``, else Timeloop's plain C/M/N problem)."""
    conv2d_problem, linear_problem = _builders()
    in_shape = tuple(int(s) for s in in_shape)
    n = 1
    for s in in_shape[:-1]:
        n *= s
    c, m = int(linear.in_features), int(linear.out_features)
    if as_conv:
        problem = conv2d_problem(N=n, C=c, M=m, P=1, Q=1, R=1, S=1, name=name)
    else:
        problem = linear_problem(N=n, C=c, M=m, name=name)
    info = {"in_shape": list(in_shape), "in_features": c, "out_features": m, "bias": linear.bias is not None}
    return LayerProblem(name=name, kind="linear", problem=problem, macs=n * c * m, info=info)


def problems_from_module(module: nn.Module, example_input: Any, *, prefix: str = "",
                         linear_as_conv: bool = True) -> list[LayerProblem]:
    """Walk ``module`` on ``example_input`` and return one :class:`LayerProblem` per conv/linear layer.

    Layers are listed in execution order.  A module called several times with the same shapes is
    listed once with ``count`` = number of calls; a call with different shapes gets its own entry
    (suffixed ``#k``).  ``example_input`` is a tensor, or a tuple/list of positional arguments.
    """
    if not isinstance(module, nn.Module):
        raise ConfigError("problems_from_module needs a torch.nn.Module", expected="nn.Module", got=type(module))
    names = {m: n for n, m in module.named_modules()}
    records: list[tuple[str, nn.Module, tuple, tuple]] = []

    def hook(mod, inputs, output):
        x = inputs[0]
        if not isinstance(x, torch.Tensor) or not isinstance(output, torch.Tensor):
            return
        records.append((names.get(mod, type(mod).__name__), mod, tuple(x.shape), tuple(output.shape)))

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = module.training
    try:
        module.eval()
        with torch.no_grad():
            if isinstance(example_input, (tuple, list)):
                module(*example_input)
            else:
                module(example_input)
    finally:
        for h in handles:
            h.remove()
        module.train(was_training)

    out: list[LayerProblem] = []
    seen: dict[tuple, LayerProblem] = {}
    calls_per_name: dict[str, int] = {}
    for name, mod, in_shape, out_shape in records:
        key = (id(mod), in_shape, out_shape)
        if key in seen:
            seen[key].count += 1
            continue
        k = calls_per_name.get(name, 0)
        calls_per_name[name] = k + 1
        full = (prefix + "." if prefix else "") + (name or type(mod).__name__.lower())
        if k:
            full += f"#{k}"
        if isinstance(mod, nn.Conv2d):
            lp = conv_problem_from_module(mod, in_shape, out_shape, name=full)
        else:
            lp = linear_problem_from_module(mod, in_shape, name=full, as_conv=linear_as_conv)
        seen[key] = lp
        out.append(lp)
    return out


def total_macs(problems: Iterable[LayerProblem]) -> int:
    """Sum of ``macs * count`` over layers."""
    return sum(p.total_macs for p in problems)
