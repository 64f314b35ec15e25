"""`a3cs search` end to end (tiny config), configs, derive, and kill/--resume."""
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
import yaml

from a3cs_plugin.cli.main import main
from a3cs_plugin.errors import ConfigError
from a3cs_plugin.cosearch.config import load_config, parse_config

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

torch.set_num_threads(1)


@pytest.fixture
def tiny_config(tmp_path):
    """examples/tiny_pong.yaml as shipped: the shipped Pong teacher and the fitted surrogate."""
    cfg = yaml.safe_load((EXAMPLES / "tiny_pong.yaml").read_text())
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def test_example_configs_parse_and_embedded_quick_config_matches():
    from a3cs_plugin.cli.search import QUICK_PONG_YAML
    quick = load_config(EXAMPLES / "quick_pong.yaml")
    assert parse_config(yaml.safe_load(QUICK_PONG_YAML)) == quick
    assert quick.search.num_cells == 14 and quick.search.supernet == "single-path"
    assert quick.plan() == {"warmup": 6, "search": 26, "updates": 32, "epochs": 8, "per_epoch": 4,
                            "rollout_frames": 2048, "frames": 65536}
    assert quick.hardware.area_budget_mm2 and quick.finetune.frames > 0
    tiny = load_config(EXAMPLES / "tiny_pong.yaml")
    assert tiny.updates() == 12
    trial = load_config(EXAMPLES / "nni" / "trial_pong.yaml")
    assert trial.plan()["frames"] == trial.frames
    bi = parse_config({"mode": "bi-level", "frames": 4096, "hp": {"num_envs": 2, "num_steps": 64}})
    assert bi.plan()["warmup"] + 2 * bi.plan()["search"] == 8   # two rollouts per bi-level search update
    assert parse_config({"hardware": {"fps_target": 1000}}).hardware.fps_target == [900.0, 1100.0]


@pytest.mark.parametrize("algo", ["ppo", "a2c"])
@pytest.mark.parametrize("hp", [{}, {"num_envs": 2, "num_steps": 16}, {"lr": 1e-4}])
@pytest.mark.parametrize("mode", ["one-level", "bi-level", "direct-nas"])
@pytest.mark.parametrize("frames", [131072, 100_000, 5000])
def test_frame_plan_spends_the_budget_within_one_rollout(algo, hp, mode, frames):
    from a3cs_plugin.rl.config import algo_config
    cfg = parse_config({"algo": algo, "hp": hp, "mode": mode, "frames": frames})
    plan = cfg.plan()
    per = algo_config(algo, **hp).batch_size * 4
    assert plan["rollout_frames"] == per
    assert abs(plan["frames"] - frames) <= per
    k = 2 if mode == "bi-level" else 1
    assert plan["frames"] == (plan["warmup"] + k * plan["search"]) * per
    assert plan["updates"] == plan["warmup"] + plan["search"] <= plan["epochs"] * plan["per_epoch"]


@pytest.mark.parametrize("doc, key", [
    ({"mode": "tri-level"}, "mode"),
    ({"hardware": {"lambda": -1}}, "hardware.lambda"),
    ({"hardware": {"fps_target": [5, 1]}}, "hardware.fps_target"),
    ({"search": {"tau_init": 0.1, "tau_min": 1.0}}, "search"),
    ({"gmae": "Pong"}, "gmae"),
    ({"hp": {"num_steps": "abc"}}, None),
    ({"algo": "dqn"}, "algo"),
    ({"hardware": {"recost_metric": "delay"}}, "hardware.recost_metric"),
])
def test_bad_config_is_one_line_config_error(doc, key):
    with pytest.raises(ConfigError) as err:
        parse_config(doc, "run.yaml")
    msg = err.value.message
    assert msg.startswith("run.yaml: ") and "\n" not in msg
    assert f"key '{key}'" in msg if key else "num_steps" in msg


def test_cli_reports_bad_config_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("game: Pong\nhardware: {metric: power}\n")
    assert main(["search", str(bad), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "hardware.metric" in err and str(bad) in err


def test_search_cli_end_to_end(tiny_config, tmp_path, capsys):
    cfg_path = tiny_config
    out = tmp_path / "run"
    assert main(["search", str(cfg_path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "report.md" in printed
    for name in ("arch.json", "accelerator.yaml", "report.json", "report.md", "history.json", "config.yaml",
                 "alpha.png", "beta.png", "cost.png", "score.png", "checkpoints/last.ckpt"):
        assert (out / name).is_file(), name
    assert any((out / "tb").rglob("events.out.tfevents.*"))
    arch = json.loads((out / "arch.json").read_text())
    assert sorted(arch) == ["cell_00", "cell_01", "cell_02"]
    report = json.loads((out / "report.json").read_text())
    assert report["arch"] == arch
    for who in ("derived", "teacher"):
        r = report[who]
        for key in ("fps", "energy_mJ", "latency_ms", "area_mm2"):
            assert r[key] is not None and r[key] > 0, (who, key)
        assert r["fps"] == pytest.approx(1e3 / r["latency_ms"], rel=1e-6)
        assert r["episodes"] == len(r["scores"]) == 2 and r["score_std"] >= 0
        assert r["score"] == pytest.approx(sum(r["scores"]) / 2)
    d, t, rnd = report["derived"], report["teacher"], report["random"]
    # the same protocol for all three; the shipped teacher beats a random agent, and the
    # normalized score is (derived - random) / (teacher - random)
    assert t["score"] > rnd["score"] + 10
    assert d["random_score"] == rnd["score"]
    assert d["normalized_score"] == pytest.approx((d["score"] - rnd["score"]) / (t["score"] - rnd["score"]))
    assert report["eval"]["episodes"] == 2 and report["scheme"] == "a3cs" and report["mode"] == "one-level"
    # the teacher (a Nature-CNN) costs more per inference than the 3-cell derived agent
    assert report["teacher"]["energy_mJ"] > report["derived"]["energy_mJ"]
    # ... on the searched accelerator and on the hand-designed eyeriss_like.yaml
    base = report["baselines"]["eyeriss_like"]
    assert base["teacher"]["energy_mJ"] > base["derived"]["energy_mJ"] > 0
    assert base["derived"]["area_mm2"] == pytest.approx(9.62, abs=0.01)
    assert report["derived"]["area_mm2"] <= 9.62                  # the config's area budget
    assert report["accelerator"]["clock_mhz"] == 1000             # pinned by the template
    mappings = sorted(p.name for p in (out / "mappings").iterdir())
    assert any(n.startswith("derived_") for n in mappings) and any(n.startswith("teacher_") for n in mappings)
    # accelerator.yaml is the argmax of beta rendered from the template
    spec = (out / "accelerator.yaml").read_text()
    point = json.loads(spec.splitlines()[1].split("point: ", 1)[1])
    assert point == report["accelerator"]
    # ... and it is a real Timeloop spec: `a3cs hw map` maps a layer on it, and `a3cs hw net
    # --agent arch.json` (the CLI contract) re-costs the derived pair like the report did
    capsys.readouterr()
    layer = ROOT / "arch_specs" / "problems" / "nature_conv2.yaml"
    assert main(["hw", "map", str(out / "accelerator.yaml"), str(layer), "--time-limit", "0.3", "--json"]) == 0
    mapped = json.loads(capsys.readouterr().out)
    assert mapped["cycles"] > 0 and mapped["energy_pJ"] > 0 and mapped["mapping"]
    assert main(["hw", "net", "--arch", str(out / "accelerator.yaml"), "--agent", str(out / "arch.json"),
                 "--time-limit", "0.3", "--json"]) == 0
    net = json.loads(capsys.readouterr().out)
    assert net["energy_mJ"] == pytest.approx(report["derived"]["energy_mJ"], rel=0.25)
    assert net["area_mm2"] == pytest.approx(report["derived"]["area_mm2"], rel=1e-6)
    hist = json.loads((out / "history.json").read_text())
    assert len(hist) == report["search"]["updates"] == 12
    assert report["search"]["frames"] == report["search"]["frames_planned"] == 6144
    assert [h["searching"] for h in hist] == [0.0] * 2 + [1.0] * 10
    # the fine-tuned derived agent is an agent file: `a3cs evaluate --checkpoint` loads it
    assert report["finetune"]["frames"] == 1024
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(out / "finetune" / "agent.pt"), "--game", "Pong",
                 "--episodes", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["episodes"] == 1
    md = (out / "report.md").read_text()
    assert "| derived agent | searched accelerator |" in md and "| teacher | eyeriss_like |" in md
    assert "normalized" in md and "± " in md
    # running again into the same directory without --resume is refused, and so is --resume with
    # a different configuration (the message names the key)
    assert main(["search", str(cfg_path), "--out", str(out)]) == 2
    changed = yaml.safe_load(cfg_path.read_text())
    changed["hardware"]["lambda"] = 0.25
    changed_path = tmp_path / "changed.yaml"
    changed_path.write_text(yaml.safe_dump(changed))
    assert main(["search", str(changed_path), "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "differs" in err and "hardware.hw_lambda" in err
    # a3cs retrain: fresh weights for arch.json on the shared loop, checkpoints, evaluation; its
    # agent.pt loads in `a3cs evaluate --checkpoint` and as a config's teacher
    assert main(["retrain", str(out), "--frames", "1024", "--episodes", "1"]) == 0
    rr = json.loads((out / "retrain" / "report.json").read_text())
    assert rr["arch"] == arch and rr["frames"] == 1024 and rr["distillation"] is True
    assert rr["episodes"] == len(rr["scores"]) == 1
    assert (out / "retrain" / "checkpoints" / "last.pt").is_file()
    assert (out / "retrain" / "metrics.csv").read_text().count("\n") == 1 + 2   # header + 2 updates
    assert main(["retrain", str(out), "--frames", "1024", "--episodes", "1"]) == 2   # exists: --resume
    assert main(["retrain", str(out), "--frames", "2048", "--episodes", "1", "--resume"]) == 0
    assert json.loads((out / "retrain" / "report.json").read_text())["frames"] == 2048
    from a3cs_plugin.rl.teacher import load_teacher
    student = load_teacher(str(out / "retrain" / "agent.pt"), game="Pong", num_actions=6)
    assert student.teacher_meta["agent"] == "searched" and student.teacher_meta["arch"] == arch
    # a finished search resumed with a longer fine-tune: the search is not redone, the fine-tune
    # continues from its checkpoint, the report says so
    longer = yaml.safe_load(cfg_path.read_text())
    longer["finetune"]["frames"] = 2048
    longer_path = tmp_path / "longer.yaml"
    longer_path.write_text(yaml.safe_dump(longer))
    assert main(["search", str(longer_path), "--out", str(out), "--resume"]) == 0
    again = json.loads((out / "report.json").read_text())
    assert again["finetune"]["frames"] == 2048 and again["arch"] == arch
    assert again["search"]["frames"] == 6144 and json.loads((out / "history.json").read_text()) == hist


def test_das_searches_the_accelerator_of_a_fixed_agent(tmp_path, capsys):
    """agent: teacher -> only beta is searched (DAS), for the teacher's own layers; the result fits
    the area budget, is a real spec, and the trained agent is scored with the protocol."""
    cfg = {"game": "Pong", "teacher": "Pong", "agent": "teacher", "seed": 1,
           "hardware": {"template": "eyeriss_like", "metric": "latency", "area_budget_mm2": 5.0,
                        "recost_time_limit": 0.2, "baselines": ["eyeriss_like"],
                        "recost_metric": "latency"},   # the search's word; the mapper's is "delay"
           "search": {"das_steps": 60}, "eval": {"episodes": 1}}
    path = tmp_path / "das.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "das"
    assert main(["search", str(path), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["mode"] == "das" and report["arch"] == {}
    d, base = report["derived"], report["baselines"]["eyeriss_like"]["derived"]
    assert d["area_mm2"] <= 5.0 and report["accelerator"]["clock_mhz"] == 1000
    assert d["episodes"] == 1 and report["random"]["score"] < d["score"]
    # latency-driven search on half the area still beats the hand-designed spec's FPS
    assert d["fps"] > base["fps"]
    hist = json.loads((out / "history.json").read_text())
    assert hist[-1]["tau"] < hist[0]["tau"] and hist[-1]["hw_cost"] < hist[0]["hw_cost"]
    assert main(["search", str(path), "--out", str(out)]) == 2      # no silent overwrite


def test_project_to_budget_on_real_template():
    from a3cs_plugin.hardware.space import DesignSpace
    from a3cs_plugin.strategy.derive import project_to_budget

    space = DesignSpace.from_template("eyeriss_like")
    probs = {n: {str(c): (0.9 if c == p.choices[-1] else 0.1 / (len(p.choices) - 1)) for c in p.choices}
             for n, p in space.parameters.items()}
    big, projected = project_to_budget(space, probs, None)
    assert not projected and all(big[n] == p.choices[-1] for n, p in space.parameters.items())
    budget = 0.5 * space.area(big)
    point, projected = project_to_budget(space, probs, budget)
    assert projected and space.area(point) <= budget
    # it changed as few high-probability choices as needed: all but one parameter keep their argmax
    assert sum(point[n] != big[n] for n in big) == 1
    with pytest.raises(ConfigError, match="area budget"):
        project_to_budget(space, probs, 1e-6, max_points=50)


def _without_wall_clock(d):
    """A report with the fields that measure time (wall seconds, mapper seconds) and the resume
    bookkeeping removed: what must be equal between an uninterrupted and a resumed run."""
    if isinstance(d, dict):
        return {k: _without_wall_clock(v) for k, v in d.items()
                if "wall" not in k and "seconds" not in k and not k.startswith("resumed_from")}
    if isinstance(d, list):
        return [_without_wall_clock(v) for v in d]
    return d


def _kill_when(cmd, marker: Path, hash_seed: int, timeout: float = 300):
    """Run ``cmd`` in its own process group and SIGKILL it once ``marker`` exists."""
    from test_exact_resume import _kill_when as kill_when_ready
    kill_when_ready(cmd, marker.exists, hash_seed, timeout)
    assert marker.exists(), f"no {marker} after {timeout} s"


@pytest.mark.slow
@pytest.mark.long
@pytest.mark.parametrize("kill_at", ["search", "finetune"])
def test_search_killed_then_resumed_is_bit_identical(tiny_config, tmp_path, kill_at):
    """kill -9 during the search (after its first epoch checkpoint) or during the fine-tune of the
    derived agent, then --resume in another process (another hash seed): history.json, arch.json,
    accelerator.yaml, the fine-tuned weights and every number of the report (scores, mapper
    re-costing with a count budget) equal the uninterrupted run's bit for bit."""
    cfg = yaml.safe_load(tiny_config.read_text())
    cfg["hardware"]["recost_evaluations"] = 1500      # machine-independent mapper budget
    cfg["finetune"].update(frames=2048, checkpoint_every=512)
    cfg_path = tmp_path / "exact.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    ref = tmp_path / "ref"
    assert main(["search", str(cfg_path), "--out", str(ref)]) == 0
    out = tmp_path / "run"
    marker = out / ("checkpoints/last.ckpt" if kill_at == "search" else "finetune/checkpoints/last.pt")
    _kill_when([sys.executable, "-m", "a3cs_plugin.cli.main", "search", str(cfg_path), "--out", str(out)],
               marker, hash_seed=7)
    assert not (out / "report.json").exists()
    t_resume = time.time()
    assert main(["search", str(cfg_path), "--out", str(out), "--resume"]) == 0
    t_resume = time.time() - t_resume
    report, ref_report = (json.loads((d / "report.json").read_text()) for d in (out, ref))
    # the wall time counts the killed segment too (up to its last checkpoint)
    assert report["search"]["wall_s"] > t_resume
    if kill_at == "search":
        assert 0 < report["search"]["resumed_from_update"] < 12
    assert json.loads((out / "history.json").read_text()) == json.loads((ref / "history.json").read_text())
    for name in ("arch.json", "accelerator.yaml"):
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name
    assert _without_wall_clock(report) == _without_wall_clock(ref_report)
    assert report["derived"]["fps"] > 0 and len(report["derived"]["scores"]) == 2
    a = torch.load(out / "finetune" / "agent.pt", weights_only=False)["model"]
    b = torch.load(ref / "finetune" / "agent.pt", weights_only=False)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    if kill_at == "finetune":
        # --resume --no-recost on the finished run keeps its mapper numbers and says so
        assert main(["search", str(cfg_path), "--out", str(out), "--resume", "--no-recost"]) == 0
        again = json.loads((out / "report.json").read_text())
        assert again["recosted"] and again.get("recost_kept")
        assert _without_wall_clock(again["derived"]) == _without_wall_clock(report["derived"])
        assert again["baselines"] == report["baselines"]
        assert "kept from the finished run" in (out / "report.md").read_text()


def test_unreachable_fps_target_is_refused_before_training(tiny_config, tmp_path, capsys):
    cfg = yaml.safe_load(tiny_config.read_text())
    cfg["hardware"]["fps_target"] = 1.0e8
    path = tmp_path / "fast.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    t0 = time.time()
    assert main(["search", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "hardware.fps_target" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists() and time.time() - t0 < 60
    cfg["hardware"]["fps_target"] = 20000.0       # reachable: accepted (checked by parsing the plan only)
    from a3cs_plugin.strategy import registry
    from a3cs_plugin.cosearch.driver import best_fps_estimate
    from a3cs_plugin.agents.space import AgentSpace
    from a3cs_plugin.cost.base import NetworkCost
    cm = registry.cost_model("surrogate", "eyeriss_like")
    space = AgentSpace(6, num_cells=3)
    labels = {label: list(m.values) for label, m in space.simplify().items()}
    nc = NetworkCost(cm, {label: {op: list(space.op_problems(label, op)) for op in ops}
                          for label, ops in labels.items()}, list(space.fixed_problems()))
    assert 20000.0 < best_fps_estimate(cm, nc, cm.pinned()) < 1.0e8


@pytest.mark.slow
def test_multi_seed_search_keeps_the_best(tiny_config, tmp_path):
    cfg_path = tiny_config
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg.update(seeds=[1, 2], frames=1024, hp={"num_envs": 2, "num_steps": 32, "num_minibatches": 1})
    cfg["search"]["epochs"] = 1
    cfg["finetune"]["frames"] = 0
    path = tmp_path / "seeds.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    assert main(["search", str(path), "--out", str(out), "--no-recost", "--no-retrain"]) == 0
    summary = json.loads((out / "seeds.json").read_text())
    assert set(summary["seeds"]) == {"1", "2"}
    best = summary["best_seed"]
    assert (out / "arch.json").read_text() == (out / f"seed_{best}" / "arch.json").read_text()
    scores = {int(s): v["score"] for s, v in summary["seeds"].items()}
    assert scores[best] == max(scores.values())
    with pytest.raises(ConfigError, match="seeds"):
        parse_config({"seeds": [1, 1]})


def test_run_example_keeps_a_run_it_cannot_resume(tmp_path, capsys):
    """`make run` after the example changed: the old run is kept under a new name, untouched, and
    a new run is made (nothing written before is lost)."""
    out = tmp_path / "tiny_pong"
    (out / "checkpoints").mkdir(parents=True)
    old_cfg = yaml.safe_load((EXAMPLES / "tiny_pong.yaml").read_text())
    old_cfg["seed"] = int(old_cfg.get("seed", 0)) + 7
    (out / "config.yaml").write_text(yaml.safe_dump(old_cfg, sort_keys=False))
    (out / "checkpoints" / "last.ckpt").write_bytes(b"an older run's checkpoint")
    assert main(["run-example", "--example", "tiny_pong", "--out", str(out)]) == 0
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("tiny_pong.prev-")]
    assert len(kept) == 1
    assert (kept[0] / "checkpoints" / "last.ckpt").read_bytes() == b"an older run's checkpoint"
    assert yaml.safe_load((kept[0] / "config.yaml").read_text()) == old_cfg
    assert json.loads((out / "report.json").read_text())["derived"]["fps"] > 0
    assert "moved it to" in capsys.readouterr().err
