"""`a3cs hw model` / `a3cs hw map` through the real console script, on real YAML files."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / ".venv" / "bin" / "a3cs"


def a3cs(*args, cwd=None):
    cmd = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "a3cs_plugin.cli.main"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)


@pytest.fixture
def case03(reference_dir, reference_cases):
    c = reference_cases["03-3level-nobypass"]
    ref = reference_dir
    return {"inputs": [ref / p for p in c["inputs"]], "ert": ref / c["ert"], "art": ref / c["art"],
            "expected": c["expected"]}


def _one_line_error(proc, *needles):
    assert proc.returncode != 0, proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def test_model_json_matches_timeloop(case03):
    arch, prob, mapping = case03["inputs"]
    p = a3cs("hw", "model", arch, prob, "--mapping", mapping, "--ert", case03["ert"], "--art",
             case03["art"], "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert set(out) == {"cycles", "computes", "energy_pJ", "levels_pJ", "area_um2", "energy_source"}
    exp = case03["expected"]
    assert out["cycles"] == exp["cycles"] and out["computes"] == exp["computes"]
    assert out["energy_pJ"] == pytest.approx(exp["energy_pJ"], rel=5e-3)
    for name, e in exp["levels_pJ"].items():
        assert out["levels_pJ"][name] == pytest.approx(e, rel=1e-2)
    assert out["area_um2"] > 0 and out["energy_source"].startswith("ert:")


def test_model_table_output(case03):
    arch, prob, mapping = case03["inputs"]
    p = a3cs("hw", "model", arch, prob, mapping, "--ert", case03["ert"])
    assert p.returncode == 0, p.stderr
    assert "cycles" in p.stdout and "GlobalBuffer" in p.stdout and "fJ/compute" in p.stdout
    assert "area (um^2)     -" in p.stdout  # no ART given


def test_map_json_is_reevaluable(case03, tmp_path):
    arch, prob, _ = case03["inputs"]
    p = a3cs("hw", "map", arch, prob, "--ert", case03["ert"], "--metric", "energy", "--time-limit", "2",
             "--seed", "1", "--json")
    if p.returncode != 0 and "mapper is not available" in p.stderr:
        pytest.skip("a3cs_plugin.hardware.mapper.search is not built yet")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert {"mapping", "search_seconds", "energy_pJ", "cycles"} <= set(out)
    assert out["computes"] == case03["expected"]["computes"]
    # the mapper's mapping, written as a Timeloop mapping file, evaluates to the same numbers
    m = tmp_path / "found.map.yaml"
    m.write_text(json.dumps({"mapping": out["mapping"]}))
    q = a3cs("hw", "model", arch, prob, "--mapping", m, "--ert", case03["ert"], "--json")
    assert q.returncode == 0, q.stderr
    again = json.loads(q.stdout)
    assert again["energy_pJ"] == pytest.approx(out["energy_pJ"], rel=1e-9)
    assert again["cycles"] == out["cycles"]


def test_malformed_yaml(case03, tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("problem:\n  shape: [oops\n")
    arch, _, mapping = case03["inputs"]
    _one_line_error(a3cs("hw", "model", arch, bad, "--mapping", mapping, "--json"), "broken.yaml",
                    "malformed YAML")


def test_unknown_key(case03, tmp_path):
    bad = tmp_path / "typo.yaml"
    bad.write_text("mappping: []\n")
    arch, prob, mapping = case03["inputs"]
    _one_line_error(a3cs("hw", "model", arch, prob, bad, "--mapping", mapping, "--json"), "typo.yaml",
                    "'mappping'", "expected")


def test_missing_key(case03):
    arch, _, mapping = case03["inputs"]
    _one_line_error(a3cs("hw", "model", arch, "--mapping", mapping, "--ert", case03["ert"], "--json"),
                    "'problem'", "expected")


def test_factors_do_not_multiply(case03, tmp_path):
    arch, prob, _ = case03["inputs"]
    m = tmp_path / "short.map.yaml"
    m.write_text(textwrap.dedent("""
    mapping:
    - {target: MainMemory, type: temporal, factors: R=1 P=1 K=1, permutation: PRK}
    - {target: GlobalBuffer, type: temporal, factors: R=1 P=16 K=8, permutation: PRK}
    - {target: RegisterFile, type: temporal, factors: R=3 P=1 K=2, permutation: RPK}
    """))
    _one_line_error(a3cs("hw", "model", arch, prob, "--mapping", m, "--ert", case03["ert"], "--json"),
                    "short.map.yaml", "mapping.factors.K", "product 32")


def test_tile_overflows_buffer(case03, tmp_path):
    arch, prob, _ = case03["inputs"]
    m = tmp_path / "big.map.yaml"
    m.write_text(textwrap.dedent("""
    mapping:
    - {target: MainMemory, type: temporal, factors: R=1 P=1 K=1, permutation: PRK}
    - {target: GlobalBuffer, type: temporal, factors: R=1 P=1 K=1, permutation: PRK}
    - {target: RegisterFile, type: temporal, factors: R=3 P=16 K=32, permutation: RPK}
    """))
    _one_line_error(a3cs("hw", "model", arch, prob, "--mapping", m, "--ert", case03["ert"], "--json"),
                    "big.map.yaml", "RegisterFile", "at most 64 words")


def test_unknown_component_class(case03, tmp_path):
    arch_text = Path(case03["inputs"][0]).read_text().replace("class: regfile", "class: warp_drive")
    arch = tmp_path / "weird.arch.yaml"
    arch.write_text(arch_text)
    _, prob, mapping = case03["inputs"]
    tables = REPO / "a3cs_plugin" / "hardware" / "energy" / "tables" / "builtin_tables.json"
    if not tables.is_file():
        pytest.skip("built-in energy tables (hardware/energy) not generated yet")
    line = _one_line_error(a3cs("hw", "model", arch, prob, "--mapping", mapping, "--json"), "warp_drive")
    assert "RegisterFile" in line or "class" in line


def test_bad_cli_argument(case03):
    arch, prob, _ = case03["inputs"]
    _one_line_error(a3cs("hw", "map", arch, prob, "--time-limit", "0", "--ert", case03["ert"]),
                    "--time-limit")


# ---------------------------------------------------------------------------- a3cs hw net
EYERISS = REPO / "arch_specs" / "eyeriss_like.yaml"


def _eyeriss_files():
    # the CLI contract's form: one self-contained file, `--accel arch_specs/NAME.yaml`
    assert EYERISS.is_file(), EYERISS
    return [EYERISS]


@pytest.fixture(scope="module")
def nature_net():
    """One `a3cs hw net` run on the repo's Eyeriss-like accelerator, shared by the checks below."""
    p = a3cs("hw", "net", "--accel", *_eyeriss_files(), "--model", "nature_cnn", "--json",
             "--time-limit", "0.5")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_net_json_fields_and_units(nature_net):
    out = nature_net
    assert {"energy_pJ", "energy_mJ", "cycles", "latency_ms", "fps", "area_mm2", "layers"} <= set(out)
    assert out["network"] == "nature_cnn"
    assert out["energy_pJ"] > 0 and out["cycles"] > 0 and out["area_mm2"] > 0
    assert out["energy_mJ"] == pytest.approx(out["energy_pJ"] * 1e-9, rel=1e-12)
    assert out["area_mm2"] == pytest.approx(out["area_um2"] * 1e-6, rel=1e-12)
    # FPS is one inference (batch 1) per latency
    assert out["fps"] == pytest.approx(1e3 / out["latency_ms"], rel=1e-9)
    # arch.yaml sets global_cycle_seconds: 1e-9 -> latency = cycles x 1 ns
    assert out["latency_ms"] == pytest.approx(out["cycles"] * 1e-6, rel=1e-9)


def test_net_totals_are_layer_sums(nature_net):
    layers = nature_net["layers"]
    # Nature CNN: three convolutions, one hidden linear layer, actor and critic heads
    assert len(layers) == 6 and all(l["count"] >= 1 for l in layers)
    assert [l["macs"] for l in layers][:3] == [3276800, 2654208, 1806336]
    assert nature_net["energy_pJ"] == pytest.approx(sum(l["energy_pJ"] * l["count"] for l in layers),
                                                    rel=1e-9)
    assert nature_net["cycles"] == pytest.approx(sum(l["cycles"] * l["count"] for l in layers), rel=1e-9)
    assert nature_net["macs"] == sum(l["macs"] * l["count"] for l in layers)
    assert sum(nature_net["levels_pJ"].values()) == pytest.approx(nature_net["energy_pJ"], rel=1e-9)


def test_net_accel_flag_and_its_hidden_old_name(capsys):
    """`--accel` names the accelerator; `--arch` (its old name) still works, is hidden from
    --help and fills the same destination; giving both is refused."""
    from a3cs_plugin.cli.main import build_parser
    parser = build_parser()
    for flag in ("--accel", "--arch"):
        ns = parser.parse_args(["hw", "net", flag, "a.yaml", "b.yaml", "--model", "nature_cnn"])
        assert ns.accel == ["a.yaml", "b.yaml"] and not hasattr(ns, "arch")
    with pytest.raises(SystemExit):
        parser.parse_args(["hw", "net", "--accel", "a.yaml", "--arch", "b.yaml", "--model", "nature_cnn"])
    with pytest.raises(SystemExit):
        parser.parse_args(["hw", "net", "--model", "nature_cnn"])
    assert "--accel is required" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["hw", "net", "--help"])
    out = capsys.readouterr().out
    assert "--accel" in out and "--arch" not in out


def test_net_unknown_model():
    line = _one_line_error(a3cs("hw", "net", "--accel", *_eyeriss_files(), "--model", "nosuch",
                                "--json", "--time-limit", "0.5"), "nosuch")
    assert "nature_cnn" in line or "expected" in line


def test_net_missing_arch_file(tmp_path):
    missing = tmp_path / "nowhere.arch.yaml"
    line = _one_line_error(a3cs("hw", "net", "--accel", missing, "--model", "nature_cnn", "--json",
                                "--time-limit", "0.5"), "nowhere.arch.yaml")
    assert "not found" in line or "No such file" in line


def test_net_malformed_arch_yaml(tmp_path):
    bad = tmp_path / "broken.arch.yaml"
    bad.write_text(_eyeriss_files()[0].read_text().replace("  nodes:\n", "  nodes: [\n", 1))
    _one_line_error(a3cs("hw", "net", "--accel", bad, "--model", "nature_cnn", "--json",
                         "--time-limit", "0.5"), "broken.arch.yaml", "malformed YAML")


def test_metric_vocabulary_latency_is_timeloops_delay(case03):
    """`--metric latency` (a3cs's word) and `--metric delay` (Timeloop's) are the same search."""
    arch, prob, _ = case03["inputs"]
    runs = [a3cs("hw", "map", arch, prob, "--ert", case03["ert"], "--metric", m, "--time-limit", "2", "--json")
            for m in ("latency", "delay")]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr
    a, b = (json.loads(r.stdout) for r in runs)
    assert a["cycles"] == b["cycles"] and a["mapping"] == b["mapping"]
