"""Killed and resumed runs equal uninterrupted ones: surrogate labelling (fit-surrogate) and retrain.

The co-search's own kill/--resume test is in test_search.py; `a3cs train`'s in test_rl_cli.py.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
A3CS = [sys.executable, "-m", "a3cs_plugin.cli.main"]


def _env(hash_seed: int) -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", PYTHONHASHSEED=str(hash_seed))


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def _kill_when(cmd, ready, hash_seed: int, timeout: float = 300) -> None:
    """Run ``cmd`` in its own process group and SIGKILL it as soon as ``ready()`` is true."""
    proc = subprocess.Popen(cmd, env=_env(hash_seed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.time() + timeout
        while not ready() and time.time() < deadline:
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.slow
def test_fit_surrogate_killed_while_labelling_resumes_to_the_same_surrogate(tmp_path):
    """kill -9 part-way through the labels, run the same command again: it labels only what is
    missing (the cache keeps every finished point) and fits a surrogate identical to an
    uninterrupted run's, bit for bit (labels stop on a count of mapper evaluations)."""
    def cmd(out, cache):
        return A3CS + ["hw", "fit-surrogate", "--template", "simple_array", "--samples", "40",
                       "--heldout", "10", "--seed", "2", "--time-limit", "60", "--max-evaluations", "600",
                       "--workers", "1", "--steps", "40", "--train-layers", "8", "--out", str(out),
                       "--cache", str(cache)]
    ref = subprocess.run(cmd(tmp_path / "ref.pt", tmp_path / "ref.jsonl"), env=_env(1), capture_output=True,
                         text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr[-2000:]
    assert "labels/s" in ref.stderr          # not a terminal: progress lines with rate and ETA
    cache = tmp_path / "run.jsonl"
    _kill_when(cmd(tmp_path / "run.pt", cache), lambda: _lines(cache) >= 15, hash_seed=2)
    done = _lines(cache)
    assert 15 <= done < 50 and not (tmp_path / "run.pt").exists()
    again = subprocess.run(cmd(tmp_path / "run.pt", cache), env=_env(3), capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert _lines(cache) == 50                                  # only the missing points were labelled
    a = torch.load(tmp_path / "run.pt", weights_only=False)
    b = torch.load(tmp_path / "ref.pt", weights_only=False)
    sa, sb = a["state_dict"], b["state_dict"]
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    ra = json.loads((tmp_path / "run.json").read_text())
    rb = json.loads((tmp_path / "ref.json").read_text())
    assert ra["heldout"] == rb["heldout"] and ra["train"] == rb["train"]


@pytest.mark.slow
def test_retrain_killed_then_resumed_equals_the_uninterrupted_retrain(tmp_path):
    """`a3cs retrain RUN_DIR` killed after its first checkpoint and resumed: the same weights and
    evaluation as an uninterrupted retraining; its wall time counts both segments."""
    import shutil

    import yaml

    from a3cs_plugin.cli.main import main

    cfg = yaml.safe_load((ROOT / "examples" / "tiny_pong.yaml").read_text())
    cfg["finetune"]["frames"] = 0
    cfg["eval"].update(episodes=1, teacher=False, random=False)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    run = tmp_path / "search"
    assert main(["search", str(path), "--out", str(run), "--no-recost"]) == 0
    other = tmp_path / "search2"
    other.mkdir()
    for name in ("config.yaml", "arch.json"):
        shutil.copyfile(run / name, other / name)
    args = ["--frames", "5120", "--episodes", "1"]
    assert main(["retrain", str(run), *args]) == 0
    marker = other / "retrain" / "checkpoints" / "last.pt"
    _kill_when(A3CS + ["retrain", str(other), *args], marker.exists, hash_seed=5)
    assert not (other / "retrain" / "report.json").exists()
    t = time.time()
    assert main(["retrain", str(other), *args, "--resume"]) == 0
    t = time.time() - t
    a = json.loads((other / "retrain" / "report.json").read_text())
    b = json.loads((run / "retrain" / "report.json").read_text())
    assert a["scores"] == b["scores"] and a["frames"] == b["frames"] == 5120
    assert a["agent"] == "retrain/agent.pt"
    wa = torch.load(other / "retrain" / "agent.pt", weights_only=False)["model"]
    wb = torch.load(run / "retrain" / "agent.pt", weights_only=False)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wb)
    assert a["train_wall_s"] > 0 and a["train_wall_s"] >= 0.5 * b["train_wall_s"]
