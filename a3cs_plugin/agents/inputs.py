"""The first step of every agent: uint8 frames -> network input scaled by 1/255.

Under bf16 autocast (CPU or CUDA) a uint8 batch is converted straight to bfloat16: the product
``k * (1/255)`` is formed in fp32 and rounded once to bf16, the same bits as converting to fp32
first and letting autocast cast the result for the first convolution, without the full-size fp32
intermediate.  Float inputs (0..255) stay fp32; the input is never modified in place.
"""
from __future__ import annotations

import torch


def input_dtype(obs: torch.Tensor) -> torch.dtype:
    """bf16 for a uint8 batch under bf16 autocast on its device type, else fp32."""
    if obs.dtype == torch.uint8:
        dev = obs.device.type
        if dev in ("cpu", "cuda") and torch.is_autocast_enabled(dev) \
                and torch.get_autocast_dtype(dev) == torch.bfloat16:
            return torch.bfloat16
    return torch.float32


def scale_obs(obs: torch.Tensor, memory_format=torch.preserve_format) -> torch.Tensor:
    """``obs / 255`` as a new tensor (fp32, or bf16 under bf16 autocast), in ``memory_format``."""
    return obs.to(input_dtype(obs), memory_format=memory_format, copy=True).mul_(1.0 / 255.0)
