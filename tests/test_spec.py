"""Spec I/O: YAML tags and merging, v0.4/v0.3 architectures, problems, mappings, ERT/ART, errors."""
from __future__ import annotations

import textwrap

import numpy as np
import pytest

from a3cs_plugin.errors import A3CSError, MappingError, SpecError
from a3cs_plugin.hardware.model import batch_from_mapping, evaluate
from a3cs_plugin.hardware.spec import (component_key, conv2d_problem, dump_spec, linear_problem,
                                       load_spec, parse_factors, parse_permutation, to_yaml)
from test_model_parity import load_case

ARCH = """
architecture:
  version: 0.4
  nodes:
  - !Container
    name: System
    attributes: {technology: "40nm", global_cycle_seconds: 1e-9, datawidth: 8}
  - !Component
    name: DRAM
    class: DRAM
    attributes: {width: 64}
  - !Component
    name: GLB
    class: SRAM
    attributes: {depth: 1024, width: 64}
  - !Container
    name: PE
    spatial: {meshX: 4, meshY: 2}
    constraints:
      spatial: {split: 1}
  - !Component
    name: RF
    class: regfile
    attributes: {depth: 16, width: 8}
  - !Component
    name: MAC
    class: intmac
    attributes: {width: 8}
"""

ERT = """
ERT:
  version: '0.4'
  tables:
  - name: System_top_level.DRAM[1..1]
    actions:
    - {name: read, arguments: {}, energy: 512.0}
    - {name: write, energy: 512.0}
    - {name: update, energy: 512.0}
    - {name: leak, energy: 0.0}
  - name: System_top_level.GLB[1..1]
    actions:
    - {name: read, energy: 20.0}
    - {name: write, energy: 16.0}
    - {name: update, energy: 16.0}
    - {name: leak, energy: 0.01}
  - name: System.PE[0..7].RF
    actions:
    - {name: read, energy: 0.5}
    - {name: write, energy: 0.4}
    - {name: update, energy: 0.4}
    - {name: leak, energy: 0.0}
  - name: System_top_level.MAC[1..8]
    actions:
    - {name: compute, energy: 1.0}
"""


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


@pytest.fixture
def files(tmp_path):
    arch = write(tmp_path, "arch.yaml", ARCH)
    prob = tmp_path / "prob.yaml"
    prob.write_text(to_yaml(conv2d_problem(N=1, C=4, M=8, P=4, Q=4, R=3, S=3, name="tiny")))
    ert = write(tmp_path, "tiny.ERT.yaml", ERT)
    mapping = write(tmp_path, "map.yaml", """
    mapping:
    - target: DRAM
      type: temporal
      factors: C=4 M=1 R=1 S=1 N=1 P=1 Q=1
      permutation: CMRSNPQ
    - target: GLB
      type: temporal
      factors: [M=2, P=2, Q=2]
      permutation: [Q, P, M]
    - target: PE
      type: spatial
      factors: M=4 P=2
      permutation: M P
      split: 1
    - target: RF
      type: temporal
      factors: R3 S3 Q2
      permutation: RSQ
    - target: RF
      type: bypass
      keep: [Weights, Outputs]
      bypass: [Inputs]
    """)
    return {"arch": arch, "prob": prob, "ert": ert, "map": mapping, "dir": tmp_path}


def test_v04_flattening_with_container_fanout(files):
    spec = load_spec([files["arch"], files["prob"]], ert=files["ert"])
    a = spec.arch
    assert a.level_names == ["RF", "inter_PE_spatial", "GLB", "DRAM"]
    assert a.compute.name == "MAC" and a.compute.instances == 8
    rf, dummy, glb = a.levels[0], a.levels[1], a.levels[2]
    assert (rf.instances, rf.meshX, rf.meshY) == (8, 4, 2)
    assert dummy.is_dummy and (dummy.fanout_x, dummy.fanout_y) == (4, 2)
    # inherited container attributes and derived sizes
    assert rf.attributes["technology"] == "40nm" and rf.word_bits == 8
    assert glb.block_size == 8 and glb.size == 8192 and rf.size == 16
    assert a.levels[3].size is None  # DRAM without depth: unbounded
    assert any(c["type"] == "spatial" and c["split"] == 1 for c in spec.constraints)
    assert spec.arch.attributes["global_cycle_seconds"] in ("1e-9", 1e-9)


def test_problem_builders_and_projections(files):
    spec = load_spec([files["arch"], files["prob"]], ert=files["ert"])
    p = spec.problem
    assert p.dimensions == ["C", "M", "R", "S", "N", "P", "Q"]
    inputs = p.data_spaces[1]
    assert inputs.name == "Inputs" and not inputs.read_write and p.data_spaces[2].read_write
    assert inputs.projection[2] == [(1, p.dim_index("R")), (1, p.dim_index("P"))]
    strided = load_spec([files["arch"], conv2d_problem(1, 4, 8, 4, 4, 3, 3, Wstride=2, Wdilation=2)],
                        ert=files["ert"]).problem
    assert strided.data_spaces[1].projection[2] == [(2, strided.dim_index("R")), (2, strided.dim_index("P"))]
    grouped = load_spec([files["arch"], conv2d_problem(1, 1, 1, 4, 4, 3, 3, G=8)], ert=files["ert"]).problem
    g = grouped.dim_index("G")
    assert all(ds.relevant(g) for ds in grouped.data_spaces) and grouped.instance["G"] == 8
    lin = load_spec([files["arch"], linear_problem(2, 16, 10)], ert=files["ert"]).problem
    assert lin.computes == 320 and lin.ds_names == ["Weights", "Inputs", "Outputs"]


def test_mapping_formats_and_evaluation(files):
    spec = load_spec([files["arch"], files["prob"], files["map"]], ert=files["ert"])
    b = batch_from_mapping(spec)
    d = spec.problem.dimensions
    rf, dummy, glb, dram = 0, 1, 2, 3
    assert b.temporal[0, rf, d.index("R")] == 3 and b.temporal[0, glb, d.index("Q")] == 2
    assert b.spatial_x[0, dummy, d.index("M")] == 4 and b.spatial_y[0, dummy, d.index("P")] == 2
    assert list(b.perm[0, glb, :3]) == [d.index("Q"), d.index("P"), d.index("M")]
    assert b.keep[0, rf].tolist() == [True, False, True] and not b.keep[0, dummy].any()
    r = evaluate(spec)
    assert r.computes == 4 * 8 * 9 * 16 and r.cycles == 4 * (2 * 2 * 2) * (3 * 3 * 2)
    assert set(r.levels_pJ) == {"MAC", "RF", "GLB", "DRAM"}
    assert r.energy_pJ == pytest.approx(sum(r.levels_pJ.values()))
    assert r.levels_pJ["MAC"] == pytest.approx(r.computes * 1.0)
    # every weight and input is read from DRAM exactly once, every output written once
    dram_ds = r.per_level["DRAM"]["dataspaces"]
    assert dram_ds["Weights"]["reads"] == 4 * 8 * 9 and dram_ds["Outputs"]["updates"] == 8 * 16
    assert r.energy_source.startswith("ert:") and r.energy_source.endswith("tiny.ERT.yaml")


def test_factor_and_permutation_parsing():
    assert parse_factors("R=3 P=1", "f", "k") == {"R": 3, "P": 1}
    assert parse_factors("C1 M8,R3", "f", "k") == {"C": 1, "M": 8, "R": 3}
    assert parse_factors(["K=2", "C=4"], "f", "k") == {"K": 2, "C": 4}
    assert parse_permutation("PRKC", ["C", "K", "R", "P"], "f", "k") == ["P", "R", "K", "C"]
    assert parse_permutation("Hx Wx", ["Hx", "Wx"], "f", "k") == ["Hx", "Wx"]
    with pytest.raises(MappingError, match="'k'.*DIM=N"):
        parse_factors("R=", "f", "k")


def test_ert_names_match_last_component():
    assert component_key("System.PE[0..15].Buffer") == "Buffer"
    assert component_key("system_top_level.shared_glb[1..1]") == "shared_glb"
    assert component_key("DRAM") == "DRAM"


def test_v03_and_v04_flatten_identically(reference_dir, reference_cases):
    case = reference_cases["06-eyeriss-vgg02l5"]
    v03 = load_case(reference_dir, case, processed=True)
    v04 = load_case(reference_dir, case, processed=False)
    sig = lambda s: [(l.name, l.cls, l.instances, l.meshX, l.meshY, l.fanout_x, l.fanout_y,  # noqa: E731
                      l.block_size, l.size, l.read_bandwidth) for l in s.arch.levels]
    assert sig(v03) == sig(v04)
    assert [l.name for l in v04.arch.levels] == ["psum_spad", "weights_spad", "ifmap_spad",
                                                  "inter_PE_spatial", "inter_PE_column_spatial",
                                                  "shared_glb", "DRAM"]
    assert v04.arch.levels[-2].size == 16384 * 8 and v04.arch.levels[0].word_bits == 16


@pytest.mark.parametrize("case_id", ["03-3level-bypass", "06-eyeriss-vgg02l5", "ta-eyeriss-fpmac"])
def test_dump_round_trip(case_id, reference_dir, reference_cases, tmp_path):
    for processed in (True, False):
        spec = load_case(reference_dir, reference_cases[case_id], processed=processed)
        out = tmp_path / "dumped.yaml"
        d = dump_spec(spec, out)
        assert d["architecture"]["version"] == 0.4 and isinstance(d["mapping"], list)
        assert "!Component" in out.read_text() and "!Container" in out.read_text()
        back = load_spec([out])
        assert back.arch == spec.arch
        assert back.problem == spec.problem
        assert back.tables == spec.tables
        assert back.ert is back.tables      # the old name, kept for one release
        b1, b2 = batch_from_mapping(spec), batch_from_mapping(back)
        for f in ("temporal", "spatial_x", "spatial_y", "perm", "keep"):
            assert (getattr(b1, f) == getattr(b2, f)).all(), f
        assert evaluate(back).energy_pJ == evaluate(spec).energy_pJ
        # and the dict itself loads too
        assert load_spec([d]).arch == spec.arch


# ---------------------------------------------------------------------------------------------
# errors: one line, naming file, key and what was expected
# ---------------------------------------------------------------------------------------------
def _err(exc) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_malformed_yaml(tmp_path):
    bad = write(tmp_path, "bad.yaml", "architecture: [unclosed\n  nodes: 1\n")
    with pytest.raises(SpecError) as e:
        load_spec([bad])
    assert "bad.yaml" in _err(e) and "malformed YAML" in _err(e)


def test_unknown_top_level_key(files, tmp_path):
    extra = write(tmp_path, "extra.yaml", "architectur: {}\n")
    with pytest.raises(SpecError) as e:
        load_spec([files["arch"], files["prob"], extra])
    assert "extra.yaml" in _err(e) and "'architectur'" in _err(e) and "architecture" in _err(e)


def test_missing_section(files):
    with pytest.raises(SpecError) as e:
        load_spec([files["arch"]])
    assert "'problem'" in _err(e) and "arch.yaml" in _err(e)


def test_problem_errors(files, tmp_path):
    p = write(tmp_path, "p.yaml", """
    problem:
      version: 0.4
      shape:
        name: x
        dimensions: [C, K]
        data_spaces:
        - {name: A, projection: [[[C]]]}
        - {name: B, projection: [[[Z]]]}
      instance: {C: 2, K: 2}
    """)
    with pytest.raises(SpecError) as e:
        load_spec([files["arch"], p])
    assert "p.yaml" in _err(e) and "data_spaces[1].projection" in _err(e) and "C, K" in _err(e)
    q = write(tmp_path, "q.yaml", """
    problem:
      version: 0.4
      shape: {name: x, dimensions: [C], data_spaces: [{name: A, projection: [[[C]]]}]}
      instance: {C: 2.5}
    """)
    with pytest.raises(SpecError) as e:
        load_spec([files["arch"], q])
    assert "q.yaml" in _err(e) and "problem.instance.C" in _err(e) and "integer" in _err(e)


def test_default_problem_with_extra_instance_keys(reference_dir, files):
    """Timeloop's designs/_include/default_problem.yaml: H, W, Hpad, Wpad are not dimensions;
    Timeloop reads only dimensions and coefficients from ``instance`` and ignores the rest."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # Timeloop does not warn, neither do we
        spec = load_spec([files["arch"], reference_dir / "designs" / "_include" / "default_problem.yaml"],
                         ert=files["ert"])
    p = spec.problem
    assert p.sizes == [3, 32, 3, 3, 1, 112, 112] and p.coefficients["Wstride"] == 2
    inputs = p.data_spaces[p.ds_names.index("Inputs")]
    assert (2, p.dim_index("P")) in inputs.projection[2]          # Wstride from the instance
    assert p.instance["H"] == 224 and p.computes == 3 * 32 * 9 * 112 * 112


@pytest.mark.parametrize("extra, key, words", [
    ("H: 224.5", "problem.instance.H", "integer"),
    ("Hpad: one", "problem.instance.Hpad", "integer"),
    ("Wstride: 1.5", "problem.instance.Wstride", "integer"),
    ("densities: {Inputs: 0.5}", "problem.instance.densities.Inputs", "sparse"),
    ("commonDensity: 0.3", "problem.instance.commonDensity", "sparse"),
])
def test_instance_values_timeloop_rejects(files, tmp_path, extra, key, words):
    q = write(tmp_path, "q.yaml", f"""
    problem:
      version: 0.4
      shape:
        name: x
        dimensions: [C, P, R]
        coefficients: [{{name: Wstride, default: 1}}]
        data_spaces:
        - {{name: A, projection: [[[C]], [[R], [P, Wstride]]]}}
      instance: {{C: 2, P: 4, R: 3, {extra}}}
    """)
    with pytest.raises(SpecError) as e:
        load_spec([files["arch"], q], ert=files["ert"])
    msg = _err(e)
    assert "q.yaml" in msg and key in msg and words in msg and "\n" not in msg


def test_dense_densities_are_accepted(files, tmp_path):
    q = write(tmp_path, "q.yaml", """
    problem:
      version: 0.4
      shape: {name: x, dimensions: [C], data_spaces: [{name: A, projection: [[[C]]]}]}
      instance: {C: 2, densities: {A: 1.0}}
    """)
    spec = load_spec([files["arch"], q], ert=files["ert"])
    assert spec.problem.instance == {"C": 2}


def _map(tmp_path, body):
    return write(tmp_path, "m.yaml", "mapping:\n" + textwrap.indent(textwrap.dedent(body), "  "))


def test_mapping_errors(files, tmp_path):
    base = [files["arch"], files["prob"]]
    cases = [
        ("- {target: DRAM, type: temporal, factors: C=3}\n", "mapping.factors.C", "product 4"),
        ("- {target: Nowhere, type: temporal, factors: C=4}\n", "Nowhere", "RF, inter_PE_spatial, GLB, DRAM"),
        ("- {target: DRAM, type: temporal, factors: X=4}\n", "mapping[0].factors", "one of C, M"),
        ("- {target: DRAM, type: temporal, permutation: CXQ}\n", "mapping[0].permutation", "CMRSNPQ"),
        ("- {target: PE, type: spatial, factors: M=8, permutation: M}\n", "inter_PE_spatial.spatial",
         "at most 4x2"),
        ("- {target: DRAM, type: sideways}\n", "mapping[0].type", "temporal|spatial"),
        ("- {target: GLB, type: bypass, keep: [Psums]}\n", "mapping[0].keep", "Weights, Inputs, Outputs"),
        ("- {target: DRAM, type: bypass, bypass: [Inputs]}\n", "DRAM", "no bypass"),
        # RF holds 16 words: a 3x3x4 weight tile does not fit
        ("- {target: RF, type: temporal, factors: R=3 S=3 C=4}\n", "mapping.target=RF", "at most 16 words"),
    ]
    for body, key, expected in cases:
        with pytest.raises(MappingError) as e:
            load_spec(base + [_map(tmp_path, body)], ert=files["ert"])
        msg = _err(e)
        assert "m.yaml" in msg and key in msg and expected in msg, msg


def test_dimension_unspecified_everywhere_goes_outermost(files, tmp_path):
    m = _map(tmp_path, "- {target: GLB, type: temporal, factors: C=4 M=8 P=4 Q=4 R=3 S=3}\n")
    spec = load_spec([files["arch"], files["prob"], m], ert=files["ert"])
    b = batch_from_mapping(spec)
    assert b.temporal[0, 3, spec.problem.dim_index("N")] == 1
    spec2 = load_spec([files["arch"], conv2d_problem(2, 4, 8, 4, 4, 3, 3), m], ert=files["ert"])
    assert batch_from_mapping(spec2).temporal[0, 3, spec2.problem.dim_index("N")] == 2


def test_partial_ert_is_completed_or_named(files, tmp_path):
    ert = write(tmp_path, "short.ERT.yaml", "ERT:\n  tables:\n  - name: X.MAC[1..8]\n    actions:\n"
                                            "    - {name: compute, energy: 1.0}\n")
    spec = load_spec([files["arch"], files["prob"], files["map"]], ert=ert)
    try:
        r = evaluate(spec)
    except A3CSError as exc:  # built-in tables unavailable: the error names the level and the ERT
        assert "RF" in exc.message and "ERT" in exc.message
    else:  # levels missing from the ERT come from the built-in tables, and the source says so
        assert r.levels_pJ["MAC"] == pytest.approx(r.computes * 1.0)
        assert r.energy_source.startswith("ert:") and "+builtin:" in r.energy_source
        assert "RF" in r.energy_source and r.levels_pJ["RF"] > 0
    weird = write(tmp_path, "weird.yaml", ARCH.replace("class: regfile", "class: warp_drive"))
    spec = load_spec([weird, files["prob"], files["map"]], ert=ert)
    with pytest.raises(A3CSError) as e:
        evaluate(spec)
    assert "RF" in _err(e) or "warp_drive" in _err(e)


def test_unknown_architecture_node_key(tmp_path):
    arch = write(tmp_path, "typo.arch.yaml", ARCH.replace("attributes: {depth: 16, width: 8}",
                                                           "atributes: {depth: 16, width: 8}"))
    with pytest.raises(SpecError) as e:
        load_spec([arch, conv2d_problem(1, 4, 8, 4, 4, 3, 3)])
    msg = _err(e)
    assert "typo.arch.yaml" in msg and "atributes" in msg and "attributes" in msg


def test_bandwidth_throttling_stretches_cycles(files, tmp_path):
    slow = write(tmp_path, "slow.yaml", ARCH.replace("attributes: {depth: 1024, width: 64}",
                                                      "attributes: {depth: 1024, width: 64, read_bandwidth: 0.5}"))
    fast = evaluate(load_spec([files["arch"], files["prob"], files["map"]], ert=files["ert"]))
    r = evaluate(load_spec([slow, files["prob"], files["map"]], ert=files["ert"]))
    glb_reads = sum(ds["reads"] for ds in fast.per_level["GLB"]["dataspaces"].values())
    assert glb_reads / fast.cycles > 0.5            # demand exceeds the 0.5 words/cycle limit
    assert r.cycles == int(np.ceil(glb_reads / 0.5))
    assert r.per_level["GLB"]["cycles"] == r.cycles and r.utilization < fast.utilization
    # leakage grows with the longer run; access energy does not change
    assert r.per_level["GLB"]["leak_pJ"] == pytest.approx(fast.per_level["GLB"]["leak_pJ"] * r.cycles / fast.cycles)


def test_keep_bypass_defaults(files, tmp_path):
    """Data spaces named in neither keep nor bypass stay kept, as in Timeloop."""
    m = _map(tmp_path, """
    - {target: DRAM, type: temporal, factors: C=4 M=8 P=4 Q=4}
    - {target: RF, type: temporal, factors: R=3 S=3}
    - {target: GLB, type: dataspace, keep: [Inputs]}
    - {target: RF, type: dataspace, bypass: [Inputs, Outputs]}
    """)
    spec = load_spec([files["arch"], files["prob"], m], ert=files["ert"])
    keep = batch_from_mapping(spec).keep[0]
    assert keep[0].tolist() == [True, False, False]      # RF: Weights by default
    assert keep[2].tolist() == [True, True, True]        # GLB: all (Inputs explicitly)
    assert not keep[1].any() and keep[3].all()           # dummy bypasses, DRAM keeps
