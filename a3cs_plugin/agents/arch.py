"""Architecture labels and JSON I/O.

An architecture is a plain JSON object ``{"cell_00": "k3_e6", "cell_01": "skip", ...}``: one entry
per searchable cell, label -> op name (see :data:`a3cs_plugin.agents.ops.OP_NAMES`).
"""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigError
from .ops import OP_NAMES, op_names  # noqa: F401 (OP_NAMES: the built-ins, for readers)

__all__ = ["cell_label", "cell_labels", "validate_arch", "export_arch", "load_arch", "random_arch",
           "network_problems"]


def cell_label(i: int) -> str:
    """Stable NNI label of cell ``i``: ``cell_00``, ``cell_01``, ..."""
    return f"cell_{int(i):02d}"


def cell_labels(num_cells: int) -> list[str]:
    return [cell_label(i) for i in range(int(num_cells))]


def validate_arch(arch: Any, labels: list[str] | None = None, ops: tuple[str, ...] | None = None, *,
                  file: str | None = None) -> dict[str, str]:
    """Check ``arch`` against the cell ``labels`` and op names; return a clean ``{label: op}`` dict.

    ``labels=None`` accepts any ``cell_NN`` labels that form ``cell_00 .. cell_{n-1}``;
    ``ops=None`` the registered ops (:func:`a3cs_plugin.agents.ops.op_names`).
    """
    ops = op_names() if ops is None else ops
    if not isinstance(arch, Mapping):
        raise ConfigError("architecture must be a JSON object {label: op_name}", file=file,
                          expected="{'cell_00': 'k3_e6', ...}", got=type(arch).__name__)
    if labels is None:
        # cell_00 .. the highest cell_NN given: a gap is reported as the missing label
        import re
        nums = [int(m.group(1)) for m in (re.fullmatch(r"cell_(\d+)", str(k)) for k in arch) if m]
        labels = cell_labels(max(nums) + 1 if nums else len(arch))
    allowed = set(labels)
    for key in arch:
        if key not in allowed:
            raise ConfigError(f"unknown cell label {key!r}", file=file, key=str(key),
                              expected=f"labels {labels[0]}..{labels[-1]}" if labels else "no labels")
    out: dict[str, str] = {}
    for label in labels:
        if label not in arch:
            raise ConfigError(f"missing cell label {label!r}", file=file, key=label,
                              expected="one of " + ", ".join(ops))
        op = arch[label]
        if op not in ops:
            raise ConfigError(f"unknown op {op!r} for {label}", file=file, key=label,
                              expected="one of " + ", ".join(ops))
        out[label] = str(op)
    return out


def export_arch(arch: Mapping[str, str], path: str | Path, space: Any = None) -> Path:
    """Write ``arch`` as a JSON object (validated against ``space`` when given); return the path."""
    labels = list(space.cell_labels) if space is not None else None
    clean = validate_arch(dict(arch), labels, file=str(path))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(clean, indent=2) + "\n")
    return path


def load_arch(path: str | Path, space: Any = None) -> dict[str, str]:
    """Read an architecture JSON file; validate it against ``space`` (an ``AgentSpace``) when given."""
    path = Path(path)
    from a3cs_plugin.hardware.spec.yamlio import read_text
    text = read_text(path, ConfigError)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"invalid JSON at line {exc.lineno} column {exc.colno}", file=str(path),
                          expected="a JSON object {label: op_name}") from exc
    labels = list(space.cell_labels) if space is not None else None
    return validate_arch(data, labels, file=str(path))


def random_arch(labels: list[str] | int, seed: int | None = None, ops: tuple[str, ...] | None = None) -> dict[str, str]:
    """Uniformly random architecture over ``labels`` (or ``cell_00..`` for an int)."""
    if isinstance(labels, int):
        labels = cell_labels(labels)
    rng = random.Random(seed)
    ops = op_names() if ops is None else ops
    return {label: rng.choice(ops) for label in labels}


def network_problems(model: str | None = None, agent_arch: str | Path | Mapping[str, str] | None = None,
                     num_actions: int = 6, batch: int = 1, **space_kwargs: Any) -> list:
    """Timeloop problems of a whole agent: a zoo name (``nature_cnn``, ``resnet14`` ...) or an agent
    architecture (JSON file path or ``{label: op}`` dict; built in the default :class:`AgentSpace`
    unless ``space_kwargs`` say otherwise).  Returns ``list[LayerProblem]`` for batch size ``batch``.
    """
    import torch
    from ..hardware.workload import problems_from_module

    if (model is None) == (agent_arch is None):
        raise ConfigError("give exactly one of a zoo model name or an agent architecture",
                          key="model/agent", expected="--model NAME or --agent ARCH.json")
    if model is not None:
        from .zoo import build_agent
        net = build_agent(model, num_actions)
        return problems_from_module(net, torch.zeros((int(batch), 4, 84, 84), dtype=torch.uint8))
    from .space import AgentSpace
    if isinstance(agent_arch, Mapping):
        arch = dict(agent_arch)
        num_cells = len(arch)
    else:
        arch = load_arch(agent_arch)
        num_cells = len(arch)
    space_kwargs.setdefault("num_cells", num_cells)
    space = AgentSpace(num_actions, **space_kwargs)
    arch = space.validate(arch)
    return space.arch_problems(arch, batch=batch)
