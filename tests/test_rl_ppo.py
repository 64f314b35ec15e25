"""Real PPO / A2C on real ALE games; environment and evaluation protocol."""
import numpy as np
import pytest
import torch

from a3cs_plugin.agents.zoo import build_agent
from a3cs_plugin.errors import ConfigError
from a3cs_plugin.rl import (A2CConfig, PPOConfig, RolloutCollector, a2c_update, compute_gae,
                            evaluate, make_eval_env, make_train_env, ppo_update, rom_id)
from a3cs_plugin.rl import a2c, ppo
from a3cs_plugin.rl.losses import policy_terms

torch.set_num_threads(1)


def _value_mse(model, obs, returns):
    with torch.no_grad():
        _, v = model(obs)
    return float(((v - returns) ** 2).mean())


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_ppo_on_pong_fits_value_and_improves_surrogate(precision):
    """A real PPO run on Pong (4 envs x 64 steps x 3 rollouts = 3072 frames), fp32 and bf16.

    After training on a fixed held rollout, its value error must drop and the policy must move
    probability toward positive-advantage actions; both fail if the loss/update is wrong.
    """
    cfg = PPOConfig(num_envs=4, num_steps=64, update_epochs=4, num_minibatches=4, lr=1e-3,
                    precision=precision)
    env = make_train_env("Pong", cfg.num_envs)
    torch.manual_seed(0)
    model = build_agent("nature_cnn", env.single_action_space.n)
    opt = ppo.make_optimizer(model, cfg)
    col = RolloutCollector(env, cfg.num_steps, generator=torch.Generator().manual_seed(0),
                           precision=precision)
    col.reset(seed=0)
    ro = col.collect(model)
    assert ro.logprobs.dtype == torch.float32 and ro.values.dtype == torch.float32
    assert ro.obs.dtype == torch.uint8 and ro.obs.shape == (64, 4, 4, 84, 84)
    assert set(np.unique(ro.rewards.numpy())) <= {-1.0, 0.0, 1.0}
    adv, ret = compute_gae(ro.rewards, ro.values, ro.dones, ro.last_value, ro.last_done,
                           cfg.gamma, cfg.gae_lambda)
    obs, returns = ro.obs.reshape(-1, 4, 84, 84), ret.reshape(-1)
    acts, advs = ro.actions.reshape(-1), adv.reshape(-1)
    assert returns.abs().max() > 0.05              # Pong: points are lost within 256 steps
    mse0 = _value_mse(model, obs, returns)
    with torch.no_grad():
        lp0, _ = policy_terms(model(obs)[0], acts)
    stats = []
    for _ in range(3):
        stats.append(ppo_update(model, opt, ro, cfg, generator=torch.Generator().manual_seed(1)))
    mse1 = _value_mse(model, obs, returns)
    with torch.no_grad():
        lp1, _ = policy_terms(model(obs)[0], acts)
    # value clipping (0.1 around the old values) bounds how far one rollout can move V
    assert mse1 < 0.8 * mse0, (mse0, mse1)
    # the surrogate objective sum(A * log pi) increased
    assert float((advs * (lp1 - lp0)).mean()) > 0
    assert stats[-1]["value_loss"] < stats[0]["value_loss"]
    # and the collector keeps going with new data (episode state carried across rollouts)
    ro2 = col.collect(model)
    assert not torch.equal(ro2.obs, ro.obs)
    env.close()


def test_a2c_update_reduces_value_error():
    cfg = A2CConfig(num_envs=4, num_steps=32, lr=1e-3)
    env = make_train_env("Breakout", cfg.num_envs)
    torch.manual_seed(0)
    model = build_agent("nature_cnn", env.single_action_space.n)
    opt = a2c.make_optimizer(model, cfg)
    col = RolloutCollector(env, cfg.num_steps, generator=torch.Generator().manual_seed(0))
    col.reset(seed=0)
    ro = col.collect(model)
    before = [p.detach().clone() for p in model.parameters()]
    first = a2c_update(model, opt, ro, cfg)
    # TF-style RMSprop (average starts at 1) with grad-norm 0.5: no weight moves more than lr on
    # the first step; torch's RMSprop (average starts at 0) moves every weight by ~10 x lr.
    step = max(float((p.detach() - b).abs().max()) for p, b in zip(model.parameters(), before))
    assert 0 < step <= cfg.lr
    for _ in range(10):
        last = a2c_update(model, opt, ro, cfg)
    assert last["value_loss"] < first["value_loss"]
    env.close()


def test_training_env_clips_and_ends_on_life_loss_eval_env_does_not():
    rng = np.random.default_rng(0)
    res = {}
    for kind, make in (("train", make_train_env), ("eval", make_eval_env)):
        env = make("Breakout", 1)
        _, info = env.reset(seed=3)
        lives = [int(info["lives"][0])]
        for _ in range(3000):
            _, r, term, trunc, info = env.step(rng.integers(0, 4, 1))
            if term[0] or trunc[0]:
                break
            lives.append(int(info["lives"][0]))
        res[kind] = lives
        env.close()
    # training: the first life loss already ends the episode; evaluation: the whole game
    assert min(res["train"]) == 5
    assert min(res["eval"]) == 1


def test_evaluation_protocol_unclipped_scores_and_episode_count():
    torch.manual_seed(0)
    model = build_agent("nature_cnn", make_eval_env("SpaceInvaders", 1).single_action_space.n)
    res = evaluate(model, "SpaceInvaders", episodes=2, seed=7)
    assert res.episodes == 2 and len(res.scores) == 2 and len(res.lengths) == 2
    # Space Invaders pays 5..30 points per alien: unclipped scores are multiples of 5, > 1
    assert all(s % 5 == 0 for s in res.scores) and max(res.scores) > 5
    assert res.mean == pytest.approx(np.mean(res.scores))
    assert res.std == pytest.approx(np.std(res.scores))
    assert res.frames == sum(res.lengths) and min(res.lengths) > 400


def test_game_names():
    assert rom_id("Pong") == "pong" and rom_id("MsPacman") == "ms_pacman"
    assert rom_id("ALE/Breakout-v5") == "breakout" and rom_id("PongNoFrameskip-v4") == "pong"
    with pytest.raises(ConfigError, match="unknown Atari game 'Pongg'"):
        rom_id("Pongg")
