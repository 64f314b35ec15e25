"""bf16 autocast in the RL engine: same policy as fp32 within tight bounds, batch-size invariant."""
import numpy as np
import pytest
import torch

from a3cs_plugin.errors import A3CSError
from a3cs_plugin.rl import PPOConfig, make_train_env
from a3cs_plugin.rl.precision import autocast, resolve_precision
from a3cs_plugin.rl.teacher import load_teacher

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def pong_batch():
    env = make_train_env("Pong", 8)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(40):
        obs, *_ = env.step(rng.integers(0, 6, 8))
        frames.append(torch.from_numpy(obs.copy()))
    env.close()
    return torch.cat(frames)


def test_bf16_policy_matches_fp32_on_trained_teacher(pong_batch):
    """A trained agent's policy under bf16 autocast is the fp32 policy up to rounding.

    Fails if autocast leaks into the softmax/loss side or if bf16 changes the agent's decisions
    (mean KL would reach ~1e-2 with a wrong cast of the logits layer).
    """
    teacher = load_teacher("Pong", game="Pong", num_actions=6).float()
    with torch.no_grad():
        l32, v32 = teacher(pong_batch)
        with autocast("bf16"):
            lb, vb = teacher(pong_batch)
    lp32, lpb = torch.log_softmax(l32, -1), torch.log_softmax(lb.float(), -1)
    kl = float((lp32.exp() * (lp32 - lpb)).sum(-1).mean())
    assert lb.dtype == torch.bfloat16 and l32.dtype == torch.float32
    assert 0 <= kl < 1e-4, kl
    assert float((l32.argmax(-1) == lb.float().argmax(-1)).float().mean()) > 0.95
    assert float((v32 - vb.float()).abs().mean()) < 0.05 * float(v32.abs().mean()) + 1e-3


def test_bf16_logprobs_do_not_depend_on_batch_size(pong_batch):
    """Rollouts run batch 8, PPO minibatches 256: the first PPO ratio must be exactly 1."""
    teacher = load_teacher("Pong", game="Pong", num_actions=6).float()
    with torch.no_grad(), autocast("bf16"):
        whole = teacher(pong_batch)[0].float()
        parts = torch.cat([teacher(pong_batch[i:i + 8])[0].float()
                           for i in range(0, len(pong_batch), 8)])
    assert float((whole - parts).abs().max()) < 1e-2


def test_precision_names_and_validation():
    assert resolve_precision("fp32") == "fp32" and resolve_precision("BF16") == "bf16"
    assert resolve_precision("auto") in ("fp32", "bf16")
    with pytest.raises(A3CSError, match="precision"):
        resolve_precision("fp8")
    with pytest.raises(A3CSError, match="precision"):
        PPOConfig(precision="half")


def test_bf16_on_a_cpu_that_emulates_it_warns_once(monkeypatch, capsys):
    """Asked for bf16 on a CPU without native bf16 (an AVX2-only EPYC: several times slower than
    fp32), the engine still runs bf16 but says so once per process; ``auto`` picks fp32 silently."""
    from a3cs_plugin.rl import precision
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    precision._warn_emulated_bf16.cache_clear()
    assert precision.resolve_precision("auto") == "fp32"
    assert capsys.readouterr().err == ""
    assert precision.resolve_precision("bf16") == "bf16"
    assert precision.resolve_precision("bf16") == "bf16"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "emulated" in err and "fp32" in err
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    precision._warn_emulated_bf16.cache_clear()
    assert precision.resolve_precision("bf16") == "bf16"
    assert capsys.readouterr().err == ""
    precision._warn_emulated_bf16.cache_clear()
