"""The DNNBuilder-like layer-pipelined baseline (arch_specs/dnnbuilder_like.yaml) on the real model
and mapper: stage specs, PE allocation, throughput, budgets and errors."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from a3cs_plugin.cli.main import main
from a3cs_plugin.errors import ConfigError
from a3cs_plugin.hardware import pipeline as pl

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "arch_specs" / "dnnbuilder_like.yaml"
EYERISS = REPO / "arch_specs" / "eyeriss_like.yaml"
TL = "0.25"                                  # mapper seconds per stage: cycles do not depend on it


@pytest.fixture(scope="module")
def nature():
    from a3cs_plugin.agents import network_problems
    return network_problems(model="nature_cnn", num_actions=6)


@pytest.fixture(scope="module")
def cfg():
    return pl.load_pipeline(SPEC)


@pytest.fixture(scope="module")
def nature_run(tmp_path_factory):
    """`a3cs hw net --accel arch_specs/dnnbuilder_like.yaml --model nature_cnn --json --out DIR`."""
    out = tmp_path_factory.mktemp("dnb") / "run"
    return _net_json("--accel", SPEC, "--model", "nature_cnn", "--out", out), out


def _net_json(*args):
    import contextlib
    import io
    buf, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(err):
        rc = main(["hw", "net", *map(str, args), "--time-limit", TL, "--json"])
    assert rc == 0, err.getvalue()
    return json.loads(buf.getvalue())


def _cli(*args):
    import contextlib
    import io
    buf, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in args])
    return rc, buf.getvalue(), err.getvalue()


def test_defaults_match_eyeriss_budget(cfg):
    """Same technology, data width, clock and PE count as eyeriss_like (14 x 12), its GLB as SRAM."""
    from a3cs_plugin.hardware.spec import load_yaml_file
    assert (cfg.technology, cfg.datawidth, cfg.global_cycle_seconds) == ("65nm", 8, 1e-9)
    assert cfg.pe_budget == 14 * 12 and cfg.area_budget_mm2 == pytest.approx(9.62)
    text = EYERISS.read_text()
    assert 'technology: "65nm"' in text and "global_cycle_seconds: 1e-9" in text
    assert "meshX: 14" in text and "meshY: 12" in text
    glb = [n for n in load_yaml_file(EYERISS)["architecture"]["nodes"]
           if n.get("name") == "shared_glb"][0]["attributes"]
    assert cfg.onchip_bytes == glb["depth"] * glb["width"] // 8


def test_nature_cnn_json_fields_and_throughput(nature_run, nature):
    d, _ = nature_run
    for k in ("energy_mJ", "latency_ms", "fps", "area_mm2", "cycles", "macs", "levels_pJ", "layers", "pipeline"):
        assert k in d, k
    assert len(d["layers"]) == len(nature)
    assert d["macs"] == sum(lp.macs for lp in nature)
    stages = d["layers"]
    for lp, s in zip(nature, stages):
        assert s["name"] == lp.name and s["pes"] == s["cpf"] * s["kpf"]
        inst = lp.problem["problem"]["instance"]
        assert inst["C"] % s["cpf"] == 0 and (inst["M"] * inst.get("G", 1)) % s["kpf"] == 0
        assert s["cycles"] == lp.macs / s["pes"]              # fully used CPF x KPF MACs
    worst = max(s["stage_cycles"] for s in stages)
    p = d["pipeline"]
    assert p["interval_cycles"] == worst
    assert d["fps"] == pytest.approx(p["clock_hz"] / worst, rel=1e-12)
    assert d["latency_ms"] == pytest.approx(sum(s["stage_cycles"] for s in stages) * 1e-6, rel=1e-12)
    assert stages[p["bottleneck_stage"]]["bottleneck"] and stages[p["bottleneck_stage"]]["stage_cycles"] == worst
    assert sum(s["pes"] for s in stages) == p["pes"] <= 168
    assert d["energy_mJ"] == pytest.approx(sum(s["energy_pJ"] for s in stages) * 1e-9, rel=1e-9)
    assert 0 < d["area_mm2"] <= 9.62 and p["onchip_bytes_used"] <= p["onchip_bytes"]
    # the FC layer's 1.6 MB of weights do not fit the 128 KiB: streamed; the convs' stay on chip
    on_chip = {s["name"]: s["weights_on_chip"] for s in stages}
    assert on_chip["trunk.7"] is False and on_chip["trunk.0"] and on_chip["trunk.2"] and on_chip["trunk.4"]


def test_stage_specs_are_timeloop_specs(nature_run):
    """Every written stage (architecture + problem + the mapper's mapping) runs in `a3cs hw model`
    and reproduces the stage's cycles, energy and area."""
    d, out = nature_run
    rep = json.loads((out / "report.json").read_text())
    files = sorted((out / "stages").glob("stage*.yaml"))
    assert len(files) == len(rep["stages"]) and (out / "report.md").is_file() and (out / "energy.png").is_file()
    for f, s in zip(files, rep["stages"]):
        rc, stdout, err = _cli("hw", "model", f, "--json")
        assert rc == 0, err
        m = json.loads(stdout)
        assert m["cycles"] == s["cycles"]
        assert m["energy_pJ"] == pytest.approx(s["spec_energy_pJ"], rel=1e-9)
        assert m["area_um2"] == pytest.approx(s["area_um2"], rel=1e-9)
        assert s["energy_pJ"] == pytest.approx(s["spec_energy_pJ"] - s["dram_removed_pJ"], rel=1e-9)
    text = files[0].read_text()
    assert "!Component" in text and "version: 0.4" in text and "/work" not in text


def test_inter_stage_dram_traffic_removed(cfg, nature):
    res = pl.evaluate_pipeline(cfg, nature, time_limit=float(TL))
    first, fc, heads = res.stages[0], res.stages[3], res.stages[4:]
    assert first.input_from == "DRAM" and fc.input_from.startswith("previous")
    assert [h.output_to for h in heads] == ["DRAM", "DRAM"] and fc.output_to.startswith("next")
    # streamed FC weights keep their DRAM reads: at least one read per weight (8 pJ/bit LPDDR4)
    assert fc.levels_pJ["DRAM"] >= fc.weight_bytes * 8 * 8 * 0.999
    # resident conv weights and on-chip feature maps leave no DRAM energy behind
    assert res.stages[1].levels_pJ["DRAM"] == pytest.approx(0.0, abs=1e-6)
    assert first.levels_pJ["DRAM"] > 0                       # the frame is read from DRAM
    # the model's area of every stage spec equals the planner's (used for area budgets)
    for plan, s in zip(res._plans, res.stages):
        assert pl.stage_area_um2(plan, cfg) == pytest.approx(s.area_um2, rel=1e-6)


def test_allocation_budget_and_monotone(cfg):
    """PEs within the budget; within a shape class (same C, M, G: the same divisor choices) a
    heavier layer never gets fewer PEs than a lighter one."""
    from a3cs_plugin.agents import network_problems
    for model in ("nature_cnn", "resnet14", "resnet20"):
        layers = network_problems(model=model, num_actions=6)
        for budget in (len(layers), 100, 168, 400):
            c = pl.load_pipeline(SPEC, pe_budget=budget, area_budget_mm2=None)
            plans = pl.plan_pipeline(c, layers)
            assert sum(p.pes for p in plans) <= budget
            by_class: dict = {}
            for p in plans:
                i = p.layer.problem["problem"]["instance"]
                by_class.setdefault((i["C"], i["M"], i.get("G", 1)), []).append(p)
            for group in by_class.values():
                for a in group:
                    for b in group:
                        if a.work > b.work:
                            assert a.pes >= b.pes, (model, budget, a.name, b.name)
            if model == "resnet14" and budget == 168:
                assert max(len(g) for g in by_class.values()) >= 3    # the property is exercised


def test_doubling_pe_budget(cfg, nature):
    one = pl.evaluate_pipeline(cfg, nature, time_limit=float(TL))
    two = pl.evaluate_pipeline(pl.load_pipeline(SPEC, pe_budget=2 * 168), nature, time_limit=float(TL))
    assert two.fps > one.fps and two.pes > one.pes and two.pes <= 336
    from a3cs_plugin.agents import network_problems
    for model in ("resnet14",):
        layers = network_problems(model=model, num_actions=6)
        est = []
        for budget in (168, 336):
            plans = pl.plan_pipeline(pl.load_pipeline(SPEC, pe_budget=budget), layers)
            est.append(max(p.est_cycles for p in plans))
        assert est[1] <= est[0]


def test_area_budget_binds(nature):
    """Without a PE budget the area budget stops the allocation."""
    free = pl.plan_pipeline(pl.load_pipeline(SPEC, pe_budget=None, area_budget_mm2=None), nature)
    c = pl.load_pipeline(SPEC, pe_budget=None, area_budget_mm2=0.8)
    plans = pl.plan_pipeline(c, nature)
    area = sum(pl.stage_area_um2(p, c) for p in plans)
    assert area <= 0.8e6 and sum(p.pes for p in plans) < sum(p.pes for p in free)


def test_agent_arch_json(tmp_path):
    """A searched agent (arch.json) with grouped convolutions (a G dimension) on the pipeline."""
    from a3cs_plugin.agents.arch import cell_labels
    arch = {lab: "skip" for lab in cell_labels(14)}
    arch.update({"cell_00": "k3_e1", "cell_04": "k5_e1_g2", "cell_09": "k3_e3"})
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(arch))
    d = _net_json("--accel", "dnnbuilder_like", "--agent", path)
    assert d["fps"] > 0 and d["energy_mJ"] > 0 and d["area_mm2"] > 0
    assert d["pipeline"]["pes"] <= 168 and d["pipeline"]["stages"] == len(d["layers"]) >= 5
    assert d["fps"] == pytest.approx(1e9 / max(s["stage_cycles"] for s in d["layers"]))


@pytest.mark.parametrize("args, needles", [
    (["--pe-budget", "0"], ["--pe-budget", "positive integer"]),
    (["--pe-budget", "3"], ["dnnbuilder_like.yaml", "pipeline.budget.pe_budget", ">= 6"]),
    (["--onchip-bytes", "1000"], ["pipeline.budget.onchip_bytes", "line buffers"]),
    (["--area-budget", "0.01"], ["pipeline.budget.area_budget_mm2"]),
])
def test_bad_budgets(args, needles):
    rc, _, err = _cli("hw", "net", "--accel", SPEC, "--model", "nature_cnn", "--time-limit", TL, *args)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1, err
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.mark.parametrize("body, needles", [
    ("pipeline:\n  budget: {pe_budgt: 100}\n", ["bad.yaml", "pipeline.budget.pe_budgt", "unknown key"]),
    ("pipeline:\n  budget: {pe_budget: many}\n", ["bad.yaml", "pipeline.budget.pe_budget", "positive integer"]),
    ("pipeline:\n  allocation: {rule: proportional}\n", ["bad.yaml", "pipeline.allocation.rule",
                                                        "balance_stage_cycles"]),
    ("pipeline:\n  technology: 7nm\n", ["bad.yaml", "pipeline.technology"]),
    ("pipeline:\n  budget: [1\n", ["bad.yaml", "malformed YAML"]),
    ("pipeline:\n  name: x\narchitecture: {}\n", ["bad.yaml", "architecture", "only 'pipeline'"]),
    ("pipeline: 3\n", ["bad.yaml", "pipeline", "mapping"]),
])
def test_malformed_pipeline_yaml(tmp_path, body, needles):
    bad = tmp_path / "bad.yaml"
    bad.write_text(body)
    rc, _, err = _cli("hw", "net", "--accel", bad, "--model", "nature_cnn", "--time-limit", TL)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1, err
    for n in needles:
        assert n in lines[0], lines[0]


def test_console_script_errors(tmp_path):
    """Through the real console script: exit 2, one line, no traceback."""
    script = REPO / ".venv" / "bin" / "a3cs"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "a3cs_plugin.cli.main"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for extra in (["--accel", str(SPEC), "--pe-budget", "-5"], ["--accel", str(EYERISS), "--pe-budget", "100"]):
        p = subprocess.run(cmd + ["hw", "net", "--model", "nature_cnn", *extra], capture_output=True,
                           text=True, env=env, timeout=300)
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        assert p.returncode == 2 and len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
        assert "--pe-budget" in lines[0]


def test_load_pipeline_api_errors():
    with pytest.raises(ConfigError, match="not a pipeline"):
        pl.load_pipeline({"architecture": {}})
    with pytest.raises(ConfigError, match="pe_budget"):
        pl.load_pipeline(SPEC, pe_budget=0)
    with pytest.raises(ConfigError, match="unknown override"):
        pl.load_pipeline(SPEC, pes=3)
    assert not pl.is_pipeline_file(EYERISS) and pl.is_pipeline_file(SPEC)
    assert math.isclose(pl.load_pipeline(SPEC, onchip_bytes=0).onchip_bytes, 0)


def test_evaluate_network_dispatches_pipeline(nature):
    """evaluate_network (what re-costing code calls) accepts the pipeline description and returns
    the NetworkResult attributes, FPS from the slowest stage."""
    from a3cs_plugin.hardware.dnn_cost import evaluate_network
    res = evaluate_network([SPEC], nature, time_limit=float(TL))
    assert isinstance(res, pl.PipelineResult)
    assert [l.name for l in res.layers] == [lp.name for lp in nature]
    assert res.fps == pytest.approx(1.0 / (max(l.cycles * l.count for l in res.layers) * res.cycle_seconds))
    assert res.latency_s == pytest.approx(res.cycles * 1e-9) and res.edp == res.energy_pJ * res.cycles
    assert res.macs == sum(lp.macs for lp in nature) and res.area_um2 > 0 and res.clock_source
    assert all(l.mapping for l in res.layers)
    with pytest.raises(ConfigError, match="stands alone"):
        evaluate_network([SPEC, EYERISS], nature[:1])
    with pytest.raises(ConfigError, match="built-in"):
        evaluate_network([SPEC], nature[:1], backend="timeloop")


def test_allocation_is_optimal_for_the_slowest_stage():
    """No divisor choice within the budget has a faster slowest stage: to beat the greedy's interval
    every stage needs at least its cheapest option below that interval, and those do not fit."""
    from a3cs_plugin.agents import network_problems
    for model, budget in (("nature_cnn", 168), ("resnet14", 168), ("resnet14", 500)):
        c = pl.load_pipeline(SPEC, pe_budget=budget, area_budget_mm2=None)
        plans = pl.plan_pipeline(c, network_problems(model=model, num_actions=6))
        worst = max(p.est_cycles for p in plans)
        need = 0
        for p in plans:
            faster = [cc * m * g for cc, m, g in p.options() if p.work / (cc * m * g) < worst]
            if not faster:
                need = None                      # some stage cannot get faster at all
                break
            need += min(faster)
        assert need is None or need > budget, (model, budget, need)
