"""The RL side of the co-search inside Lightning: a loader of update indices and the learner.

:class:`RolloutModule` is the evaluator module of the co-search (an NNI ``LightningModule``).  It
holds one :class:`a3cs_plugin.rl.loop.Learner` -- the same loop as ``a3cs train`` -- over the
supernet's weights; the one-shot module runs the registered algorithm's real update on each
rollout (PPO: GAE, epochs x minibatches, ratio and value clipping, LR annealing; A2C: RMSprop), with
the distillation terms (actor ``KL(pi_T||pi_S)``, critic ``MSE(V_T, V_S)``) in its loss.
"""
from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import torch
from torch import nn

from nni.nas.evaluator.pytorch import DataLoader
from nni.nas.evaluator.pytorch.lightning import LightningModule

from a3cs_plugin.errors import ConfigError
from a3cs_plugin.rl.algorithms import get as get_algorithm
from a3cs_plugin.rl.config import DistillConfig, algo_config
from a3cs_plugin.rl.loop import Learner
from a3cs_plugin.rl.rollout import fast_layout


class _Steps(torch.utils.data.Dataset):
    """``range(n)`` as a map-style dataset: one item = one update of the search."""

    def __init__(self, n: int):
        self.n = int(n)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


def step_loader(num_updates: int) -> Any:
    """Traced NNI DataLoader yielding update indices ``0..num_updates-1`` (no batching)."""
    if int(num_updates) < 1:
        raise ConfigError("a search needs at least one update", key="updates", expected=">= 1", got=num_updates)
    return DataLoader(_Steps(num_updates), batch_size=None, shuffle=False)


class RolloutModule(LightningModule):
    """The evaluator module of the co-search: one :class:`~a3cs_plugin.rl.loop.Learner` (the RL
    loop of ``a3cs train``) over the supernet's weights.

    The one-shot module (:class:`~a3cs_plugin.strategy.a3cs.A3CSModule`) calls :meth:`learner`
    and runs the algorithm's real update per search step; used alone under automatic
    optimisation, :meth:`training_step` does the same without architecture steps.

    Parameters
    ----------
    game
        ALE game (``Pong``).
    algo
        A registered algorithm (:mod:`a3cs_plugin.rl.algorithms`): ``"ppo"``, ``"a2c"``.
    hp
        Overrides of its config (``num_envs``, ``num_steps``, ``lr``, ``update_epochs``...).
    teacher
        Teacher agent ``obs_uint8 -> (logits, value)`` or ``None`` (no distillation).
    distill_actor, distill_critic
        Weights of the actor KL and critic MSE terms.
    """

    def __init__(self, game: str = "Pong", algo: str = "ppo", hp: dict | None = None,
                 teacher: nn.Module | None = None, distill_actor: float = 1.0, distill_critic: float = 0.5,
                 seed: int = 1, env_threads: int = 1):
        super().__init__()
        self.game = game
        self.algo = str(algo).lower()
        self.hp = dict(hp or {})
        self.cfg = algo_config(self.algo, **self.hp)
        self._teacher = [teacher.eval()] if teacher is not None else []   # list: not a submodule
        if teacher is not None:
            for p in teacher.parameters():
                p.requires_grad_(False)
        self.distill_actor, self.distill_critic = float(distill_actor), float(distill_critic)
        self.distill_enabled = teacher is not None and (self.distill_actor > 0 or self.distill_critic > 0)
        self.seed = int(seed)
        self.env_threads = int(env_threads)
        self.weight_updates = 0
        self.episodes: deque[float] = deque(maxlen=20)
        self.all_episodes: list[tuple[int, float]] = []      # (frames, return)
        self._learner: list[Learner] = []                    # list: not a submodule
        self._pending_state: dict | None = None

    # ----- setup ------------------------------------------------------------------------------
    @property
    def teacher(self) -> nn.Module | None:
        return self._teacher[0] if self._teacher else None

    def set_distillation(self, enabled: bool) -> None:
        """Switch distillation on/off (off for the direct-NAS baseline)."""
        self.distill_enabled = bool(enabled) and self.teacher is not None and \
            (self.distill_actor > 0 or self.distill_critic > 0)

    def learner(self, params=None, optimizer=None) -> Learner:
        """The learner over ``params`` with ``optimizer`` (created on first call)."""
        if not self._learner:
            fast_layout(self.model)   # channels-last convs: ~2x faster supernet passes on CPU
            distill = DistillConfig(actor=self.distill_actor, critic=self.distill_critic) \
                if self.distill_enabled else DistillConfig()
            lrn = Learner(self.algo, self.hp, self.model, game=self.game, seed=self.seed,
                          params=params, optimizer=optimizer,
                          teacher=self.teacher if self.distill_enabled else None,
                          distill=distill, env_threads=self.env_threads)
            if self._pending_state is not None:
                lrn.frames = int(self._pending_state.get("frames", 0))
                rng = self._pending_state.get("rng", {})
                if "sample" in rng:
                    lrn.sample_gen.set_state(rng["sample"])
                    lrn.minibatch_gen.set_state(rng["minibatch"])
                self._pending_state = None
            self._learner.append(lrn)
        return self._learner[0]

    @property
    def frames(self) -> int:
        if self._learner:
            return self._learner[0].frames
        return int((self._pending_state or {}).get("frames", 0))

    def start_epoch(self, epoch: int) -> None:
        """Re-seed the envs from ``(seed, epoch)``: a run resumed at an epoch boundary continues
        exactly as the uninterrupted one (generators and weights come from the checkpoint)."""
        from a3cs_plugin.rl.trainer import env_seed
        self.learner().reset_envs(env_seed(self.seed, epoch))

    def record_episodes(self) -> None:
        for ret, _ in self.learner().pop_episodes():
            self.episodes.append(ret)
            self.all_episodes.append((self.frames, ret))

    def close(self) -> None:
        if self._learner:
            self._learner[0].close()

    def teardown(self, stage: str | None = None) -> None:
        self.close()

    def configure_optimizers(self):
        # the algorithm's own optimiser (PPO: Adam eps 1e-5; A2C: TF-style RMSprop); NNI's one-shot
        # module removes the architecture parameters from it
        return get_algorithm(self.algo).make_optimizer(list(self.model.parameters()), self.cfg)

    def forward(self, obs):
        return self.model(obs)

    def training_step(self, batch, batch_idx):
        """Alone (automatic optimisation): one learner update with the algorithm's own steps."""
        opt = self.optimizers()
        lrn = self.learner(optimizer=getattr(opt, "optimizer", opt))
        total = self.trainer.max_epochs * self.trainer.num_training_batches
        stats = lrn.update(self.weight_updates, int(total))
        self.weight_updates += 1
        self.record_episodes()
        self.log_dict({f"train/{k}": v for k, v in stats.items()})
        return None

    def recent_score(self) -> float | None:
        """Mean return of the last (up to 20) finished training episodes (clipped rewards)."""
        return float(np.mean(self.episodes)) if self.episodes else None

    def on_save_checkpoint(self, checkpoint):
        lrn = self._learner[0] if self._learner else None
        checkpoint["rollout_module"] = {
            "frames": self.frames, "episodes": list(self.episodes), "all_episodes": self.all_episodes,
            "weight_updates": self.weight_updates,
            "rng": ({"sample": lrn.sample_gen.get_state(), "minibatch": lrn.minibatch_gen.get_state()}
                    if lrn is not None else {})}

    def on_load_checkpoint(self, checkpoint):
        state = checkpoint.get("rollout_module", {})
        self.episodes = deque(state.get("episodes", []), maxlen=20)
        self.all_episodes = [tuple(e) for e in state.get("all_episodes", [])]
        self.weight_updates = int(state.get("weight_updates", 0))
        self._pending_state = {"frames": int(state.get("frames", 0)), "rng": state.get("rng", {})}
        if self._learner:
            lrn, self._learner = self._learner[0], []
            lrn.close()


__all__ = ["RolloutModule", "step_loader"]
