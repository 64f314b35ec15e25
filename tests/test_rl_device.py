"""Device plumbing (``--device auto|cpu|cuda[:N]``, ``device:``), checked on a CPU-only machine.

The GPU path itself runs in ``benchmarks/gpu_check.sh`` on a machine with CUDA; here: the
resolver, one-line errors for bad values and absent CUDA, no direct ``.cuda()`` anywhere, every
allocation of the RL engine on the device it is given (torch's ``meta`` device stands in for a
GPU), the cost model pinned on the CPU while the search's modules move, and tiny runs with
``--device cpu`` and ``--device auto`` giving the same weights.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from a3cs_plugin.errors import ConfigError
from a3cs_plugin.rl import device as devmod
from a3cs_plugin.rl.device import lightning_accelerator, resolve_device

REPO = Path(__file__).resolve().parents[1]
META = torch.device("meta")


# ----------------------------------------------------------------------------- the resolver

def test_resolve_device_without_cuda(monkeypatch):
    monkeypatch.setattr(devmod, "cuda_count", lambda: 0)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" AUTO ") == torch.device("cpu")
    assert resolve_device(None) == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    for bad in ("cuda", "cuda:0", "cuda:3"):
        with pytest.raises(ConfigError) as e:
            resolve_device(bad, key="--device")
        assert "--device" in str(e.value) and "CUDA" in str(e.value) and "\n" not in str(e.value)
    for bad in ("gpu", "tpu", "cuda:", "cuda:x", "cpu:0", "", 3):
        with pytest.raises(ConfigError, match="unknown device"):
            resolve_device(bad)


def test_resolve_device_with_gpus(monkeypatch):
    monkeypatch.setattr(devmod, "cuda_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="no GPU 2"):
        resolve_device("cuda:2")


def test_lightning_accelerator(tmp_path):
    def plain(kw):
        return {k: v for k, v in kw.items() if k != "plugins"}
    assert plain(lightning_accelerator(torch.device("cpu"))) == {"accelerator": "cpu", "devices": 1}
    assert plain(lightning_accelerator(torch.device("cuda", 1))) == {"accelerator": "gpu", "devices": [1]}
    assert plain(lightning_accelerator(torch.device("cuda"))) == {"accelerator": "gpu", "devices": [0]}
    # the search's checkpoints are read onto the CPU whatever device wrote them (map_location)
    io = lightning_accelerator(torch.device("cpu"))["plugins"][0]
    torch.save({"w": torch.ones(2)}, tmp_path / "c.ckpt")
    seen = {}
    real_load = torch.load

    def spy(*args, **kwargs):
        seen["map_location"] = kwargs.get("map_location")
        return real_load(*args, **kwargs)
    import unittest.mock
    with unittest.mock.patch.object(torch, "load", spy):
        assert torch.equal(io.load_checkpoint(tmp_path / "c.ckpt")["w"], torch.ones(2))
    assert seen["map_location"] == "cpu"


def test_no_direct_cuda_calls_in_the_package():
    """Everything takes a torch.device: no ``.cuda()`` call and no hard-wired Lightning CPU
    accelerator in the package's code (strings and comments aside)."""
    import io
    import tokenize
    offenders = []
    for path in sorted((REPO / "a3cs_plugin").rglob("*.py")):
        toks = [t for t in tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline)
                if t.type in (tokenize.NAME, tokenize.OP, tokenize.STRING)]
        for a, b, c in zip(toks, toks[1:], toks[2:]):
            if (a.string, b.string, c.string) == (".", "cuda", "(") or \
                    (a.string, b.string) == ("accelerator", "=") and c.string in ('"cpu"', "'cpu'"):
                offenders.append(f"{path.relative_to(REPO)}:{b.start[0]}: {b.line.strip()}")
    assert not offenders, "\n".join(offenders)


# ----------------------------------------------------------------------------- allocations

class _FakeSpace:
    shape = (4, 84, 84)


class _FakeEnv:
    num_envs = 3
    single_observation_space = _FakeSpace()


def test_collector_buffers_on_the_device():
    from a3cs_plugin.rl.rollout import RolloutCollector
    col = RolloutCollector(_FakeEnv(), 5, device=META)
    assert col._obs.device == META and col._last_obs.device == META
    assert col._obs.shape == (5, 3, 4, 84, 84) and col._obs.dtype == torch.uint8
    # per-step frames arrive channels-last (what the channels-last convolutions read directly)
    assert col._obs[0].is_contiguous(memory_format=torch.channels_last)
    # the small per-step buffers are CPU (sampling there); the rollout moves them once
    assert col._actions.device.type == "cpu" and col._rewards.device.type == "cpu"
    cpu = RolloutCollector(_FakeEnv(), 5)
    assert cpu._obs.device.type == "cpu"


def test_learner_moves_model_and_teacher():
    from a3cs_plugin.agents.zoo import build_agent
    from a3cs_plugin.rl.config import DistillConfig
    from a3cs_plugin.rl.loop import Learner, model_device
    model, teacher = build_agent("nature_cnn", 6), build_agent("nature_cnn", 6)
    lrn = Learner("ppo", {"num_envs": 2, "num_steps": 8}, model, game="Pong", teacher=teacher,
                  distill=DistillConfig(actor=1.0), device=META)
    assert lrn.device == META
    assert all(p.device == META for p in model.parameters())
    assert all(p.device == META for p in teacher.parameters())
    # the generators stay CPU generators: the random stream does not depend on the device
    assert lrn.sample_gen.device.type == "cpu" and lrn.minibatch_gen.device.type == "cpu"
    # without device=, the learner runs where the weights are (the search: Lightning placed them)
    other = build_agent("nature_cnn", 6).to(META)
    assert Learner("ppo", None, other, game="Pong").device == META
    assert model_device(torch.nn.ReLU()) == torch.device("cpu")


def test_checkpoints_load_onto_a_device(tmp_path):
    from a3cs_plugin.agents.zoo import build_agent
    from a3cs_plugin.rl.checkpoint import agent_file, load_agent, save_atomic
    from a3cs_plugin.rl.teacher import load_teacher
    model = build_agent("nature_cnn", 6)
    f = save_atomic(agent_file(model, agent="nature_cnn", game="Pong", num_actions=6, frames=1),
                    tmp_path / "a.pt")
    m, _ = load_agent(f, device=META)
    assert all(p.device == META for p in m.parameters())
    t = load_teacher(f, device=META)
    assert all(p.device == META for p in t.parameters())
    cpu, _ = load_agent(f)
    assert all(p.device.type == "cpu" for p in cpu.parameters())


def test_agent_file_is_device_neutral():
    from a3cs_plugin.agents.zoo import build_agent
    from a3cs_plugin.rl.checkpoint import agent_file
    model = build_agent("nature_cnn", 6)
    for fp16 in (True, False):
        blob = agent_file(model, agent="nature_cnn", game="Pong", num_actions=6, frames=1, fp16=fp16)
        assert all(v.device.type == "cpu" for v in blob["model"].values())
        # a copy: later training steps do not change a written agent
        assert all(v.data_ptr() != p.data_ptr() for v, p in zip(blob["model"].values(),
                                                               model.state_dict().values()))


def test_random_agent_and_inputs_follow_the_observations():
    from a3cs_plugin.agents.inputs import scale_obs
    from a3cs_plugin.rl.evaluate import random_agent
    obs = torch.zeros((2, 4, 84, 84), dtype=torch.uint8, device=META)
    logits, value = random_agent(6)(obs)
    assert logits.device == META and value.device == META
    x = scale_obs(obs)
    assert x.device == META and x.dtype == torch.float32


def test_bf16_input_straight_from_uint8_is_bitwise_the_fp32_route():
    from a3cs_plugin.agents.inputs import scale_obs
    obs = torch.arange(256, dtype=torch.uint8).reshape(1, 4, 8, 8).expand(2, 4, 8, 8).contiguous()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        direct = scale_obs(obs)
    assert direct.dtype == torch.bfloat16
    assert torch.equal(direct, (obs.float() * (1.0 / 255.0)).to(torch.bfloat16))
    assert scale_obs(obs).dtype == torch.float32


def test_cost_model_stays_on_the_cpu_when_the_search_moves():
    from a3cs_plugin.cost.base import COST_DEVICE, NetworkCost, to_cost_device

    class _Toy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("table", torch.ones(3))

        def featurize(self, problems):
            return torch.ones(len(problems), 2)

    nc = NetworkCost(_Toy(), {"c0": {"a": [{}], "b": [{}]}}, [{}])
    holder = torch.nn.Module()
    holder.cost = nc
    holder.w = torch.nn.Parameter(torch.zeros(2))
    holder.to(META)
    assert holder.w.device == META
    assert nc.feats.device == COST_DEVICE and nc.cost_model.table.device == COST_DEVICE
    holder.double()                          # conversions other than a device move still apply
    assert nc.feats.dtype == torch.float64
    probs = to_cost_device({"x": torch.ones(2), "y": [1, 2]})
    assert probs["x"].device == COST_DEVICE and probs["y"] == [1, 2]


# ----------------------------------------------------------------------------- configs and CLI

def test_search_config_device_key():
    from a3cs_plugin.cosearch.config import parse_config
    assert parse_config({"game": "Pong"}).device == "auto"
    assert parse_config({"device": "CUDA:1"}).device == "cuda:1"
    for bad in ("tpu", 3, True, "cuda:x"):
        with pytest.raises(ConfigError) as e:
            parse_config({"device": bad}, "run.yaml")
        assert "run.yaml" in str(e.value) and "'device'" in str(e.value)


@pytest.mark.parametrize("argv", [
    ["train", "--agent", "nature_cnn", "--game", "Pong", "--frames", "1k", "--out", "{tmp}/t"],
    ["evaluate", "--teacher", "Pong", "--game", "Pong", "--episodes", "1"],
    ["search", "{repo}/examples/tiny_pong.yaml", "--out", "{tmp}/s"],
])
@pytest.mark.parametrize("device", ["bogus", "cuda:99"])
def test_bad_device_flags_are_one_line(argv, device, tmp_path, capsys):
    from a3cs_plugin.cli.main import main
    args = [a.format(tmp=tmp_path, repo=REPO) for a in argv] + ["--device", device]
    try:
        rc = main(args)
    except SystemExit as exc:
        rc = exc.code
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert rc == 2 and len(err) == 1 and "--device" in err[0], err
    assert not (tmp_path / "t").exists() and not (tmp_path / "s").exists()


def test_retrain_bad_device_is_one_line(tmp_path, capsys):
    from a3cs_plugin.cli.main import main
    rc = main(["retrain", str(tmp_path), "--frames", "1k", "--device", "npu"])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert rc == 2 and len(err) == 1 and "--device" in err[0], err


def test_tiny_train_cpu_and_auto_agree(tmp_path, capsys):
    """``--device cpu`` and ``--device auto`` (the CPU here) train the same weights; evaluation
    takes ``--device`` too."""
    from a3cs_plugin.cli.main import main
    from a3cs_plugin.rl.checkpoint import load_checkpoint
    if devmod.cuda_count():
        pytest.skip("auto is a GPU on this machine")
    tiny = ["train", "--agent", "nature_cnn", "--game", "Pong", "--num-envs", "2", "--hp",
            "num_steps=16", "--hp", "update_epochs=1", "--hp", "num_minibatches=2", "--frames",
            "256", "--checkpoint-every", "128", "--no-progress", "--threads", "1"]
    for dev in ("cpu", "auto"):
        assert main([*tiny, "--out", str(tmp_path / dev), "--device", dev]) == 0
    a, b = load_checkpoint(tmp_path / "cpu"), load_checkpoint(tmp_path / "auto")
    assert a["config"]["device"] == b["config"]["device"] == "cpu"
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    capsys.readouterr()
    from a3cs_plugin.rl.evaluate import evaluate, random_agent
    r = evaluate(random_agent(6), "Pong", 1, seed=3, device=torch.device("cpu"))
    assert r.episodes == 1 and r.frames > 0
