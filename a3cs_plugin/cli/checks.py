"""Checks of command-line values, made before a command starts any work (one-line errors)."""
from __future__ import annotations

import math
from pathlib import Path

from a3cs_plugin.errors import ConfigError


def at_least(flag: str, value, low: int = 1) -> None:
    """An integer flag that counts or sizes something: ``value >= low``."""
    if value is not None and value < low:
        raise ConfigError("out of range", key=flag, expected=f"an integer >= {low}", got=value)


def positive_seconds(flag: str, value) -> None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise ConfigError("must be a finite number of seconds > 0", key=flag, expected="seconds > 0",
                          got=value)


def weight(flag: str, value) -> None:
    """A loss weight: finite and >= 0."""
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise ConfigError("must be a finite number >= 0", key=flag, expected="a weight >= 0", got=value)


def out_dir(flag: str, path) -> None:
    """An output directory: it (or the nearest existing parent) must not be a file."""
    if path is None:
        return
    p = Path(path)
    for q in (p, *p.parents):
        if q.exists():
            if not q.is_dir():
                raise ConfigError("is a file, not a directory" if q == p else f"{q} is a file",
                                  file=str(path), key=flag, expected="a directory (or a new path)")
            return


def resume_dir(flag: str, path, marker: str) -> None:
    """``--resume`` needs the run directory of an earlier run (holding ``marker``)."""
    p = Path(path)
    if not p.is_dir():
        raise ConfigError("--resume: no run directory here", file=str(path), key=flag,
                          expected="the --out directory of an interrupted run (drop --resume to start one)")
    if marker and not (p / marker).exists():
        raise ConfigError(f"--resume: no {marker} in this directory", file=str(path), key=flag,
                          expected="the --out directory of an interrupted run (drop --resume to start one)")


def seed(text: str) -> int:
    """argparse type of ``--seed``: an integer >= 0 (numpy's generators reject negative seeds)."""
    import argparse
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid seed {text!r}: expected an integer >= 0") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid seed {text!r}: expected an integer >= 0")
    return value


DEVICE_HELP = ("compute device: auto (a GPU when torch sees one, else the CPU; the default), cpu, "
               "cuda or cuda:N")


def add_device_flag(parser, default: str = "auto") -> None:
    """``--device auto|cpu|cuda[:N]`` (checked by :func:`device` when the command starts)."""
    parser.add_argument("--device", default=default, metavar="DEVICE", help=DEVICE_HELP)


def device(flag: str, value):
    """The :class:`torch.device` of a ``--device`` value; a bad name, or CUDA on a machine
    without it, is a one-line error naming the flag."""
    from a3cs_plugin.rl.device import resolve_device
    return resolve_device(value, key=flag)
