"""A real NNI 3.0 remote-training-service experiment over SSH, on loopback.

Starts a private ``sshd`` (its own host key, config, authorised key and pid file in a temp dir,
listening on 127.0.0.1 only, public keys only), then runs ``examples/nni/remote.yml`` pointed at
127.0.0.1 with a throw-away key: NNI logs in, starts its trial keeper there, uploads the trial code
and runs 2 tiny co-searches with this venv's python (``pythonPath``).  Checks that the experiment
ends DONE with both trials' final results, that the trials ran from the upload directory of the
SSH session (not the local training service) and that ``a3cs sweep report`` reads the experiment.
The experiment, the trial keeper and sshd are stopped in ``finally``.

``sshd`` comes from Debian's ``openssh-server`` (``make install`` installs it where missing); the
test installs it itself when it can (root with apt-get) and skips, saying why, only when it cannot.
"""
from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from test_nni_experiment import (BIN, copy_example, create_experiment, free_port, listen_addresses,
                                 stop_experiment, wait_done)

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd")


def _sshd() -> str | None:
    for c in (*SSHD_CANDIDATES, shutil.which("sshd")):
        if c and os.access(c, os.X_OK):
            return c
    return None


def _may_install() -> str | None:
    """Why openssh-server must not be installed from here (None: it may): needs root and apt-get,
    and a machine where installing it cannot start a system-wide sshd (policy-rc.d forbids
    service starts, as in containers) unless A3CS_INSTALL_SSHD=1 says so -- the Makefile's rule."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "installing it needs root and apt-get (run `make install` as root)"
    if os.environ.get("A3CS_INSTALL_SSHD") == "1":
        return None
    try:
        rc = subprocess.run(["/usr/sbin/policy-rc.d", "ssh", "start"], capture_output=True, timeout=10).returncode
    except (OSError, subprocess.TimeoutExpired):
        rc = None
    if rc != 101:
        return "its package would start a system sshd here: set A3CS_INSTALL_SSHD=1 to install it anyway"
    return None


def _ensure_sshd() -> str:
    """The sshd binary; installs openssh-server from the distribution's packages if missing."""
    found = _sshd()
    if found:
        return found
    why = "sshd (openssh-server) is not installed"
    refused = _may_install()
    if refused:
        pytest.skip(f"{why}; {refused}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "openssh-server"]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:       # no package lists yet: fetch them once
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=300)
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"{why}; apt-get install openssh-server failed: {exc}")
    found = _sshd()
    if not found:
        pytest.skip(f"{why}; apt-get install openssh-server failed: {(proc.stderr or proc.stdout).strip()[-300:]}")
    return found


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "a3cs-test", "-f", str(path)],
                   check=True, capture_output=True, timeout=30)


def _start_sshd(tmp: Path, sshd: str):
    """A private sshd on 127.0.0.1:<free port>; returns (process, port, client key, remote HOME)."""
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen (openssh-client) is not installed")
    d = tmp / "sshd"
    d.mkdir()
    home = tmp / "remote_home"        # HOME of the SSH sessions: NNI's remote files go there
    home.mkdir()
    _keygen(d / "host_key")
    _keygen(d / "client_key")
    shutil.copyfile(d / "client_key.pub", d / "authorized_keys")
    for p in (d, d / "authorized_keys"):
        p.chmod(0o700 if p.is_dir() else 0o600)
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)   # sshd's privilege separation directory
    port = free_port()
    cfg = d / "sshd_config"
    cfg.write_text("\n".join([
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        "AddressFamily inet",
        f"HostKey {d / 'host_key'}",
        f"PidFile {d / 'sshd.pid'}",
        f"AuthorizedKeysFile {d / 'authorized_keys'}",
        f"AllowUsers {getpass.getuser()}",
        "PermitRootLogin prohibit-password",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",
        "PrintMotd no",
        "Subsystem sftp internal-sftp",
        # NNI runs `python -m pip install nni --upgrade` on every machine: keep pip off the network
        f"SetEnv HOME={home} PIP_NO_INDEX=1 OMP_NUM_THREADS=1",
        "LogLevel VERBOSE",
        "",
    ]))
    check = subprocess.run([sshd, "-t", "-f", str(cfg)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    log = (d / "sshd.log").open("w")
    proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(cfg)], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.time() + 20
    while time.time() < deadline and port not in _listening_ports():
        if proc.poll() is not None:
            raise AssertionError(f"sshd exited: {(d / 'sshd.log').read_text()[-1000:]}")
        time.sleep(0.2)
    assert listen_addresses(port) == {"127.0.0.1"}, (d / "sshd.log").read_text()[-1000:]
    return proc, port, d / "client_key", home


def _listening_ports() -> set[int]:
    out = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] == "0A":
                out.add(int(parts[1].split(":")[1], 16))
    return out


def _stop_sshd(proc) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _stop_trial_keepers(home: Path, exp_id: str | None) -> None:
    """The trial keeper NNI started over SSH (its own process group) if ``nnictl stop`` left it."""
    if exp_id is None:
        return
    for pid_file in (home / "nni-experiments" / exp_id).glob("environments/*/trial_keeper*/trial_keeper.pid"):
        try:
            pid = int(pid_file.read_text().strip())
            os.killpg(pid, signal.SIGTERM)
        except (OSError, ValueError):
            pass


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_two_trial_remote_experiment_over_ssh(tmp_path):
    if shutil.which("nnictl", path=str(BIN)) is None:
        pytest.skip("nnictl is not installed in this environment")
    sshd = _ensure_sshd()
    work = copy_example(tmp_path)
    proc, ssh_port, key, home = _start_sshd(tmp_path, sshd)
    conf = yaml.safe_load((work / "remote.yml").read_text())
    conf.update({"experimentWorkingDirectory": str(tmp_path / "experiments"), "nniManagerIp": "127.0.0.1",
                 "maxTrialNumber": 2, "trialConcurrency": 2, "maxExperimentDuration": "5m"})
    conf["searchSpace"] = {"lambda": {"_type": "choice", "_value": [0.05, 2.0]},
                           "template": {"_type": "choice", "_value": ["eyeriss_like"]},
                           "seed": {"_type": "choice", "_value": [3]}}
    conf["trainingService"]["machineList"] = [{"host": "127.0.0.1", "port": ssh_port,
                                               "user": getpass.getuser(), "sshKeyFile": str(key),
                                               "pythonPath": str(BIN)}]
    (work / "remote.yml").write_text(yaml.safe_dump(conf, sort_keys=False))
    port = free_port()
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
               NODE_OPTIONS=f"--require={work / 'bind_localhost.js'}", OMP_NUM_THREADS="1")
    exp_id = None
    try:
        exp_id = create_experiment(work / "remote.yml", port, work, env)
        assert listen_addresses(port) == {"127.0.0.1"}
        status, trials = wait_done(port, 300)
        assert status == "DONE", (status, trials, (tmp_path / "sshd" / "sshd.log").read_text()[-1500:])
        assert len(trials) == 2
        lambdas = set()
        for t in trials:
            assert t["status"] == "SUCCEEDED", t
            final = [d for d in t.get("finalMetricData", []) if d["type"] == "FINAL"]
            assert len(final) == 1
            metric = json.loads(json.loads(final[0]["data"]))
            assert {"default", "score", "fps", "energy_mJ", "area_mm2", "run_dir", "host"} <= set(metric)
            assert metric["default"] == metric["score"] and float(metric["score"]).is_integer()
            assert metric["fps"] > 0 and metric["energy_mJ"] > 0 and 0 < metric["area_mm2"] < 20
            # the trial ran in the remote environment of the SSH session (its HOME), not locally
            run_dir = Path(metric["run_dir"])
            assert home in run_dir.parents, run_dir
            assert (run_dir / "arch.json").is_file() and (run_dir / "accelerator.yaml").is_file()
            report = json.loads((run_dir / "report.json").read_text())
            assert report["derived"]["fps"] == pytest.approx(metric["fps"])
            cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
            assert cfg["seed"] == 3
            lambdas.add(cfg["hardware"]["lambda"])
        assert lambdas == {0.05, 2.0}
        # the trial keeper logged in through our sshd
        assert "Accepted publickey" in (tmp_path / "sshd" / "sshd.log").read_text()

        out = tmp_path / "report"
        rep = subprocess.run([str(BIN / "a3cs"), "sweep", "report", exp_id, "--out", str(out)],
                             env=env, capture_output=True, text=True, timeout=120)
        assert rep.returncode == 0, rep.stderr
        doc = json.loads((out / "pareto.json").read_text())
        assert doc["platform"] == "remote" and len(doc["points"]) == 2
        assert any(p["pareto"] for p in doc["points"])
    finally:
        stop_experiment(exp_id, port, env)
        _stop_trial_keepers(home, exp_id)
        _stop_sshd(proc)
    assert port not in _listening_ports() and ssh_port not in _listening_ports()
