"""What ships is never overwritten by accident: `a3cs hw fit-surrogate` and `a3cs teacher ship`
refuse to replace a packaged surrogate / teacher without --force, and write elsewhere by default
(fit-surrogate) or with --out DIR (teacher ship)."""
from __future__ import annotations

import hashlib
import importlib
import shutil
from pathlib import Path

import pytest

from a3cs_plugin.cli.main import main
from a3cs_plugin.errors import CheckpointError, ConfigError

PKG = Path(__file__).resolve().parents[1] / "a3cs_plugin"
SURROGATES = PKG / "surrogates"
TEACHERS = PKG / "teachers"


def _digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
            if p.is_file()}


class _Stop(Exception):
    pass


@pytest.fixture
def fit_module(monkeypatch):
    """fit-surrogate with labelling replaced by a stop: the checks run, nothing is fitted."""
    fit = importlib.import_module("a3cs_plugin.hardware.surrogate.fit")
    seen = {}
    real = fit.check_out

    def check_out(out, force=False):
        seen["out"] = Path(out)
        return real(out, force)

    def stop(*a, **k):
        raise _Stop()

    monkeypatch.setattr(fit, "check_out", check_out)
    monkeypatch.setattr(fit, "generate_labels", stop)
    return fit, seen


def test_fit_surrogate_refuses_the_packaged_surrogate(fit_module, capsys):
    before = _digest(SURROGATES)
    rc = main(["hw", "fit-surrogate", "--template", "simple_array", "--out", str(SURROGATES / "simple_array.pt")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "refusing to replace a surrogate that ships with a3cs" in err and "--force" in err
    assert _digest(SURROGATES) == before


def test_fit_surrogate_default_out_is_the_working_directory(fit_module, tmp_path, monkeypatch):
    fit, seen = fit_module
    monkeypatch.chdir(tmp_path)
    with pytest.raises(_Stop):
        main(["hw", "fit-surrogate", "--template", "simple_array"])
    assert seen["out"] == tmp_path / "simple_array.pt"


def test_fit_surrogate_force_passes_the_check(fit_module):
    fit, seen = fit_module
    before = _digest(SURROGATES)
    with pytest.raises(_Stop):        # past the check, stopped before labelling: nothing written
        main(["hw", "fit-surrogate", "--template", "simple_array", "--force",
              "--out", str(SURROGATES / "simple_array.pt")])
    assert seen["out"] == SURROGATES / "simple_array.pt"
    assert _digest(SURROGATES) == before


def test_fit_surrogate_check_out_unit(tmp_path):
    fit = importlib.import_module("a3cs_plugin.hardware.surrogate.fit")
    assert fit.check_out(tmp_path / "new.pt") == tmp_path / "new.pt"
    (tmp_path / "old.pt").write_bytes(b"x")
    assert fit.check_out(tmp_path / "old.pt") == tmp_path / "old.pt"     # a user's file: replaced
    with pytest.raises(ConfigError, match="is a directory"):
        fit.check_out(tmp_path)
    with pytest.raises(ConfigError, match="ships with a3cs"):
        fit.check_out(SURROGATES / "eyeriss_like.pt")
    # a new name in the package folder is not a shipped surrogate
    assert fit.check_out(SURROGATES / "not_shipped_here.pt") == SURROGATES / "not_shipped_here.pt"


def _agent_run(tmp_path: Path) -> Path:
    """A run directory whose last checkpoint is the shipped Pong agent file (no training)."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copyfile(TEACHERS / "pong.pt", run / "checkpoints" / "last.pt")
    return run


def test_teacher_ship_refuses_the_shipped_teacher(tmp_path, capsys):
    before = _digest(TEACHERS)
    run = _agent_run(tmp_path)
    rc = main(["teacher", "ship", str(run), "--game", "Pong", "--no-eval", "--fp32"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "refusing to replace the shipped teacher" in err and "--force" in err and "--out" in err
    assert _digest(TEACHERS) == before


def test_teacher_ship_out_dir_and_force(tmp_path, capsys, monkeypatch):
    from a3cs_plugin.rl import ship as ship_mod
    run = _agent_run(tmp_path)
    before = _digest(TEACHERS)
    out = tmp_path / "elsewhere"
    assert main(["teacher", "ship", str(run), "--game", "Pong", "--no-eval", "--fp32", "--out", str(out)]) == 0
    assert (out / "pong.pt").is_file() and (out / "README.md").is_file()
    # a stand-in for the package's folder: refused without --force, replaced with it
    packaged = tmp_path / "packaged"
    packaged.mkdir()
    shutil.copyfile(TEACHERS / "pong.pt", packaged / "pong.pt")
    old = (packaged / "pong.pt").read_bytes()
    monkeypatch.setattr(ship_mod, "TEACHER_DIR", packaged)
    with pytest.raises(CheckpointError, match="refusing to replace"):
        ship_mod.ship(run, "Pong", skip_eval=True, fp16=False, out_dir=packaged)
    assert (packaged / "pong.pt").read_bytes() == old
    ship_mod.ship(run, "Pong", skip_eval=True, fp16=False, out_dir=packaged, force=True)
    assert (packaged / "pong.pt").read_bytes() != old
    # a game without a shipped teacher needs no --force
    assert ship_mod.check_target(packaged, "Breakout") == packaged / "breakout.pt"
    assert _digest(TEACHERS) == before
    capsys.readouterr()
