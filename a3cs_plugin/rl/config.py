"""Typed hyper-parameters of the RL engine (frozen-free dataclasses, validated on construction).

Defaults come from the literature:

* :class:`PPOConfig` -- PPO on Atari, Schulman et al. 2017 (Table 5) as implemented by CleanRL's
  ``ppo_atari.py`` (Huang et al. 2022): 8 envs x 128 steps, 4 epochs, 4 minibatches, lr 2.5e-4
  linearly annealed, clip 0.1, GAE(0.99, 0.95), entropy 0.01, value 0.5 with clipping, grad-norm 0.5.
* :class:`A2CConfig` -- A2C/A3C, Mnih et al. 2016 as in Stable-Baselines3/rl-zoo Atari: 16 envs x
  5 steps, TF-style RMSprop(lr 7e-4, alpha 0.99, eps 1e-5; rl-zoo's ``RMSpropTFLike``), entropy 0.01, value 0.25, grad-norm 0.5,
  n-step returns (GAE lambda 1), lr annealed linearly.
* :class:`DistillConfig` -- A3C-S (Fu et al. 2021) distillation: actor KL(pi_T || pi_S) and critic
  MSE(V_T, V_S), each with a weight; both 0 disables distillation.

``precision`` (both algorithms) is an engine setting, not a hyper-parameter of the papers: ``fp32``
(default) or ``bf16`` autocast for the network passes (:mod:`a3cs_plugin.rl.precision`).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from a3cs_plugin.errors import ConfigError


def _check(cond: bool, key: str, expected: str, got: Any) -> None:
    if not cond:
        raise ConfigError("invalid hyper-parameter", key=key, expected=expected, got=got)


@dataclass
class PPOConfig:
    """PPO hyper-parameters (Schulman et al. 2017; CleanRL ``ppo_atari``)."""
    num_envs: int = 8
    num_steps: int = 128
    lr: float = 2.5e-4
    adam_eps: float = 1e-5
    anneal_lr: bool = True
    gamma: float = 0.99
    gae_lambda: float = 0.95
    update_epochs: int = 4
    num_minibatches: int = 4
    norm_adv: bool = True
    clip_coef: float = 0.1
    clip_vloss: bool = True
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    precision: str = "fp32"          # fp32 | bf16 | auto (a3cs_plugin.rl.precision)

    def __post_init__(self) -> None:
        _validate_common(self)
        _check(self.update_epochs >= 1, "update_epochs", ">= 1", self.update_epochs)
        _check(self.num_minibatches >= 1 and self.batch_size % self.num_minibatches == 0,
               "num_minibatches", f"a divisor of num_envs*num_steps={self.batch_size}",
               self.num_minibatches)
        _check(self.clip_coef > 0, "clip_coef", "> 0", self.clip_coef)

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches


@dataclass
class A2CConfig:
    """A2C hyper-parameters (Mnih et al. 2016; Stable-Baselines3 / rl-zoo Atari)."""
    num_envs: int = 16
    num_steps: int = 5
    lr: float = 7e-4
    rms_alpha: float = 0.99
    rms_eps: float = 1e-5
    anneal_lr: bool = True
    gamma: float = 0.99
    gae_lambda: float = 1.0
    norm_adv: bool = False
    ent_coef: float = 0.01
    vf_coef: float = 0.25
    max_grad_norm: float = 0.5
    precision: str = "fp32"          # fp32 | bf16 | auto (a3cs_plugin.rl.precision)

    def __post_init__(self) -> None:
        _validate_common(self)

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps


def annealed_lr(cfg: "PPOConfig | A2CConfig", update: int, total_updates: int) -> float:
    """Learning rate for ``update`` (from 0): linear from ``cfg.lr`` to 0 over ``total_updates`` when
    ``cfg.anneal_lr``, else constant.  Shared by PPO and A2C."""
    if not cfg.anneal_lr or total_updates <= 0:
        return cfg.lr
    return cfg.lr * max(0.0, 1.0 - update / total_updates)


@dataclass
class DistillConfig:
    """Teacher distillation weights (A3C-S): ``actor * KL(pi_T||pi_S) + critic * MSE(V_T, V_S)``."""
    actor: float = 0.0
    critic: float = 0.0

    def __post_init__(self) -> None:
        _check(self.actor >= 0, "distill_actor", ">= 0", self.actor)
        _check(self.critic >= 0, "distill_critic", ">= 0", self.critic)

    @property
    def enabled(self) -> bool:
        return self.actor > 0 or self.critic > 0


def _validate_common(cfg: Any) -> None:
    _check(cfg.num_envs >= 1, "num_envs", ">= 1", cfg.num_envs)
    _check(cfg.num_steps >= 1, "num_steps", ">= 1", cfg.num_steps)
    _check(cfg.lr > 0, "lr", "> 0", cfg.lr)
    _check(0 < cfg.gamma <= 1, "gamma", "in (0, 1]", cfg.gamma)
    _check(0 <= cfg.gae_lambda <= 1, "gae_lambda", "in [0, 1]", cfg.gae_lambda)
    _check(cfg.ent_coef >= 0, "ent_coef", ">= 0", cfg.ent_coef)
    _check(cfg.vf_coef >= 0, "vf_coef", ">= 0", cfg.vf_coef)
    _check(cfg.max_grad_norm > 0, "max_grad_norm", "> 0", cfg.max_grad_norm)
    _check(str(cfg.precision).lower() in ("fp32", "bf16", "auto"), "precision",
           "fp32, bf16 or auto", cfg.precision)


ALGOS = {"ppo": PPOConfig, "a2c": A2CConfig}   # kept for callers; the registry is rl.algorithms


def algo_config(algo: str, **overrides: Any) -> PPOConfig | A2CConfig:
    """Config of the registered algorithm ``algo`` with ``overrides`` (None values ignored).

    Types are checked here (a count must be an int, a rate a finite number, a switch a bool), so a
    YAML ``num_steps: abc`` is one line naming the key, not a traceback later."""
    from a3cs_plugin.rl.algorithms import get
    cls = get(algo).config_cls
    fields = {f.name: f for f in dataclasses.fields(cls)}
    bad = [k for k in overrides if k not in fields]
    if bad:
        raise ConfigError(f"unknown {algo} hyper-parameter '{bad[0]}'", key=bad[0],
                          expected=f"one of {', '.join(sorted(fields))}")
    clean = {}
    for k, v in overrides.items():
        if v is None:
            continue
        default = fields[k].default
        if isinstance(default, bool):
            _check(isinstance(v, bool), k, "true or false", v)
        elif isinstance(default, int):
            _check(isinstance(v, int) and not isinstance(v, bool), k, "an integer", v)
        elif isinstance(default, float):
            _check(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
                   k, "a finite number", v)
            v = float(v)
        elif isinstance(default, str):
            _check(isinstance(v, str), k, "a string", v)
        clean[k] = v
    return cls(**clean)


@dataclass
class TrainConfig:
    """Everything a training run needs; saved in every checkpoint."""
    agent: str = "nature_cnn"
    game: str = "Pong"
    frames: int = 10_000_000
    algo: str = "ppo"
    seed: int = 1
    hp: dict = field(default_factory=dict)       # overrides for PPOConfig / A2CConfig
    distill: DistillConfig = field(default_factory=DistillConfig)
    teacher: str | None = None
    checkpoint_every: int = 500_000               # frames; also when envs are re-seeded
    env_threads: int = 1
    torch_threads: int = 0                        # 0: trainer.default_threads() (1)
    update_threads: int = 0                       # torch threads of the update only; 0: as above
    init: str | None = None                       # start weights (teacher/checkpoint); fresh optimiser
    arch: dict | None = None                      # searched agent {cell: op} (agent "searched")
    num_cells: int = 14                           # cells of the searched agent's AgentSpace
    init_frames: int = 0                          # frames the start weights were trained for
    device: str = "auto"                          # auto | cpu | cuda[:N] (rl.device); not a
    #                                               hyper-parameter: a resumed run takes the new one

    def algo_config(self) -> PPOConfig | A2CConfig:
        return algo_config(self.algo, **self.hp)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        d["distill"] = DistillConfig(**d.get("distill", {}))
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
