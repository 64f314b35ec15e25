"""The compute device of a3cs: one resolver for ``--device`` and the ``device:`` config key.

``auto`` (the default) takes the first CUDA GPU when torch sees one and the CPU otherwise;
``cpu``, ``cuda`` and ``cuda:N`` name one device.  Everything downstream takes the
:class:`torch.device` this returns -- models, rollout buffers, teachers, the update and the
supernet are moved with ``.to(device)``; nothing in the package calls ``.cuda()``.

Where the data lives (the rule the RL engine follows on every device):

* observations come from the emulator as uint8 and are copied to the device once per step,
  uint8, into the rollout's observation buffer there; the /255 scaling happens on the device;
* per-step action sampling runs on the CPU on the small ``(envs, actions)`` logits (the actions
  go to the emulator anyway), with the same torch generator whatever the device, so a run's random
  stream does not depend on where the network runs;
* rewards, done flags, log-probabilities and values are gathered on the CPU during the rollout
  and moved to the device once per rollout, where GAE, the minibatch passes and the optimiser run.
"""
from __future__ import annotations

import re

import torch

from a3cs_plugin.errors import ConfigError

DEVICES = "auto, cpu, cuda or cuda:N"
_SPEC = re.compile(r"^(auto|cpu|cuda(?::(\d+))?)$")


def check_device_spec(spec, key: str = "device") -> str:
    """``spec`` normalised (lower case, stripped) when it is ``auto``, ``cpu``, ``cuda`` or
    ``cuda:N``; otherwise a one-line :class:`ConfigError` naming ``key``.  No CUDA check."""
    if not isinstance(spec, str) or not _SPEC.match(spec.strip().lower()):
        raise ConfigError("unknown device", key=key, expected=DEVICES, got=spec)
    return spec.strip().lower()


def cuda_count() -> int:
    try:
        return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001 - a broken driver counts as no GPU
        return 0


def resolve_device(spec="auto", key: str = "device") -> torch.device:
    """The :class:`torch.device` of ``spec`` (a string as above, or a ``torch.device``).

    ``auto``: ``cuda:0`` when torch sees a GPU, else ``cpu``.  ``cuda``/``cuda:N`` on a machine
    without that GPU is a one-line :class:`ConfigError` naming ``key`` (not a CUDA traceback)."""
    if isinstance(spec, torch.device):
        spec = str(spec)
    s = check_device_spec(spec if spec is not None else "auto", key)
    n = cuda_count()
    if s == "auto":
        return torch.device("cuda", 0) if n else torch.device("cpu")
    if s == "cpu":
        return torch.device("cpu")
    index = int(s.split(":", 1)[1]) if ":" in s else 0
    if n == 0:
        build = "a CPU-only torch build" if torch.version.cuda is None else "no GPU visible"
        raise ConfigError(f"CUDA requested but this machine has none ({build})", key=key,
                          expected="cpu or auto here", got=spec)
    if index >= n:
        raise ConfigError(f"no GPU {index} (this machine has {n})", key=key,
                          expected=f"cuda:0..cuda:{n - 1}, cpu or auto", got=spec)
    return torch.device("cuda", index)


def lightning_accelerator(device: torch.device) -> dict:
    """Lightning ``Trainer`` arguments for ``device``: ``accelerator``, ``devices`` and a
    checkpoint reader that maps every tensor to the CPU first (:func:`cpu_checkpoint_io`), so a
    search checkpointed on a GPU resumes on a CPU-only machine and the other way round."""
    device = torch.device(device)
    plugins = [cpu_checkpoint_io()]
    if device.type == "cuda":
        return {"accelerator": "gpu", "devices": [device.index or 0], "plugins": plugins}
    return {"accelerator": "cpu", "devices": 1, "plugins": plugins}


def cpu_checkpoint_io():
    """Lightning's ``TorchCheckpointIO`` loading with ``map_location="cpu"``: Lightning then copies
    the weights into the model where it runs and the optimiser moves its state to the weights'
    device (its default keeps each tensor where it was saved: a CUDA checkpoint fails without CUDA)."""
    from pytorch_lightning.plugins.io import TorchCheckpointIO

    class CPUMapCheckpointIO(TorchCheckpointIO):
        def load_checkpoint(self, path, map_location=None, weights_only=None):
            return super().load_checkpoint(path, map_location="cpu", weights_only=weights_only)

    return CPUMapCheckpointIO()


def describe(device: torch.device) -> str:
    """``cpu`` or ``cuda:0 (NVIDIA ...)``: for logs and reports."""
    device = torch.device(device)
    if device.type == "cuda":
        try:
            return f"{device} ({torch.cuda.get_device_name(device)})"
        except Exception:  # noqa: BLE001
            return str(device)
    return str(device)
