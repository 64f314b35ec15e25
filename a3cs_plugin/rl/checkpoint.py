"""Checkpoints and agent files.

Two formats, both plain ``torch.save`` dicts readable with ``torch.load(weights_only=True)``:

* ``a3cs-rl-checkpoint`` -- a training run's state: model, optimiser, RNG states, frame count,
  update and env-segment index, config.  Written atomically (temp file + rename) to
  ``<run>/checkpoints/last.pt``, so a run killed mid-write keeps the previous one.
* ``a3cs-agent`` -- weights only (optionally fp16) plus metadata (agent, game, num_actions,
  frames, eval score): the shipped teachers.

:func:`load_agent` builds the zoo agent from either.  Every problem raises :class:`CheckpointError`.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from a3cs_plugin.errors import A3CSError, CheckpointError

RUN_FORMAT = "a3cs-rl-checkpoint"
AGENT_FORMAT = "a3cs-agent"
_REQUIRED = ("agent", "game", "num_actions", "model")


def checkpoint_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints" / "last.pt"


def save_atomic(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temp file in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_checkpoint(path: str | Path) -> dict:
    """Load and validate a run checkpoint or agent file (or a run directory's last checkpoint)."""
    p = Path(path)
    if p.is_dir():
        p = checkpoint_path(p)
    if not p.is_file():
        raise CheckpointError("checkpoint not found", file=str(p),
                              expected="a .pt file written by `a3cs train` or a teacher file")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise CheckpointError(f"corrupt or unreadable checkpoint ({type(exc).__name__})",
                              file=str(p)) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") not in (RUN_FORMAT, AGENT_FORMAT):
        raise CheckpointError("not an a3cs checkpoint", file=str(p),
                              expected=f"format {RUN_FORMAT!r} or {AGENT_FORMAT!r}")
    missing = [k for k in _REQUIRED if k not in ckpt]
    if missing:
        raise CheckpointError("incomplete checkpoint", file=str(p), key=missing[0])
    ckpt["path"] = str(p)
    return ckpt


def load_agent(source: str | Path | dict, *, game: str | None = None,
               num_actions: int | None = None, device=None) -> tuple[nn.Module, dict]:
    """Zoo agent with the weights of ``source`` (path or loaded checkpoint) in eval mode.

    ``game``/``num_actions``, when given, must match the checkpoint's (else CheckpointError).
    Returns ``(model, metadata)``; metadata is the checkpoint without tensors.  Files load on
    the CPU whatever device wrote them; ``device`` (a :class:`torch.device`) then moves the model.
    """
    from a3cs_plugin.agents.zoo import build_model
    from a3cs_plugin.rl.envs import game_label

    ckpt = source if isinstance(source, dict) else load_checkpoint(source)
    where = ckpt.get("path", "<checkpoint>")
    if game is not None and game_label(game) != game_label(ckpt["game"]):
        raise CheckpointError(f"checkpoint is for game {ckpt['game']}, not {game_label(game)}",
                              file=where, key="game")
    if num_actions is not None and int(num_actions) != int(ckpt["num_actions"]):
        raise CheckpointError(f"checkpoint has {ckpt['num_actions']} actions, the game needs "
                              f"{num_actions}", file=where, key="num_actions")
    try:
        cfg = ckpt.get("config") or {}
        model = build_model(ckpt["agent"], int(ckpt["num_actions"]),
                            arch=ckpt.get("arch") or cfg.get("arch"),
                            num_cells=ckpt.get("num_cells") or cfg.get("num_cells"))
        state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
        model.load_state_dict(state)
    except A3CSError as exc:
        raise CheckpointError(exc.message, file=where) from None
    except (RuntimeError, AttributeError, TypeError) as exc:
        raise CheckpointError("weights do not fit the agent "
                              f"'{ckpt['agent']}' ({str(exc).splitlines()[0][:120]})",
                              file=where, key="model") from None
    model.eval()
    if device is not None:
        model.to(torch.device(device))
    meta = {k: v for k, v in ckpt.items() if k not in ("model", "optimizer", "rng")}
    return model, meta


def agent_file(model: nn.Module, *, agent: str, game: str, num_actions: int, frames: int,
               fp16: bool = True, **extra: Any) -> dict:
    """Weights-only agent dict (``a3cs-agent``) for shipping."""
    state = {k: (v.detach().half() if fp16 and v.is_floating_point() else v.detach()).to(
                 "cpu", copy=True) for k, v in model.state_dict().items()}   # device-neutral file
    return {"format": AGENT_FORMAT, "agent": agent, "game": game, "num_actions": int(num_actions),
            "frames": int(frames), "fp16": bool(fp16), "model": state, **extra}
