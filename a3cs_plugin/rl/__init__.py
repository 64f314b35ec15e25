"""Atari environments, PPO / A2C, distillation, evaluation, checkpoints and teachers.

Reusable pieces for the co-search strategy:

* :class:`RolloutCollector` fills a :class:`Rollout` from any ``obs_uint8 -> (logits, value)`` module;
* :func:`compute_gae`, :func:`ppo_loss`, :func:`a2c_loss`, :func:`distill_loss` are pure losses;
* :func:`ppo_update` / :func:`a2c_update` do one algorithm update on a rollout;
* :func:`load_teacher` returns a shipped teacher (``load_teacher("Pong")``).
"""
from a3cs_plugin.rl.a2c import a2c_update
from a3cs_plugin.rl.checkpoint import load_agent, load_checkpoint
from a3cs_plugin.rl.config import A2CConfig, DistillConfig, PPOConfig, TrainConfig
from a3cs_plugin.rl.distill import distill_loss, distill_step, teacher_outputs
from a3cs_plugin.rl.envs import env_spec, game_label, make_eval_env, make_train_env, rom_id
from a3cs_plugin.rl.evaluate import EvalResult, evaluate
from a3cs_plugin.rl.losses import a2c_loss, compute_gae, policy_terms, ppo_loss
from a3cs_plugin.rl.ppo import ppo_update
from a3cs_plugin.rl.rollout import Rollout, RolloutCollector, fast_layout, sample_actions
from a3cs_plugin.rl.teacher import load_teacher

__all__ = [
    "A2CConfig", "DistillConfig", "EvalResult", "PPOConfig", "Rollout", "RolloutCollector",
    "TrainConfig", "a2c_loss", "a2c_update", "compute_gae", "distill_loss", "distill_step",
    "env_spec", "evaluate", "fast_layout", "game_label", "load_agent", "load_checkpoint", "load_teacher",
    "make_eval_env", "make_train_env", "policy_terms", "ppo_loss", "ppo_update", "rom_id",
    "sample_actions", "teacher_outputs",
]
