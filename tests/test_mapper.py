"""Mapping search (a3cs_plugin.hardware.mapper) against Timeloop's mapper reference cases."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from a3cs_plugin.errors import ConfigError, MappingError
from a3cs_plugin.hardware.mapper import build_mapspace, search
from a3cs_plugin.hardware.mapper.constraints import parse_factors, parse_permutation

REF = Path(__file__).resolve().parent.parent.parent / "shared" / "timeloop-reference"

try:  # tests are single-threaded (shared 2-core machine)
    import torch
    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass


def _cases() -> dict:
    if not (REF / "cases.yaml").is_file():
        pytest.skip(f"Timeloop reference data not found at {REF}")
    data = yaml.safe_load((REF / "cases.yaml").read_text())
    return {c["id"]: c for c in data["cases"]}


def _load(case_id: str, with_mapping: bool = False, extra=()):
    from a3cs_plugin.hardware.spec import load_spec
    c = _cases()[case_id]
    paths = [REF / p for p in c["inputs"]] + list(extra)
    if with_mapping:
        paths.append(REF / c["mapping"])
    return load_spec(paths, ert=REF / c["ert"], art=REF / c["art"])


def _evaluate(spec, mapping=None):
    from a3cs_plugin.hardware.model.batch import batch_from_mapping, evaluate_batch
    res = evaluate_batch(spec, batch_from_mapping(spec, mapping))
    return float(res["cycles"][0]), float(res["energy_pJ"][0]), bool(res["valid"][0])


def _mapping_factors(mlist, target, typ, dims):
    for e in mlist:
        if e["target"] == target and e["type"] == typ:
            f = parse_factors(e["factors"], dims, [10**9] * len(dims))[0]
            return {dims[d]: v for d, v in f.items()}
    return {}


# ---------------------------------------------------------------------------- constraint parsing
def test_factor_and_permutation_semantics():
    dims, bounds = ["K", "R", "P", "C"], [32, 3, 16, 8]
    fixed, vmax, vmin = parse_factors("R=1 P=0 K<=4 C>=2 K=64", dims, bounds)
    assert fixed == {1: 1, 2: 16}          # P=0 -> full bound; K=64 > 32 is ignored (Timeloop)
    assert vmax == {0: 4} and vmin == {3: 2}
    assert parse_factors(["R=3", "C=8"], dims, bounds)[0] == {1: 3, 3: 8}
    assert parse_permutation("RK_PC", dims) == ([1, 0], [2, 3])
    assert parse_permutation(["P", "K"], dims) == ([2, 0], [])
    with pytest.raises(MappingError, match="Z"):
        parse_factors("Z=2", dims, bounds)


def test_constraints_on_dimensions_the_problem_lacks():
    """Eyeriss constrains R, S, P, Q to 1; a matrix multiplication (C, M, N) still maps, and the
    split positions still count the absent dimensions (PE: N P Q R on X, S C M on Y)."""
    from a3cs_plugin.hardware.spec import linear_problem, load_spec
    c = _cases()["06-eyeriss-vgg02l5"]
    spec = load_spec([REF / p for p in c["inputs"] if "/prob/" not in p] + [linear_problem(4, 64, 96)],
                     ert=REF / c["ert"], art=REF / c["art"])
    sp = build_mapspace(spec)
    pe = sp.levels.index("inter_PE_spatial")
    assert {sp.dims[d]: int(sp.orient[pe, d]) for d in range(sp.D)} == {"C": 2, "M": 2, "N": 1}
    r = search(spec, time_limit=5.0, max_evaluations=4000, seed=0)
    assert r.result.computes == 4 * 64 * 96
    with pytest.raises(MappingError, match="unknown dimension 'R'"):
        parse_factors("R=3", ["C", "M", "N"], [64, 96, 4])


def test_eyeriss_mapspace_follows_timeloop_constraints():
    spec = _load("ta-eyeriss-intmac")
    sp = build_mapspace(spec)
    L, dims = sp.L, sp.dims
    lvl = {n: i for i, n in enumerate(sp.levels)}
    pe, col = lvl["inter_PE_spatial"], lvl["inter_PE_column_spatial"]
    # split 4 of permutation NPQRSCM: N P Q R on X, S C M on Y; the PE mesh is 1 x 12
    assert [dims[d] for d in range(sp.D) if sp.orient[pe, d] == 2] == ["C", "M", "S"]
    assert (sp.fanx[pe], sp.fany[pe], sp.fanx[col], sp.fany[col]) == (1, 12, 14, 1)
    assert sp.fixed[L + pe, dims.index("R")] == 1 and sp.free[L + pe, dims.index("M")]
    # ifmap_spad: every temporal factor fixed to 1; keeps Inputs only
    assert (sp.fixed[lvl["ifmap_spad"]] == 1).all()
    assert list(sp.keep_fixed[lvl["ifmap_spad"]]) == [0, 1, 0]
    assert sp.keep_fixed[lvl["shared_glb"], sp.spaces.index("Weights")] == 0
    assert (sp.keep_fixed[lvl["DRAM"]] == 1).all()


def test_v04_parallel_branches_bypass_like_timeloop_front_end():
    """The raw v0.4 Eyeriss spec gives the same keep/bypass and factor constraints as the
    fully processed input Timeloop dumped for the same design."""
    raw = build_mapspace(_load("06-eyeriss-vgg02l5"))
    processed = build_mapspace(_load("ta-eyeriss-intmac"))
    assert raw.levels == processed.levels
    np.testing.assert_array_equal(raw.keep_fixed, processed.keep_fixed)
    np.testing.assert_array_equal(raw.fixed, processed.fixed)
    np.testing.assert_array_equal(raw.orient, processed.orient)


def _dict_sources(case_id):
    """The case's spec files read into plain dicts (no file names reach the loader)."""
    from a3cs_plugin.hardware.spec import load_yaml_file
    c = _cases()[case_id]
    return [load_yaml_file(REF / p) for p in c["inputs"]], c


def test_parallel_branches_from_dict_spec_match_file_spec():
    """A spec built from dicts (as DesignSpace.render produces) gets the same implicit
    !Parallel bypasses as the same spec loaded from files: the mapper reads Level info."""
    from a3cs_plugin.hardware.spec import load_spec
    dicts, c = _dict_sources("06-eyeriss-vgg02l5")
    spec = load_spec(dicts, ert=REF / c["ert"], art=REF / c["art"])
    assert all(set(v.split(",")) == {"<dict>"} for v in spec.sources.values())
    from_dicts = build_mapspace(spec)
    from_files = build_mapspace(_load("06-eyeriss-vgg02l5"))
    np.testing.assert_array_equal(from_dicts.keep_fixed, from_files.keep_fixed)
    lvl = {n: i for i, n in enumerate(from_dicts.levels)}
    ds = from_dicts.spaces
    # each scratchpad keeps only its own data space; the two others are bypassed by branch rule
    for name, own in (("ifmap_spad", "Inputs"), ("weights_spad", "Weights"), ("psum_spad", "Outputs")):
        assert list(from_dicts.keep_fixed[lvl[name]]) == [1 if d == own else 0 for d in ds], name
        level = spec.arch.levels[spec.arch.index(name)]
        assert level.parallel_group == "ifmap_spad" and level.branch_keep == {own}


def test_parallel_branch_rule_without_explicit_keep():
    """Branch membership alone (no dataspace constraint on the component itself, e.g. a
    Hierarchical branch or a !Nothing branch) decides the implicit bypass."""
    from a3cs_plugin.hardware.spec import TaggedNode, load_spec, merge_sources
    from a3cs_plugin.hardware.spec.arch import parse_architecture
    dicts, c = _dict_sources("06-eyeriss-vgg02l5")
    merged, _ = merge_sources(dicts)
    arch = merged["architecture"]
    par = next(n for n in arch["nodes"] if getattr(n, "tag", None) == "Parallel")
    ifmap, weights, psum = par["nodes"]
    # weights_spad loses its own keep; a !Nothing branch keeps Weights instead
    weights["constraints"] = {k: v for k, v in weights["constraints"].items() if k != "dataspace"}
    par["nodes"] = [ifmap, TaggedNode("Hierarchical", {"nodes": [weights, psum]}),
                    TaggedNode("Nothing", {"constraints": {"dataspace": {"keep": ["Weights"]}}})]
    a = parse_architecture(arch)
    w = a.levels[a.index("weights_spad")]
    assert w.branch_keep == {"Outputs"} and w.parallel_branch == "weights_spad"
    assert w.branch_bypass(["Weights", "Inputs", "Outputs"]) == {"Weights", "Inputs"}
    spec = load_spec(dicts, ert=REF / c["ert"], art=REF / c["art"])
    sp = build_mapspace(spec)
    assert list(sp.keep_fixed[sp.levels.index("weights_spad")]) == [
        0 if d in ("Weights", "Inputs") else -1 for d in sp.spaces]   # Outputs: free choice


def test_parallel_branches_of_a_rendered_design_space():
    """DesignSpace.render (hardware.space) produces dicts: branch bypasses still reach the mapper."""
    space = pytest.importorskip("a3cs_plugin.hardware.space")
    from a3cs_plugin.hardware.spec import conv2d_problem, load_spec
    try:
        rendered = space.DesignSpace.from_template("eyeriss_like").render()
    except Exception as exc:  # the template belongs to another area; report, do not fail here
        pytest.skip(f"eyeriss_like template not renderable: {exc}")
    spec = load_spec([rendered, conv2d_problem(1, 16, 16, 8, 8, 3, 3)])
    sp = build_mapspace(spec)
    i = sp.levels.index("weights_spad")
    assert [int(k) for k in sp.keep_fixed[i]] == [1 if d == "Weights" else 0 for d in sp.spaces]


@pytest.mark.parametrize("edit, match", [
    ("twice", "kept in two branches"),
    ("container", "Container directly inside a !Parallel"),
])
def test_parallel_errors_like_timeloop_front_end(edit, match):
    from a3cs_plugin.errors import SpecError
    from a3cs_plugin.hardware.spec import TaggedNode, merge_sources
    from a3cs_plugin.hardware.spec.arch import parse_architecture
    dicts, _ = _dict_sources("06-eyeriss-vgg02l5")
    arch = merge_sources(dicts)[0]["architecture"]
    par = next(n for n in arch["nodes"] if getattr(n, "tag", None) == "Parallel")
    if edit == "twice":
        par["nodes"][1]["constraints"]["dataspace"] = {"keep": ["Weights", "Inputs"]}
    else:
        par["nodes"].append(TaggedNode("Container", {"name": "extra", "spatial": {"meshX": 2}}))
    with pytest.raises(SpecError, match=match):
        parse_architecture(arch, file="arch.yaml")


def test_parallel_leaving_a_data_space_unkept_warns():
    from a3cs_plugin.hardware.spec import load_spec, merge_sources
    dicts, c = _dict_sources("06-eyeriss-vgg02l5")
    arch = merge_sources(dicts)[0]["architecture"]
    par = next(n for n in arch["nodes"] if getattr(n, "tag", None) == "Parallel")
    par["nodes"] = par["nodes"][1:]          # nobody keeps Inputs any more
    dicts = [{"architecture": arch}] + [d for d in dicts if "architecture" not in d]
    with pytest.warns(UserWarning, match="keeps Inputs"):
        load_spec(dicts, ert=REF / c["ert"])


def test_sampler_and_moves_stay_in_the_map_space():
    spec = _load("ta-eyeriss-intmac")
    sp = build_mapspace(spec)
    rng = np.random.default_rng(0)
    g, ok = sp.sample(rng, 2000)
    feas = sp.feasible(g)
    assert ok.mean() > 0.95 and (feas[ok]).all()      # mesh and fixed factors honoured by design
    b = sp.to_batch(g.take(np.nonzero(ok)[0]))
    assert (b.spatial_x.prod(2) <= sp.fanx[None]).all() and (b.spatial_y.prod(2) <= sp.fany[None]).all()
    assert (np.asarray(b.temporal * b.spatial_x * b.spatial_y).prod(1) == sp.bounds[None]).all()
    m = sp.mutate(rng, g.take(np.nonzero(ok)[0]))
    changed = (m.F != g.F[ok]).any((1, 2)) | (m.perm != g.perm[ok]).any((1, 2)) | \
        (m.keep != g.keep[ok]).any((1, 2)) | (m.X != g.X[ok]).any((1, 2))
    assert changed.mean() > 0.9 and sp.feasible(m).mean() > 0.5
    nb = sp.neighbors(g, int(np.nonzero(ok)[0][0]))
    base = g.take(np.array([int(np.nonzero(ok)[0][0])]))
    diff_f = (nb.F != base.F).sum((1, 2))
    diff_p = (nb.perm != base.perm).sum((1, 2))
    assert len(nb) > 50 and set(diff_f) <= {0, 2} and set(diff_p) <= {0, 2}
    n_kinds = (diff_f > 0).astype(int) + (diff_p > 0) + (nb.keep != base.keep).any((1, 2)) \
        + (nb.X != base.X).any((1, 2))
    assert (n_kinds == 1).all()                         # exactly one kind of move each


@pytest.mark.parametrize("case_id", ["05-mapper-baked", "05-mapper-freebypass", "05-mapper-null",
                                     "06-eyeriss-vgg02l5", "ta-eyeriss-intmac"])
def test_timeloops_own_choice_lies_in_our_map_space(case_id):
    """The mapping Timeloop's mapper chose satisfies the constraints as we read them."""
    from a3cs_plugin.hardware.model.batch import batch_from_mapping
    spec = _load(case_id, with_mapping=True)
    sp = build_mapspace(spec)
    b = batch_from_mapping(spec)
    assert sp.feasible(sp.from_batch(b), batch=b).all()


# ---------------------------------------------------------------------------- search quality
SMALL = ["05-mapper-baked", "05-mapper-freebypass", "05-mapper-null"]


@pytest.mark.parametrize("case_id", SMALL)
def test_small_cases_match_or_beat_timeloop(case_id):
    spec = _load(case_id)
    t_cycles, t_energy, t_valid = _evaluate(_load(case_id, with_mapping=True))
    assert t_valid
    r = search(spec, metric=None, time_limit=3.0, seed=0)
    assert r.metric == ("delay", "energy")           # from the case's mapper settings
    ours = (float(r.result.cycles), float(r.result.energy_pJ))
    # lexicographic (delay, energy), as Timeloop's optimization_metrics
    assert ours[0] < t_cycles * (1 - 1e-9) or (
        ours[0] <= t_cycles * (1 + 1e-9) and ours[1] <= t_energy * (1 + 1e-9)), \
        (ours, t_cycles, t_energy)
    assert r.evaluated > 0 and r.search_seconds < 10
    assert r.metric_values == pytest.approx(ours)


def test_exhaustive_enumeration_of_free_bypass_space():
    spec = _load("05-mapper-freebypass")
    sp = build_mapspace(spec)
    assert sp.size() == 64                      # 2 levels x 3 data spaces free: 2^6
    n = sum(len(g) for g in sp.enumerate_all())
    assert n == 64
    r = search(spec, metric="energy", time_limit=5.0, seed=0)
    assert r.stopped == "exhausted" and 64 <= r.evaluated <= 65   # + the smallest-tile probe
    # exhaustive: nothing in the space is better than the answer
    from a3cs_plugin.hardware.model.batch import evaluate_batch
    energies = np.concatenate([evaluate_batch(spec, sp.to_batch(g))["energy_pJ"]
                               for g in sp.enumerate_all()])
    assert r.metric_value == pytest.approx(energies.min(), rel=1e-9)


@pytest.mark.parametrize("case_id", ["05-mapper-baked", "05-mapper-freebypass", "ta-eyeriss-intmac"])
def test_returned_mapping_satisfies_constraints(case_id):
    spec = _load(case_id)
    r = search(spec, metric="edp", time_limit=2.0, seed=1)
    dims, sizes = spec.problem.dimensions, spec.problem.sizes
    mlist = r.mapping_list()
    # factors multiply to the problem
    prod = {d: 1 for d in dims}
    for e in mlist:
        if e["type"] in ("temporal", "spatial"):
            for d, v in _mapping_factors([e], e["target"], e["type"], dims).items():
                prod[d] *= v
    assert prod == dict(zip(dims, sizes))
    # every constraint of the spec holds in the dumped mapping (checked from the raw directives)
    from a3cs_plugin.hardware.mapper import constraint_targets
    names = [lv.name for lv in spec.arch.levels]
    for c in constraint_targets(spec):
        tgt = c["target"] if c["target"] in names else f"inter_{c['target']}_spatial"
        if tgt not in names:
            continue
        if c["type"] in ("temporal", "spatial") and c.get("factors"):
            want = parse_factors(c["factors"], dims, sizes)[0]
            got = _mapping_factors(mlist, tgt, c["type"], dims)
            for d, v in want.items():
                assert got.get(dims[d], 1) == v, (tgt, c["type"], dims[d])
        if c["type"] in ("dataspace", "bypass", "datatype"):
            entry = next(e for e in mlist if e["target"] == tgt and e["type"] == "dataspace")
            assert set(c.get("keep") or []) <= set(entry["keep"]), tgt
            assert set(c.get("bypass") or []) <= set(entry["bypass"]), tgt
    # and the mapping is valid in the model and inside the map space
    from a3cs_plugin.hardware.model.batch import batch_from_mapping
    sp = build_mapspace(spec)
    b = batch_from_mapping(spec, r.mapping)
    assert sp.feasible(sp.from_batch(b), batch=b).all()
    assert _evaluate(spec, r.mapping)[2]


def test_bounds_and_utilization_constraints_are_honoured(tmp_path):
    from a3cs_plugin.hardware.spec import load_spec
    inputs, c = _conv1d_inputs()
    targets = [{"target": "GlobalBuffer", "type": "temporal", "factors": "K<=2 P>=4",
                "permutation": "R_K"},
               {"target": "RegisterFile", "type": "temporal", "factors": "R=0", "permutation": "P"},
               {"target": "MainMemory", "type": "dataspace", "keep": ["Weights"]}]
    spec = load_spec(inputs + [_constraints_file(tmp_path, targets)], ert=REF / c["ert"])
    r = search(spec, time_limit=2.0, seed=3)
    dims = spec.problem.dimensions
    mlist = r.mapping_list()
    glb = _mapping_factors(mlist, "GlobalBuffer", "temporal", dims)
    rf = _mapping_factors(mlist, "RegisterFile", "temporal", dims)
    assert glb["K"] <= 2 and glb["P"] >= 4 and rf["R"] == 3    # R=0 means the full bound
    perms = {e["target"]: e["permutation"] for e in mlist if e["type"] == "temporal"}
    assert perms["GlobalBuffer"][0] == "R" and perms["GlobalBuffer"][-1] == "K"
    # like Timeloop's mapper, the innermost level (no fan-out below it) keeps the canonical order
    assert perms["RegisterFile"] == "".join(dims)
    # Eyeriss with every PE busy: spatial utilisation 1 (14 x 12 PEs)
    spec = _load("ta-eyeriss-intmac")
    spec.constraints = list(spec.constraints) + [
        {"target": "psum_spad", "type": "utilization", "min": 1.0}]
    r = search(spec, metric="energy", time_limit=2.0, seed=0)
    b = r.batch
    assert int(np.prod(b.spatial_x * b.spatial_y)) == 14 * 12


def test_same_seed_same_mapping():
    spec = _load("05-mapper-null")
    kw = dict(metric="edp", time_limit=60.0, max_evaluations=12_000, batch_size=1024)
    a = search(spec, seed=7, **kw)
    b = search(spec, seed=7, **kw)
    assert a.stopped == b.stopped == "max_evaluations"
    assert a.mapping_list() == b.mapping_list()
    assert a.metric_value == b.metric_value and a.evaluated == b.evaluated


def test_unknown_metric_is_a_config_error():
    with pytest.raises(ConfigError, match="metric"):
        search(_load("05-mapper-baked"), metric="throughput", time_limit=1.0)


# ---------------------------------------------------------------------------- impossible constraints
def _constraints_file(tmp_path, targets) -> Path:
    p = tmp_path / "impossible.constraints.yaml"
    p.write_text(yaml.safe_dump({"mapspace_constraints": {"version": 0.4, "targets": targets}}))
    return p


def _conv1d_inputs():
    c = _cases()["05-mapper-null"]
    return [REF / p for p in c["inputs"] if "constraints" not in p], c


@pytest.mark.parametrize("targets, match", [
    # 3 does not divide K=32 (Timeloop would need an imperfect factorisation)
    ([{"target": "RegisterFile", "type": "temporal", "factors": "K=3"}], "K"),
    # every K loop fixed and the product (2*2*1) is not 32
    ([{"target": t, "type": "temporal", "factors": f"K={k}"}
      for t, k in (("RegisterFile", 2), ("GlobalBuffer", 2), ("MainMemory", 1))], "K"),
    # spatial loop where the architecture has no fan-out
    ([{"target": "GlobalBuffer", "type": "spatial", "factors": "P=4"}], "fan-out"),
    # the register file must hold a 32x3 weight tile: 96 words > 64
    ([{"target": "RegisterFile", "type": "temporal", "factors": "K=32 R=3 P=1"},
      {"target": "RegisterFile", "type": "dataspace", "keep": ["Weights", "Inputs", "Outputs"]}],
     "buffer"),
])
def test_impossible_constraints_raise_mapping_error(tmp_path, targets, match):
    from a3cs_plugin.hardware.spec import load_spec
    inputs, c = _conv1d_inputs()
    spec = load_spec(inputs + [_constraints_file(tmp_path, targets)], ert=REF / c["ert"])
    with pytest.raises(MappingError, match=match) as exc:
        search(spec, time_limit=2.0, seed=0, victory_condition=5000)
    assert "\n" not in str(exc.value) and "no valid mapping" in str(exc.value)


def test_mesh_overflow_raises_mapping_error(tmp_path):
    # 16 output channels on the 12-PE column of Eyeriss
    spec = _load("ta-eyeriss-intmac")
    spec.constraints = list(spec.constraints) + [
        {"target": "inter_PE_spatial", "type": "spatial", "factors": "M=16"}]
    with pytest.raises(MappingError, match="mesh Y"):
        search(spec, time_limit=1.0)


# ---------------------------------------------------------------------------- long check
@pytest.mark.slow
@pytest.mark.parametrize("case_id", ["06-eyeriss-vgg02l5", "ta-eyeriss-intmac", "ta-eyeriss-fpmac"])
def test_eyeriss_matches_or_beats_timeloop_in_10s(case_id):
    spec = _load(case_id)
    t_cycles, t_energy, _ = _evaluate(_load(case_id, with_mapping=True))
    r = search(spec, metric=None, time_limit=10.0, seed=0)
    ours = (float(r.result.cycles), float(r.result.energy_pJ))
    assert ours[0] < t_cycles or (ours[0] <= t_cycles * (1 + 1e-9) and ours[1] <= t_energy * (1 + 1e-9))


def test_one_constraint_parser_for_mapper_and_model(tmp_path):
    """spec.constraints.parse_constraints is read by both: the model's flags at once, the map
    space (with its first mistake) only when the mapper asks, as timeloop-model ignores it."""
    from a3cs_plugin.hardware.model import evaluate
    from a3cs_plugin.hardware.spec import load_spec, parse_constraints
    inputs, c = _conv1d_inputs()
    targets = [{"target": "GlobalBuffer", "type": "temporal", "factors": "K=2"},
               {"target": "GlobalBuffer", "type": "temporal", "factors": "K=4"},
               {"target": "GlobalBuffer", "type": "temporal", "no_reuse": ["Weights"]}]
    spec = load_spec(inputs + [_constraints_file(tmp_path, targets)], ert=REF / c["ert"])
    cons = parse_constraints(spec)
    glb = spec.arch.level_names.index("GlobalBuffer")
    assert cons.flags.no_temporal_reuse[glb].tolist() == [n == "Weights" for n in spec.problem.ds_names]
    with pytest.raises(MappingError, match="re-specification of temporal factor K"):
        cons.map_space()
    with pytest.raises(MappingError, match="re-specification"):
        build_mapspace(spec)
    from a3cs_plugin.hardware.spec.mapping import Mapping
    assert evaluate(spec, Mapping(), check=False).computes == spec.problem.computes


def test_a_new_timeloop_constraint_touches_only_the_constraint_tables(tmp_path, monkeypatch):
    """Adding a Timeloop constraint is its key in ``ALLOWED_KEYS``, a row of ``FLAG_KEYS`` and a
    field of the typed ``ModelFlags`` -- all in spec/constraints.py -- plus the reader that uses
    it.  Done here at run time with a made-up model flag: a constraint file sets it, the one
    parser fills it, and nothing else had to change."""
    import dataclasses

    from a3cs_plugin.hardware.spec import constraints as C
    from a3cs_plugin.hardware.spec import load_spec, parse_constraints
    monkeypatch.setitem(C.ALLOWED_KEYS, "temporal", C.ALLOWED_KEYS["temporal"] | {"no_demo_reuse"})
    monkeypatch.setitem(C.FLAG_KEYS, "no_demo_reuse", ("temporal", ("no_demo_reuse",)))
    flags = dataclasses.make_dataclass("ModelFlags", [("no_demo_reuse", np.ndarray)], bases=(C.ModelFlags,))
    monkeypatch.setattr(C, "ModelFlags", flags)
    inputs, c = _conv1d_inputs()
    targets = [{"target": "GlobalBuffer", "type": "temporal", "no_demo_reuse": ["Weights"]}]
    spec = load_spec(inputs + [_constraints_file(tmp_path, targets)], ert=REF / c["ert"])
    cons = parse_constraints(spec)
    glb = spec.arch.level_names.index("GlobalBuffer")
    assert cons.flags.no_demo_reuse[glb].tolist() == [n == "Weights" for n in spec.problem.ds_names]
    assert not cons.flags.no_demo_reuse[[i for i in range(len(spec.arch.level_names)) if i != glb]].any()
    cons.map_space()                          # the map space is untouched by a model-only flag
    # without its table row the same key is refused with one line naming it
    monkeypatch.setitem(C.ALLOWED_KEYS, "temporal", C.ALLOWED_KEYS["temporal"] - {"no_demo_reuse"})
    with pytest.raises(Exception, match="no_demo_reuse"):
        load_spec(inputs + [_constraints_file(tmp_path, targets)], ert=REF / c["ert"])
