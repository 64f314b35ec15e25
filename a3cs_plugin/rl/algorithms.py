"""The registry of on-policy RL algorithms: name -> config class, optimiser factory, update.

Every training path of a3cs -- ``a3cs train``, ``a3cs retrain``, the fine-tune at the end of
``a3cs search`` and the weight step inside the co-search's NNI evaluator -- runs an algorithm from
this table through :class:`a3cs_plugin.rl.loop.Learner`; nothing else implements PPO or A2C.

Adding an algorithm is one new file and one line here.  The file defines

* a config dataclass (validated in ``__post_init__``; fields ``num_envs``, ``num_steps``, ``lr``,
  ``anneal_lr``, ``gamma``, ``gae_lambda``, ``precision`` and a ``batch_size`` property are what
  the loop reads),
* ``make_optimizer(params_or_model, cfg)`` and
* ``update(model, optimizer, rollout, cfg, *, generator, teacher, distill, params, hooks) -> stats``
  -- one update on a rollout, calling ``hooks.zero_grad()`` / ``hooks.step()`` around each
  optimiser step (the co-search steps alpha/beta there) and adding
  :func:`a3cs_plugin.rl.distill.distill_loss` when ``distill`` is enabled,

and the line is ``"name": Algorithm("name", MyConfig, my_module.make_optimizer, my_module.update)``
in :data:`ALGORITHMS`.  ``tests/test_rl_algorithms.py`` registers a toy algorithm this way.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from a3cs_plugin.errors import ConfigError
from a3cs_plugin.rl import a2c, ppo
from a3cs_plugin.rl.config import A2CConfig, PPOConfig


@dataclass(frozen=True)
class Algorithm:
    """One on-policy algorithm: its typed config, optimiser and per-rollout update."""
    name: str
    config_cls: type
    make_optimizer: Callable[..., Any]
    update: Callable[..., dict]


ALGORITHMS: dict[str, Algorithm] = {
    "ppo": Algorithm("ppo", PPOConfig, ppo.make_optimizer, ppo.ppo_update),
    "a2c": Algorithm("a2c", A2CConfig, a2c.make_optimizer, a2c.a2c_update),
}


def get(name: str) -> Algorithm:
    """The registered algorithm ``name`` (case-insensitive); unknown -> :class:`ConfigError`."""
    algo = ALGORITHMS.get(str(name).lower())
    if algo is None:
        raise ConfigError(f"unknown algorithm '{name}'", key="algo",
                          expected="one of " + ", ".join(sorted(ALGORITHMS)))
    return algo


def register(algo: Algorithm) -> Algorithm:
    """Add ``algo`` at run time (plugins, tests); the name must be new."""
    if algo.name in ALGORITHMS:
        raise ConfigError(f"algorithm '{algo.name}' is already registered", key="algo")
    ALGORITHMS[algo.name] = algo
    return algo
