"""GAE, PPO/A2C losses, distillation (on real Pong frames), configs, frame parsing."""
import pytest
import torch

from a3cs_plugin.agents.zoo import build_agent
from a3cs_plugin.errors import ConfigError
from a3cs_plugin.rl import (PPOConfig, RolloutCollector, compute_gae, distill_loss, distill_step,
                            make_train_env, ppo_loss, teacher_outputs)
from a3cs_plugin.rl.config import algo_config
from a3cs_plugin.cli.rl import parse_frames

torch.set_num_threads(1)


def test_gae_matches_hand_computation():
    # one env, 3 steps; obs[2] starts a new episode (dones[2] = 1)
    r = torch.tensor([[1.0], [0.0], [2.0]])
    v = torch.tensor([[0.5], [0.2], [0.3]])
    d = torch.tensor([[0.0], [0.0], [1.0]])
    last_v, last_d = torch.tensor([0.4]), torch.tensor([0.0])
    g, lam = 0.9, 0.8
    d2 = 2.0 + g * 0.4 - 0.3
    a2 = d2
    d1 = 0.0 + 0.0 - 0.2          # next obs starts a new episode: no bootstrap
    a1 = d1
    d0 = 1.0 + g * 0.2 - 0.5
    a0 = d0 + g * lam * a1
    adv, ret = compute_gae(r, v, d, last_v, last_d, g, lam)
    assert torch.allclose(adv.squeeze(), torch.tensor([a0, a1, a2]))
    assert torch.allclose(ret, adv + v)


def test_gae_lambda1_is_discounted_return():
    r = torch.ones(4, 1)
    v = torch.zeros(4, 1)
    adv, ret = compute_gae(r, v, torch.zeros(4, 1), torch.tensor([10.0]), torch.tensor([0.0]),
                           0.5, 1.0)
    expect = [1 + .5 + .25 + .125 + .0625 * 10, 1 + .5 + .25 + .125 * 10, 1 + .5 + .25 * 10,
              1 + .5 * 10]
    assert torch.allclose(ret.squeeze(), torch.tensor(expect))


def test_ppo_loss_clips_ratio():
    logits = torch.zeros(2, 2, requires_grad=True)
    actions = torch.tensor([0, 1])
    old = torch.log(torch.tensor([0.1, 0.9]))       # new policy is 0.5/0.5: ratios 5 and 0.56
    adv = torch.tensor([1.0, 1.0])
    loss, st = ppo_loss(logits, torch.zeros(2), actions, old, torch.zeros(2), adv,
                        torch.zeros(2), clip_coef=0.2, ent_coef=0.0, vf_coef=0.0,
                        norm_adv=False)
    # sample 0 clipped at 1.2, sample 1 unclipped 0.5/0.9
    assert st["policy_loss"] == pytest.approx(-(1.2 + 0.5 / 0.9) / 2, rel=1e-5)
    assert st["clipfrac"] == 1.0
    loss.backward()
    assert logits.grad[0].abs().sum() == 0          # clipped sample gives no gradient
    assert logits.grad[1].abs().sum() > 0


@pytest.fixture(scope="module")
def pong_obs():
    env = make_train_env("Pong", 4)
    col = RolloutCollector(env, 32, generator=torch.Generator().manual_seed(0))
    col.reset(seed=0)
    torch.manual_seed(0)
    ro = col.collect(build_agent("nature_cnn", 6))
    env.close()
    return ro.obs.reshape(-1, 4, 84, 84)


def test_distillation_pulls_student_to_teacher(pong_obs):
    pong_obs = pong_obs[::2]                  # 64 real frames
    torch.manual_seed(1)
    teacher = build_agent("nature_cnn", 6)
    with torch.no_grad():                 # a confident teacher, far from the student
        teacher.actor.weight.mul_(300.0)
        teacher.actor.bias.copy_(torch.tensor([2.0, 0.0, -1.0, 1.0, 0.0, -2.0]))
        teacher.critic.bias.fill_(2.0)
    torch.manual_seed(2)
    student = build_agent("resnet14", 6)
    t_logits, t_values = teacher_outputs(teacher, pong_obs, chunk=50)
    assert t_logits.shape == (64, 6)
    with torch.no_grad():
        _, st0 = distill_loss(*student(pong_obs), t_logits, t_values)
    opt = torch.optim.Adam(student.parameters(), lr=3e-3)
    for _ in range(20):
        distill_step(student, opt, pong_obs, t_logits, t_values, actor_weight=1.0,
                     critic_weight=1.0)
    with torch.no_grad():
        _, st1 = distill_loss(*student(pong_obs), t_logits, t_values)
    assert st0["distill_kl"] > 0.2
    assert st1["distill_kl"] < 0.3 * st0["distill_kl"]
    assert st1["distill_value_mse"] < 0.3 * st0["distill_value_mse"]


def test_distill_loss_zero_for_identical_and_weights():
    lg, v = torch.randn(5, 4), torch.randn(5)
    loss, st = distill_loss(lg, v, lg, v)
    assert abs(st["distill_kl"]) < 1e-6 and loss.item() == pytest.approx(0.0, abs=1e-6)
    lg2 = torch.randn(5, 4)
    l_a, st = distill_loss(lg2, v + 1, lg, v, actor_weight=2.0, critic_weight=0.0)
    assert l_a.item() == pytest.approx(2 * st["distill_kl"], rel=1e-5)
    l_c, st = distill_loss(lg2, v + 1, lg, v, actor_weight=0.0, critic_weight=3.0)
    assert l_c.item() == pytest.approx(3.0, rel=1e-5)


def test_configs_validate():
    assert PPOConfig().batch_size == 1024 and PPOConfig().minibatch_size == 256
    with pytest.raises(ConfigError, match="num_minibatches"):
        PPOConfig(num_envs=3, num_steps=5, num_minibatches=4)
    with pytest.raises(ConfigError, match="gamma"):
        algo_config("a2c", gamma=1.5)
    with pytest.raises(ConfigError, match="unknown ppo hyper-parameter 'lrr'"):
        algo_config("ppo", lrr=1e-3)
    with pytest.raises(ConfigError, match="one of a2c, ppo"):
        algo_config("dqn")


@pytest.mark.parametrize("text,value", [("10M", 10_000_000), ("500k", 500_000),
                                        ("1e6", 1_000_000), ("2.5M", 2_500_000), ("4096", 4096)])
def test_parse_frames(text, value):
    assert parse_frames(text) == value


@pytest.mark.parametrize("text", ["10X", "", "-5", "M"])
def test_parse_frames_rejects(text):
    with pytest.raises(ConfigError):
        parse_frames(text)
