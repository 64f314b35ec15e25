"""A real 2-trial HPO-style NNI experiment (nnictl, local training service) over tiny co-searches.

Runs ``examples/nni/sweep.yml`` + ``trial.py`` (copied to a temp dir so the experiment directory and
the trial outputs stay there) and checks that both trials SUCCEEDED and reported
``{default, fps, energy_mJ}``; the manager must listen on 127.0.0.1 only.  Always stopped in ``finally``.
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
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
NNI_DIR = ROOT / "examples" / "nni"
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, path: str):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/nni/{path}", timeout=10) as r:
        return json.loads(r.read().decode())


def _listen_addresses(port: int) -> set[str]:
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


def _prepare(tmp: Path) -> Path:
    """Copy the example experiment (shipped teacher and surrogate) and keep its state in ``tmp``."""
    work = tmp / "nni"
    shutil.copytree(NNI_DIR, work)
    sweep = yaml.safe_load((work / "sweep.yml").read_text())
    sweep["experimentWorkingDirectory"] = str(tmp / "experiments")
    (work / "sweep.yml").write_text(yaml.safe_dump(sweep, sort_keys=False))
    return work


@pytest.mark.slow
def test_two_trial_nnictl_experiment(tmp_path):
    if shutil.which("nnictl", path=str(BIN)) is None:
        pytest.skip("nnictl is not installed in this environment")
    work = _prepare(tmp_path)
    port = _free_port()
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT)
    env["NODE_OPTIONS"] = f"--require={work / 'bind_localhost.js'}"
    env["OMP_NUM_THREADS"] = "1"
    exp_id = None
    try:
        proc = subprocess.run([str(BIN / "nnictl"), "create", "--config", str(work / "sweep.yml"),
                               "--port", str(port)], cwd=work, env=env, capture_output=True, text=True,
                              timeout=120)
        text = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
        m = re.search(r"Experiment ID: (\w+)", text)
        assert proc.returncode == 0 and m, text[-2000:]
        exp_id = m.group(1)
        assert _listen_addresses(port) == {"127.0.0.1"}
        deadline = time.time() + 400
        status = None
        while time.time() < deadline:
            status = _get(port, "check-status")["status"]
            if status in ("DONE", "ERROR", "STOPPED"):
                break
            time.sleep(3)
        trials = _get(port, "trial-jobs")
        assert status == "DONE", (status, trials)
        assert len(trials) == 2
        lambdas = set()
        for t in trials:
            assert t["status"] == "SUCCEEDED", t
            final = [d for d in t.get("finalMetricData", []) if d["type"] == "FINAL"]
            assert len(final) == 1
            metric = json.loads(json.loads(final[0]["data"]))
            assert set(metric) == {"default", "score", "normalized_score", "fps", "energy_mJ", "area_mm2"}
            # one full game of Pong: the default metric is its (integer) score, as the report says
            assert metric["default"] == metric["score"] and float(metric["score"]).is_integer()
            assert 0 < metric["area_mm2"] < 20
            assert metric["fps"] > 0 and metric["energy_mJ"] > 0
            lambdas.add(json.loads(t["hyperParameters"][0])["parameters"]["lambda"])
        assert lambdas == {0.05, 2.0}
    finally:
        if exp_id is not None:
            subprocess.run([str(BIN / "nnictl"), "stop", exp_id], env=env, capture_output=True, timeout=60)
        else:
            subprocess.run([str(BIN / "nnictl"), "stop", "--port", str(port)], env=env, capture_output=True,
                           timeout=60)
