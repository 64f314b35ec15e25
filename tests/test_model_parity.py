"""Parity of the analytical model with Timeloop on the 15 reference cases (cases.yaml).

Each case is evaluated from the specification Timeloop itself ran (``processed_input``, plus the
mapper's chosen mapping for ``kind: mapper``) with the case's Accelergy ERT/ART, and compared with
the numbers Timeloop reported: cycles and total energy within 0.5 %, every level within 1 %.
The user-facing inputs (``inputs``) are checked too wherever they describe the same hardware.
"""
from __future__ import annotations

import numpy as np
import pytest

from a3cs_plugin.hardware.model import (MappingBatch, batch_from_mapping, evaluate, evaluate_batch,
                                        mapping_from_batch)
from a3cs_plugin.hardware.spec import load_spec, load_yaml_file
from conftest import reference_case_ids

CASE_IDS = reference_case_ids()
TOL_TOTAL, TOL_LEVEL = 0.5, 1.0  # percent


def _dev(ours: float, expected: float) -> float:
    if expected == 0:
        return 0.0 if ours == 0 else float("inf")
    return 100.0 * (ours - expected) / expected


def processed_sources(ref, case) -> list:
    srcs = [ref / case["processed_input"]]
    if not (load_yaml_file(srcs[0]).get("mapping") or []):
        srcs.append(ref / case["mapping"])
    return srcs


def input_sources(ref, case) -> list:
    srcs = [ref / p for p in case["inputs"]]
    if case["kind"] == "mapper" and str(case["mapping"]) not in case["inputs"]:
        srcs.append(ref / case["mapping"])
    return srcs


def load_case(ref, case, processed: bool = True):
    srcs = processed_sources(ref, case) if processed else input_sources(ref, case)
    return load_spec(srcs, ert=ref / case["ert"], art=ref / case["art"])


def deviations(result, expected) -> dict:
    out = {"cycles": _dev(result.cycles, expected["cycles"]),
           "energy": _dev(result.energy_pJ, expected["energy_pJ"])}
    for name, e in expected["levels_pJ"].items():
        out[name] = _dev(result.levels_pJ.get(name, float("nan")), e)
    return out


def _check(result, expected):
    assert result.computes == expected["computes"]
    dev = deviations(result, expected)
    assert abs(dev["cycles"]) <= TOL_TOTAL, dev
    assert abs(dev["energy"]) <= TOL_TOTAL, dev
    for name in expected["levels_pJ"]:
        assert name in result.levels_pJ, f"level {name} missing from {list(result.levels_pJ)}"
        assert abs(dev[name]) <= TOL_LEVEL, (name, dev)
    return dev


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_parity(case_id, reference_dir, reference_cases):
    case = reference_cases[case_id]
    spec = load_case(reference_dir, case)
    result = evaluate(spec)
    dev = _check(result, case["expected"])
    worst = max(abs(v) for v in dev.values())
    print(f"{case_id}: worst deviation {worst:.4f} %")


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_parity_from_user_inputs(case_id, reference_dir, reference_cases):
    """The user-written inputs give the same result wherever they flatten to the same hardware."""
    case = reference_cases[case_id]
    proc = load_case(reference_dir, case)
    user = load_case(reference_dir, case, processed=False)
    shape = lambda s: [(lv.name, lv.instances) for lv in s.arch.levels] + [  # noqa: E731
        (s.arch.compute.name, s.arch.compute.instances)]
    if shape(proc) != shape(user):
        pytest.skip(f"{case_id}: Timeloop ran an older revision of the architecture file "
                    f"(processed levels {shape(proc)} vs inputs {shape(user)})")
    _check(evaluate(user), case["expected"])


def test_parity_worst_deviation(reference_dir, reference_cases):
    worst = (0.0, None, None)
    for cid, case in reference_cases.items():
        dev = deviations(evaluate(load_case(reference_dir, case)), case["expected"])
        for k, v in dev.items():
            if abs(v) > abs(worst[0]):
                worst = (v, cid, k)
    print(f"worst deviation over {len(reference_cases)} cases: {worst[0]:+.5f} % ({worst[1]}, {worst[2]})")
    assert len(reference_cases) == 15
    assert abs(worst[0]) <= TOL_TOTAL


def test_model_stats_match_timeloop_breakdown(reference_dir, reference_cases):
    """Per-data-space access counts of Eyeriss (VGG conv) equal Timeloop's stats file."""
    case = reference_cases["06-eyeriss-vgg02l5"]
    r = evaluate(load_case(reference_dir, case))
    glb = r.per_level["shared_glb"]["dataspaces"]
    assert (glb["Inputs"]["reads"], glb["Inputs"]["fills"]) == (12042240, 573440)
    assert (glb["Outputs"]["reads"], glb["Outputs"]["fills"], glb["Outputs"]["updates"]) == \
        (12042240, 2408448, 12845056)
    psum = r.per_level["psum_spad"]["dataspaces"]["Outputs"]
    assert (psum["reads"], psum["fills"], psum["updates"]) == (5490688, 215040, 5505024)
    assert r.per_level["ifmap_spad"]["dataspaces"]["Inputs"]["fills"] == 286720
    dram = r.per_level["DRAM"]["dataspaces"]
    assert dram["Weights"]["reads"] == 8257536 and dram["Inputs"]["reads"] == 573440
    assert r.per_level["mac"]["utilized_instances"] == 168


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_batch_equals_scalar(case_id, reference_dir, reference_cases):
    """Rows of a batch (reference mapping + shuffled loop orders) equal one-by-one evaluation."""
    spec = load_case(reference_dir, reference_cases[case_id])
    one = batch_from_mapping(spec)
    rng = np.random.default_rng(0)
    n = 6
    batch = MappingBatch(np.repeat(one.temporal, n, 0), np.repeat(one.spatial_x, n, 0),
                         np.repeat(one.spatial_y, n, 0), np.repeat(one.perm, n, 0),
                         np.repeat(one.keep, n, 0))
    batch.perm[1:] = np.argsort(rng.random(batch.perm[1:].shape), axis=2)
    out = evaluate_batch(spec, batch)
    ref = evaluate(spec)
    assert out["cycles"][0] == ref.cycles
    assert out["energy_pJ"][0] == pytest.approx(ref.energy_pJ, rel=1e-12)
    assert out["valid"][0]
    for i in range(n):
        r = evaluate(spec, mapping_from_batch(spec, batch, i), check=False)
        assert out["cycles"][i] == r.cycles
        assert out["energy_pJ"][i] == pytest.approx(r.energy_pJ, rel=1e-12)
        assert out["edp"][i] == pytest.approx(r.energy_pJ * r.cycles, rel=1e-12)
        assert bool(out["valid"][i]) == r.valid


def test_halo_rule_timeloop_2024_vs_2025(reference_dir, reference_cases, monkeypatch):
    """Eyeriss shared_glb Inputs: the sliding loop P7 has an irrelevant loop (M4) inside it.
    Timeloop before its January-2025 translation fix (the reference) refetches the whole 5120-word
    tile on every P step (4*4*7*5120 fills); from that fix on, the halo is kept along P."""
    from a3cs_plugin.hardware.mapper import build_mapspace
    from a3cs_plugin.hardware.model import engine
    spec = load_case(reference_dir, reference_cases["06-eyeriss-vgg02l5"])
    fills = lambda: evaluate(spec).per_level["shared_glb"]["dataspaces"]["Inputs"]["fills"]  # noqa: E731
    assert engine.HALO_RULE == "timeloop-2024" and fills() == 4 * 4 * 7 * 5120 == 573440
    rng = np.random.default_rng(3)
    sp = build_mapspace(spec)
    batch = sp.to_batch(sp.sample(rng, 400)[0])
    # (link transfers off: under the old rule a full refetch can come over a link instead)
    monkeypatch.setattr(engine, "LINK_TRANSFERS", False)
    old = engine.evaluate_arrays(spec, batch)
    monkeypatch.setattr(engine, "HALO_RULE", "timeloop-2025")
    assert fills() == 475136          # 5120 + 6 * (5120 - 1024 halo) per (Q, C) sweep, times 16
    new = engine.evaluate_arrays(spec, batch)
    # the new rule never moves more data; it differs only where an irrelevant loop sits inside
    assert np.all(new["fills"] <= old["fills"]) and np.any(new["fills"] < old["fills"])
    np.testing.assert_array_equal(new["computes"], old["computes"])
    monkeypatch.setattr(engine, "HALO_RULE", "nonsense")
    with pytest.raises(Exception, match="HALO_RULE"):
        engine.evaluate_arrays(spec, batch)
