"""`a3cs reproduce fig1|fig2|fig3` end to end at the tiny budget: real ALE games, the shipped
teacher, the real surrogate and mapper; each writes figN.png/.md/.json and resumes."""
from __future__ import annotations

import importlib
import json

import pytest

from a3cs_plugin.cli.main import main


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("reproduce")


def _files(out, fig):
    for ext in ("png", "md", "json"):
        assert (out / f"{fig}.{ext}").stat().st_size > 0, ext
    return json.loads((out / f"{fig}.json").read_text())


def _no_games(*a, **k):
    raise AssertionError("a finished figure replayed games")


@pytest.mark.slow
def test_fig1_tiny(out):
    assert main(["reproduce", "fig1", "--budget", "tiny", "--out", str(out)]) == 0
    res = _files(out, "fig1")
    curves = res["curves"]["Pong"]
    assert set(curves) == {"nature_cnn", "resnet14"}
    for agent, runs in curves.items():
        # a test score at each of the two checkpoints, from real games
        assert [p["frames"] for p in runs[0]] == [512, 1024], agent
        assert all(-21 <= p["score"] <= 21 and p["episodes"] == 1 for p in runs[0])
    assert "--budget tiny" in (out / "fig1.md").read_text()


@pytest.mark.slow
def test_fig2_tiny_three_schemes_two_seeds(out, monkeypatch):
    # two runs at once, each in its own process with its own log (the serial path: fig1, fig3)
    assert main(["reproduce", "fig2", "--budget", "tiny", "--out", str(out), "--jobs", "2"]) == 0
    runs = sorted((out / "fig2" / "Pong").glob("*_s*"))
    assert len(runs) == 6
    for run in runs:
        assert "a3cs search: Pong" in (run / "reproduce.log").read_text(), run
    res = _files(out, "fig2")
    curves = res["curves"]["Pong"]
    assert set(curves) == {"direct-nas", "a3cs-one-level", "a3cs-bi-level"}
    frames = {s: [[p["frames"] for p in r] for r in runs] for s, runs in curves.items()}
    for scheme, runs in frames.items():
        assert len(runs) == 2 and runs[0] == runs[1] == [1024, 2048], scheme     # matched frames, 2 seeds
    ref = res["references"]["Pong"]
    assert ref["teacher"] > ref["random"]          # the shipped teacher beats a random agent
    # a finished figure is redrawn from its runs with --resume (no game replayed: the teacher and
    # random scores are kept in the run directory), refused without it
    monkeypatch.setattr(importlib.import_module("a3cs_plugin.rl.evaluate"), "evaluate", _no_games)
    assert main(["reproduce", "fig2", "--budget", "tiny", "--out", str(out), "--resume"]) == 0
    assert json.loads((out / "fig2.json").read_text())["references"] == res["references"]
    assert main(["reproduce", "fig2", "--budget", "tiny", "--out", str(out)]) == 2
    assert main(["reproduce", "fig2", "--budget", "cpu", "--out", str(out), "--resume"]) == 2


@pytest.mark.slow
def test_fig3_tiny_pairs_das_and_baselines(out, monkeypatch):
    assert main(["reproduce", "fig3", "--budget", "tiny", "--out", str(out)]) == 0
    res = _files(out, "fig3")
    pts = res["points"]["Pong"]
    kinds = {p["kind"] for p in pts}
    assert kinds == {"A3C-S", "DAS", "dnnbuilder_like", "eyeriss_like"}
    assert len([p for p in pts if p["kind"] == "A3C-S"]) == 2
    assert {p["agent"] for p in pts if p["kind"] == "DAS"} == {"nature_cnn", "resnet14"}
    assert all(p["fps"] > 0 for p in pts) and any(p["pareto"] for p in pts)
    # the Pareto marks are consistent: no marked point is dominated
    for p in pts:
        if p["pareto"]:
            assert not any(q["score"] > p["score"] and q["fps"] > p["fps"] for q in pts)
    # the teacher scores the same on every accelerator (one evaluation), its FPS differs
    teacher = [p for p in pts if p["agent"] == "nature_cnn"]
    assert len({p["score"] for p in teacher}) == 1 and len({round(p["fps"]) for p in teacher}) == 3
    assert "9.62" in res["hardware_budget"]
    assert res["claim"]["Pong"]["text"] in (out / "fig3.md").read_text()
    # every pair is also read against DNNBuilder-like given the pair's own PE count
    for p in pts:
        if p["kind"] == "A3C-S":
            assert p["pes"] >= 1 and p["teacher_fps_dnnbuilder_same_pes"] > 0
    assert "own" in res["claim"]["Pong"]["text"] and res["claim"]["Pong"]["fps_ratio_same_pes"] > 0
    # redrawn from the finished runs and the kept scores, no game replayed; the same points
    monkeypatch.setattr(importlib.import_module("a3cs_plugin.rl.evaluate"), "evaluate", _no_games)
    assert main(["reproduce", "fig3", "--budget", "tiny", "--out", str(out), "--resume"]) == 0
    again = json.loads((out / "fig3.json").read_text())["points"]["Pong"]
    assert [(p["label"], p["score"], p["fps"]) for p in again] == [(p["label"], p["score"], p["fps"]) for p in pts]


def test_reproduce_bad_input_is_one_line():
    assert main(["reproduce", "fig2", "--budget", "tiny", "--games", "NoSuchGame", "--out", "x"]) == 2
    assert main(["reproduce", "fig2", "--budget", "tiny", "--device", "tpu", "--out", "x"]) == 2


def test_fig3_claim_takes_the_fastest_pair_within_one_teacher_std():
    from a3cs_plugin.cosearch.reproduce import _claim
    teacher = {"kind": "dnnbuilder_like", "agent": "nature_cnn", "label": "t", "score": 15.0, "std": 6.0,
               "fps": 10_000}
    slow = {"kind": "A3C-S", "label": "slow", "score": 14.0, "std": 5.0, "fps": 20_000}
    fast = {"kind": "A3C-S", "label": "fast", "score": 9.5, "std": 8.0, "fps": 45_000}
    weak = {"kind": "A3C-S", "label": "weak", "score": 8.9, "std": 8.0, "fps": 90_000}
    c = _claim([teacher, slow, fast, weak], 10_000)
    assert c["met"] and c["pair"] == "fast" and c["fps_ratio"] == 4.5      # weak is below 15 - 6
    twin = dict(fast, label="twin", score=11.0)                              # same FPS, plays better
    assert _claim([teacher, slow, fast, twin, weak], 10_000)["pair"] == "twin"
    c = _claim([teacher, slow, weak], 10_000)
    assert not c["met"] and c["pair"] == "slow" and c["fps_ratio"] == 2.0   # plays, but < 3x
    c = _claim([teacher, weak], 10_000)
    assert not c["met"] and "no A3C-S pair within one std" in c["text"]
