"""Atari environments for training and evaluation.

Both use ale-py's C++ vector environment :class:`ale_py.vector_env.AtariVectorEnv`, which does the
standard preprocessing natively (threads, no Python wrappers): frame-skip 4 with a max-pool over the
last two frames, 84x84 grey (area resize), a 4-frame stack, up to 30 no-op starts, FIRE on reset for
games that need it, and episodes capped at 108,000 emulator frames (30 minutes).

Protocol (the "classic" one of Mnih et al. 2015 / Schulman et al. 2017, ``*NoFrameskip-v4``):
``repeat_action_probability = 0`` (no sticky actions) in training *and* evaluation.

* Training (:func:`make_train_env`): rewards clipped to {-1, 0, +1} and a life loss reported as a
  termination (``life_loss_info``; the game itself continues until game over, like the usual
  ``EpisodicLifeEnv`` wrapper).  ``autoreset_mode=SameStep``: the observation returned with a done
  flag is already the first one of the next episode.
* Evaluation (:func:`make_eval_env`): unclipped rewards, full games (no life-loss terminations), the
  same preprocessing; the score is the game's own score, the metric of the paper.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from a3cs_plugin.errors import ConfigError

#: Sticky-action probability used everywhere (classic protocol).
REPEAT_ACTION_PROBABILITY = 0.0
MAX_EPISODE_FRAMES = 108_000


def _rom_ids() -> list[str]:
    from ale_py import roms
    return sorted(roms.get_all_rom_ids())


def rom_id(game: str) -> str:
    """ALE ROM id of ``game``: accepts ``Pong``, ``pong``, ``MsPacman``, ``ms_pacman``,
    ``ALE/Pong-v5`` and ``PongNoFrameskip-v4``.  Unknown -> :class:`ConfigError`."""
    name = str(game).strip()
    if name.startswith("ALE/"):
        name = name[4:]
    name = re.sub(r"(NoFrameskip)?-v\d+$", "", name)
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower().replace("-", "_")
    ids = _rom_ids()
    for cand in (snake, name.lower()):
        if cand in ids:
            return cand
    raise ConfigError(f"unknown Atari game '{game}'", key="game",
                      expected=f"an ALE ROM name such as Pong, Breakout, SpaceInvaders, MsPacman "
                               f"({len(ids)} installed)")


def game_label(game: str) -> str:
    """Canonical CamelCase name of ``game`` (``ms_pacman`` -> ``MsPacman``)."""
    return "".join(part.capitalize() for part in rom_id(game).split("_"))


@dataclass(frozen=True)
class EnvSpec:
    """What an agent for a game must match."""
    game: str
    num_actions: int


def make_train_env(game: str, num_envs: int, *, num_threads: int = 1,
                   noop_max: int = 30, frame_skip: int = 4, stack: int = 4,
                   episodic_life: bool = True, reward_clipping: bool = True):
    """Vector env for training (clipped rewards, life loss = termination)."""
    from ale_py.vector_env import AtariVectorEnv
    if int(num_envs) < 1:
        raise ConfigError("num_envs must be >= 1", key="num_envs", got=num_envs)
    return AtariVectorEnv(
        rom_id(game), int(num_envs), num_threads=int(num_threads), frameskip=int(frame_skip),
        stack_num=int(stack), noop_max=int(noop_max), episodic_life=False,
        life_loss_info=bool(episodic_life), reward_clipping=bool(reward_clipping),
        repeat_action_probability=REPEAT_ACTION_PROBABILITY,
        max_num_frames_per_episode=MAX_EPISODE_FRAMES, autoreset_mode="SameStep")


class GroupedVectorEnv:
    """``num_envs`` training envs as consecutive groups, each its own ale-py vector env (and
    emulator thread), behaving as one vector env of the same envs.

    Env ``i`` gets seed ``seed + i`` like in a single vector env, so with the same actions every
    env plays the same frames (tested).  The groups step asynchronously: :meth:`send` returns at
    once and :meth:`recv` waits for that group only.  The rollout collector uses this to run the
    network on one group while the emulator advances the other
    (:meth:`a3cs_plugin.rl.rollout.RolloutCollector.collect`); :meth:`step` sends every group
    before waiting for any, so the groups' emulators also run in parallel.
    """

    def __init__(self, envs: list):
        if not envs:
            raise ValueError("GroupedVectorEnv needs at least one group")
        self.envs = list(envs)
        sizes = [int(e.num_envs) for e in self.envs]
        self.slices = [slice(sum(sizes[:g]), sum(sizes[:g + 1])) for g in range(len(sizes))]
        self.num_envs = sum(sizes)
        self.single_observation_space = self.envs[0].single_observation_space
        self.single_action_space = self.envs[0].single_action_space

    @property
    def num_groups(self) -> int:
        return len(self.envs)

    def reset(self, *, seed: int | None = None):
        parts = [e.reset(seed=None if seed is None else int(seed) + sl.start)
                 for e, sl in zip(self.envs, self.slices)]
        obs = np.concatenate([o for o, _ in parts])
        return obs, self._join_info([i for _, i in parts])

    def send(self, group: int, actions) -> None:
        self.envs[group].send(np.ascontiguousarray(actions, dtype=np.int64))

    def recv(self, group: int):
        """``(obs, rewards, terminations, truncations, info)`` of ``group``'s envs, in order."""
        obs, rew, term, trunc, info = self.envs[group].recv()
        if "env_id" in info:
            info = dict(info, env_id=np.asarray(info["env_id"]) + self.slices[group].start)
        return obs, rew, term, trunc, info

    def step(self, actions):
        actions = np.asarray(actions, dtype=np.int64)
        for g, sl in enumerate(self.slices):
            self.send(g, actions[sl])
        parts = [self.recv(g) for g in range(self.num_groups)]
        arrays = tuple(np.concatenate(x) for x in zip(*(p[:4] for p in parts)))
        return (*arrays, self._join_info([p[4] for p in parts]))

    @staticmethod
    def _join_info(infos: list[dict]) -> dict:
        return {k: np.concatenate([np.asarray(i[k]) for i in infos]) for k in infos[0]}

    def close(self) -> None:
        for e in self.envs:
            e.close()


def make_grouped_train_env(game: str, num_envs: int, *, groups: int = 2, **kw) -> GroupedVectorEnv:
    """:func:`make_train_env`'s envs split into ``groups`` consecutive groups (at most one group
    per env; sizes differ by at most one) -- see :class:`GroupedVectorEnv`."""
    n = int(num_envs)
    if n < 1:
        raise ConfigError("num_envs must be >= 1", key="num_envs", got=num_envs)
    g = max(1, min(int(groups), n))
    sizes = [n // g + (1 if i < n % g else 0) for i in range(g)]
    return GroupedVectorEnv([make_train_env(game, s, **kw) for s in sizes])


def make_eval_env(game: str, num_envs: int, *, num_threads: int = 1, noop_max: int = 30):
    """Vector env for evaluation: unclipped full-game scores, same preprocessing."""
    return make_train_env(game, num_envs, num_threads=num_threads, noop_max=noop_max,
                          episodic_life=False, reward_clipping=False)


def env_spec(game: str) -> EnvSpec:
    """Game label and action count (minimal action set) of ``game``."""
    env = make_eval_env(game, 1)
    try:
        return EnvSpec(game_label(game), int(env.single_action_space.n))
    finally:
        env.close()


def random_actions(rng: np.random.Generator, num_envs: int, num_actions: int) -> np.ndarray:
    return rng.integers(0, num_actions, size=num_envs, dtype=np.int64)
