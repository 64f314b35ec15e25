"""Shipped teacher loading and the ship script (on a real tiny training run)."""
import stat

import pytest
import torch

from a3cs_plugin.errors import CheckpointError
from a3cs_plugin.rl import load_agent, load_checkpoint, load_teacher
from a3cs_plugin.rl.config import TrainConfig
from a3cs_plugin.rl.teacher import TEACHER_DIR
from a3cs_plugin.rl.trainer import train
from a3cs_plugin.rl.ship import ship

torch.set_num_threads(1)


def test_shipped_pong_teacher_loads():
    assert (TEACHER_DIR / "pong.pt").is_file(), "the Pong teacher must be shipped"
    t = load_teacher("Pong")
    meta = t.teacher_meta
    assert meta["game"] == "Pong" and meta["num_actions"] == 6 and meta["frames"] > 0
    assert not any(p.requires_grad for p in t.parameters()) and not t.training
    logits, value = t(torch.zeros(3, 4, 84, 84, dtype=torch.uint8))
    assert logits.shape == (3, 6) and value.shape == (3,)
    with pytest.raises(CheckpointError, match="is for game Pong, not Breakout"):
        load_teacher("Pong", game="Breakout")


def test_unknown_teacher_is_one_line_error():
    with pytest.raises(CheckpointError, match="no shipped teacher for game 'Tennis'") as e:
        load_teacher("Tennis")
    assert "\n" not in str(e.value)


def test_ship_copies_latest_checkpoint(tmp_path):
    run = tmp_path / "run"
    cfg = TrainConfig(agent="nature_cnn", game="Pong", frames=512, seed=2,
                      hp={"num_envs": 2, "num_steps": 32, "update_epochs": 1,
                          "num_minibatches": 2}, checkpoint_every=256, torch_threads=1)
    train(cfg, run, progress=False, log=lambda s: None)
    out = tmp_path / "teachers"
    out.mkdir()
    info = ship(run, "Pong", skip_eval=True, out_dir=out)
    pt = out / "pong.pt"
    assert info["file"] == str(pt) and info["frames"] == 512 and info["fp16"] is True
    assert stat.S_IMODE(pt.stat().st_mode) & 0o044          # readable by others
    shipped = load_checkpoint(pt)
    assert shipped["format"] == "a3cs-agent" and "optimizer" not in shipped
    assert all(v.dtype == torch.float16 for v in shipped["model"].values())
    assert pt.stat().st_size < 0.6 * (run / "checkpoints" / "last.pt").stat().st_size
    orig, _ = load_agent(run)
    teacher = load_teacher(pt, game="Pong", num_actions=6)
    obs = torch.randint(0, 256, (16, 4, 84, 84), dtype=torch.uint8)
    (l0, v0), (l1, v1) = orig(obs), teacher(obs)
    assert torch.allclose(l0, l1, atol=1e-2) and torch.allclose(v0, v1, atol=1e-2)
    assert (l0.argmax(-1) == l1.argmax(-1)).all()
    readme = (out / "README.md").read_text()
    assert "### Pong (`pong.pt`)" in readme and "| training frames | 512 |" in readme
    assert "| random agent, same protocol |" not in readme   # not evaluated: no reference either


def test_ship_evaluates_the_random_agent_beside_the_teacher(tmp_path):
    """A shipped teacher carries sampled, greedy and random-agent scores under one protocol
    (same games, same seed), and the README shows the random agent beside the teacher."""
    from a3cs_plugin.rl.evaluate import evaluate, random_agent
    run = tmp_path / "run"
    cfg = TrainConfig(agent="nature_cnn", game="Pong", frames=256, seed=2,
                      hp={"num_envs": 2, "num_steps": 32, "update_epochs": 1,
                          "num_minibatches": 2}, checkpoint_every=256, torch_threads=1)
    train(cfg, run, progress=False, log=lambda s: None)
    ship(run, "Pong", episodes=1, out_dir=tmp_path / "t")
    ck = load_checkpoint(tmp_path / "t" / "pong.pt")
    rd = ck["eval_random"]
    assert rd["episodes"] == 1 and rd["seed"] == ck["eval"]["seed"] == 12345
    assert rd["mean"] == evaluate(random_agent(6), "Pong", 1, seed=12345).mean <= -15
    readme = (tmp_path / "t" / "README.md").read_text()
    assert f"| random agent, same protocol | {rd['mean']:.2f} +- 0.00 over 1 episodes |" in readme


def test_train_with_teacher_logs_distillation(tmp_path):
    from a3cs_plugin.rl.config import DistillConfig
    import csv
    cfg = TrainConfig(agent="resnet14", game="Pong", frames=256, seed=1, teacher="Pong",
                      distill=DistillConfig(actor=1.0, critic=0.5),
                      hp={"num_envs": 2, "num_steps": 32, "update_epochs": 1,
                          "num_minibatches": 2}, checkpoint_every=256, torch_threads=1)
    train(cfg, tmp_path / "d", progress=False, log=lambda s: None)
    rows = list(csv.DictReader(open(tmp_path / "d" / "metrics.csv")))
    assert len(rows) == 1 and float(rows[0]["distill_kl"]) >= 0.0
    assert float(rows[0]["distill_value_mse"]) >= 0.0
    ck = load_checkpoint(tmp_path / "d")
    assert ck["agent"] == "resnet14" and ck["config"]["distill"] == {"actor": 1.0, "critic": 0.5}
