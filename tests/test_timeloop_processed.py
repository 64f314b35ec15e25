"""Our writer of Timeloop's processed input against the ones Timeloop's front-end dumped.

For every reference case (``../shared/timeloop-reference``) and every oracle case
(``../shared/timeloop-oracle-cases``, v0.4 inputs), the processed input we write from our parsed
spec must describe the same run as Timeloop's ``parsed-processed-input.yaml`` / ``processed.yaml``
up to ordering and the defaults the front-end fills in (:func:`processed.normalize`).
"""
from __future__ import annotations

import warnings

import pytest
import yaml

from a3cs_plugin.hardware.backend.processed import differences, normalize, processed_input
from a3cs_plugin.hardware.spec import load_spec, load_yaml_file
from conftest import REFERENCE, reference_case_ids
from test_model_parity import input_sources, processed_sources
from test_timeloop_oracle import CASES as ORACLE_CASES, ORACLE, _sources


def _load(srcs, ert, art):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_spec(srcs, ert=ert, art=art)


def _same_hardware(a, b) -> bool:
    return [(lv.name, lv.instances) for lv in a.arch.all_levels()] == \
        [(lv.name, lv.instances) for lv in b.arch.all_levels()]


@pytest.mark.parametrize("case_id", reference_case_ids() or ["none"])
def test_reference_cases(case_id, reference_dir, reference_cases):
    case = reference_cases[case_id]
    theirs = load_yaml_file(reference_dir / case["processed_input"])
    ert, art = reference_dir / case["ert"], reference_dir / case["art"]
    proc = _load(processed_sources(reference_dir, case), ert, art)
    assert differences(processed_input(proc), theirs) == []
    user = _load(input_sources(reference_dir, case), ert, art)
    if not _same_hardware(user, proc):
        pytest.skip(f"{case_id}: Timeloop ran an older revision of the architecture file")
    assert differences(processed_input(user), theirs) == []


@pytest.mark.parametrize("case_id", [c["id"] for c in ORACLE_CASES] or ["none"])
def test_oracle_cases_from_v04(case_id):
    if not ORACLE_CASES:
        pytest.skip(f"Timeloop oracle data not found at {ORACLE}")
    case = next(c for c in ORACLE_CASES if c["id"] == case_id)
    spec = _load(_sources(case, "tl")[:-1], ORACLE / case["ert"], ORACLE / case["art"])
    theirs = load_yaml_file(ORACLE / case["processed_input"])
    assert differences(processed_input(spec), theirs) == []


def test_literal_split_differs_from_timeloop(monkeypatch):
    """With the permutation read as written, the simple designs' map space is not Timeloop's."""
    from a3cs_plugin.hardware.spec import frontend
    simple = [c for c in ORACLE_CASES if c["design"].startswith("simple_")]
    if not simple:
        pytest.skip(f"Timeloop oracle data not found at {ORACLE}")
    monkeypatch.setattr(frontend, "SPLIT_SEMANTICS", "literal")
    case = simple[0]
    spec = _load(_sources(case, "tl")[:-1], ORACLE / case["ert"], ORACLE / case["art"])
    diff = differences(processed_input(spec), load_yaml_file(ORACLE / case["processed_input"]))
    assert diff and "axes" in diff[0]


def test_writer_output_is_plain_yaml(reference_dir, reference_cases):
    case = reference_cases["06-eyeriss-vgg02l5"]
    spec = _load(processed_sources(reference_dir, case), reference_dir / case["ert"],
                 reference_dir / case["art"])
    out = processed_input(spec)
    text = yaml.safe_dump(out, sort_keys=False)
    back = yaml.safe_load(text)
    assert normalize(back) == normalize(out)
    names = [c["name"] for c in out["architecture"]["subtree"][0]["local"]]
    assert names[0] == "DRAM[1..1]" and names[-1] == "mac[1..168]"
    assert "inter_PE_spatial[1..14]" in names
