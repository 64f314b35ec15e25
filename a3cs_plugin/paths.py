"""Where the shipped Timeloop specs (``arch_specs/``) live, in a checkout and in an installed package.

Lookup order: the ``A3CS_ARCH_SPECS`` environment variable; ``arch_specs/`` next to the package (a
source checkout or an editable install); ``<prefix>/share/a3cs/arch_specs`` (a wheel install, see
``[options.data_files]`` in ``setup.cfg``).
"""
from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

__all__ = ["arch_specs_dir", "template_dir"]


def _candidates() -> list[Path]:
    out = []
    env = os.environ.get("A3CS_ARCH_SPECS")
    if env:
        out.append(Path(env))
    out.append(Path(__file__).resolve().parents[1] / "arch_specs")
    for prefix in (sys.prefix, sysconfig.get_paths().get("data"), sys.base_prefix):
        if prefix:
            out.append(Path(prefix) / "share" / "a3cs" / "arch_specs")
    return out


def arch_specs_dir() -> Path:
    """The first existing ``arch_specs`` directory (the checkout's one when none is installed)."""
    cands = _candidates()
    for c in cands:
        if (c / "templates").is_dir():
            return c
    return cands[1] if not os.environ.get("A3CS_ARCH_SPECS") else cands[0]


def template_dir() -> Path:
    """``arch_specs/templates`` (parameterised design-space templates)."""
    return arch_specs_dir() / "templates"


def arch_spec(name: str) -> Path:
    """``arch_specs/NAME.yaml`` (or ``NAME`` itself when it is a file)."""
    p = Path(name)
    if p.is_file():
        return p
    cand = arch_specs_dir() / f"{name}.yaml"
    if not cand.is_file():
        from a3cs_plugin.errors import ConfigError
        have = ", ".join(sorted(q.stem for q in arch_specs_dir().glob("*.yaml") if q.stem != "mapper"))
        raise ConfigError(f"no accelerator spec '{name}'", file=str(cand), expected=f"one of {have} or a file")
    return cand
