"""The one on-policy loop of a3cs: rollout -> algorithm update, with annealed learning rate.

:class:`Learner` owns everything one on-policy learner needs -- the registered algorithm
(:mod:`a3cs_plugin.rl.algorithms`) and its typed config, the model and the weights it steps, the
algorithm's optimiser, the rollout collector on a vector env, the action-sampling and minibatch
generators, the teacher and distillation weights, and the frame counter.  ``a3cs train`` /
``a3cs retrain`` / the search's fine-tune (:func:`a3cs_plugin.rl.trainer.train`) and the weight
step of the co-search (:class:`a3cs_plugin.strategy.rl_module.RolloutModule`) all call
:meth:`Learner.update`; the co-search passes ``hooks`` to step its architecture parameters on the
same minibatch losses.

Frames are emulator frames: ``num_envs * num_steps * frame_skip`` per rollout.

Device: the learner runs where the model's weights are (or on ``device`` when given: the model is
moved there); the teacher is moved to the same device, the rollouts are collected onto it
(:class:`a3cs_plugin.rl.rollout.RolloutCollector`).  The sampling and minibatch generators stay
CPU generators on every device.
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Iterable

import torch
from torch import nn

from a3cs_plugin.rl.algorithms import get as get_algorithm
from a3cs_plugin.rl.config import DistillConfig, algo_config, annealed_lr
from a3cs_plugin.rl.envs import make_grouped_train_env
from a3cs_plugin.rl.rollout import Rollout, RolloutCollector, UpdateHooks

FRAME_SKIP = 4


class Learner:
    """One on-policy learner (see the module docstring).

    Parameters
    ----------
    algo, hp
        Registered algorithm name and overrides of its config.
    model
        ``obs_uint8 -> (logits, value)`` module.
    params
        The weights to optimise (default: all of ``model``'s); a supernet passes its weights
        without the architecture logits.
    game, seed, env_threads, env_groups
        The training vector env (created lazily, seeded with ``seed`` until :meth:`reset_envs`):
        ``env_groups`` groups of envs (:class:`~a3cs_plugin.rl.envs.GroupedVectorEnv`; the
        network runs on one group while the emulator steps the other, same frames and actions
        as one group), each with ``env_threads`` emulator threads.
    device
        A :class:`torch.device` (:func:`a3cs_plugin.rl.device.resolve_device`); default: the
        device of the model's weights.
    update_threads
        Torch intra-op threads for the algorithm update only (0: whatever torch has).  The
        rollout's small batches run best on one thread while the emulator threads take the other
        cores; the update has no emulator beside it, so on an idle CPU it can use every core
        (idle 2-core machine, Nature-CNN PPO, `benchmarks/rl_throughput.py`: fp32 1,870 -> 2,605-2,890
        frames/s, bf16 3,672 -> 4,940-5,240).
        A fixed count is reproducible; the result depends on it only by float rounding.
    teacher, distill
        Optional teacher and :class:`DistillConfig`; distillation is on when both are given and
        the weights are not all zero.
    """

    def __init__(self, algo: str, hp: dict | None, model: nn.Module, *, game: str, seed: int = 1,
                 params: Iterable[nn.Parameter] | None = None, teacher: nn.Module | None = None,
                 distill: DistillConfig | None = None, env_threads: int = 1,
                 env_groups: int = 2, optimizer: torch.optim.Optimizer | None = None, device=None,
                 update_threads: int = 0):
        self.algorithm = get_algorithm(algo)
        self.cfg = algo_config(self.algorithm.name, **(hp or {}))
        self.device = model_device(model) if device is None else torch.device(device)
        if device is not None:
            model.to(self.device)
        if teacher is not None:
            teacher.to(self.device)
        self.model = model
        self.params = list(model.parameters() if params is None else params)
        self.optimizer = optimizer if optimizer is not None else \
            self.algorithm.make_optimizer(self.params, self.cfg)
        self.game = game
        self.seed = int(seed)
        self.env_threads = int(env_threads)
        self.env_groups = int(env_groups)
        self.update_threads = int(update_threads)
        self.teacher = teacher
        self.distill = distill if distill is not None else DistillConfig()
        self.sample_gen = torch.Generator().manual_seed(self.seed * 2 + 1)
        self.minibatch_gen = torch.Generator().manual_seed(self.seed * 2 + 2)
        self.frames = 0
        self._collector: RolloutCollector | None = None

    # ------------------------------------------------------------------ environment
    @property
    def frames_per_rollout(self) -> int:
        return self.cfg.batch_size * FRAME_SKIP

    @property
    def distilling(self) -> bool:
        return self.teacher is not None and self.distill.enabled

    @property
    def collector(self) -> RolloutCollector:
        if self._collector is None:
            env = make_grouped_train_env(self.game, self.cfg.num_envs, groups=self.env_groups,
                                         num_threads=self.env_threads)
            self._collector = RolloutCollector(env, self.cfg.num_steps, generator=self.sample_gen,
                                               frame_skip=FRAME_SKIP, precision=self.cfg.precision,
                                               device=self.device)
            self._collector.reset(seed=self.seed)
        return self._collector

    def reset_envs(self, seed: int) -> None:
        """Re-seed every env (start of a segment / epoch: what makes resuming exact)."""
        self.collector.reset(seed=int(seed))

    def close(self) -> None:
        if self._collector is not None:
            self._collector.env.close()
            self._collector = None

    def pop_episodes(self) -> list[tuple[float, int]]:
        return self.collector.pop_episodes() if self._collector is not None else []

    # ------------------------------------------------------------------ learning
    def set_lr(self, update: int, total_updates: int) -> float:
        lr = annealed_lr(self.cfg, update, total_updates)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        return lr

    def collect(self) -> Rollout:
        """One rollout with the current model (counts its frames)."""
        self.model.train()
        rollout = self.collector.collect(self.model)
        self.frames += self.frames_per_rollout
        return rollout

    def learn(self, rollout: Rollout, hooks: UpdateHooks | None = None, *,
              step_weights: bool = True) -> dict[str, float]:
        """The algorithm's update on ``rollout`` (distillation added when on).

        ``step_weights=False`` runs the same losses over the rollout once (one epoch) without
        stepping the weights: only ``hooks`` act (the architecture step of bi-level search)."""
        cfg, optimizer = self.cfg, self.optimizer
        if not step_weights:
            optimizer = _NoStep(self.params)
            if hasattr(cfg, "update_epochs"):
                cfg = dataclasses.replace(cfg, update_epochs=1)
        with intra_op_threads(self.update_threads if self.device.type == "cpu" else 0):
            return self.algorithm.update(
                self.model, optimizer, rollout, cfg, generator=self.minibatch_gen,
                teacher=self.teacher if self.distilling else None,
                distill=self.distill if self.distilling else None, params=self.params, hooks=hooks)

    def update(self, update: int, total_updates: int, hooks: UpdateHooks | None = None
               ) -> dict[str, float]:
        """LR for ``update`` of ``total_updates``, one rollout, one algorithm update; stats."""
        lr = self.set_lr(update, total_updates)
        stats = self.learn(self.collect(), hooks)
        stats["lr"] = lr
        return stats

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "frames": self.frames,
                "rng": {"sample": self.sample_gen.get_state(),
                        "minibatch": self.minibatch_gen.get_state()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.frames = int(state.get("frames", 0))
        rng = state.get("rng", {})
        if "sample" in rng:
            self.sample_gen.set_state(rng["sample"])
        if "minibatch" in rng:
            self.minibatch_gen.set_state(rng["minibatch"])


@contextlib.contextmanager
def intra_op_threads(n: int):
    """Torch intra-op threads set to ``n`` inside the block, restored after (``n`` 0: unchanged)."""
    before = torch.get_num_threads()
    if n > 0 and n != before:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter or buffer (the CPU for a module without any)."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


class _NoStep(torch.optim.Optimizer):
    """An optimiser that only clears gradients (weights frozen for an architecture pass)."""

    def __init__(self, params):
        super().__init__(list(params), {"lr": 0.0})

    def step(self, closure=None):  # noqa: D102 - frozen weights
        return None
