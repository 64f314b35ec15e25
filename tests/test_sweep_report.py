"""``a3cs sweep report`` on synthetic sweeps: the Pareto front of a hand-worked example, a directory
of run directories, an NNI experiment database (parameters paired by the id a trial reports), and
one-line errors for bad input.  The real experiments are in test_nni_experiment.py (local) and
test_nni_remote.py (over SSH)."""
from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import pytest

from a3cs_plugin.cli.main import main
from a3cs_plugin.strategy import sweep as sw

NAN = float("nan")

# (label, score, fps, energy_mJ): worked by hand for (score up, FPS up, energy down)
HAND = [
    ("A", 10.0, 1000.0, 1.0),    # front
    ("B", 12.0, 500.0, 2.0),     # front: best score
    ("C", 9.0, 900.0, 1.5),      # dominated by A (A better on all three)
    ("D", 10.0, 1000.0, 1.0),    # equal to A: neither dominates the other, both on the front
    ("E", 5.0, 5000.0, 3.0),     # front: best FPS
    ("F", 5.0, 4000.0, 3.0),     # dominated by E (same score and energy, lower FPS)
    ("G", NAN, 10000.0, 0.1),    # no score: never ranked (would otherwise dominate E)
    ("H", 12.0, 500.0, 2.5),     # dominated by B (same score and FPS, more energy)
    ("I", 4.0, 6000.0, 0.5),     # front: fastest ranked point, least energy
]
HAND_FRONT = {"A", "B", "D", "E", "I"}


def _pts(rows):
    return [{"label": lab, "score": s, "fps": f, "energy_mJ": e} for lab, s, f, e in rows]


def test_pareto_front_hand_example():
    pts = _pts(HAND)
    got = {p["label"] for p, on in zip(pts, sw.pareto_front(pts)) if on}
    assert got == HAND_FRONT
    assert sw.dominates(pts[0], pts[2]) and not sw.dominates(pts[2], pts[0])
    assert not sw.dominates(pts[0], pts[3]) and not sw.dominates(pts[3], pts[0])
    assert sw.pareto_front([]) == []


def _run_dir(root: Path, name: str, score, fps, energy, area, *, lam=0.5, template="eyeriss_like", seed=1,
             mapper=True) -> Path:
    d = root / name
    d.mkdir(parents=True)
    derived = {"surrogate": {"fps": fps * 0.9, "energy_pJ": energy * 1.1e9, "area_mm2": area},
               "score": score, "normalized_score": None}
    if mapper:
        derived.update({"fps": fps, "energy_mJ": energy, "area_mm2": area})
    else:
        derived.update({"fps": None, "energy_mJ": None, "area_mm2": None})
    (d / "report.json").write_text(json.dumps({"template": template, "derived": derived}))
    (d / "config.yaml").write_text(f"game: Pong\nseed: {seed}\nhardware:\n  template: {template}\n"
                                   f"  lambda: {lam}\n  fps_target: null\n")
    (d / "arch.json").write_text("{}")
    (d / "accelerator.yaml").write_text("architecture: {}\n")
    return d


def test_report_on_a_directory_of_runs(tmp_path, capsys):
    root = tmp_path / "runs"
    for i, (lab, s, f, e) in enumerate(HAND):
        _run_dir(root, f"run_{lab}", None if math.isnan(s) else s, f, e, 1.0 + i, lam=0.1 * (i + 1),
                 template="simple_array" if i % 2 else "eyeriss_like", seed=i)
    # surrogate-only numbers (a run made with --no-recost): read, dominated by A
    _run_dir(root, "nested/run_S", 1.0, 100.0, 9.0, 2.0, mapper=False)
    # a multi-seed run: its seed_<s>/ runs are the points, not the copy of the best in the top level
    multi = _run_dir(root, "multi", 99.0, 1.0, 99.0, 1.0)
    (multi / "seeds.json").write_text("{}")
    _run_dir(multi, "seed_1", 3.0, 200.0, 2.0, 1.0)
    (multi / "retrain").mkdir()
    (multi / "retrain" / "report.json").write_text(json.dumps({"frames": 10, "score": 1.0}))  # not a search

    out = tmp_path / "out"
    assert main(["sweep", "report", str(root), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "on the Pareto front" in text
    doc = json.loads((out / "pareto.json").read_text())
    labels = {p["label"] for p in doc["points"]}
    assert labels == {f"run_{lab}" for lab, *_ in HAND} | {"nested/run_S", "multi/seed_1"}
    front = {p["label"] for p in doc["points"] if p["pareto"]}
    assert front == {f"run_{x}" for x in HAND_FRONT}
    assert set(doc["front"]) == front
    s = next(p for p in doc["points"] if p["label"] == "nested/run_S")
    assert s["fps"] == pytest.approx(90.0) and s["energy_mJ"] == pytest.approx(9.9)   # the surrogate's
    g = next(p for p in doc["points"] if p["label"] == "run_G")
    assert g["score"] is None and not g["pareto"]                          # NaN written as null
    a = next(p for p in doc["points"] if p["label"] == "run_A")
    assert a["params"] == {"lambda": 0.1, "template": "eyeriss_like", "seed": 0}
    assert Path(a["arch_json"]).is_file() and Path(a["accelerator_yaml"]).is_file()
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    md = (out / "pareto.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| ") and "trial" not in line]
    assert len(rows) == len(labels)
    assert sum(r.startswith("| ★ |") for r in rows) == len(HAND_FRONT)
    assert all(r.startswith("| ★ |") for r in rows[:len(HAND_FRONT)])      # the front first
    assert "| `run_A/arch.json` | `run_A/accelerator.yaml` |" in md         # relative paths
    assert str(tmp_path) not in "\n".join(rows)


def _nni_db(exp_dir: Path, trials) -> None:
    """An experiment database with NNI 3.0's tables; ``trials``: (id, seq, recorded params,
    parameter id the trial reported, final result or None, status)."""
    (exp_dir / "db").mkdir(parents=True)
    con = sqlite3.connect(exp_dir / "db" / "nni.sqlite")
    con.executescript("""
        create table TrialJobEvent (timestamp integer, trialJobId text, event text, data text, logPath text,
                                    sequenceId integer, message text, environmentId text);
        create table MetricData (timestamp integer, trialJobId text, parameterId text, type text,
                                 sequence integer, data text);
        create table ExperimentProfile (params text, id text, execDuration integer, startTime integer,
                                        endTime integer, logDir text, nextSequenceId integer, revision integer);
    """)
    con.execute("insert into ExperimentProfile values (?, ?, 0, 0, 0, '', 0, 1)",
                (json.dumps({"trainingService": {"platform": "local"}}), exp_dir.name))
    for i, (tid, seq, params, pid, final, status) in enumerate(trials):
        hp = json.dumps({"parameter_id": seq, "parameter_source": "algorithm", "parameters": params,
                         "parameter_index": 0})
        con.execute("insert into TrialJobEvent values (?, ?, 'WAITING', ?, '', ?, '', '')", (10 * i, tid, hp, seq))
        con.execute("insert into TrialJobEvent values (?, ?, 'RUNNING', ?, '', ?, '', '')", (10 * i + 1, tid, hp, seq))
        con.execute("insert into TrialJobEvent values (?, ?, ?, NULL, '', ?, '', '')", (10 * i + 5, tid, status, seq))
        if final is not None:
            con.execute("insert into MetricData values (?, ?, ?, 'FINAL', 0, ?)",
                        (10 * i + 4, tid, str(pid), json.dumps(json.dumps(final))))
    con.commit()
    con.close()


def test_report_on_an_nni_experiment(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sw, "NNI_HOME", tmp_path / "home" / "nni-experiments")
    exps = tmp_path / "elsewhere"
    exp = exps / "abcd1234"
    run = _run_dir(exp / "environments" / "local-env" / "trials" / "TrA", "search", 3.0, 1e4, 0.2, 1.0)
    p0 = {"lambda": 0.05, "template": "eyeriss_like", "seed": 1}
    p1 = {"lambda": 2.0, "template": "simple_array", "seed": 1}
    res = {"default": 3.0, "score": 3.0, "fps": 1e4, "energy_mJ": 0.2, "area_mm2": 1.0}
    _nni_db(exp, [
        # TrA was recorded with parameter 0 but ran parameter 1 (what NNI 3.0 does, nni#5726)
        ("TrA", 0, p0, 1, {**res, "run_dir": str(run)}, "SUCCEEDED"),
        ("TrB", 1, p1, 0, {**res, "default": 5.0, "score": 5.0, "fps": 2e3}, "SUCCEEDED"),
        ("TrC", 2, p0, None, None, "FAILED"),
        ("TrD", 3, p0, 3, 7.5, "SUCCEEDED"),            # a plain number: no fps / energy
    ])
    # not in nnictl's list and not in ~/nni-experiments: found with --experiments-dir
    assert main(["sweep", "report", "abcd1234", "--out", str(tmp_path / "o1"),
                 "--experiments-dir", str(exps)]) == 0
    # nnictl's list (~/nni-experiments/.experiment) names its directory
    (sw.NNI_HOME).mkdir(parents=True)
    (sw.NNI_HOME / ".experiment").write_text(json.dumps({"abcd1234": {"id": "abcd1234", "logDir": str(exps)}}))
    assert main(["sweep", "report", "abcd1234", "--out", str(tmp_path / "o2")]) == 0
    assert main(["sweep", "report", str(exp), "--out", str(tmp_path / "o3")]) == 0   # by directory
    capsys.readouterr()
    for o in ("o1", "o2", "o3"):
        doc = json.loads((tmp_path / o / "pareto.json").read_text())
        assert doc["experiment_id"] == "abcd1234" and doc["platform"] == "local"
        pts = {p["trial_id"]: p for p in doc["points"]}
        assert set(pts) == {"TrA", "TrB"}
        assert pts["TrA"]["params"] == p1 and pts["TrB"]["params"] == p0   # by reported parameter id
        assert pts["TrA"]["pareto"] and pts["TrB"]["pareto"]            # faster vs higher score
        assert pts["TrA"]["arch_json"] == str(run / "arch.json")
        assert pts["TrB"]["arch_json"] is None
        assert {s["trial_id"]: s["why"] for s in doc["skipped"]} == {
            "TrC": "no final result (status FAILED)", "TrD": "its final result has no fps / energy_mJ"}
    md = (tmp_path / "o2" / "pareto.md").read_text()
    assert "`environments/local-env/trials/TrA/search/arch.json`" in md
    assert "- #2 TrC: no final result (status FAILED)" in md


def _one_line_error(capsys, argv, *needles):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("a3cs: error:") and "Traceback" not in err, err
    for n in needles:
        assert n in err, err


def test_bad_input_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sw, "NNI_HOME", tmp_path / "home" / "nni-experiments")
    out = str(tmp_path / "out")
    _one_line_error(capsys, ["sweep", "report", "zzzz9999", "--out", out], "unknown NNI experiment 'zzzz9999'")
    (tmp_path / "empty").mkdir()
    _one_line_error(capsys, ["sweep", "report", str(tmp_path / "empty"), "--out", out], "no finished search",
                    str(tmp_path / "empty"))
    (tmp_path / "file.txt").write_text("x")
    _one_line_error(capsys, ["sweep", "report", str(tmp_path / "file.txt"), "--out", out], "not a directory")
    _one_line_error(capsys, ["sweep", "report", str(tmp_path / "missing"), "--out", out], "no such directory")
    exp = tmp_path / "exps" / "noresult"
    _nni_db(exp, [("TrA", 0, {"lambda": 1.0}, None, None, "FAILED")])
    _one_line_error(capsys, ["sweep", "report", str(exp), "--out", out], "has no trial with a final result",
                    "nni.sqlite")
    (exp / "db" / "nni.sqlite").write_bytes(b"not a database at all" * 10)
    _one_line_error(capsys, ["sweep", "report", str(exp), "--out", out], "unreadable NNI experiment database")
    runs = tmp_path / "runs"
    _run_dir(runs, "r1", 1.0, 10.0, 1.0, 1.0)
    _one_line_error(capsys, ["sweep", "report", str(runs), "--out", str(tmp_path / "file.txt")], "--out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(SystemExit) as e:                     # argparse: --out is required
        main(["sweep", "report", str(runs)])
    assert e.value.code == 2


def test_paths_of_remote_trials_are_shown_below_the_ssh_users_home(tmp_path):
    path = "/srv/users/a3cs/nni-experiments/abcd1234/environments/remote-worker1/trials/T1/search/arch.json"
    assert sw._shown(path, tmp_path, "abcd1234", remote=True) == \
        "~/nni-experiments/abcd1234/environments/remote-worker1/trials/T1/search/arch.json"
    sweep = {"base_dir": str(tmp_path), "experiment_id": "abcd1234", "platform": "remote"}
    point = {"arch_json": path, "host": "node7"}
    assert sw._shown_file(point, "arch_json", sweep).startswith("`node7:~/nni-experiments/abcd1234/")
    assert sw._shown(str(tmp_path / "a" / "arch.json"), tmp_path) == "a/arch.json"


def test_example_sweep_configs_pass_nni_schema(tmp_path):
    """local.yml and remote.yml are valid NNI 3.0 experiment configs (remote.yml's placeholder key
    replaced by a real file: NNI checks that the key exists)."""
    import yaml
    from nni.experiment.config import ExperimentConfig

    nni_dir = Path(__file__).resolve().parents[1] / "examples" / "nni"
    local = ExperimentConfig.load(str(nni_dir / "local.yml"))
    local.validate()
    assert local.training_service.platform == "local" and local.max_trial_number == 4
    doc = yaml.safe_load((nni_dir / "remote.yml").read_text())
    key = tmp_path / "key"
    key.write_text("placeholder")
    for m in doc["trainingService"]["machineList"]:
        assert {"host", "user", "sshKeyFile", "pythonPath"} <= set(m)
        m["sshKeyFile"] = str(key)
    (tmp_path / "remote.yml").write_text(yaml.safe_dump(doc))
    remote = ExperimentConfig.load(str(tmp_path / "remote.yml"))
    remote.validate()
    assert remote.training_service.platform == "remote" and remote.nni_manager_ip
    assert set(doc["searchSpace"]) == set(yaml.safe_load((nni_dir / "local.yml").read_text())["searchSpace"])
