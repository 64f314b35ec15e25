"""Issue 12, "a design space from any spec": ``a3cs hw template``, fit-surrogate budgets and
shards, ``a3cs hw merge-labels``, and a generated template through surrogate -> search -> map."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from a3cs_plugin.cli.main import main
from a3cs_plugin.hardware.space import DesignSpace
from a3cs_plugin.hardware.space.template import load_yaml_text

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "arch_specs"
PROBLEM = SPECS / "problems" / "nature_conv2.yaml"

# how the shipped templates were made (run in arch_specs/)
SHIPPED = {
    "simba_like": ["simba_like.yaml"],
    "simple_ws": ["simple_ws.yaml", "--dataflow", "weight_stationary=simple_ws.yaml",
                  "--dataflow", "output_stationary=simple_os.yaml"],
}


def _run(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _numbers(obj):
    """Nested copy with numeric strings as floats (YAML reads 1e-9 as a string, a render as 1e-09)."""
    if isinstance(obj, dict):
        return {k: _numbers(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_numbers(v) for v in obj]
    if isinstance(obj, str):
        try:
            return float(obj)
        except ValueError:
            return obj
    return float(obj) if isinstance(obj, (int, float)) and not isinstance(obj, bool) else obj


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_template_round_trip(name, tmp_path, capsys, monkeypatch):
    """The command reproduces the shipped template; at its defaults the template renders the spec's
    architecture back, and a fixed mapping gives the same `a3cs hw model` numbers on both."""
    monkeypatch.chdir(SPECS)
    out = tmp_path / f"{name}.yaml"
    rc, text, err = _run(capsys, "hw", "template", *SHIPPED[name], "--out", out)
    assert rc == 0, err
    assert f"template '{name}'" in text
    assert out.read_text() == (SPECS / "templates" / f"{name}.yaml").read_text()
    space = DesignSpace.from_template(out)
    assert sum(p.size > 1 for p in space.parameters.values()) >= 5
    assert space.parameters["clock_mhz"].searched is False
    spec_file = SPECS / f"{name}.yaml"
    orig = load_yaml_text(spec_file.read_text(), str(spec_file))
    rendered = space.render(tagged=True)
    assert _numbers(rendered["architecture"]) == _numbers(orig["architecture"])
    default = tmp_path / "default.yaml"
    space.write(None, default)
    # a mapping found on the original spec, evaluated on both
    rc, text, err = _run(capsys, "hw", "map", spec_file, PROBLEM, "--time-limit", "0.5", "--json")
    assert rc == 0, err
    mapping = tmp_path / "map.yaml"
    mapping.write_text(yaml.safe_dump({"mapping": json.loads(text)["mapping"]}))
    rc, a, err = _run(capsys, "hw", "model", spec_file, PROBLEM, "--mapping", mapping, "--json")
    assert rc == 0, err
    rc, b, err = _run(capsys, "hw", "model", default, PROBLEM, "--mapping", mapping, "--json")
    assert rc == 0, err
    a, b = json.loads(a), json.loads(b)
    assert a["energy_pJ"] > 0 and a["cycles"] > 0
    assert a == b


def test_template_choices_and_overrides(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(SPECS)
    out = tmp_path / "t.yaml"
    rc, _, err = _run(capsys, "hw", "template", "simba_like.yaml", "--out", out,
                      "--param", "PE.meshX=8,16", "--param", "GlobalBuffer.depth=2048",
                      "--param", "PEAccuBuffer.width=24,48", "--name", "mine")
    assert rc == 0, err
    space = DesignSpace.from_template(out)
    assert space.name == "mine"
    p = space.parameters
    assert p["PE_meshX"].choices == (8, 16) and p["PE_meshX"].default == 16
    assert "GlobalBuffer_depth" not in p                        # one value: the literal stays
    assert p["PEAccuBuffer_width"].choices == (24, 48)
    assert p["PEWeightBuffer_depth"].choices == (1024, 2048, 4096, 8192, 16384)   # x1/4 .. x4
    assert p["PEInputBuffer_width"].choices == (32, 64, 128)                     # x1/2 .. x2
    assert p["reg_mac_meshY"].choices == (1, 2, 4, 8)
    assert "PEWeightRegs_depth" not in p                       # depth 1: a register
    assert p["clock_mhz"].choices == (200, 500, 1000)
    # the dataflow parameter of simple_ws carries only the nodes whose constraints differ
    ws = DesignSpace.from_template(SPECS / "templates" / "simple_ws.yaml")
    df = ws.parameters["dataflow"]
    assert df.default == "weight_stationary"
    assert set(df.constraint_sets["output_stationary"]) == {"pe_spad"}
    os_spec = load_yaml_text((SPECS / "simple_os.yaml").read_text(), "simple_os.yaml")
    got = ws.render({"dataflow": "output_stationary"})["architecture"]
    want = os_spec["architecture"]
    want["nodes"][2]["name"] = "simple_ws"       # the only other difference of the two files
    assert _numbers(got) == _numbers(want)


@pytest.mark.parametrize("argv, needle", [
    (["simba_like.yaml", "--param", "PE.meshX=4,8"], "leave out the spec's value 16"),
    (["simba_like.yaml", "--param", "PE.meshX"], "--param"),
    (["simba_like.yaml", "--param", "PE.meshX=4,x"], "--param"),
    (["simba_like.yaml", "--param", "Nope.depth=1,2"], "no node 'Nope'"),
    (["simba_like.yaml", "--param", "PE.colour=1,2"], "no numeric attribute 'colour'"),
    (["simba_like.yaml", "--dataflow", "os"], "--dataflow"),
    (["simba_like.yaml", "--dataflow", "os=problems/nature_conv2.yaml"], "--dataflow"),
    (["missing.yaml"], "missing.yaml"),
    (["problems/nature_conv2.yaml"], "architecture"),
    (["mapper.yaml"], "architecture"),
])
def test_template_bad_input(argv, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(SPECS)
    rc, _, err = _run(capsys, "hw", "template", *argv, "--out", tmp_path / "t.yaml")
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("a3cs: error:") and needle in err, err
    assert not (tmp_path / "t.yaml").exists()


def test_template_never_overwrites(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(SPECS)
    out = tmp_path / "t.yaml"
    out.write_text("keep\n")
    rc, _, err = _run(capsys, "hw", "template", "simple_ws.yaml", "--out", out)
    assert rc == 2 and "--force" in err and out.read_text() == "keep\n"
    rc, _, err = _run(capsys, "hw", "template", "simple_ws.yaml", "--out", out, "--force")
    assert rc == 0, err


def _records(path: Path) -> dict:
    out = {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        out[r["key"]] = (r.get("energy_pJ"), r.get("cycles"), r.get("error"), r["point"], r["instance"])
    return out


# a tiny fit: a count budget far below the time cap, so labels do not depend on the machine's load
TINY = ["--template", str(SPECS / "templates" / "simple_ws.yaml"), "--samples", "24", "--heldout", "6",
        "--time-limit", "60", "--max-evaluations", "120", "--train-layers", "24", "--steps", "200",
        "--noise-check", "2", "--workers", "2"]


def test_shards_merge_equal_unsharded(tmp_path, capsys):
    shards = []
    for i in (1, 2, 3):
        c = tmp_path / f"s{i}.jsonl"
        rc, out, err = _run(capsys, "hw", "fit-surrogate", *TINY, "--shard", f"{i}/3", "--cache", c)
        assert rc == 0, err
        assert f"shard {i}/3" in out
        shards.append(c)
    assert not list(tmp_path.glob("*.pt"))                      # a shard fits nothing
    merged = tmp_path / "merged.jsonl"
    rc, out, err = _run(capsys, "hw", "merge-labels", *shards, shards[0], "--out", merged)
    assert rc == 0, err
    whole = tmp_path / "whole.jsonl"
    rc, _, err = _run(capsys, "hw", "fit-surrogate", *TINY, "--cache", whole, "--out", tmp_path / "w.pt")
    assert rc == 0, err
    a, b = _records(merged), _records(whole)
    assert len(a) == 24 + 6 + 2 and a == b
    # a fit from the merged cache labels nothing new and gives the same surrogate report
    before = merged.read_text()
    rc, _, err = _run(capsys, "hw", "fit-surrogate", *TINY, "--cache", merged, "--out", tmp_path / "m.pt")
    assert rc == 0, err
    assert merged.read_text() == before
    ra = json.loads((tmp_path / "m.json").read_text())
    rb = json.loads((tmp_path / "w.json").read_text())
    assert ra["heldout"] == rb["heldout"] and ra["valid_train"] == 24


def test_shard_and_merge_bad_input(tmp_path, capsys):
    for bad in ("3/2", "0/2", "x", "1/0", "1-2"):
        rc, _, err = _run(capsys, "hw", "fit-surrogate", *TINY, "--shard", bad, "--cache", tmp_path / "c.jsonl")
        assert rc == 2 and err.count("\n") == 1 and "--shard" in err, err
    rc, _, err = _run(capsys, "hw", "fit-surrogate", *TINY, "--shard", "1/2")
    assert rc == 2 and "--cache" in err
    notlabels = tmp_path / "n.jsonl"
    notlabels.write_text('{"a": 1}\n')
    for src, needle in ((SPECS / "simba_like.yaml", "not JSON"), (notlabels, "not a label record"),
                        (tmp_path / "missing.jsonl", "file not found")):
        rc, _, err = _run(capsys, "hw", "merge-labels", src, "--out", tmp_path / "o.jsonl")
        assert rc == 2 and err.count("\n") == 1 and needle in err, err
    assert not (tmp_path / "o.jsonl").exists()
    good = tmp_path / "g.jsonl"
    good.write_text(json.dumps({"key": "0" * 40, "template": "t", "point": {}, "instance": {}, "metric": "edp",
                                "time_limit": 1, "seed": 0, "energy_pJ": 1.0, "cycles": 2.0}) + "\n")
    (tmp_path / "o.jsonl").write_text("x\n")
    rc, _, err = _run(capsys, "hw", "merge-labels", good, "--out", tmp_path / "o.jsonl")
    assert rc == 2 and "--force" in err


def _tiny_search(hardware: dict) -> dict:
    """A seconds-long search config (examples/tiny_pong.yaml, 2 cells, no fine-tune) on ``hardware``."""
    cfg = yaml.safe_load((ROOT / "examples" / "tiny_pong.yaml").read_text())
    cfg.update(frames=2048, hp={"num_envs": 2, "num_steps": 64, "num_minibatches": 2, "update_epochs": 1})
    cfg["hardware"] = {"metric": "edp", "lambda": 0.5, "recost_time_limit": 0.2, **hardware}
    cfg["search"] = {"num_cells": 2, "epochs": 2}
    cfg["finetune"] = {"frames": 0}
    cfg["eval"] = {"episodes": 1, "teacher": False, "random": False}
    return cfg


@pytest.mark.slow
def test_generated_template_surrogate_search_map(tmp_path, capsys, monkeypatch):
    """template -> tiny surrogate -> tiny a3cs search with hardware.template: PATH -> the derived
    accelerator.yaml maps with a3cs hw map."""
    monkeypatch.chdir(SPECS)
    tpl = tmp_path / "my_ws.yaml"
    rc, _, err = _run(capsys, "hw", "template", "simple_ws.yaml", "--dataflow", "ws=simple_ws.yaml",
                      "--dataflow", "os=simple_os.yaml", "--param", "shared_glb.width=64", "--out", tpl)
    assert rc == 0, err
    sur = tmp_path / "my_ws.pt"
    rc, _, err = _run(capsys, "hw", "fit-surrogate", "--template", tpl, "--samples", "48", "--heldout", "8",
                      "--time-limit", "60", "--max-evaluations", "120", "--train-layers", "48", "--steps", "300",
                      "--cache", tmp_path / "labels.jsonl", "--out", sur)
    assert rc == 0, err
    cfg = _tiny_search({"template": str(tpl), "cost_model": "surrogate",
                        "cost_model_options": {"surrogate": str(sur)}})
    conf = tmp_path / "run.yaml"
    conf.write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    rc, _, err = _run(capsys, "search", conf, "--out", run, "--no-retrain")
    assert rc == 0, err
    acc = run / "accelerator.yaml"
    point = json.loads(acc.read_text().splitlines()[1].split("point: ", 1)[1])
    assert set(point) == set(DesignSpace.from_template(tpl).parameters)
    rc, text, err = _run(capsys, "hw", "map", acc, PROBLEM, "--time-limit", "0.5", "--json")
    assert rc == 0, err
    assert json.loads(text)["energy_pJ"] > 0
    # a surrogate of another design space is refused in one line
    cfg["hardware"]["cost_model_options"]["surrogate"] = str(ROOT / "a3cs_plugin" / "surrogates" / "simple_array.pt")
    conf.write_text(yaml.safe_dump(cfg))
    rc, _, err = _run(capsys, "search", conf, "--out", tmp_path / "run2", "--no-retrain")
    assert rc == 2 and err.count("\n") == 1 and "another design space" in err, err


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_template_searches_with_its_shipped_surrogate(name, tmp_path, capsys):
    """``hardware: {template: NAME}`` alone picks the shipped full-protocol surrogate of that name;
    a tiny search derives a design of that space, and the derived accelerator.yaml maps."""
    conf = tmp_path / "run.yaml"
    conf.write_text(yaml.safe_dump(_tiny_search({"template": name, "cost_model": "surrogate"})))
    run = tmp_path / "run"
    rc, _, err = _run(capsys, "search", conf, "--out", run, "--no-retrain")
    assert rc == 0, err
    report = json.loads((run / "report.json").read_text())
    assert report["cost_model"] == "surrogate" and report["template"] == name
    assert Path(report["surrogate"]) == ROOT / "a3cs_plugin" / "surrogates" / f"{name}.pt"
    acc = run / "accelerator.yaml"
    point = json.loads(acc.read_text().splitlines()[1].split("point: ", 1)[1])
    assert set(point) == set(DesignSpace.from_template(SPECS / "templates" / f"{name}.yaml").parameters)
    rc, text, err = _run(capsys, "hw", "map", acc, PROBLEM, "--time-limit", "0.5", "--json")
    assert rc == 0, err
    assert json.loads(text)["energy_pJ"] > 0
