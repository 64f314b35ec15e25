"""Timeloop stats parser on every reference case, and the optional run_timeloop backend."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from a3cs_plugin.errors import A3CSError
from a3cs_plugin.hardware.backend import timeloop as tlb

REF = Path(__file__).resolve().parents[1] / ".." / "shared" / "timeloop-reference"


def _cases():
    if not (REF / "cases.yaml").is_file():
        return []
    return yaml.safe_load((REF / "cases.yaml").read_text())["cases"]


def _close(ours: float, expected: float) -> bool:
    # cases.yaml stores energies rounded to 4 decimals: 1e-6 relative, or that rounding.
    return abs(ours - expected) <= max(1e-6 * abs(expected), 0.5e-4 + 1e-9)


@pytest.fixture(scope="module")
def cases():
    cs = _cases()
    if not cs:
        pytest.skip(f"reference data absent: {REF / 'cases.yaml'}")
    return cs


def test_every_case_has_a_stats_file(cases):
    assert len(cases) == 15
    for c in cases:
        assert (REF / c["stats"]).is_file(), c["id"]


@pytest.mark.parametrize("case_id", [c["id"] for c in _cases()] or ["none"])
def test_parse_matches_expected(cases, case_id):
    case = next(c for c in cases if c["id"] == case_id)
    got = tlb.parse_stats(REF / case["stats"])
    exp = case["expected"]
    assert got["cycles"] == exp["cycles"]
    assert got["computes"] == exp["computes"]
    assert _close(got["energy_pJ"], exp["energy_pJ"]), (got["energy_pJ"], exp["energy_pJ"])
    assert list(got["levels_pJ"]) == list(exp["levels_pJ"])
    for name, e in exp["levels_pJ"].items():
        assert _close(got["levels_pJ"][name], e), (name, got["levels_pJ"][name], e)
    # the per-level blocks are parsed too, with the same level names
    assert set(got["levels"]) >= set(exp["levels_pJ"])


def test_per_level_details(cases):
    case = next(c for c in cases if c["id"] == "03-3level-bypass")
    got = tlb.parse_stats(REF / case["stats"])
    gb = got["levels"]["GlobalBuffer"]
    assert gb["index"] == 2 and gb["stats"]["cycles"] == 1536
    assert gb["specs"]["vector_access_energy"] == pytest.approx(43.35)
    w = gb["dataspaces"]["Weights"]
    assert (w["reads"], w["fills"], w["updates"]) == (1536, 96, 0)
    assert w["energy_per_access_pJ"] == pytest.approx(5.33)
    assert w["energy_pJ"] == pytest.approx(8694.33)
    assert w["utilization"] == pytest.approx(1.0)
    assert "Outputs" not in gb["dataspaces"]  # bypassed at this level in this mapping
    rf = got["levels"]["RegisterFile"]["dataspaces"]["Outputs"]
    assert (rf["reads"], rf["updates"]) == (1024, 1536)
    assert rf["utilization"] == pytest.approx(2 / 512)
    assert got["levels"]["MACC"]["stats"]["computes_total"] == 1536
    assert got["utilization"] == pytest.approx(1.0)
    # levels sum to the total
    assert sum(got["levels_pJ"].values()) == pytest.approx(got["energy_pJ"], rel=1e-6)


def test_parse_rejects_incomplete(tmp_path):
    p = tmp_path / "bad.stats.txt"
    p.write_text("Summary Stats\n-------------\nCycles: 10\n")
    with pytest.raises(A3CSError, match="bad.stats.txt"):
        tlb.parse_stats(p)


def test_unavailable_raises_or_runs(tmp_path, cases):
    if tlb.available("model"):
        pytest.skip("timeloop-model is installed; covered by test_run_timeloop_model")
    assert shutil.which("timeloop-model") is None
    with pytest.raises(A3CSError, match="Timeloop backend unavailable: timeloop-model not on PATH"):
        tlb.run_timeloop([REF / p for p in cases[0]["inputs"]], mode="model", workdir=tmp_path)
    with pytest.raises(A3CSError, match="unknown Timeloop mode"):
        tlb.available("simulate")


@pytest.mark.parametrize("case_id", ["03-3level-bypass", "05-mapper-null"])
def test_run_timeloop(tmp_path, cases, case_id):
    case = next(c for c in cases if c["id"] == case_id)
    if not tlb.available(case["kind"]):
        pytest.skip(f"Timeloop backend unavailable: timeloop-{case['kind']} not on PATH")
    got = tlb.run_timeloop([REF / p for p in case["inputs"]], mode=case["kind"], workdir=tmp_path)
    assert got["cycles"] == case["expected"]["cycles"]
    assert got["computes"] == case["expected"]["computes"]
