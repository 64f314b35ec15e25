"""Spatial permutation/split of v0.4 node constraints as Timeloop's front-end reads them."""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from a3cs_plugin.hardware.mapper import build_mapspace
from a3cs_plugin.hardware.spec import conv2d_problem, frontend, load_spec

SPECS = Path(__file__).resolve().parents[1] / "arch_specs"


def _load(name, problem=None):
    with warnings.catch_warnings(record=True) as log:
        warnings.simplefilter("always")
        spec = load_spec([SPECS / f"{name}.yaml", problem or conv2d_problem(1, 32, 64, 9, 9, 4, 4, 2, 2)])
    return spec, [w for w in log if issubclass(w.category, frontend.SplitWarning)]


def _axes(spec, level):
    sp = build_mapspace(spec)
    lvl = sp.levels.index(level)
    return {d: "-XY"[int(o)] for d, o in zip(sp.dims, sp.orient[lvl])}


def test_unit_dimensions_go_first():
    dims = ["C", "M", "R", "S", "N", "P", "Q"]
    sizes = {"C": 8, "M": 8, "R": 3, "S": 3, "N": 1, "P": 5, "Q": 5}
    got = frontend.frontend_permutation(["C", "M"], ["R=1", "S=1", "P=1", "Q=1"], dims, sizes)
    assert "".join(got) == "NQPSRCM"          # what Timeloop's front-end dumped (oracle case 03)
    assert frontend.frontend_permutation(got, ["R=1", "S=1", "P=1", "Q=1"], dims, sizes) == got
    sizes["N"] = 4
    assert "".join(frontend.frontend_permutation(["C", "M"], "R=1 S=1 P=1 Q=1", dims, sizes)) == "QPSRCM"


def test_simple_ws_default_and_literal(monkeypatch):
    spec, warned = _load("simple_ws")
    assert len(warned) == 1
    msg = str(warned[0].message)
    assert "\n" not in msg and "C, M all on Y" in msg and "--split literal" in msg
    axes = _axes(spec, "inter_PE_spatial")
    assert axes["C"] == "Y" and axes["M"] == "Y"
    monkeypatch.setattr(frontend, "SPLIT_SEMANTICS", "literal")
    spec, warned = _load("simple_ws")
    assert not warned
    axes = _axes(spec, "inter_PE_spatial")
    assert axes["C"] == "X" and axes["M"] == "Y"


def test_full_permutations_unchanged():
    for name in ("eyeriss_like", "simba_like"):
        spec, warned = _load(name)
        assert not warned, name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = load_spec([SPECS / "eyeriss_like.yaml", conv2d_problem(1, 32, 64, 9, 9, 4, 4, 2, 2)])
    frontend.SPLIT_SEMANTICS, old = "literal", frontend.SPLIT_SEMANTICS
    try:
        b = load_spec([SPECS / "eyeriss_like.yaml", conv2d_problem(1, 32, 64, 9, 9, 4, 4, 2, 2)])
    finally:
        frontend.SPLIT_SEMANTICS = old
    assert build_mapspace(a).orient.tolist() == build_mapspace(b).orient.tolist()


def test_bad_semantics_name(monkeypatch):
    monkeypatch.setattr(frontend, "SPLIT_SEMANTICS", "sideways")
    with pytest.raises(Exception, match="timeloopfe or literal"):
        _load("simple_ws")
