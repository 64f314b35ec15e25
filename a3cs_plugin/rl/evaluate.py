"""Evaluation protocol: N full games, unclipped game score, the paper's metric.

``episodes`` evaluation envs run in one batch (:func:`a3cs_plugin.rl.envs.make_eval_env`: no reward
clipping, no life-loss terminations, same preprocessing as training, up to 30 no-op starts, 108k
frame cap); each env contributes exactly its first game, so short games are not over-represented.
Actions are sampled from the policy (seeded); ``greedy=True`` takes the arg-max instead.

``device``: where the network runs (the model is moved there; default: where its weights are);
observations go there once per step as uint8, actions are sampled on the CPU with a CPU
generator, so a seed gives the same games on every device up to the network's arithmetic.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from a3cs_plugin.errors import ConfigError
from a3cs_plugin.rl.envs import game_label, make_eval_env
from a3cs_plugin.rl.rollout import sample_actions


@dataclass
class EvalResult:
    game: str
    episodes: int
    mean: float
    std: float
    scores: list[float]
    lengths: list[int]       # emulator frames per game
    frames: int              # emulator frames of the counted games
    seed: int

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def evaluate(model: nn.Module, game: str, episodes: int = 30, *, seed: int = 12345,
             greedy: bool = False, num_threads: int = 1, device=None) -> EvalResult:
    """Play ``episodes`` games of ``game`` with ``model`` and return their unclipped scores."""
    if int(episodes) < 1:
        raise ConfigError("episodes must be >= 1", key="episodes", got=episodes)
    n = int(episodes)
    from a3cs_plugin.rl.loop import model_device
    if device is not None:
        model.to(torch.device(device))
    dev = model_device(model) if device is None else torch.device(device)
    cpu = torch.device("cpu")
    env = make_eval_env(game, n, num_threads=num_threads)
    gen = torch.Generator().manual_seed(int(seed))
    try:
        obs, _ = env.reset(seed=int(seed))
        scores = np.zeros(n)
        lengths = np.zeros(n, dtype=np.int64)
        active = np.ones(n, dtype=bool)
        was_training = model.training
        model.eval()
        while active.any():
            logits, _ = model(torch.from_numpy(np.ascontiguousarray(obs)).to(dev))
            logits = logits.to(cpu)
            if greedy:
                act = logits.argmax(-1)
            else:
                act, _ = sample_actions(logits, gen)
            obs, rew, term, trunc, _ = env.step(act.numpy().astype(np.int64))
            scores[active] += np.asarray(rew, dtype=np.float64)[active]
            lengths[active] += 4
            active &= ~(np.asarray(term) | np.asarray(trunc))
        model.train(was_training)
    finally:
        env.close()
    std = float(scores.std()) if n > 1 else 0.0
    return EvalResult(game_label(game), n, float(scores.mean()), std if math.isfinite(std) else 0.0,
                      [float(s) for s in scores], [int(x) for x in lengths], int(lengths.sum()),
                      int(seed))


class _RandomAgent(nn.Module):
    """Uniform-random policy (zero logits), the reference of the normalized score."""

    def __init__(self, num_actions: int):
        super().__init__()
        self.num_actions = int(num_actions)

    def forward(self, obs: torch.Tensor):
        n = obs.shape[0]
        return (torch.zeros(n, self.num_actions, device=obs.device),
                torch.zeros(n, device=obs.device))


def random_agent(num_actions: int) -> nn.Module:
    """An ``obs -> (logits, value)`` module that picks actions uniformly at random."""
    return _RandomAgent(num_actions)
