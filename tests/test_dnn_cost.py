"""Whole-network costing on a real Timeloop design (Eyeriss-like, reference ERT/ART) with our mapper."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

from a3cs_plugin.errors import A3CSError, ConfigError  # noqa: E402
from a3cs_plugin.hardware.dnn_cost import NetworkResult, clear_cache, evaluate_network  # noqa: E402
from a3cs_plugin.hardware.workload import LayerProblem, total_macs  # noqa: E402

REF = Path(__file__).resolve().parents[1].parent / "shared" / "timeloop-reference"
EYERISS = REF / "tutorial" / "timeloop" / "06-mapper-convlayer-eyeriss"
TIME_LIMIT = 0.5


@pytest.fixture(scope="module")
def eyeriss():
    if not EYERISS.is_dir():
        pytest.skip(f"Timeloop reference data not found at {REF}")
    comps = sorted((EYERISS / "arch" / "components").glob("*.yaml"))
    files = [EYERISS / "arch" / "eyeriss_like.yaml", *comps]
    return {"arch_files": files, "ert": EYERISS / "ref-output" / "timeloop-mapper.ERT.yaml",
            "art": EYERISS / "ref-output" / "timeloop-mapper.ART.yaml"}


@pytest.fixture(scope="module")
def nature(eyeriss):
    from a3cs_plugin.agents import network_problems
    clear_cache()
    probs = network_problems(model="nature_cnn", num_actions=6)
    t = time.perf_counter()
    res = evaluate_network(eyeriss["arch_files"], probs, ert=eyeriss["ert"], art=eyeriss["art"],
                           metric="edp", time_limit=TIME_LIMIT)
    return probs, res, time.perf_counter() - t


def test_nature_cnn_per_layer_results(nature, eyeriss):
    from a3cs_plugin.hardware.spec import load_spec
    probs, res, _ = nature
    spec = load_spec([str(f) for f in eyeriss["arch_files"]] + [probs[0].problem])
    level_names = set(spec.arch.level_names)
    assert {"DRAM", "shared_glb", "ifmap_spad"} <= level_names
    assert isinstance(res, NetworkResult)
    assert [l.name for l in res.layers] == [p.name for p in probs]
    for lp, l in zip(probs, res.layers):
        assert l.macs == lp.macs and l.count == 1
        assert l.computes == lp.macs                       # the model counts exactly the layer's MACs
        assert l.cycles >= math.ceil(lp.macs / 168)        # 14 x 12 PEs, one MAC per PE per cycle
        assert l.energy_pJ > 0 and set(l.levels_pJ) >= {"DRAM", "shared_glb", "mac"}
        assert sum(l.levels_pJ.values()) == pytest.approx(l.energy_pJ, rel=1e-6)
        assert isinstance(l.mapping, list) and l.mapping
        targets = {d["target"] for d in l.mapping}
        assert {"DRAM", "shared_glb"} <= targets <= level_names
    assert not any(l.cached for l in res.layers)


def test_nature_cnn_totals(nature):
    probs, res, _ = nature
    assert res.energy_pJ == pytest.approx(sum(l.energy_pJ for l in res.layers))
    assert res.cycles == pytest.approx(sum(l.cycles for l in res.layers))
    assert res.macs == total_macs(probs) == 9_346_560
    assert res.clock_source == "global_cycle_seconds" and res.cycle_seconds == pytest.approx(1e-9)
    assert res.latency_s == pytest.approx(res.cycles * 1e-9)
    assert res.fps == pytest.approx(1.0 / res.latency_s)
    assert res.area_um2 is not None and res.area_um2 > 0
    assert sum(res.levels_pJ.values()) == pytest.approx(res.energy_pJ, rel=1e-6)
    d = json.loads(res.to_json())
    assert d["totals"]["energy_pJ"] == pytest.approx(res.energy_pJ)
    assert d["totals"]["fps"] == pytest.approx(res.fps)
    assert len(d["layers"]) == 6 and d["layers"][0]["name"] == "trunk.0"
    md = res.to_markdown()
    assert md.count("\n| ") >= 7 and "**total**" in md and "trunk.7" in md and "FPS" in md


def test_plot(nature, tmp_path):
    _, res, _ = nature
    path = res.plot(tmp_path / "plots" / "energy.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_memory_cache_and_identical_layers(nature, eyeriss):
    probs, first, _ = nature
    t = time.perf_counter()
    again = evaluate_network(eyeriss["arch_files"], probs, ert=eyeriss["ert"], art=eyeriss["art"],
                             metric="edp", time_limit=TIME_LIMIT)
    assert time.perf_counter() - t < 5 * TIME_LIMIT
    assert all(l.cached for l in again.layers)
    assert again.energy_pJ == first.energy_pJ and again.cycles == first.cycles
    # two layers with the same problem under different names: searched once, counted twice
    twin = LayerProblem(name="twin", kind=probs[2].kind, problem=probs[2].problem, macs=probs[2].macs, count=3)
    res = evaluate_network(eyeriss["arch_files"], [probs[2], twin], ert=eyeriss["ert"], art=eyeriss["art"],
                           metric="edp", time_limit=TIME_LIMIT)
    assert [l.cached for l in res.layers] == [True, True]
    assert res.energy_pJ == pytest.approx(4 * first.layers[2].energy_pJ)
    assert res.cycles == pytest.approx(4 * first.layers[2].cycles)


def test_disk_cache(nature, eyeriss, tmp_path):
    probs, first, _ = nature
    cache = tmp_path / "cache.json"
    clear_cache()
    one = evaluate_network(eyeriss["arch_files"], probs[3:4], ert=eyeriss["ert"], art=eyeriss["art"],
                           metric="edp", time_limit=TIME_LIMIT, cache=cache)
    assert not one.layers[0].cached and cache.exists()
    assert len(json.loads(cache.read_text())) == 1
    clear_cache()
    two = evaluate_network(eyeriss["arch_files"], probs[3:4], ert=eyeriss["ert"], art=eyeriss["art"],
                           metric="edp", time_limit=TIME_LIMIT, cache=cache)
    assert two.layers[0].cached
    assert two.layers[0].energy_pJ == one.layers[0].energy_pJ and two.layers[0].mapping == one.layers[0].mapping
    # a different metric is a different search
    three = evaluate_network(eyeriss["arch_files"], probs[3:4], ert=eyeriss["ert"], art=eyeriss["art"],
                             metric="energy", time_limit=TIME_LIMIT, cache=cache)
    assert not three.layers[0].cached and three.metric == "energy"
    assert len(json.loads(cache.read_text())) == 2
    bad = tmp_path / "bad.json"
    bad.write_text("[oops")
    with pytest.raises(ConfigError, match="bad.json"):
        evaluate_network(eyeriss["arch_files"], probs[3:4], ert=eyeriss["ert"], art=eyeriss["art"], cache=bad)


def test_searched_agent_with_depthwise_layers(eyeriss):
    """A small agent from the search space (grouped / depthwise convs = problems with a G dimension)."""
    from a3cs_plugin.agents import AgentSpace
    space = AgentSpace(4, num_cells=2, channels=[8, 16], strides=[1, 2])
    arch = {"cell_00": "k3_e3", "cell_01": "k5_e1_g2"}
    probs = space.arch_problems(arch)
    assert any(int(p.problem["problem"]["instance"].get("G", 1)) > 1 for p in probs)
    res = evaluate_network(eyeriss["arch_files"], probs, ert=eyeriss["ert"], art=eyeriss["art"],
                           metric="edp", time_limit=TIME_LIMIT, cache=False)
    assert len(res.layers) == len(probs)
    for lp, l in zip(probs, res.layers):
        assert l.computes == lp.macs and l.energy_pJ > 0 and l.cycles >= lp.macs / 168


def test_bad_inputs(eyeriss, tmp_path):
    with pytest.raises(ConfigError, match="accelerator"):
        evaluate_network([], [])
    with pytest.raises(ConfigError, match="problem 0"):
        evaluate_network(eyeriss["arch_files"], ["conv"])
    with pytest.raises(ConfigError, match="no layer"):
        evaluate_network(eyeriss["arch_files"], [])
    from a3cs_plugin.agents import network_problems
    actor = network_problems(model="nature_cnn")[4]
    with pytest.raises(A3CSError, match="layer actor: .*bogus") as ei:       # errors name the layer
        evaluate_network(eyeriss["arch_files"], [actor], metric="bogus", cache=False)
    assert "\n" not in str(ei.value)
    with pytest.raises(A3CSError, match="nope.yaml"):
        evaluate_network([tmp_path / "nope.yaml"], [{"problem": {}}])


def test_problem_in_arch_files_is_ignored(nature, eyeriss):
    """A problem section among the arch files (e.g. the case's VGG layer) does not leak into layers."""
    probs, _, _ = nature
    files = list(eyeriss["arch_files"]) + [EYERISS / "prob" / "VGG02_layer5.yaml"]
    from a3cs_plugin.hardware.dnn_cost import _arch_sources
    srcs = _arch_sources(files)
    assert srcs[:-1] == [str(f) for f in eyeriss["arch_files"]]       # untouched files stay paths
    assert isinstance(srcs[-1], dict) and "problem" not in srcs[-1]
    res = evaluate_network(files, probs[4:5], ert=eyeriss["ert"], art=eyeriss["art"], time_limit=0.3, cache=False)
    assert res.layers[0].computes == probs[4].macs == 512 * 6


def test_old_module_names_are_aliases_for_one_release():
    """hardware.network -> hardware.dnn_cost, hardware.space.space -> .design,
    hardware.mapper.space -> .mapspace: the old names are the same module objects."""
    import importlib
    for old, new in (("a3cs_plugin.hardware.network", "a3cs_plugin.hardware.dnn_cost"),
                     ("a3cs_plugin.hardware.space.space", "a3cs_plugin.hardware.space.design"),
                     ("a3cs_plugin.hardware.mapper.space", "a3cs_plugin.hardware.mapper.mapspace")):
        assert importlib.import_module(old) is importlib.import_module(new)
    from a3cs_plugin.hardware.network import evaluate_network as old_fn
    assert old_fn is evaluate_network
