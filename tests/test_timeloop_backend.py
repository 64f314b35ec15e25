"""Timeloop stats parser on every reference case, and the optional run_timeloop backend."""
from __future__ import annotations

import json
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


# ----------------------------------------------------------------------------- --backend timeloop
def _main(*args):
    import contextlib
    import io
    from a3cs_plugin.cli.main import main
    from a3cs_plugin.hardware.model import engine
    from a3cs_plugin.hardware.spec import frontend
    saved = engine.HALO_RULE, engine.LINK_TRANSFERS, frontend.SPLIT_SEMANTICS
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main([str(a) for a in args])
        except SystemExit as e:   # argparse --help
            rc = e.code
        finally:   # the flags set process-wide semantics
            engine.HALO_RULE, engine.LINK_TRANSFERS, frontend.SPLIT_SEMANTICS = saved
            engine._CACHE.clear()
    return rc, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("command", ["model", "map", "net"])
def test_help_lists_backend(command):
    rc, out, _ = _main("hw", command, "--help")
    assert rc == 0
    for flag in ("--backend", "timeloop", "--timeloop-version", "--no-link-transfers", "--split"):
        assert flag in out, (command, flag)


def _no_timeloop(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("A3CS_TIMELOOP_BIN", raising=False)
    monkeypatch.setattr(tlb, "_pytimeloop_frontend", lambda: None)


def test_backend_timeloop_without_timeloop(monkeypatch, tmp_path, cases):
    _no_timeloop(monkeypatch, tmp_path / "empty")
    case = next(c for c in cases if c["id"] == "03-3level-bypass")
    for command in ("model", "map"):
        rc, out, err = _main("hw", command, *[REF / p for p in case["inputs"]], "--ert", REF / case["ert"],
                             "--backend", "timeloop", "--json")
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
        assert "Timeloop is not installed" in lines[0] and f"timeloop-{command}" in lines[0]
    rc, _, err = _main("hw", "net", "--arch", REF / case["inputs"][0], "--model", "nature_cnn",
                       "--backend", "timeloop", "--json")
    assert rc == 2 and "Timeloop is not installed" in err and len(err.strip().splitlines()) == 1


FAKE = """#!{python}
# stands in for {name}: records its inputs, copies a stats file to the output folder
import shutil, sys, os
args = sys.argv[1:]
out = args[args.index("-o") + 1]
inputs = [a for a in args[:args.index("-o")]]
with open(os.path.join(out, "seen_inputs.txt"), "w") as f:
    f.write("\\n".join(inputs) + "\\n" + os.environ.get("TIMELOOP_DISABLE_LINK_TRANSFERS", "") + "\\n")
shutil.copy({stats!r}, os.path.join(out, "{name}.stats.txt"))
{extra}
"""


def _fake_binary(tmp_path, name, stats, extra=""):
    import stat
    import sys
    d = tmp_path / "bin"
    d.mkdir(exist_ok=True)
    p = d / name
    p.write_text(FAKE.format(python=sys.executable, name=name, stats=str(stats), extra=extra))
    p.chmod(p.stat().st_mode | stat.S_IEXEC)
    return d


def test_run_spec_with_a_binary(monkeypatch, tmp_path, cases):
    """The whole path with a stand-in binary found through A3CS_TIMELOOP_BIN: our processed input
    (equal to Timeloop's own) and the user's ERT/ART go in, the stats come out as our JSON."""
    from a3cs_plugin.hardware.backend.processed import differences
    from a3cs_plugin.hardware.spec import load_spec, load_yaml_file
    case = next(c for c in cases if c["id"] == "03-3level-bypass")
    _no_timeloop(monkeypatch, tmp_path / "empty")
    monkeypatch.setenv("A3CS_TIMELOOP_BIN", str(_fake_binary(tmp_path, "timeloop-model", REF / case["stats"])))
    work = tmp_path / "work"
    rc, out, err = _main("hw", "model", *[REF / p for p in case["inputs"]], "--ert", REF / case["ert"],
                         "--art", REF / case["art"], "--backend", "timeloop", "--no-link-transfers", "--json")
    assert rc == 0, err
    d = json.loads(out)
    assert set(d) >= {"cycles", "computes", "energy_pJ", "levels_pJ", "area_um2", "energy_source"}
    assert d["cycles"] == case["expected"]["cycles"] and d["energy_source"] == "timeloop:timeloop-model"
    assert _close(d["energy_pJ"], case["expected"]["energy_pJ"])
    spec = load_spec([REF / p for p in case["inputs"]], ert=REF / case["ert"], art=REF / case["art"])
    got = tlb.run_spec(spec, "model", workdir=work, env={"TIMELOOP_DISABLE_LINK_TRANSFERS": "1"})
    seen = (work / "seen_inputs.txt").read_text().splitlines()
    assert seen[-1] == "1"
    assert str((REF / case["ert"]).resolve()) in seen and str((REF / case["art"]).resolve()) in seen
    written = load_yaml_file(work / "a3cs.processed.yaml")
    assert differences(written, load_yaml_file(REF / case["processed_input"])) == []
    assert got["levels_pJ"] == pytest.approx(case["expected"]["levels_pJ"], rel=1e-6, abs=1e-3)


def test_run_spec_mapper_and_generated_tables(monkeypatch, tmp_path, cases):
    """timeloop-mapper: Timeloop's best mapping comes back; without a user ERT we write ours."""
    from a3cs_plugin.hardware.spec import load_spec
    case = next(c for c in cases if c["id"] == "05-mapper-null")
    mapping = REF / case["mapping"]
    extra = f"shutil.copy({str(mapping)!r}, os.path.join(out, 'timeloop-mapper.map.yaml'))"
    _no_timeloop(monkeypatch, tmp_path / "empty")
    monkeypatch.setenv("A3CS_TIMELOOP_BIN", str(_fake_binary(tmp_path, "timeloop-mapper", REF / case["stats"],
                                                             extra)))
    inputs = [REF / p for p in case["inputs"] if "map.yaml" not in str(p)]
    spec = load_spec(inputs)
    got = tlb.run_spec(spec, "mapper", workdir=tmp_path / "w")
    assert got["cycles"] == case["expected"]["cycles"]
    assert isinstance(got["mapping"], list) and got["mapping"]
    assert (tmp_path / "w" / "a3cs.ERT.yaml").is_file()
    ert = yaml.safe_load((tmp_path / "w" / "a3cs.ERT.yaml").read_text())["ERT"]["tables"]
    assert all(t["name"].startswith(spec.arch.name) for t in ert)


def test_run_spec_without_workdir_cleans_up_after_success_only(monkeypatch, tmp_path, cases):
    """No workdir: a temporary directory, gone after a good run (a costed network runs one per
    layer), kept after a failure because the one-line error names the log inside it."""
    import tempfile

    from a3cs_plugin.errors import A3CSError
    from a3cs_plugin.hardware.spec import load_spec
    case = next(c for c in cases if c["id"] == "03-3level-bypass")
    _no_timeloop(monkeypatch, tmp_path / "empty")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    spec = load_spec([REF / p for p in case["inputs"]], ert=REF / case["ert"], art=REF / case["art"])
    monkeypatch.setenv("A3CS_TIMELOOP_BIN", str(_fake_binary(tmp_path, "timeloop-model", REF / case["stats"])))
    got = tlb.run_spec(spec, "model")
    assert got["cycles"] == case["expected"]["cycles"] and "stats_file" not in got
    assert list(tmp.iterdir()) == []
    (tmp_path / "bad").mkdir()
    monkeypatch.setenv("A3CS_TIMELOOP_BIN", str(_fake_binary(tmp_path / "bad", "timeloop-model", REF / case["stats"],
                                                             "sys.exit('bad input')")))
    with pytest.raises(A3CSError) as e:
        tlb.run_spec(spec, "model")
    kept = list(tmp.iterdir())
    assert len(kept) == 1 and str(kept[0]) in str(e.value) and "bad input" in str(e.value)
    assert (kept[0] / "a3cs_timeloop-model.log").is_file()


def test_semantics_flags_of_the_builtin_model():
    """--no-link-transfers / --timeloop-version select the oracle variant our model follows."""
    from test_timeloop_oracle import CASES, ORACLE, _sources
    case = next((c for c in CASES if c["id"] == "04-eyeriss_like"), None)
    if case is None:
        pytest.skip(f"Timeloop oracle data not found at {ORACLE}")
    srcs = _sources(case, "tl")
    spec_files, mapping = srcs[:-1], srcs[-1]
    for flags, variant in (((), "ref"), (("--no-link-transfers",), "nolink"),
                           (("--timeloop-version", "head"), "head")):
        rc, out, err = _main("hw", "model", *spec_files, "--mapping", mapping, "--ert", ORACLE / case["ert"],
                             "--art", ORACLE / case["art"], "--json", *flags)
        assert rc == 0, err
        exp = case["expected"]["tl"][variant]
        assert json.loads(out)["energy_pJ"] == pytest.approx(exp["energy_pJ"], rel=1e-4), variant


def test_parsed_area_equals_model_area(cases):
    """The stats' areas (per instance x instances, compute total) equal the model's from the ART."""
    from test_model_parity import load_case
    from a3cs_plugin.hardware.model import evaluate
    for case in cases:
        got = tlb.parse_stats(REF / case["stats"])["area_um2"]
        ours = evaluate(load_case(REF, case)).area_um2
        assert got == pytest.approx(ours, rel=1e-6), case["id"]


def test_net_with_a_mapper_binary(monkeypatch, tmp_path, cases):
    """hw net --backend timeloop runs timeloop-mapper once per distinct layer (stand-in binary)."""
    case = next(c for c in cases if c["id"] == "05-mapper-null")
    extra = f"shutil.copy({str(REF / case['mapping'])!r}, os.path.join(out, 'timeloop-mapper.map.yaml'))"
    _no_timeloop(monkeypatch, tmp_path / "empty")
    monkeypatch.setenv("A3CS_TIMELOOP_BIN", str(_fake_binary(tmp_path, "timeloop-mapper", REF / case["stats"],
                                                             extra)))
    from a3cs_plugin.hardware.dnn_cost import clear_cache
    clear_cache()
    arch = Path(__file__).resolve().parents[1] / "arch_specs" / "eyeriss_like.yaml"
    rc, out, err = _main("hw", "net", "--arch", arch, "--model", "nature_cnn", "--backend", "timeloop", "--json")
    clear_cache()
    assert rc == 0, err
    d = json.loads(out)
    assert d["layers"] and all(l["cycles"] == case["expected"]["cycles"] for l in d["layers"])
