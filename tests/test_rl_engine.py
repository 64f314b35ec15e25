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
from a3cs_plugin.rl.envs import make_grouped_train_env, make_train_env
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


@pytest.mark.parametrize("agent,precision", [("nature_cnn", "fp32"), ("resnet14", "bf16")])
def test_pipelined_groups_collect_what_one_vector_env_collects(agent, precision):
    """Env groups stepping while the network runs on the other group (the engine's default)
    give the frames, actions, rewards, dones and finished games of one vector env, bit for bit,
    and its log-probabilities and values up to the rounding of a smaller batch (the network runs
    on 3 and 2 frames instead of 5; oneDNN may sum in another order).  Breakout with an
    untrained agent: games end (five lives) inside the rollouts, so the game-over bookkeeping
    across groups is exercised; 5 envs: groups of 3 and 2."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = fast_layout(build_agent(agent, 4))
    runs = {}
    for name, env in (("one", make_train_env("Breakout", 5)),
                      ("groups", make_grouped_train_env("Breakout", 5, groups=2))):
        try:
            col = RolloutCollector(env, 160, generator=torch.Generator().manual_seed(3), precision=precision)
            col.reset(seed=11)
            ros = [col.collect(model) for _ in range(2)]
            runs[name] = (ros, col.pop_episodes())
        finally:
            env.close()
    assert runs["groups"][1] == runs["one"][1] and len(runs["one"][1]) >= 1
    for a, b in zip(runs["one"][0], runs["groups"][0]):
        for k in ("obs", "actions", "rewards", "dones", "last_done"):
            assert torch.equal(getattr(a, k), getattr(b, k)), k
        for k in ("logprobs", "values", "last_value"):
            torch.testing.assert_close(getattr(a, k), getattr(b, k), rtol=0, atol=2e-2 if precision == "bf16" else 1e-5)


def test_grouped_env_seeds_and_steps_like_one_vector_env():
    """Env ``i`` of the groups gets seed ``seed + i``; ``step`` concatenates the groups in order."""
    one, grouped = make_train_env("Pong", 3), make_grouped_train_env("Pong", 3, groups=2)
    try:
        assert [s.stop - s.start for s in grouped.slices] == [2, 1] and grouped.num_envs == 3
        o1, i1 = one.reset(seed=4)
        o2, i2 = grouped.reset(seed=4)
        assert np.array_equal(o1, o2) and np.array_equal(i1["lives"], i2["lives"])
        rng = np.random.default_rng(0)
        for _ in range(50):
            a = rng.integers(0, 6, 3)
            r1, r2 = one.step(a), grouped.step(a)
            assert all(np.array_equal(x, y) for x, y in zip(r1[:4], r2[:4]))
        assert list(r2[4]["env_id"]) == [0, 1, 2]
    finally:
        one.close()
        grouped.close()


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
