"""Numeric precision of the RL engine's forward/backward passes: ``fp32`` or ``bf16``.

``bf16`` runs the agent under CPU autocast (oneDNN bfloat16 convolutions and matmuls, fp32 master
weights, fp32 optimiser state); everything after the network -- log-softmax, ratios, GAE, value
loss, gradient clipping -- stays fp32 because the engine casts logits and values back with
``.float()``.  On CPUs with native bf16 instructions (``avx512_bf16`` or AMX) Nature-CNN
forward+backward is ~1.8x faster than fp32 (measured on this 2-core Xeon: 0.39 vs 0.69
ms/sample, batch 256, one thread); without them bf16 is emulated and slower (on a 2-core AVX2
EPYC, more than 4x slower than fp32 in PPO training), so ``auto`` picks ``bf16`` only where the
CPU has it, and an explicit ``bf16`` on such a CPU prints a one-line warning.  The default stays
``fp32``: it is what the shipped teachers were trained with.

On a CUDA device ``bf16`` is CUDA autocast (bfloat16 tensor-core passes, fp32 master weights)
and ``auto`` picks it where the GPU supports bfloat16 (``torch.cuda.is_bf16_supported``: Ampere
and later); the device is :mod:`a3cs_plugin.rl.device`'s.
"""
from __future__ import annotations

import contextlib
import functools
import sys

import torch

from a3cs_plugin.errors import ConfigError

PRECISIONS = ("fp32", "bf16", "auto")


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when the CPU advertises bf16 arithmetic (x86 ``avx512_bf16``/``amx_bf16``, Arm ``bf16``)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("flags", "features")):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})
    except OSError:
        pass
    return False


def _device_type(device) -> str:
    return "cpu" if device is None else torch.device(device).type


def cuda_has_bf16() -> bool:
    try:
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    except Exception:  # noqa: BLE001 - a broken driver: no bf16
        return False


def resolve_precision(precision: str, device=None) -> str:
    """``fp32``/``bf16`` as given; ``auto`` -> ``bf16`` where ``device`` (default the CPU) has
    native bf16, else ``fp32``."""
    p = str(precision).lower()
    if p not in PRECISIONS:
        raise ConfigError(f"unknown precision '{precision}'", key="precision",
                          expected="fp32, bf16 or auto")
    if p == "auto":
        if _device_type(device) == "cuda":
            return "bf16" if cuda_has_bf16() else "fp32"
        return "bf16" if cpu_has_native_bf16() and torch.backends.mkldnn.is_available() else "fp32"
    if p == "bf16" and _device_type(device) == "cpu" and not cpu_has_native_bf16():
        _warn_emulated_bf16()
    return p


@functools.lru_cache(maxsize=1)
def _warn_emulated_bf16() -> None:
    """One line on stderr, once per process: bf16 was asked for on a CPU that emulates it.
    Measured on a 2-core AVX2 EPYC: PPO training of Nature-CNN ran more than 4x slower in bf16
    than in fp32 (120k frames: 145 s in fp32, unfinished after 600 s in bf16)."""
    print("a3cs: warning: precision bf16 on a CPU without native bf16 (no avx512_bf16/amx_bf16 "
          "flag): it is emulated and several times slower than fp32 here; 'auto' picks fp32 on "
          "this CPU", file=sys.stderr, flush=True)


def autocast(precision: str, device=None):
    """Context manager running the enclosed forward passes at ``precision`` on ``device``'s
    type (default the CPU); a no-op for fp32."""
    if resolve_precision(precision, device) == "bf16":
        return torch.autocast(_device_type(device), dtype=torch.bfloat16)
    return contextlib.nullcontext()
