"""The accelerator specs in arch_specs/: they load, use only built-in energy classes, and map a conv layer."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "arch_specs"
DESIGNS = {  # name -> (PEs, MACs)
    "eyeriss_like": 168,
    "simba_like": 16 * 4 * 4,
    "simple_ws": 256,
    "simple_os": 256,
}
REFERENCE = ROOT.parent / "shared" / "timeloop-reference" / "designs"


def _spec(name, problem):
    from a3cs_plugin.hardware.spec import load_spec
    return load_spec([SPECS / f"{name}.yaml", problem, SPECS / "mapper.yaml"])


@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_spec_loads(name):
    from a3cs_plugin.hardware.spec import conv2d_problem
    spec = _spec(name, conv2d_problem(1, 32, 64, 9, 9, 4, 4, 2, 2))
    levels = spec.arch.levels
    assert levels[-1].name == "DRAM"
    macs = max(lv.instances for lv in levels)
    assert macs == DESIGNS[name]
    assert spec.constraints, "dataflow constraints missing"
    assert spec.mapper.get("optimization_metrics") == ["edp"]


@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_builtin_tables_cover_spec(name):
    from a3cs_plugin.hardware.energy import builtin_ert_for_components
    from a3cs_plugin.hardware.spec import conv2d_problem
    spec = _spec(name, conv2d_problem(1, 8, 8, 4, 4, 3, 3))
    comps = [(lv.name, lv.cls, lv.attributes) for lv in spec.arch.levels
             if not lv.name.startswith("inter_")]
    comps += [(lv.name, lv.cls, lv.attributes) for lv in [spec.arch.compute] if lv is not None]
    ert, art = builtin_ert_for_components(comps)
    assert [t["name"] for t in ert["ERT"]["tables"]] == [c[0] for c in comps]
    for t in ert["ERT"]["tables"]:
        assert {"read", "leak"} & {a["name"] for a in t["actions"]} or t["name"] == "mac"
    assert all(t["area"] > 0 for t in art["ART"]["tables"] if t["name"] != "DRAM")


@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_sizes_match_reference_design(name):
    """Structure and sizes carried over from the reference designs (the text is ours)."""
    ref_name = {"simple_ws": "simple_weight_stationary",
                "simple_os": "simple_output_stationary"}.get(name, name)
    ref = REFERENCE / ref_name / "arch.yaml"
    if not ref.is_file():
        pytest.skip(f"reference design not available at {ref}")
    from a3cs_plugin.hardware.spec import conv2d_problem, load_spec
    prob = conv2d_problem(1, 8, 8, 4, 4, 3, 3)
    ours = load_spec([SPECS / f"{name}.yaml", prob]).arch.levels
    theirs = load_spec([ref, prob]).arch.levels
    key = lambda lv: (lv.name, lv.instances, lv.attributes.get("depth"), lv.attributes.get("width"))  # noqa: E731
    assert [key(lv) for lv in ours] == [key(lv) for lv in theirs]


@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_mapper_maps_conv_layer(name):
    from a3cs_plugin.hardware.mapper import search
    from a3cs_plugin.hardware.spec import conv2d_problem
    # Nature-CNN conv2: 32 -> 64 channels, 4x4 kernel, stride 2, 9x9 output
    spec = _spec(name, conv2d_problem(1, 32, 64, 9, 9, 4, 4, 2, 2))
    res = search(spec, metric="edp", time_limit=1.5, seed=0)
    r = res.result
    macs = 32 * 64 * 9 * 9 * 4 * 4
    assert r.computes == macs
    assert macs / DESIGNS[name] <= r.cycles <= macs      # at best every MAC busy, at worst one
    assert r.energy_pJ > macs * 0.01
    assert set(r.levels_pJ) >= {"DRAM"}


@pytest.mark.parametrize("problem", sorted(p.name for p in (SPECS / "problems").glob("*.yaml")))
def test_problem_files_load(problem):
    from a3cs_plugin.hardware.spec import load_spec
    spec = load_spec([SPECS / "eyeriss_like.yaml", SPECS / "problems" / problem])
    assert spec.problem.computes > 1000
    assert set("CMRSNPQ") <= set(spec.problem.dimensions)
