"""The algorithm registry: a new on-policy algorithm is one file + one registry entry, and then
runs through the shared loop (a3cs train / retrain / the search's weight step)."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from a3cs_plugin.errors import ConfigError
from a3cs_plugin.rl import algorithms
from a3cs_plugin.rl.config import TrainConfig, algo_config
from a3cs_plugin.rl.loop import Learner

torch.set_num_threads(1)


# --- "one new file": a plain REINFORCE-with-baseline update ---------------------------------
@dataclasses.dataclass
class ReinforceConfig:
    num_envs: int = 2
    num_steps: int = 16
    lr: float = 1e-3
    anneal_lr: bool = False
    gamma: float = 0.99
    gae_lambda: float = 1.0
    vf_coef: float = 0.5
    precision: str = "fp32"

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps


def make_optimizer(params, cfg):
    params = params.parameters() if isinstance(params, nn.Module) else params
    return torch.optim.SGD(params, lr=cfg.lr)


def reinforce_update(model, optimizer, rollout, cfg, *, generator=None, teacher=None, distill=None,
                     params=None, hooks=None):
    b = rollout.with_gae(cfg.gamma, cfg.gae_lambda)
    logits, values = model(b["obs"])
    logp = torch.log_softmax(logits, -1).gather(-1, b["actions"].unsqueeze(-1)).squeeze(-1)
    loss = -(b["advantages"] * logp).mean() + cfg.vf_coef * ((values - b["returns"]) ** 2).mean()
    optimizer.zero_grad()
    if hooks is not None:
        hooks.zero_grad()
    loss.backward()
    optimizer.step()
    stats = {"loss": loss.item()}
    if hooks is not None:
        stats.update(hooks.step())
    return stats


@pytest.fixture
def reinforce():
    # --- "one registry line" ----------------------------------------------------------------
    algo = algorithms.register(algorithms.Algorithm("reinforce", ReinforceConfig, make_optimizer,
                                                    reinforce_update))
    yield algo
    del algorithms.ALGORITHMS["reinforce"]


def test_registered_algorithm_runs_through_the_shared_loop(reinforce, tmp_path):
    cfg = algo_config("reinforce", num_steps=8)
    assert isinstance(cfg, ReinforceConfig) and cfg.batch_size == 16
    from a3cs_plugin.agents.zoo import build_agent
    model = build_agent("nature_cnn", 6)
    before = [p.detach().clone() for p in model.parameters()]
    calls = []

    class Hooks:
        def zero_grad(self):
            calls.append("zero")

        def step(self):
            calls.append("step")
            return {"hook": 1.0}

    lrn = Learner("reinforce", {"num_steps": 8}, model, game="Pong", seed=1)
    stats = lrn.update(0, 2, hooks=Hooks())
    lrn.close()
    assert stats["hook"] == 1.0 and calls == ["zero", "step"] and lrn.frames == 2 * 8 * 4
    assert isinstance(lrn.optimizer, torch.optim.SGD)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    # a3cs train's loop too (checkpoint, frames), with the algorithm's name in the config
    from a3cs_plugin.rl.trainer import train
    out = train(TrainConfig(agent="nature_cnn", game="Pong", frames=256, algo="reinforce",
                            hp={"num_steps": 16}, checkpoint_every=128, torch_threads=1),
                tmp_path / "run", progress=False, log=lambda s: None)
    assert out["frames"] == 256 and out["updates"] == 2


def test_registry_rejects_unknown_and_duplicate_names(reinforce):
    with pytest.raises(ConfigError, match="unknown algorithm 'dqn'"):
        algorithms.get("dqn")
    with pytest.raises(ConfigError, match="already registered"):
        algorithms.register(reinforce)
    with pytest.raises(ConfigError, match="num_steps"):
        algo_config("ppo", num_steps="abc")
    with pytest.raises(ConfigError, match="anneal_lr"):
        algo_config("ppo", anneal_lr=1)


def test_update_threads_apply_to_the_update_only(tmp_path):
    """``update_threads``: the algorithm update runs on that many torch threads, the rollout and
    everything after it on the process's count; ``a3cs train --update-threads`` sets it and the
    checkpointed config keeps it."""
    from a3cs_plugin.agents.zoo import build_agent
    from a3cs_plugin.rl.loop import intra_op_threads
    before = torch.get_num_threads()
    seen = []

    class Hooks:
        def zero_grad(self):
            pass

        def step(self):
            seen.append(torch.get_num_threads())
            return {}

    torch.set_num_threads(1)
    try:
        lrn = Learner("ppo", {"num_envs": 2, "num_steps": 8, "num_minibatches": 2, "update_epochs": 1},
                      build_agent("nature_cnn", 6), game="Pong", seed=1, update_threads=2)
        lrn.update(0, 1, hooks=Hooks())
        lrn.close()
        assert seen == [2, 2] and torch.get_num_threads() == 1
        with intra_op_threads(0):           # 0: unchanged
            assert torch.get_num_threads() == 1
        with pytest.raises(RuntimeError), intra_op_threads(2):
            raise RuntimeError("restored on errors too")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    from a3cs_plugin.cli.main import main
    from a3cs_plugin.rl.checkpoint import load_checkpoint
    assert main(["train", "--agent", "nature_cnn", "--game", "Pong", "--frames", "256",
                 "--hp", "num_steps=16", "--hp", "num_envs=4", "--checkpoint-every", "256",
                 "--update-threads", "2", "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert ckpt["config"]["update_threads"] == 2
    assert main(["train", "--agent", "nature_cnn", "--game", "Pong", "--frames", "256",
                 "--update-threads", "-1", "--out", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists()
