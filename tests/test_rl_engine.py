"""The fast RL engine (issue 14) collects exactly what the plain loop would.

:class:`RolloutCollector` stores frames channels-last, writes every per-step result in place, casts
the weights to bf16 once per rollout and feeds bf16 straight from uint8; here a straightforward
reference loop (contiguous frames, fresh tensors every step, one autocast region per forward)
must give the same rollout bit for bit, in fp32 and bf16.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from a3cs_plugin.agents.zoo import build_agent
from a3cs_plugin.rl.envs import make_train_env
from a3cs_plugin.rl.precision import autocast
from a3cs_plugin.rl.rollout import RolloutCollector, fast_layout, sample_actions


def _reference(model, env, steps, gen, precision, seed):
    obs, info = env.reset(seed=seed)
    next_obs, next_done = torch.from_numpy(np.ascontiguousarray(obs)), torch.zeros(env.num_envs)
    out = {k: [] for k in ("obs", "actions", "logprobs", "values", "rewards", "dones")}
    with torch.no_grad():
        for _ in range(steps):
            out["obs"].append(next_obs.clone())
            out["dones"].append(next_done.clone())
            with autocast(precision):
                logits, value = model(next_obs)
            action, logp = sample_actions(logits, gen)
            out["actions"].append(action)
            out["logprobs"].append(logp)
            out["values"].append(value.float())
            nobs, rew, term, trunc, info = env.step(action.numpy())
            out["rewards"].append(torch.from_numpy(np.asarray(rew, dtype=np.float32)))
            next_obs = torch.from_numpy(np.ascontiguousarray(nobs))
            next_done = torch.from_numpy(np.logical_or(term, trunc).astype(np.float32))
        with autocast(precision):
            _, last_value = model(next_obs)
    return {k: torch.stack(v) for k, v in out.items()}, last_value.float(), next_done


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_collector_equals_the_plain_loop(precision):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = fast_layout(build_agent("nature_cnn", 6))
    env = make_train_env("Pong", 2)
    try:
        col = RolloutCollector(env, 24, generator=torch.Generator().manual_seed(5), precision=precision)
        col.reset(seed=9)
        ro = col.collect(model)
        ref, last_value, last_done = _reference(model, env, 24, torch.Generator().manual_seed(5),
                                                precision, 9)
    finally:
        env.close()
    assert ro.obs.reshape(-1, 4, 84, 84).is_contiguous(memory_format=torch.channels_last)
    for k, v in ref.items():
        assert torch.equal(getattr(ro, k), v), k
    assert torch.equal(ro.last_value, last_value) and torch.equal(ro.last_done, last_done)


def test_rmsprop_tf_multi_tensor_step_is_the_loop_step():
    """A2C's TF-style RMSprop steps all weights with the multi-tensor kernels: bit for bit the
    per-tensor loop it replaced (square average from 1, eps inside the root)."""
    from a3cs_plugin.rl.a2c import RMSpropTF

    def loop_step(params, state, lr=7e-4, alpha=0.99, eps=1e-5):
        with torch.no_grad():
            for p in params:
                sq = state.setdefault(p, torch.ones_like(p, memory_format=torch.preserve_format))
                sq.mul_(alpha).addcmul_(p.grad, p.grad, value=1 - alpha)
                p.addcdiv_(p.grad, (sq + eps).sqrt_(), value=-lr)

    torch.manual_seed(0)
    a = fast_layout(build_agent("nature_cnn", 6))
    b = fast_layout(build_agent("nature_cnn", 6))
    b.load_state_dict(a.state_dict())
    opt, state = RMSpropTF(a.parameters()), {}
    gen = torch.Generator().manual_seed(1)
    for _ in range(3):
        for p, q in zip(a.parameters(), b.parameters()):
            g = torch.randn(p.shape, generator=gen)
            p.grad, q.grad = g.clone(), g.clone()
        a.actor.weight.grad = None                       # a weight without gradient is skipped
        b.actor.weight.grad = None
        opt.step()
        loop_step([q for q in b.parameters() if q.grad is not None], state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
