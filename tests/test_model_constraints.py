"""Model-side constraints Timeloop enforces in its model: min_utilization, no temporal reuse,
no multicast / spatial reduction, rmw_first_update; unsupported settings fail in one line.

Expected numbers are derived by hand from the loop nests of the reference tutorial cases.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest

from a3cs_plugin.errors import MappingError, SpecError
from a3cs_plugin.hardware.model import batch_from_mapping, evaluate, evaluate_arrays, evaluate_batch
from a3cs_plugin.hardware.spec import load_spec, load_yaml_file

W, I, O = 0, 1, 2          # Weights, Inputs, Outputs in the tutorial problems


def _case(reference_dir, reference_cases, cid):
    c = reference_cases[cid]
    arch, prob, mapping = (load_yaml_file(reference_dir / p) for p in c["inputs"])
    return arch, prob, mapping, reference_dir / c["ert"]


def _stats(srcs, ert):
    spec = load_spec(srcs, ert=ert)
    full = evaluate_arrays(spec, batch_from_mapping(spec))
    return spec, {k: np.asarray(v)[0] for k, v in full.items()}


def _set_attr(arch: dict, name: str, key: str, value):
    for n in arch["architecture"]["nodes"]:
        if isinstance(n, dict) and n.get("name") == name:
            n.setdefault("attributes", {})[key] = value
            return arch
    raise KeyError(name)


@pytest.fixture
def case03(reference_dir, reference_cases):
    return _case(reference_dir, reference_cases, "03-3level-nobypass")


# 03: RegisterFile (0) R3 K2 (perm R P K), GlobalBuffer (1) P16 K16 (perm P R K), MainMemory (2)
RF, GLB, MM = 0, 1, 2


def test_baseline_numbers_of_the_hand_derivation(case03):
    arch, prob, mapping, ert = case03
    _, st = _stats([arch, prob, mapping], ert)
    assert st["fills"][RF, W] == 96          # K-tiles of 6 weights, stationary across P
    assert st["fills"][RF, I] == 18 * 16     # sliding window over P (3 + 15), per K
    assert st["reads"][RF, O] == 1536 - 512  # first read of every output elided
    assert st["fills"][RF, O] == 512 - 512


def test_no_temporal_reuse_from_mapping_directive(case03):
    arch, prob, mapping, ert = case03
    m = copy.deepcopy(mapping)
    for d in m["mapping"]:
        if d["target"] == "RegisterFile":
            d["no_reuse"] = ["Weights", "Inputs"]
    spec, st = _stats([arch, prob, m], ert)
    # every one of the 16 x 16 GlobalBuffer iterations refetches the whole RegisterFile tile
    assert st["fills"][RF, W] == 6 * 256 and st["reads"][GLB, W] == 6 * 256
    assert st["fills"][RF, I] == 3 * 256 and st["reads"][GLB, I] == 3 * 256
    # Outputs and the other levels are untouched
    _, base = _stats([arch, prob, mapping], ert)
    assert st["fills"][RF, O] == base["fills"][RF, O] and st["fills"][GLB, W] == base["fills"][GLB, W]
    assert evaluate(spec).energy_pJ > evaluate(load_spec([arch, prob, mapping], ert=ert)).energy_pJ


def test_no_temporal_reuse_from_constraints_reaches_the_mapper_batch(case03):
    arch, prob, mapping, ert = case03
    cons = {"constraints": {"targets": [{"target": "RegisterFile", "type": "temporal",
                                         "no_temporal_reuse": ["Weights"]}]}}
    _, st = _stats([arch, prob, mapping, cons], ert)
    assert st["fills"][RF, W] == 6 * 256
    # evaluate_batch (what the mapper calls) sees the same flag
    spec = load_spec([arch, prob, cons], ert=ert)
    plain = load_spec([arch, prob], ert=ert)
    b = batch_from_mapping(spec, load_spec([arch, prob, mapping], ert=ert).mapping)
    assert evaluate_batch(spec, b)["energy_pJ"][0] > evaluate_batch(plain, b)["energy_pJ"][0]


def test_rmw_first_update_disables_first_read_elision(case03):
    arch, prob, mapping, ert = case03
    m = copy.deepcopy(mapping)
    for d in m["mapping"]:
        if d["target"] == "RegisterFile":
            d["rmw_first_update"] = ["Outputs"]
    _, st = _stats([arch, prob, m], ert)
    _, base = _stats([arch, prob, mapping], ert)
    assert st["reads"][RF, O] == 1536 and st["fills"][RF, O] == 512
    # the parent still elides its own first reads: GlobalBuffer reads unchanged
    assert st["reads"][GLB, O] == base["reads"][GLB, O]
    assert st["updates"][RF, O] == base["updates"][RF, O] == 1536
    # read-only data spaces are not affected by the flag
    m2 = copy.deepcopy(mapping)
    m2["mapping"][2]["rmw_first_update"] = ["Weights"]
    _, st2 = _stats([arch, prob, m2], ert)
    np.testing.assert_array_equal(st2["reads"], base["reads"])


def test_no_multicast_no_reduction_on_a_spatial_fanout(reference_dir, reference_cases):
    arch, prob, mapping, ert = _case(reference_dir, reference_cases, "04-spatial-kp")
    # levels: RegisterFile, inter_PE_spatial (K=16 across PEs), GlobalBuffer, MainMemory
    _, base = _stats([arch, prob, mapping], ert)
    cons = {"constraints": {"targets": [{"target": "PE", "type": "spatial",
                                         "no_multicast_no_reduction": ["Inputs"]}]}}
    spec, st = _stats([arch, prob, mapping, cons], ert)
    g = spec.arch.index("GlobalBuffer")
    # Inputs do not depend on K: multicast to the 16 PEs before, 16 separate reads now
    assert base["reads"][g, I] > 0 and st["reads"][g, I] == 16 * base["reads"][g, I]
    np.testing.assert_array_equal(st["reads"][:, W], base["reads"][:, W])
    np.testing.assert_array_equal(st["fills"], base["fills"])
    # Outputs: with no spatial reduction, the updates from all PEs reach the buffer
    cons["constraints"]["targets"][0]["no_multicast_no_reduction"] = ["Outputs"]
    _, st_o = _stats([arch, prob, mapping, cons], ert)
    np.testing.assert_array_equal(st_o["updates"], base["updates"])   # K is relevant: nothing to reduce


def test_min_utilization_makes_small_tiles_invalid(case03):
    arch, prob, mapping, ert = case03
    # RegisterFile holds 64 words; the mapping keeps 6 + 3 + 2 = 11 of them
    ok = _set_attr(copy.deepcopy(arch), "RegisterFile", "min_utilization", 11 / 64)
    spec = load_spec([ok, prob, mapping], ert=ert)
    assert bool(evaluate_batch(spec, batch_from_mapping(spec))["valid"][0])
    tight = _set_attr(copy.deepcopy(arch), "RegisterFile", "min_utilization", 0.2)
    spec = load_spec([tight, prob], ert=ert)
    b = batch_from_mapping(spec, load_spec([arch, prob, mapping], ert=ert).mapping)
    assert not bool(evaluate_batch(spec, b)["valid"][0])
    with pytest.raises(MappingError, match="min_utilization"):
        load_spec([tight, prob, mapping], ert=ert)


def test_settings_without_effect_on_dense_tensors_leave_numbers_unchanged(case03):
    arch, prob, mapping, ert = case03
    _, base = _stats([arch, prob, mapping], ert)
    cons = {"constraints": {"targets": [
        {"target": "GlobalBuffer", "type": "max_overbooked_proportion", "proportion": 0.3},
        {"target": "GlobalBuffer", "type": "dataspace", "no_coalesce": []}]}}
    _, st = _stats([arch, prob, mapping, cons], ert)
    for k in ("reads", "fills", "updates", "energy_pJ", "cycles"):
        np.testing.assert_array_equal(st[k], base[k])


@pytest.mark.parametrize("constraint, match", [
    ({"target": "GlobalBuffer", "type": "dataspace", "no_coalesce": ["Outputs"]}, "no_coalesce"),
    ({"target": "GlobalBuffer", "type": "temporal", "no_reus": ["Weights"]}, "'no_reus'"),
    ({"target": "GlobalBuffer", "type": "temporal", "no_reuse": ["Weigths"]}, "Weigths"),
    ({"target": "GlobalBuffer", "type": "max_overbooked_proportion", "ratio": 0.1}, "'ratio'"),
])
def test_unsupported_or_bad_settings_are_one_line_spec_errors(case03, constraint, match):
    arch, prob, mapping, ert = case03
    with pytest.raises(SpecError, match=match) as ei:
        load_spec([arch, prob, mapping, {"constraints": {"targets": [constraint]}}], ert=ert)
    assert "\n" not in str(ei.value) and "constraints" in str(ei.value)


def test_flags_in_a_v04_architecture_node(reference_dir, reference_cases, tmp_path):
    """Per-node constraints of a v0.4 architecture file carry the flags too."""
    arch, prob, mapping, ert = _case(reference_dir, reference_cases, "03-3level-nobypass")
    path = reference_dir / reference_cases["03-3level-nobypass"]["inputs"][0]
    text = path.read_text().replace("    name: RegisterFile\n",
                                    "    name: RegisterFile\n    constraints: {temporal: {no_reuse: [Weights]}}\n")
    f = tmp_path / "arch.yaml"
    f.write_text(text)
    assert "no_reuse" in f.read_text() and arch is not None
    _, st = _stats([f, prob, mapping], ert)
    assert st["fills"][RF, W] == 6 * 256
