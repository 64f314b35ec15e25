"""A real 4-trial NNI experiment (nnictl, local training service) over tiny co-searches, and
``a3cs sweep report`` on it.

Runs ``examples/nni/local.yml`` + ``trial.py`` (copied to a temp dir so the experiment directory and
the trial outputs stay there; trials of 512 search frames): lambda {0.05, 2.0} x template
{eyeriss_like, simple_array}.  Checks
that all trials SUCCEEDED and reported ``{default, score, fps, energy_mJ, area_mm2, run_dir}``, that
the manager listens on 127.0.0.1 only, and that the sweep report finds the 4 trials by experiment id,
marks the same front as :func:`pareto_front` computed from the reported numbers and names each
trial's ``arch.json`` / ``accelerator.yaml``.  The experiment is always stopped in ``finally``.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NNI_DIR = ROOT / "examples" / "nni"
BIN = Path(sys.executable).parent
METRIC_KEYS = {"default", "score", "normalized_score", "fps", "energy_mJ", "area_mm2", "run_dir", "host",
               "lambda", "fps_target", "template", "seed"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rest_get(port: int, path: str):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/nni/{path}", timeout=10) as r:
        return json.loads(r.read().decode())


def listen_addresses(port: int) -> set[str]:
    """Local addresses with a LISTEN socket on ``port`` (from /proc/net/tcp{,6})."""
    out = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            addr, state = parts[1], parts[3]
            ip_hex, port_hex = addr.split(":")
            if int(port_hex, 16) == port and state == "0A":
                if len(ip_hex) == 8:
                    out.add(socket.inet_ntoa(bytes.fromhex(ip_hex)[::-1]))
                else:
                    out.add(ip_hex)
    return out


def create_experiment(config: Path, port: int, cwd: Path, env: dict) -> str:
    """``nnictl create``; the experiment id."""
    proc = subprocess.run([str(BIN / "nnictl"), "create", "--config", str(config), "--port", str(port)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    text = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    m = re.search(r"Experiment ID: (\w+)", text)
    assert proc.returncode == 0 and m, text[-2000:]
    return m.group(1)


def wait_done(port: int, seconds: float):
    """Poll the manager until the experiment ends; (status, trial jobs)."""
    deadline = time.time() + seconds
    status = None
    while time.time() < deadline:
        status = rest_get(port, "check-status")["status"]
        if status in ("DONE", "ERROR", "STOPPED"):
            break
        time.sleep(3)
    return status, rest_get(port, "trial-jobs")


def stop_experiment(exp_id: str | None, port: int, env: dict) -> None:
    args = [exp_id] if exp_id is not None else ["--port", str(port)]
    subprocess.run([str(BIN / "nnictl"), "stop", *args], env=env, capture_output=True, timeout=60)


#: search frames of the tests' trials: 2 PPO updates (the shipped trial_pong.yaml spends 8)
TEST_FRAMES = 512


def copy_example(tmp: Path) -> Path:
    """``examples/nni`` copied to ``tmp/nni``, its trials cut to :data:`TEST_FRAMES` search frames
    (the tests check the machinery, not what lambda does to a search; that keeps a trial at ~20 s)."""
    work = tmp / "nni"
    shutil.copytree(NNI_DIR, work)
    trial = yaml.safe_load((work / "trial_pong.yaml").read_text())
    trial["frames"] = TEST_FRAMES
    (work / "trial_pong.yaml").write_text(yaml.safe_dump(trial, sort_keys=False))
    return work


def _prepare(tmp: Path) -> Path:
    """Copy the example experiment (shipped teacher and surrogate) and keep its state in ``tmp``."""
    work = copy_example(tmp)
    sweep = yaml.safe_load((work / "local.yml").read_text())
    sweep["experimentWorkingDirectory"] = str(tmp / "experiments")
    (work / "local.yml").write_text(yaml.safe_dump(sweep, sort_keys=False))
    return work


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_four_trial_nnictl_sweep_and_report(tmp_path):
    if shutil.which("nnictl", path=str(BIN)) is None:
        pytest.skip("nnictl is not installed in this environment")
    from a3cs_plugin.cosearch.sweep import pareto_front

    work = _prepare(tmp_path)
    port = free_port()
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT)
    env["NODE_OPTIONS"] = f"--require={work / 'bind_localhost.js'}"
    env["OMP_NUM_THREADS"] = "1"
    exp_id = None
    try:
        exp_id = create_experiment(work / "local.yml", port, work, env)
        assert listen_addresses(port) == {"127.0.0.1"}
        status, trials = wait_done(port, 480)
        assert status == "DONE", (status, trials)
        assert len(trials) == 4
        grid, metrics = set(), {}
        for t in trials:
            assert t["status"] == "SUCCEEDED", t
            final = [d for d in t.get("finalMetricData", []) if d["type"] == "FINAL"]
            assert len(final) == 1
            metric = json.loads(json.loads(final[0]["data"]))
            assert set(metric) == METRIC_KEYS
            # one full game of Pong: the default metric is its (integer) score, as the report says
            assert metric["default"] == metric["score"] and float(metric["score"]).is_integer()
            assert 0 < metric["area_mm2"] < 20
            assert metric["fps"] > 0 and metric["energy_mJ"] > 0
            run_dir = Path(metric["run_dir"])
            # NNI 3.0's local training service: <experiment>/environments/local-env/trials/<trial>
            assert run_dir.is_relative_to(tmp_path / "experiments" / exp_id) and t["trialJobId"] in run_dir.parts
            assert (run_dir / "arch.json").is_file() and (run_dir / "accelerator.yaml").is_file()
            # the parameters the trial ran with (NNI 3.0 may record a neighbour's for a trial
            # started at the same moment, microsoft/nni#5726: the result says which it got)
            cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
            assert (cfg["hardware"]["lambda"], cfg["hardware"]["template"], cfg["seed"]) == \
                (metric["lambda"], metric["template"], metric["seed"])
            grid.add((metric["lambda"], metric["template"]))
            metrics[t["trialJobId"]] = metric
        assert grid == {(0.05, "eyeriss_like"), (0.05, "simple_array"), (2.0, "eyeriss_like"),
                        (2.0, "simple_array")}
        # the two templates' design spaces differ: so do their accelerators' areas
        areas = {tpl: {m["area_mm2"] for m in metrics.values() if m["template"] == tpl}
                 for tpl in ("eyeriss_like", "simple_array")}
        assert not (areas["eyeriss_like"] & areas["simple_array"])

        # the sweep report, by experiment id (nnictl's list knows the experiment's directory)
        out = tmp_path / "report"
        rep = subprocess.run([str(BIN / "a3cs"), "sweep", "report", exp_id, "--out", str(out)], env=env,
                             capture_output=True, text=True, timeout=120)
        assert rep.returncode == 0, rep.stderr
        assert {p.name for p in out.iterdir()} == {"pareto.png", "pareto.md", "pareto.json"}
        assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        doc = json.loads((out / "pareto.json").read_text())
        assert doc["experiment_id"] == exp_id and doc["platform"] == "local" and not doc["skipped"]
        points = {p["trial_id"]: p for p in doc["points"]}
        assert set(points) == set(metrics)
        order = sorted(metrics)
        expect = pareto_front([metrics[t] for t in order])
        assert [points[t]["pareto"] for t in order] == expect and any(expect)
        for tid, p in points.items():
            assert p["fps"] == pytest.approx(metrics[tid]["fps"])
            assert p["energy_mJ"] == pytest.approx(metrics[tid]["energy_mJ"])
            assert Path(p["arch_json"]) == Path(metrics[tid]["run_dir"]) / "arch.json"
            assert Path(p["accelerator_yaml"]).is_file()
            assert p["params"] == {k: metrics[tid][k] for k in ("lambda", "fps_target", "template", "seed")}
        md = (out / "pareto.md").read_text()
        assert md.count("★") == sum(expect) + 1        # the rows plus the legend line
        assert "![score vs FPS](pareto.png)" in md
        for tid in metrics:
            # relative to the experiment directory
            assert f"| `environments/local-env/trials/{tid}/search/arch.json` |" in md
    finally:
        stop_experiment(exp_id, port, env)
