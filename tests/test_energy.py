"""Built-in energy/area tables: structure, semantics, and agreement with Accelergy's references."""
from __future__ import annotations

import math
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from a3cs_plugin.errors import SpecError
from a3cs_plugin.hardware.energy import (Component, builtin_ert, builtin_ert_for_components,
                                         component_actions, flattened_components, known_classes,
                                         load_tables, parse_technology)
from a3cs_plugin.hardware.energy import validate

REF = Path(__file__).resolve().parents[1] / ".." / "shared" / "timeloop-reference"

# ours / Accelergy per class, as measured over every reference ERT (see energy/README.md),
# widened by ~3 % each side. Dynamic = read/write/update/compute/mac_random.
DYNAMIC_BOUNDS = {
    "DRAM": (0.999, 1.001),
    "SRAM": (0.57, 1.03),
    "regfile": (0.97, 1.19),
    "smartbuffer_SRAM": (0.33, 1.04),
    "smartbuffer_RF": (0.32, 0.72),
    "intmac": (0.97, 3.18),
    "fpmac": (0.085, 0.092),
}
LEAK_BOUNDS = {
    "SRAM": (0.97, 1.03),
    "regfile": (0.33, 0.37),
    "smartbuffer_SRAM": (1.24, 1.77),
    "smartbuffer_RF": (0.55, 4.87),
    "intmac": (1.73, 1.85),
}
AREA_BOUNDS = {
    "SRAM": (0.43, 1.03),
    "regfile": (4.27, 10.8),
    "smartbuffer_SRAM": (0.32, 1.04),
    "smartbuffer_RF": (1.13, 12.9),
    "intmac": (1.36, 2.1),
    "fpmac": (2.79, 2.98),
}


@pytest.fixture(scope="module")
def ref_dir():
    if not (REF / "cases.yaml").is_file():
        pytest.skip(f"reference data absent: {REF}")
    return REF.resolve()


@pytest.fixture(scope="module")
def comparison(ref_dir):
    return validate.compare(ref_dir)


def test_tables_record_provenance():
    t = load_tables()
    meta = t["meta"]
    assert meta["generator"] == "tools/gen_energy_tables.py"
    assert meta["packages"]["hwcomponents"] and meta["packages"]["hwcomponents-cacti"]
    assert meta["date_utc"].startswith("20")
    assert not meta["parameters"]["quick"]
    assert {"32nm", "40nm", "45nm", "65nm"} <= set(t["tech"])
    for tech in t["tech"].values():
        assert {"SRAM", "regfile", "register", "intadder", "intmultiplier", "intmac",
                "fpmac"} <= set(tech)
    assert {"LPDDR4", "DDR4", "HBM2", "GDDR5"} <= set(t["dram_pj_per_bit"])
    for dtype in t["dram_pj_per_bit"]:
        assert meta["sources"]["DRAM"][dtype]  # every DRAM number names its source
    sram = t["tech"]["45nm"]["SRAM"]
    assert sram["depth"][0] == 64 and sram["depth"][-1] == 65536
    assert sram["width"][0] == 8 and sram["width"][-1] == 1024


def _sram(depth, width, tech="45nm", **kw):
    return component_actions("buf", "SRAM", dict(depth=depth, width=width, technology=tech, **kw))[0]


def test_grid_points_exact_and_interpolation_between():
    g = load_tables()["tech"]["45nm"]["SRAM"]
    i, j, k = g["depth"].index(2048), g["width"].index(64), g["n_banks"].index(2)  # default 2
    assert _sram(2048, 64)["read"] == pytest.approx(g["read"][i][j][k], rel=1e-9)
    lo, hi = _sram(2048, 64)["read"], _sram(4096, 64)["read"]
    mid = _sram(3000, 64)["read"]
    assert min(lo, hi) < mid < max(lo, hi)
    # log-log: at the geometric midpoint the value is the geometric mean of the neighbours
    assert _sram(math.sqrt(2048 * 4096), 64)["read"] == pytest.approx(math.sqrt(lo * hi), rel=1e-9)
    # technology between tabulated nodes lies between them
    e45, e65 = _sram(2048, 64, "45nm")["read"], _sram(2048, 64, "65nm")["read"]
    assert min(e45, e65) < _sram(2048, 64, "55nm")["read"] < max(e45, e65)


def test_energy_grows_with_size():
    assert _sram(1024, 64)["read"] < _sram(16384, 64)["read"] < _sram(16384, 256)["read"]
    rf = [component_actions("rf", "regfile", dict(depth=d, width=16, technology="65nm"))[0]["read"]
          for d in (4, 16, 64, 256)]
    assert rf == sorted(rf) and rf[0] < rf[-1]
    mac = [component_actions("m", "intmac", dict(width=w, technology="45nm"))[0]["compute"]
           for w in (4, 8, 16, 32)]
    assert mac == sorted(mac)
    fp16 = component_actions("m", "fpmac", dict(width=16, technology="45nm"))[0]["compute"]
    fp32 = component_actions("m", "fpmac", dict(width=32, technology="45nm"))[0]["compute"]
    assert fp16 < fp32


def test_class_semantics():
    attrs = dict(depth=4096, width=64, technology="45nm", n_banks=8)
    sram = component_actions("a", "SRAM", dict(attrs, n_banks=1))[0]
    smart = component_actions("b", "smartbuffer_SRAM", attrs)[0]
    adder = component_actions("c", "intadder", dict(width=12, technology="45nm"))[0]["add"]
    assert smart["read"] == pytest.approx(sram["read"] + adder, rel=1e-9)  # ignores n_banks
    assert smart["update"] == smart["write"]
    dram = component_actions("d", "DRAM", dict(width=64, type="HBM2"))[0]
    assert dram["read"] == pytest.approx(64 * load_tables()["dram_pj_per_bit"]["HBM2"])
    assert component_actions("d", "DRAM", dict(width=64))[0]["read"] == pytest.approx(512.0)
    mac = component_actions("m", "intmac", dict(width=8, technology="45nm"))[0]
    assert mac["mac_random"] == mac["compute"] and mac["idle"] == mac["leak"]
    # leak is per cycle: scales with global_cycle_seconds
    l1 = _sram(1024, 32)["leak"]
    assert _sram(1024, 32, global_cycle_seconds=2e-9)["leak"] == pytest.approx(2 * l1)
    # smartbuffer_RF below 64 x 32 scales a 64 x 32 regfile down (Accelergy's compound)
    small = component_actions("r", "smartbuffer_RF", dict(depth=16, width=16, technology="45nm"))[0]
    big = component_actions("r", "smartbuffer_RF", dict(depth=64, width=32, technology="45nm"))[0]
    assert small["read"] < big["read"]


def test_timeloop_v04_storage_subclass_and_register():
    # designs/*: `class: storage` + `subclass: <Accelergy class>`
    comp = {"name": "PEWeightBuffer", "class": "storage", "subclass": "smartbuffer_RF",
            "attributes": {"depth": 4096, "width": 64, "technology": "45nm"}}
    ert, _ = builtin_ert_for_components(flattened_components({"architecture": {"local": [comp]}}))
    direct = component_actions("x", "smartbuffer_RF", comp["attributes"])[0]
    assert ert["ERT"]["tables"][0]["actions"][0]["energy"] == pytest.approx(direct["read"], rel=1e-7)
    reg = builtin_ert_for_components([("weight_reg", "aladdin_register",
                                       {"depth": 1, "width": 16, "technology": "45nm"})])[0]
    reg = reg["ERT"]["tables"][0]["actions"]
    per_bit = component_actions("r", "register", {"width": 1, "technology": "45nm"})[0]["read"]
    assert reg[0]["name"] == "read" and reg[0]["energy"] == pytest.approx(16 * per_bit, rel=1e-6)
    with pytest.raises(SpecError, match="subclass.*generic class .storage."):
        component_actions("x", "storage", {"technology": "45nm"})


def test_technology_parsing():
    assert parse_technology("45nm", "x") == parse_technology("0.045um", "x") == 45.0
    assert parse_technology(45e-9, "x") == 45.0
    assert parse_technology(65, "x") == 65.0
    with pytest.raises(SpecError, match="technology"):
        parse_technology("fortyfive", "x")


def test_errors_name_component_and_expected():
    with pytest.raises(SpecError) as e:
        component_actions("PE.noc", "XY_NoC", {"technology": "45nm"})
    msg = str(e.value)
    assert "PE.noc" in msg and "XY_NoC" in msg and "smartbuffer_SRAM" in msg and "intmac" in msg
    assert "\n" not in msg
    with pytest.raises(SpecError, match="technology.*'glb'.*missing"):
        component_actions("glb", "SRAM", {"depth": 64, "width": 64})
    with pytest.raises(SpecError, match="7nm outside"):
        component_actions("glb", "SRAM", {"depth": 64, "width": 64, "technology": "7nm"})
    with pytest.raises(SpecError, match="DRAM type"):
        component_actions("mem", "DRAM", {"width": 64, "type": "SDR"})
    with pytest.raises(SpecError, match="depth"):
        component_actions("glb", "SRAM", {"width": 64, "technology": "45nm"})
    assert set(known_classes()) >= {"SRAM", "smartbuffer_SRAM", "smartbuffer_RF", "regfile",
                                    "intmac", "fpmac", "DRAM"}


def test_builtin_ert_structure_on_reference_architecture(ref_dir):
    flat = ref_dir / "tutorial/timeloop/06-mapper-convlayer-eyeriss/ref-output/timeloop-mapper.flattened_architecture.yaml"
    ref_ert = ref_dir / "tutorial/timeloop/06-mapper-convlayer-eyeriss/ref-output/timeloop-mapper.ERT.yaml"
    arch = yaml.safe_load(flat.read_text())
    ert, art = builtin_ert_for_components(flattened_components(arch, str(flat)))
    ref = yaml.safe_load(ref_ert.read_text())
    assert set(ert) == {"ERT"} and set(art) == {"ART"}
    classes = {c["name"]: c["class"] for c in arch["architecture"]["local"]}
    assert [t["name"] for t in ert["ERT"]["tables"]] == list(classes)
    assert [t["name"] for t in art["ART"]["tables"]] == list(classes)
    # Accelergy leaves Timeloop's dummy_storage levels out; ours lists them at zero cost
    extra = [t for t in ert["ERT"]["tables"] if classes[t["name"]] == "dummy_storage"]
    assert len(extra) == 2 and all(a["energy"] == 0 for t in extra for a in t["actions"])
    by_name = {t["name"]: t for t in ert["ERT"]["tables"]}
    for theirs in ref["ERT"]["tables"]:
        ours = by_name[theirs["name"]]
        names = {a["name"] for a in ours["actions"]}
        assert {a["name"] for a in theirs["actions"]} <= names, ours["name"]
        for a in ours["actions"]:
            assert set(a) == {"name", "arguments", "energy"} and a["energy"] >= 0
    # the YAML round trip gives the same dict (plain types only)
    assert yaml.safe_load(yaml.safe_dump(ert)) == ert


def test_builtin_ert_takes_a_spec_triples_or_a_flattened_architecture():
    """One typed input per entry point: builtin_ert(Spec), builtin_ert_for_components(triples),
    flattened_components(Accelergy flattened architecture) -> triples; anything else is refused."""
    from a3cs_plugin.hardware.spec import conv2d_problem, load_spec
    specs = Path(__file__).resolve().parents[1] / "arch_specs"
    spec = load_spec([specs / "eyeriss_like.yaml", conv2d_problem(1, 8, 8, 4, 4, 3, 3), specs / "mapper.yaml"])
    ert, art = builtin_ert(spec)
    comps = spec.ert_components()
    names = [t["name"] for t in ert["ERT"]["tables"]]
    real = [lv for lv in spec.arch.all_levels() if not lv.is_dummy]
    assert names == [f"{lv.name}[1..{lv.instances}]" for lv in real] == [c[0] for c in comps]
    assert [t["name"] for t in art["ART"]["tables"]] == names
    # the same numbers from the triples, as Component or as plain tuples
    assert builtin_ert_for_components([Component(*c) for c in comps]) == (ert, art)
    assert builtin_ert_for_components([tuple(c) for c in comps]) == (ert, art)
    # a flattened architecture of the same components gives the same tables
    flat = {"architecture": {"local": [{"name": n, "class": c, "attributes": a} for n, c, a in comps]}}
    assert flattened_components(flat) == [Component(n, c, a) for n, c, a in comps]
    assert builtin_ert_for_components(flattened_components(flat)) == (ert, art)
    with pytest.raises(TypeError, match="Spec"):
        builtin_ert(flat)
    with pytest.raises(SpecError, match="triple"):
        builtin_ert_for_components([SimpleNamespace(name="x", cls="SRAM", attributes={})])
    with pytest.raises(SpecError, match="flattened architecture"):
        flattened_components({"architecture": {"nodes": []}})


def test_reference_grid_points_reproduce_accelergy(comparison):
    """Where Accelergy used the same models (CACTI SRAM, Aladdin regfile/MAC, DRAM table),
    the built-in number equals Accelergy's at a grid point."""
    # tutorials 00-05 use plain SRAM/regfile/intmac/DRAM with the models hwcomponents ships
    rows = [r for r in comparison["rows"] if r["file"].startswith("tutorial/timeloop/0")
            and not r["file"].startswith("tutorial/timeloop/06")
            and r["cls"] in ("SRAM", "regfile", "intmac", "DRAM")
            and r["action"] in validate.DYNAMIC]
    assert len(rows) > 50
    for r in rows:
        assert r["ratio"] == pytest.approx(1.0, rel=2e-3), r


def test_reference_ratio_bounds(comparison):
    dyn = validate.summarize(comparison["rows"], validate.DYNAMIC)
    assert set(dyn) == set(DYNAMIC_BOUNDS), dyn.keys()
    for cls, s in dyn.items():
        lo, hi = DYNAMIC_BOUNDS[cls]
        assert lo <= s["min"] and s["max"] <= hi, (cls, s)
    leak = validate.summarize(comparison["rows"], validate.STATIC)
    for cls, s in leak.items():
        lo, hi = LEAK_BOUNDS[cls]
        assert lo <= s["min"] and s["max"] <= hi, (cls, s)
    area = validate.summarize(comparison["rows"], ("area",))
    for cls, s in area.items():
        lo, hi = AREA_BOUNDS[cls]
        assert lo <= s["min"] and s["max"] <= hi, (cls, s)
    assert set(comparison["unsupported"]) == {"XY_NoC", "mac_fifo"}
    assert comparison["not_modelled"] == ["fpmac.leak"]


def test_builtin_ert_from_loaded_spec_matches_reference(ref_dir):
    """Contract with hardware.spec: builtin_ert(load_spec(...)) for a Timeloop tutorial case
    (no ERT given) reproduces Accelergy's dynamic energies for every level."""
    from a3cs_plugin.hardware.spec import load_spec
    case = next(c for c in yaml.safe_load((ref_dir / "cases.yaml").read_text())["cases"]
                if c["id"] == "03-3level-bypass")
    spec = load_spec([str(ref_dir / p) for p in case["inputs"]])
    ert, art = builtin_ert(spec)
    ref = yaml.safe_load((ref_dir / case["ert"]).read_text())["ERT"]["tables"]

    def key(name):
        return re.sub(r"\[[^\]]*\]", "", name).split(".")[-1]

    ours = {key(t["name"]): {a["name"]: a["energy"] for a in t["actions"]} for t in ert["ERT"]["tables"]}
    assert set(ours) == {key(t["name"]) for t in ref}
    for t in ref:
        for a in t["actions"]:
            if a["name"] in validate.DYNAMIC:
                assert ours[key(t["name"])][a["name"]] == pytest.approx(a["energy"], rel=2e-3), (t["name"], a)
