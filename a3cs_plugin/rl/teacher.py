"""Shipped teachers: ``load_teacher("Pong")`` -> frozen ``(logits, value)`` module.

Teachers live in ``a3cs_plugin/teachers/<rom_id>.pt`` (``a3cs-agent`` files: fp16 weights plus
metadata).  A path to any a3cs checkpoint or agent file works too.
"""
from __future__ import annotations

from pathlib import Path

from torch import nn

from a3cs_plugin.errors import CheckpointError
from a3cs_plugin.rl.checkpoint import load_agent

TEACHER_DIR = Path(__file__).resolve().parent.parent / "teachers"


def shipped_teachers() -> list[str]:
    return sorted(p.stem for p in TEACHER_DIR.glob("*.pt"))


def teacher_path(game_or_path: str | Path) -> Path:
    """Path of the teacher for a game name, or ``game_or_path`` itself when it is a file path."""
    s = str(game_or_path)
    p = Path(s)
    if p.suffix == ".pt" or p.exists() or "/" in s:
        return p
    from a3cs_plugin.rl.envs import rom_id
    path = TEACHER_DIR / f"{rom_id(s)}.pt"
    if not path.is_file():
        have = ", ".join(shipped_teachers()) or "none"
        raise CheckpointError(f"no shipped teacher for game '{s}'", file=str(path),
                              expected=f"one of: {have} (or a checkpoint path)")
    return path


def load_teacher(game_or_path: str | Path, *, game: str | None = None,
                 num_actions: int | None = None, device=None) -> nn.Module:
    """Frozen teacher (eval mode, no gradients) for a game name or a checkpoint path.

    ``game``/``num_actions`` are checked against the teacher's metadata when given; ``device``
    (default the CPU) is where it runs.
    """
    model, meta = load_agent(teacher_path(game_or_path), game=game, num_actions=num_actions,
                             device=device)
    for p in model.parameters():
        p.requires_grad_(False)
    model.teacher_meta = meta
    return model
