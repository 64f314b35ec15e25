"""Layer features for the surrogate: fixed-order vectors computed from a Timeloop problem.

Works on the plain Timeloop v0.4 problem dict (``{"problem": {"shape": ..., "instance": ...}}`` or the
inner ``problem`` mapping) of a conv / grouped conv / linear layer. Dimensions missing from the
instance count as 1 (a linear layer is a 1x1 conv on a 1x1 image).
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from ...errors import SpecError

__all__ = ["FEATURE_NAMES", "NUM_FEATURES", "layer_features", "layer_dims", "dims_from_features"]

DIMS = ("N", "C", "M", "P", "Q", "R", "S", "G")
FEATURE_NAMES = (
    "log2_N", "log2_C", "log2_M", "log2_P", "log2_Q", "log2_R", "log2_S", "log2_G",
    "Hstride", "Wstride", "log2_macs", "log2_weights", "log2_inputs", "log2_outputs", "depthwise",
)
NUM_FEATURES = len(FEATURE_NAMES)
_LOG_DIM_SLICE = slice(0, 8)


def layer_dims(problem: Mapping) -> dict:
    """``{N, C, M, P, Q, R, S, G, Hstride, Wstride, Hdilation, Wdilation}`` of a problem dict
    (or of the workload's :class:`~a3cs_plugin.hardware.workload.LayerProblem`)."""
    from ..workload import LayerProblem
    if isinstance(problem, LayerProblem):
        problem = problem.problem
    prob = problem.get("problem", problem) if isinstance(problem, Mapping) else None
    if not isinstance(prob, Mapping) or not isinstance(prob.get("instance"), Mapping):
        raise SpecError("layer problem needs 'problem.instance'", key="problem.instance",
                        expected="a Timeloop v0.4 problem dict (conv2d_problem / linear_problem)")
    inst = prob["instance"]
    out = {}
    for k in DIMS + ("Hstride", "Wstride", "Hdilation", "Wdilation"):
        v = inst.get(k, 1)
        try:
            v = int(v)
        except (TypeError, ValueError):
            raise SpecError("problem size must be an integer", key=f"problem.instance.{k}",
                            got=v) from None
        if v < 1:
            raise SpecError("problem size must be >= 1", key=f"problem.instance.{k}", got=v)
        out[k] = v
    known = set(DIMS) | {"Hstride", "Wstride", "Hdilation", "Wdilation", "H", "W", "Hpad", "Wpad"}
    extra = [k for k, v in inst.items() if k not in known and isinstance(v, int) and v > 1]
    if extra:
        raise SpecError(f"problem dimension(s) {', '.join(extra)} not supported by the surrogate",
                        key="problem.instance", expected="a conv2d / linear layer (N C M P Q R S G)")
    return out


def layer_features(problem: Mapping) -> np.ndarray:
    """Feature vector (float32, ``NUM_FEATURES`` entries, order ``FEATURE_NAMES``)."""
    d = layer_dims(problem)
    g, n, c, m, p, q, r, s = d["G"], d["N"], d["C"], d["M"], d["P"], d["Q"], d["R"], d["S"]
    # input extent, as Timeloop's CNN layer pairs them: P, R, Wstride along the width; Q, S,
    # Hstride along the height
    in_w = (p - 1) * d["Wstride"] + (r - 1) * d["Wdilation"] + 1
    in_h = (q - 1) * d["Hstride"] + (s - 1) * d["Hdilation"] + 1
    macs = g * n * c * m * p * q * r * s
    vals = [math.log2(d[k]) for k in DIMS] + [
        float(d["Hstride"]), float(d["Wstride"]), math.log2(macs),
        math.log2(g * c * m * r * s), math.log2(g * n * c * in_h * in_w), math.log2(g * n * m * p * q),
        1.0 if (g > 1 and c == 1 and m == 1) else 0.0,
    ]
    return np.asarray(vals, dtype=np.float32)


def dims_from_features(feats):
    """Integer sizes (N C M P Q R S G) back from a feature array ``[..., NUM_FEATURES]``."""
    import torch
    if isinstance(feats, torch.Tensor):
        return torch.round(torch.exp2(feats[..., _LOG_DIM_SLICE]))
    return np.round(np.exp2(np.asarray(feats)[..., _LOG_DIM_SLICE]))
