"""Fuzz corpus: malformed inputs generated from the shipped valid ones, run through the CLI.

Every case must end in ONE clean ``a3cs: error: ...`` line on stderr and exit code 2, before any
training, mapping or labelling starts.  A case fails on a traceback (any exception other than the
CLI's ``A3CSError`` handling), on silent acceptance (exit 0, or reaching the point where the real
work would start: :class:`Accepted`), on an error message of more than one line, or, for the
cases of :data:`MUST_SAY`, on a message that does not name the right file, key or remedy.

The corpus is generated (:func:`build_corpus`) by mutating ``arch_specs/*.yaml``, the problems,
``arch_specs/mapper.yaml``, ``examples/tiny_pong.yaml``, an ``arch.json``, the shipped Pong
teacher and a search checkpoint, and by bad flag values.  ``python tools/fuzz_tally.py`` prints
the tally by command.
"""
from __future__ import annotations

import copy
import json
import math
import shutil
import sys
import traceback
from collections import Counter, defaultdict
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest

REPO = Path(__file__).resolve().parents[1]
ARCH = REPO / "arch_specs"
PROBLEM = ARCH / "problems" / "nature_conv1.yaml"
MAPPER = ARCH / "mapper.yaml"
CONFIG = REPO / "examples" / "tiny_pong.yaml"
QUICK = REPO / "examples" / "quick_pong.yaml"
TEACHER = REPO / "a3cs_plugin" / "teachers" / "pong.pt"

NOT_UTF8 = b"\xff\xfe\x00bad \xc3\x28 bytes\n"


class Accepted(Exception):
    """Raised where the real work of a command would start: the input passed validation."""


@dataclass
class Case:
    command: str          # hw model | hw map | hw net | search | train | evaluate | retrain | fit-surrogate
    name: str
    argv: list
    control: bool = False   # the unmutated input: must be accepted (else the corpus proves nothing)


# --------------------------------------------------------------------------- YAML helpers

def _load(path: Path):
    from a3cs_plugin.hardware.spec.yamlio import load_yaml_file
    return load_yaml_file(path)


def _dump(data) -> str:
    from a3cs_plugin.hardware.spec import to_yaml
    return to_yaml(data)


def _leaves(obj, path=()):
    """(path, value) of every scalar leaf of a YAML tree (dicts and lists)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, path + (i,))
    else:
        yield path, obj


def _dicts(obj, path=()):
    """(path, dict) of every mapping of a YAML tree."""
    if isinstance(obj, dict):
        yield path, obj
        for k, v in obj.items():
            yield from _dicts(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _dicts(v, path + (i,))


def _set(tree, path, value):
    t = copy.deepcopy(tree)
    node = t
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return t


def _del(tree, path):
    t = copy.deepcopy(tree)
    node = t
    for p in path[:-1]:
        node = node[p]
    del node[path[-1]]
    return t


def _find(tree, key):
    """Path of the first leaf named ``key``."""
    return next(path for path, _ in _leaves(tree) if path and path[-1] == key)


def _label(path) -> str:
    return ".".join(str(p) for p in path)


# Timeloop attributes that are counts or sizes (>= 1) wherever they appear
_POSITIVE_ATTRS = {"meshX", "meshY", "depth", "width", "datawidth", "n_banks", "block_size",
                   "cluster_size", "read_bandwidth", "write_bandwidth", "multiplier_width",
                   "adder_width"}


# --------------------------------------------------------------------------- corpus

class _Writer:
    def __init__(self, root: Path):
        self.root = root
        self.n = 0

    def text(self, stem: str, text: str | bytes, suffix: str = ".yaml") -> str:
        self.n += 1
        p = self.root / f"{self.n:04d}_{stem}{suffix}"
        if isinstance(text, bytes):
            p.write_bytes(text)
        else:
            p.write_text(text)
        return str(p)


def _spec_mutations(tree, tag: str):
    """(name, mutated tree or raw text) of a Timeloop spec file."""
    out = []
    seen_attr = set()
    for path, value in _leaves(tree):
        key = path[-1] if path else None
        if key in _POSITIVE_ATTRS and (key, type(value)) not in seen_attr:
            seen_attr.add((key, type(value)))
            for bad in (0, -2, "abc", True):
                out.append((f"{tag}:{_label(path)}={bad!r}", _set(tree, path, bad)))
    # unknown keys in every kind of section
    for path, d in _dicts(tree):
        if path and path[-1] in ("attributes", "variables"):
            continue    # Accelergy attributes are free-form
        if path and isinstance(path[-1], str) and path[-1] in ("instance",):
            continue    # covered below (dimension names)
        if len(out) > 400:
            break
        if path[:1] in (("architecture",), ("problem",), ("mapper",)) and len(path) <= 4:
            out.append((f"{tag}:{_label(path)}+bogus_key", _set(tree, path + ("bogus_key",), 1)))
    return out


def _problem_mutations(tree):
    out = []
    inst = tree["problem"]["instance"]
    for dim in ("C", "M", "P"):
        for bad in (0, -4, "x", True, 2.5):
            out.append((f"problem:instance.{dim}={bad!r}", _set(tree, ("problem", "instance", dim), bad)))
    out.append(("problem:instance.Q missing (lower-case q)",
                _set(_del(tree, ("problem", "instance", "Q")), ("problem", "instance", "q"), 20)))
    out.append(("problem:instance.Wstride=0", _set(tree, ("problem", "instance", "Wstride"), 0)))
    out.append(("problem:no instance", _del(tree, ("problem", "instance"))))
    out.append(("problem:instance list", _set(tree, ("problem", "instance"), [1, 2])))
    out.append(("problem:shape.bogus", _set(tree, ("problem", "shape", "bogus"), 1)))
    out.append(("problem:bogus", _set(tree, ("problem", "bogus"), 1)))
    out.append(("problem:dimensions str", _set(tree, ("problem", "shape", "dimensions"), "CMRS")))
    out.append(("problem:projection unknown dim",
                _set(tree, ("problem", "shape", "data_spaces", 0, "projection", 0, 0, 0), "Y")))
    out.append(("problem:read_write str", _set(tree, ("problem", "shape", "data_spaces", 2, "read_write"), "yes")))
    del inst
    return out


def _mapper_mutations(tree):
    out = []
    m = ("mapper",)
    for key, bad in (("optimization_metrics", ["speed"]), ("optimization_metrics", "edp"),
                     ("optimization_metrics", [1]), ("num_threads", 0), ("num_threads", "two"),
                     ("timeout", -1), ("timeout", "abc"), ("victory_condition", -5),
                     ("live_status", "maybe"), ("algorithm", "magic"), ("bogus_option", 1)):
        out.append((f"mapper:{key}={bad!r}", _set(tree, m + (key,), bad)))
    return out


def _common_file_mutations(w: _Writer, stem: str, good: Path):
    text = good.read_text()
    lines = text.splitlines()
    return [
        ("not UTF-8", w.text(stem + "_latin", NOT_UTF8 + text.encode())),
        ("malformed YAML", w.text(stem + "_malformed", text + "\n  - : : [\n")),
        ("top level a list", w.text(stem + "_list", "- 1\n- 2\n")),
        ("truncated", w.text(stem + "_trunc", "\n".join(lines[: len(lines) // 2]) + "\n  bad: [1,\n")),
        ("a directory", str(w.root)),
        ("missing file", str(w.root / "does_not_exist.yaml")),
    ]


def _template_mutations(tree):
    """Mutations of a design-space template (arch_specs/templates/*.yaml)."""
    out = []
    for p in ("pe_x", "glb_kib", "dataflow", "clock_mhz"):
        for bad in ([], [0], [-4], "abc", [True], None):
            out.append((f"parameters.{p}.choices={bad!r}", _set(tree, ("parameters", p, "choices"), bad)))
        out.append((f"parameters.{p}.default not a choice", _set(tree, ("parameters", p, "default"), 999)))
        out.append((f"parameters.{p}+bogus", _set(tree, ("parameters", p, "bogus"), 1)))
    out.append(("parameters.clock_mhz.search=maybe", _set(tree, ("parameters", "clock_mhz", "search"), "maybe")))
    out.append(("parameters a list", _set(tree, ("parameters",), [1])))
    out.append(("no architecture", _del(tree, ("architecture",))))
    return out


def _config_mutations(tree):
    """Mutations of the search config (examples/tiny_pong.yaml)."""
    out = []
    for path, value in _leaves(tree):
        if path[0] == "hp":
            continue
        bads = []
        if isinstance(value, bool):
            bads = ["yes please", 3, 1, "true"]
        elif isinstance(value, (int, float)):
            bads = [True, "abc", -1, float("inf"), float("nan")]
        elif isinstance(value, str):
            bads = [5, "no_such_" + value]
        for bad in bads:
            out.append((f"config:{_label(path)}={bad!r}", _set(tree, path, bad)))
    for path, d in _dicts(tree):
        out.append((f"config:{_label(path) or '<top>'}+bogus", _set(tree, path + ("bogus",), 1)))
    hw = ("hardware",)
    out += [
        ("config:lambda=.inf", _set(tree, hw + ("lambda",), float("inf"))),
        ("config:fps_target=true", _set(tree, hw + ("fps_target",), True)),
        ("config:fps_target=[true,false]", _set(tree, hw + ("fps_target",), [True, False])),
        ("config:fps_target=.nan", _set(tree, hw + ("fps_target",), float("nan"))),
        ("config:fps_target=[3]", _set(tree, hw + ("fps_target",), [3])),
        ("config:cost_model_options.bogus", _set(tree, hw + ("cost_model_options",), {"bogus": 1})),
        ("config:cost_model_options list", _set(tree, hw + ("cost_model_options",), [1])),
        ("config:cost_model=nope", _set(tree, hw + ("cost_model",), "nope")),
        ("config:fixed.bogus", _set(tree, hw + ("fixed",), {"bogus": 1})),
        ("config:fixed.clock bad choice", _set(tree, hw + ("fixed",), {"pe_mesh": "17x3"})),
        ("config:area_budget tiny", _set(tree, hw + ("area_budget_mm2",), 0.001)),
        ("config:baselines missing file", _set(tree, hw + ("baselines",), ["no_such_design"])),
        ("config:baselines str", _set(tree, hw + ("baselines",), "eyeriss_like")),
        ("config:hp.num_steps=abc", _set(tree, ("hp", "num_steps"), "abc")),
        ("config:hp.num_envs=0", _set(tree, ("hp", "num_envs"), 0)),
        ("config:hp.num_envs=true", _set(tree, ("hp", "num_envs"), True)),
        ("config:hp.lr=.nan", _set(tree, ("hp", "lr"), float("nan"))),
        ("config:hp.lr=-1", _set(tree, ("hp", "lr"), -1.0)),
        ("config:hp.bogus", _set(tree, ("hp", "bogus"), 1)),
        ("config:hp list", _set(tree, ("hp",), [1, 2])),
        ("config:seeds=[]", _set(tree, ("seeds",), [])),
        ("config:seeds dup", _set(tree, ("seeds",), [1, 1])),
        ("config:seed=true", _set(tree, ("seed",), True)),
        ("config:teacher=Breakout for Pong", _set(tree, ("teacher",), "Breakout")),
        ("config:teacher missing file", _set(tree, ("teacher",), "/nonexistent/teacher.pt")),
        ("config:game=Nope", _set(tree, ("game",), "Nope")),
        ("config:search.tau_min>tau_init", _set(tree, ("search", "tau_min"), 50.0)),
        ("config:search.warmup_frac=1", _set(tree, ("search", "warmup_frac"), 1.0)),
        ("config:template=nope", _set(tree, hw + ("template",), "no_such_template")),
        ("config:hardware=str", _set(tree, hw, "eyeriss")),
        ("config:agent unknown", _set(tree, ("agent",), "no_such_agent")),
        ("config:agent missing file", _set(tree, ("agent",), "/nonexistent/arch.json")),
        ("config:agent a YAML file", _set(tree, ("agent",), str(PROBLEM))),
        ("config:agent=3", _set(tree, ("agent",), 3)),
    ]
    return out


def _build_valid_mapping(root: Path, spec_files: list) -> Path:
    """A mapping for the hw model cases (the mapper's, from a short search)."""
    from a3cs_plugin.hardware import mapper
    from a3cs_plugin.hardware.spec import load_spec, to_yaml
    from a3cs_plugin.hardware.spec.mapping import dump_mapping
    spec = load_spec(spec_files)
    res = mapper.search(spec, metric="edp", time_limit=0.2, seed=0)
    p = root / "valid_mapping.yaml"
    p.write_text(to_yaml({"mapping": dump_mapping(spec, res.mapping)}))
    return p


def _fake_search_run(root: Path) -> Path:
    """A finished-looking search run directory (config.yaml, arch.json, checkpoints/last.ckpt)."""
    import torch
    import yaml
    from a3cs_plugin.agents.arch import cell_labels
    run = root / "search_run"
    (run / "checkpoints").mkdir(parents=True)
    cfg = yaml.safe_load(CONFIG.read_text())
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    arch = {lab: "k3_e1" for lab in cell_labels(cfg["search"]["num_cells"])}
    (run / "arch.json").write_text(json.dumps(arch))
    torch.save({"epoch": 1, "global_step": 4, "pytorch-lightning_version": "2.0",
                "state_dict": {"w": torch.zeros(2)}, "rollout_module": {"frames": 512}},
               run / "checkpoints" / "last.ckpt")
    return run


def build_corpus(root: Path) -> list[Case]:
    """Write the mutated inputs under ``root``; return the cases (argv for ``main``)."""
    import torch
    import yaml
    root.mkdir(parents=True, exist_ok=True)
    w = _Writer(root)
    cases: list[Case] = []
    fast_map = ["--time-limit", "0.2"]   # only valid inputs reach the mapper (the controls)

    # ---- hw map: every arch spec, the problem, the mapper settings
    for design in ("simple_ws", "simple_os", "eyeriss_like", "simba_like"):
        good = ARCH / f"{design}.yaml"
        tree = _load(good)
        for name, mut in _spec_mutations(tree, design):
            f = w.text(design, _dump(mut))
            cases.append(Case("hw map", name, ["hw", "map", f, str(PROBLEM), str(MAPPER), *fast_map]))
    good = ARCH / "simple_ws.yaml"
    for name, f in _common_file_mutations(w, "simple_ws", good):
        cases.append(Case("hw map", "arch " + name, ["hw", "map", f, str(PROBLEM), *fast_map]))
    ptree = _load(PROBLEM)
    for name, mut in _problem_mutations(ptree):
        f = w.text("problem", _dump(mut))
        cases.append(Case("hw map", name, ["hw", "map", str(good), f, *fast_map]))
    for name, f in _common_file_mutations(w, "problem", PROBLEM)[:4]:
        cases.append(Case("hw map", "problem " + name, ["hw", "map", str(good), f, *fast_map]))
    mtree = _load(MAPPER)
    for name, mut in _mapper_mutations(mtree):
        f = w.text("mapper", _dump(mut))
        cases.append(Case("hw map", name, ["hw", "map", str(good), str(PROBLEM), f, *fast_map]))
    base = [str(good), str(PROBLEM)]
    for flag, bad in (("--time-limit", "nan"), ("--time-limit", "inf"), ("--time-limit", "0"),
                      ("--time-limit", "-1"), ("--metric", "speed"), ("--seed", "x"), ("--seed", "-1"),
                      ("--timeloop-version", "v9"), ("--split", "half"), ("--backend", "gpu")):
        cases.append(Case("hw map", f"{flag} {bad}", ["hw", "map", *base, flag, bad]))
    # ERT / ART files that are not ERT / ART
    ert_good = {"ERT": {"version": 0.4, "tables": [
        {"name": "system.DRAM[1..1]", "actions": [{"name": "read", "arguments": None, "energy": 512}]}]}}
    art_good = {"ART": {"version": 0.4, "tables": [{"name": "system.DRAM[1..1]", "area": 0}]}}
    for flag, good_t, key in (("--ert", ert_good, "ERT"), ("--art", art_good, "ART")):
        bads = [("the problem file", str(PROBLEM)),
                ("the arch file", str(good)),
                ("empty file", w.text("empty", "")),
                ("not UTF-8", w.text(key + "_latin", NOT_UTF8)),
                ("a list", w.text(key + "_list", "- 1\n")),
                ("no tables", w.text(key + "_notables", _dump({key: {"version": 0.4}}))),
                ("missing", str(root / "missing.ERT.yaml"))]
        if key == "ERT":
            bads += [("energy abc", w.text("ert_abc", _dump(_set(good_t, ("ERT", "tables", 0, "actions", 0, "energy"), "abc")))),
                     ("energy -1", w.text("ert_neg", _dump(_set(good_t, ("ERT", "tables", 0, "actions", 0, "energy"), -1)))),
                     ("energy .nan", w.text("ert_nan", _dump(_set(good_t, ("ERT", "tables", 0, "actions", 0, "energy"), float("nan"))))),
                     ("actions str", w.text("ert_acts", _dump(_set(good_t, ("ERT", "tables", 0, "actions"), "read"))))]
        else:
            bads += [("area abc", w.text("art_abc", _dump(_set(good_t, ("ART", "tables", 0, "area"), "abc")))),
                     ("area -3", w.text("art_neg", _dump(_set(good_t, ("ART", "tables", 0, "area"), -3))))]
        for name, f in bads:
            cases.append(Case("hw map", f"{flag} {name}", ["hw", "map", *base, flag, f, *fast_map]))

    # ---- hw model: a valid mapping, then mutations of it
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mapping = _build_valid_mapping(root, [str(good), str(PROBLEM)])
    mtree = _load(mapping)
    entries = mtree["mapping"]
    for i, e in enumerate(entries[:6]):
        if "factors" in e:
            cases.append(Case("hw model", f"mapping[{i}].factors garbage",
                              ["hw", "model", *base, "--mapping",
                               w.text("map", _dump(_set(mtree, ("mapping", i, "factors"), "C=abc")))]))
        cases.append(Case("hw model", f"mapping[{i}].target unknown",
                          ["hw", "model", *base, "--mapping",
                           w.text("map", _dump(_set(mtree, ("mapping", i, "target"), "nowhere")))]))
        cases.append(Case("hw model", f"mapping[{i}].type bad",
                          ["hw", "model", *base, "--mapping",
                           w.text("map", _dump(_set(mtree, ("mapping", i, "type"), "sideways")))]))
        cases.append(Case("hw model", f"mapping[{i}]+bogus",
                          ["hw", "model", *base, "--mapping",
                           w.text("map", _dump(_set(mtree, ("mapping", i, "bogus"), 1)))]))
    # a constraints file (mutations of a valid one) with the fixed mapping
    cons_good = {"constraints": {"version": 0.4, "targets": [
        {"target": "DRAM", "type": "temporal", "factors": ["C=1"], "permutation": ["C", "M"]},
        {"target": "shared_glb", "type": "dataspace", "keep": ["Inputs", "Outputs"]}]}}
    tg = ("constraints", "targets", 0)
    for name, mut in (("type bogus", _set(cons_good, tg + ("type",), "bogus")),
                      ("target unknown", _set(cons_good, tg + ("target",), "nowhere")),
                      ("factors C=abc", _set(cons_good, tg + ("factors",), ["C=abc"])),
                      ("factors a number", _set(cons_good, tg + ("factors",), 5)),
                      ("unknown key", _set(cons_good, tg + ("bogus",), 1)),
                      ("section unknown key", _set(cons_good, ("constraints", "bogus"), 1)),
                      ("entry not a mapping", _set(cons_good, ("constraints", "targets", 1), "DRAM")),
                      ("keep unknown data space", _set(cons_good, ("constraints", "targets", 1, "keep"), ["Psums"]))):
        f = w.text("constraints", _dump(mut))
        cases.append(Case("hw model", f"constraints {name}", ["hw", "model", *base, f, "--mapping", str(mapping)]))
        cases.append(Case("hw map", f"constraints {name}", ["hw", "map", *base, f, *fast_map]))
    cons_file = w.text("constraints_good", _dump(cons_good))
    cases.append(Case("hw model", "no mapping", ["hw", "model", *base]))
    for name, f in _common_file_mutations(w, "mapping", mapping)[:4]:
        cases.append(Case("hw model", "mapping " + name, ["hw", "model", *base, "--mapping", f]))
    # a negative buffer depth with a valid mapping: blamed on the architecture, not the mapping
    neg = w.text("simple_ws_negdepth", _dump(_set(_load(good), _find(_load(good), "depth"), -16)))
    cases.append(Case("hw model", "negative depth with a valid mapping",
                      ["hw", "model", neg, str(PROBLEM), "--mapping", str(mapping)]))

    # ---- hw net
    net = ["hw", "net", "--time-limit", "0.1"]
    arch_json = root / "arch_good.json"
    from a3cs_plugin.agents.arch import cell_labels
    arch = {lab: "k3_e1" for lab in cell_labels(14)}
    arch_json.write_text(json.dumps(arch))
    for name, argv in (
            ("--time-limit nan", ["hw", "net", "--arch", "eyeriss_like", "--model", "nature_cnn", "--time-limit", "nan"]),
            ("--seed -2", [*net, "--arch", "eyeriss_like", "--model", "nature_cnn", "--seed", "-2"]),
            ("--num-actions 0", [*net, "--arch", "eyeriss_like", "--model", "nature_cnn", "--num-actions", "0"]),
            ("--batch -1", [*net, "--arch", "eyeriss_like", "--model", "nature_cnn", "--batch", "-1"]),
            ("--model nope", [*net, "--arch", "eyeriss_like", "--model", "nope"]),
            ("--arch nope", [*net, "--arch", "no_such_design", "--model", "nature_cnn"]),
            ("--out is a file", [*net, "--arch", "eyeriss_like", "--model", "nature_cnn", "--out", str(PROBLEM)]),
            ("--ert the problem", [*net, "--arch", "eyeriss_like", "--model", "nature_cnn", "--ert", str(PROBLEM)]),
            ("--arch meshX 0", [*net, "--arch", w.text("eyeriss_mesh0", _dump(_set(_load(ARCH / "eyeriss_like.yaml"), _find(_load(ARCH / "eyeriss_like.yaml"), "meshX"), 0))), "--model", "nature_cnn"]),
            ("--arch not UTF-8", [*net, "--arch", w.text("eyeriss_latin", NOT_UTF8), "--model", "nature_cnn"])):
        cases.append(Case("hw net", name, argv))
    for name, obj in (("missing cell_05", {k: v for k, v in arch.items() if k != "cell_05"}),
                      ("unknown op", {**arch, "cell_03": "k9_e9"}),
                      ("a gap (cell_05 missing, cell_14 given)",
                       {**{k: v for k, v in arch.items() if k != "cell_05"}, "cell_14": "skip"}),
                      ("a list", list(arch.values())),
                      ("op not a string", {**arch, "cell_00": 3}),
                      ("empty", {})):
        f = w.text("arch", json.dumps(obj), ".json")
        cases.append(Case("hw net", f"arch.json {name}", [*net, "--arch", "eyeriss_like", "--agent", f]))
    for name, f in (("arch.json not UTF-8", w.text("arch_latin", NOT_UTF8, ".json")),
                    ("arch.json malformed", w.text("arch_bad", "{\"cell_00\": ", ".json")),
                    ("arch.json missing", str(root / "nope.json"))):
        cases.append(Case("hw net", name, [*net, "--arch", "eyeriss_like", "--agent", f]))

    # ---- search: config mutations (work would start at the RolloutModule)
    ctree = yaml.safe_load(CONFIG.read_text())
    out_dir = root / "search_out"
    for name, mut in _config_mutations(ctree):
        f = w.text("config", yaml.safe_dump(mut))
        cases.append(Case("search", name, ["search", f, "--out", str(out_dir)]))
    qtree = yaml.safe_load(QUICK.read_text())
    for i, (name, mut) in enumerate(_config_mutations(qtree)):
        if i % 3 == 0:      # a third of them: the same kinds as tiny_pong's, on the other example
            f = w.text("quick", yaml.safe_dump(mut))
            cases.append(Case("search", "quick_pong " + name, ["search", f, "--out", str(out_dir)]))
    for name, f in _common_file_mutations(w, "config", CONFIG):
        cases.append(Case("search", "config " + name, ["search", f, "--out", str(out_dir)]))
    # --resume into runs whose checkpoint is damaged
    def _resume_dir(name, ckpt_rel, data, config=True):
        d = root / f"resume_{name}"
        (d / ckpt_rel).parent.mkdir(parents=True)
        (d / ckpt_rel).write_bytes(data)
        if config:
            shutil.copyfile(CONFIG, d / "config.yaml")
        return str(d)
    raw_t = TEACHER.read_bytes()
    for name, data in (("truncated", raw_t[: len(raw_t) // 3]), ("garbage", NOT_UTF8 * 10), ("empty", b"")):
        cases.append(Case("search", f"--resume, last.ckpt {name}",
                          ["search", str(CONFIG), "--out", _resume_dir("s" + name, "checkpoints/last.ckpt", data), "--resume"]))
        cases.append(Case("train", f"--resume, last.pt {name}",
                          ["train", "--agent", "nature_cnn", "--game", "Pong", "--frames", "1k", "--resume",
                           "--out", _resume_dir("t" + name, "checkpoints/last.pt", data, config=False)]))
    cases.append(Case("search", "--resume with another config",
                      ["search", w.text("config", yaml.safe_dump({**ctree, "seed": 7})), "--out",
                       _resume_dir("changed", "checkpoints/last.ckpt", b""), "--resume"]))
    cases += [Case("search", "--out is a file", ["search", str(CONFIG), "--out", str(PROBLEM)]),
              Case("search", "--resume without a run", ["search", str(CONFIG), "--out", str(root / "no_run"), "--resume"]),
              Case("search", "--frames abc", ["search", str(CONFIG), "--out", str(out_dir), "--frames", "abc"]),
              Case("search", "--frames 0", ["search", str(CONFIG), "--out", str(out_dir), "--frames", "0"])]

    # ---- train
    tr = ["train", "--agent", "nature_cnn", "--game", "Pong", "--frames", "1k"]
    tout = ["--out", str(root / "train_out")]
    for name, argv in (
            ("--frames abc", ["train", "--agent", "nature_cnn", "--game", "Pong", "--frames", "abc", *tout]),
            ("--frames nan", ["train", "--agent", "nature_cnn", "--game", "Pong", "--frames", "nan", *tout]),
            ("--frames 0", ["train", "--agent", "nature_cnn", "--game", "Pong", "--frames", "0", *tout]),
            ("--agent nope", ["train", "--agent", "nope", "--game", "Pong", "--frames", "1k", *tout]),
            ("--game Nope", ["train", "--agent", "nature_cnn", "--game", "Nope", "--frames", "1k", *tout]),
            ("--num-envs 0", [*tr, *tout, "--num-envs", "0"]),
            ("--seed -1", [*tr, *tout, "--seed", "-1"]),
            ("--num-envs -3", [*tr, *tout, "--num-envs", "-3"]),
            ("--hp num_steps=abc", [*tr, *tout, "--hp", "num_steps=abc"]),
            ("--hp num_steps=0", [*tr, *tout, "--hp", "num_steps=0"]),
            ("--hp lr=nan", [*tr, *tout, "--hp", "lr=nan"]),
            ("--hp lr=inf", [*tr, *tout, "--hp", "lr=inf"]),
            ("--hp bogus=1", [*tr, *tout, "--hp", "bogus=1"]),
            ("--hp noequals", [*tr, *tout, "--hp", "num_steps"]),
            ("--hp num_envs=true", [*tr, *tout, "--hp", "num_envs=true"]),
            ("--hp precision=fp8", [*tr, *tout, "--hp", "precision=fp8"]),
            ("--distill-actor nan", [*tr, *tout, "--teacher", "Pong", "--distill-actor", "nan"]),
            ("--distill-actor -1", [*tr, *tout, "--teacher", "Pong", "--distill-actor", "-1"]),
            ("--distill without teacher", [*tr, *tout, "--distill-actor", "1.0"]),
            ("--teacher Breakout for Pong", [*tr, *tout, "--teacher", "Breakout"]),
            ("--teacher missing", [*tr, *tout, "--teacher", str(root / "missing.pt")]),
            ("--init missing", [*tr, *tout, "--init", str(root / "missing.pt")]),
            ("--init wrong game", [*tr, *tout, "--init", "Breakout"]),
            ("--checkpoint-every 0", [*tr, *tout, "--checkpoint-every", "0"]),
            ("--checkpoint-every x", [*tr, *tout, "--checkpoint-every", "x"]),
            ("--threads -1", [*tr, *tout, "--threads", "-1"]),
            ("--env-threads 0", [*tr, *tout, "--env-threads", "0"]),
            ("--algo sac", [*tr, *tout, "--algo", "sac"]),
            ("--precision fp8", [*tr, *tout, "--precision", "fp8"]),
            ("--out is a file", [*tr, "--out", str(PROBLEM)]),
            ("--resume without a run", [*tr, "--out", str(root / "no_train_run"), "--resume"]),
            ("--resume, last.pt an agent file", [*tr, "--resume", "--out",
                                                 _resume_dir("tagent", "checkpoints/last.pt", TEACHER.read_bytes(), config=False)]),
            ("--init garbage", [*tr, *tout, "--init", w.text("init_garbage", NOT_UTF8, ".pt")]),
            ("--teacher garbage", [*tr, *tout, "--teacher", w.text("teacher_garbage2", NOT_UTF8, ".pt")])):
        cases.append(Case("train", name, argv))

    # ---- evaluate: checkpoints mutated from the shipped teacher, and a search run
    run = _fake_search_run(root)
    raw = TEACHER.read_bytes()
    ck = torch.load(TEACHER, map_location="cpu", weights_only=True)
    def _ck(name, obj):
        p = root / f"ck_{name}.pt"
        torch.save(obj, p)
        return str(p)
    bad_cks = [
        ("truncated", w.text("teacher_trunc", raw[: len(raw) // 2], ".pt")),
        ("garbage bytes", w.text("teacher_garbage", NOT_UTF8 * 20, ".pt")),
        ("empty file", w.text("teacher_empty", b"", ".pt")),
        ("a YAML file", str(PROBLEM)),
        ("missing", str(root / "nope.pt")),
        ("no format", _ck("noformat", {k: v for k, v in ck.items() if k != "format"})),
        ("no model", _ck("nomodel", {k: v for k, v in ck.items() if k != "model"})),
        ("wrong agent", _ck("wrongagent", {**ck, "agent": "resnet14"})),
        ("agent unknown", _ck("agentunknown", {**ck, "agent": "nope"})),
        ("wrong game", _ck("wronggame", {**ck, "game": "Breakout"})),
        ("weights shape", _ck("shape", {**ck, "model": {k: v[..., :1] for k, v in ck["model"].items()}})),
        ("a list", _ck("list", [1, 2, 3])),
        ("search run dir", str(run)),
        ("search last.ckpt", str(run / "checkpoints" / "last.ckpt")),
        ("empty dir", str(root / "empty_dir")),
    ]
    (root / "empty_dir").mkdir()
    ev = ["evaluate", "--game", "Pong", "--episodes", "1"]
    for name, f in bad_cks:
        cases.append(Case("evaluate", f"--checkpoint {name}", [*ev, "--checkpoint", f]))
    for name, argv in (("--teacher Tennis", ["evaluate", "--game", "Tennis", "--teacher", "Tennis"]),
                       ("--teacher and --checkpoint", [*ev, "--teacher", "Pong", "--checkpoint", str(TEACHER)]),
                       ("neither", [*ev]),
                       ("--seed -5", [*ev, "--teacher", "Pong", "--seed", "-5"]),
                       ("--episodes 0", ["evaluate", "--game", "Pong", "--teacher", "Pong", "--episodes", "0"]),
                       ("--episodes -1", ["evaluate", "--game", "Pong", "--teacher", "Pong", "--episodes", "-1"]),
                       ("--threads 0", [*ev, "--teacher", "Pong", "--threads", "0"]),
                       ("--game Nope", ["evaluate", "--game", "Nope", "--teacher", "Pong"]),
                       ("--teacher garbage file", [*ev, "--teacher", w.text("teacher_g2", NOT_UTF8, ".pt")])):
        cases.append(Case("evaluate", name, argv))

    # ---- retrain: mutations of a search run directory
    def _run_variant(name, edit):
        d = root / f"run_{name}"
        shutil.copytree(run, d)
        edit(d)
        return str(d)
    rt = ["--frames", "1k", "--episodes", "1"]
    variants = [
        ("no arch.json", lambda d: (d / "arch.json").unlink()),
        ("no config.yaml", lambda d: (d / "config.yaml").unlink()),
        ("arch.json not UTF-8", lambda d: (d / "arch.json").write_bytes(NOT_UTF8)),
        ("arch.json malformed", lambda d: (d / "arch.json").write_text("{")),
        ("arch.json missing cell", lambda d: (d / "arch.json").write_text(json.dumps({"cell_00": "skip"}))),
        ("arch.json unknown op", lambda d: (d / "arch.json").write_text(
            json.dumps({lab: "k7" for lab in cell_labels(3)}))),
        ("config.yaml not UTF-8", lambda d: (d / "config.yaml").write_bytes(NOT_UTF8)),
        ("config.yaml bad key", lambda d: (d / "config.yaml").write_text(
            yaml.safe_dump({**ctree, "bogus": 1}))),
        ("config.yaml list", lambda d: (d / "config.yaml").write_text("- 1\n")),
    ]
    for i, (name, mut) in enumerate(_config_mutations(ctree)):
        if i % 10 == 0:     # the run's saved config.yaml damaged
            text = yaml.safe_dump(mut)
            variants.append((f"config.yaml {name}", lambda d, text=text: (d / "config.yaml").write_text(text)))
    for name, edit in variants:
        slug = "".join(ch if ch.isalnum() else "_" for ch in name)[:60]
        cases.append(Case("retrain", name, ["retrain", _run_variant(f"{len(cases)}_{slug}", edit), *rt]))
    cases += [Case("retrain", "missing dir", ["retrain", str(root / "no_such_run"), *rt]),
              Case("retrain", "a file", ["retrain", str(PROBLEM), *rt]),
              Case("retrain", "--frames abc", ["retrain", str(run), "--frames", "abc"]),
              Case("retrain", "--frames -5", ["retrain", str(run), "--frames", "-5"]),
              Case("retrain", "--episodes 0", ["retrain", str(run), "--frames", "1k", "--episodes", "0"])]

    # ---- fit-surrogate
    fs = ["hw", "fit-surrogate", "--template", "simple_array"]
    fout = ["--out", str(root / "sur.pt")]
    tmpl_tree = _load(ARCH / "templates" / "simple_array.yaml")
    for name, argv in (
            ("--samples 0", [*fs, *fout, "--samples", "0"]),
            ("--seed -1", [*fs, *fout, "--seed", "-1"]),
            ("--samples -5", [*fs, *fout, "--samples", "-5"]),
            ("--samples x", [*fs, *fout, "--samples", "x"]),
            ("--heldout 0", [*fs, *fout, "--heldout", "0"]),
            ("--heldout -1", [*fs, *fout, "--heldout", "-1"]),
            ("--time-limit nan", [*fs, *fout, "--time-limit", "nan"]),
            ("--time-limit inf", [*fs, *fout, "--time-limit", "inf"]),
            ("--workers 0", [*fs, *fout, "--workers", "0"]),
            ("--steps 0", [*fs, *fout, "--steps", "0"]),
            ("--hidden 0", [*fs, *fout, "--hidden", "0"]),
            ("--hidden -3", [*fs, *fout, "--hidden", "-3"]),
            ("--train-layers 0", [*fs, *fout, "--train-layers", "0"]),
            ("--train-layers 2", [*fs, *fout, "--train-layers", "2"]),
            ("--max-evaluations -1", [*fs, *fout, "--max-evaluations", "-1"]),
            ("--noise-check -1", [*fs, *fout, "--noise-check", "-1"]),
            ("--feature-version 7", [*fs, *fout, "--feature-version", "7"]),
            ("--template nope", ["hw", "fit-surrogate", "--template", "no_such_template", *fout]),
            ("--template not UTF-8", ["hw", "fit-surrogate", "--template", w.text("tmpl_latin", NOT_UTF8), *fout]),
            ("--template bogus key", ["hw", "fit-surrogate", "--template",
                                      w.text("tmpl", _dump({**tmpl_tree, "bogus_key": 1})), *fout]),
            ("--out is a directory", [*fs, "--out", str(root)]),
            ("--out in a missing dir file parent", [*fs, "--out", str(PROBLEM) + "/x.pt"]),
            ("--out the packaged surrogate", [*fs, "--out", str(REPO / "a3cs_plugin" / "surrogates" / "simple_array.pt")]),
            ("--cache not UTF-8", [*fs, *fout, "--cache", w.text("cache_latin", NOT_UTF8, ".jsonl")]),
            ("--cache a directory", [*fs, *fout, "--cache", str(root)]),
            ("--cache garbage lines", [*fs, *fout, "--cache", w.text("cache_bad", "{not json\n[1, 2]\n", ".jsonl")])):
        cases.append(Case("fit-surrogate", name, argv))
    # design-space template mutations (fit-surrogate --template FILE; a few as a search's template)
    for i, (name, mut) in enumerate(_template_mutations(tmpl_tree)):
        f = w.text("template", _dump(mut))
        cases.append(Case("fit-surrogate", "template " + name, ["hw", "fit-surrogate", "--template", f, *fout]))
        if i % 6 == 0:
            cfg = yaml.safe_dump(_set(_set(ctree, ("hardware", "template"), f), ("hardware", "baselines"), []))
            cases.append(Case("search", "template " + name, ["search", w.text("config", cfg), "--out", str(out_dir)]))

    # ---- --device / device: (issue 14): a bad name, and a GPU no machine has (cuda:99)
    for dev in ("tpu", "cuda:99", "cuda:x", "GPU0"):
        cases += [Case("train", f"--device {dev}", [*tr, *tout, "--device", dev]),
                  Case("evaluate", f"--device {dev}", [*ev, "--teacher", "Pong", "--device", dev]),
                  Case("search", f"--device {dev}", ["search", str(CONFIG), "--out", str(out_dir), "--device", dev]),
                  Case("search", f"config:device={dev}",
                       ["search", w.text("config", yaml.safe_dump({**ctree, "device": dev})), "--out", str(out_dir)]),
                  Case("retrain", f"--device {dev}", ["retrain", str(run), *rt, "--device", dev])]
    cases += [Case("search", "config:device=7", ["search", w.text("config", yaml.safe_dump({**ctree, "device": 7})),
                                                  "--out", str(out_dir)]),
              Case("search", "config:device=null", ["search", w.text("config", yaml.safe_dump({**ctree, "device": None})),
                                                     "--out", str(out_dir)])]

    # ---- controls: the valid inputs every mutation starts from
    cases += [Case("hw map", "valid", ["hw", "map", str(good), str(PROBLEM), str(MAPPER), *fast_map], True),
              Case("hw map", "valid constraints", ["hw", "map", *base, cons_file, *fast_map], True),
              Case("hw model", "valid", ["hw", "model", *base, "--mapping", str(mapping)], True),
              Case("hw net", "valid", [*net, "--arch", "eyeriss_like", "--agent", str(arch_json)], True),
              Case("search", "valid", ["search", str(CONFIG), "--out", str(out_dir)], True),
              Case("train", "valid", [*tr, *tout], True),
              Case("evaluate", "valid teacher", [*ev, "--teacher", "Pong"], True),
              Case("evaluate", "valid checkpoint", [*ev, "--checkpoint", str(TEACHER)], True),
              Case("retrain", "valid", ["retrain", str(run), *rt], True),
              Case("fit-surrogate", "valid", [*fs, *fout], True)]
    return cases


# --------------------------------------------------------------------------- running

def _sentinels(stack: ExitStack) -> None:
    """Patch the points where each command's real work starts to raise :class:`Accepted`."""
    def accept(*a, **k):
        raise Accepted()
    import importlib
    fit = importlib.import_module("a3cs_plugin.hardware.surrogate.fit")
    evaluate = importlib.import_module("a3cs_plugin.rl.evaluate")
    trainer = importlib.import_module("a3cs_plugin.rl.trainer")
    rl_module = importlib.import_module("a3cs_plugin.strategy.rl_module")
    stack.enter_context(mock.patch.object(rl_module, "RolloutModule", accept))     # search
    stack.enter_context(mock.patch.object(trainer, "Learner", accept))             # train, retrain
    stack.enter_context(mock.patch.object(evaluate, "evaluate", accept))           # evaluate
    stack.enter_context(mock.patch.object(fit, "generate_labels", accept))         # fit-surrogate


def run_case(case: Case, capsys) -> tuple[str, str]:
    """``(outcome, detail)``: outcome is clean, traceback, accepted, multiline or misleading."""
    from a3cs_plugin.cli.main import main
    capsys.readouterr()
    try:
        rc = main(list(case.argv))
    except Accepted:
        capsys.readouterr()
        return "accepted", "reached the start of the real work"
    except SystemExit as exc:
        rc = exc.code
    except Exception:  # noqa: BLE001 - the point of the test
        capsys.readouterr()
        return "traceback", traceback.format_exc().strip().splitlines()[-1][:300]
    cap = capsys.readouterr()
    err = [ln for ln in cap.err.splitlines() if ln.strip() and not ln.startswith("a3cs: warning:")]
    if rc == 0:
        return "accepted", "exit 0"
    if rc != 2:
        return "traceback", f"exit {rc}: {cap.err.strip()[-300:]}"
    if len(err) != 1 or not err[0].startswith("a3cs: error:"):
        return "multiline", " | ".join(err)[:300]
    missing = [w for w in MUST_SAY.get((case.command, case.name), ()) if w not in err[0]]
    if missing:
        return "misleading", f"does not say {missing}: {err[0]}"
    return "clean", err[0]


def run_corpus(root: Path, capsys) -> tuple[list, dict]:
    cases = build_corpus(root)
    results = []
    import warnings
    with ExitStack() as stack, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _sentinels(stack)
        for c in cases:
            results.append((c, *run_case(c, capsys)))
    tally: dict = defaultdict(Counter)
    for c, outcome, _ in results:
        if c.control:
            continue
        tally[c.command]["cases"] += 1
        tally[c.command][outcome] += 1
    return results, tally


# cases whose message must name the right thing (the "misleading" examples)
MUST_SAY = {
    ("hw model", "negative depth with a valid mapping"): ("attributes.depth", "architecture"),
    ("hw net", "arch.json missing cell_05"): ("missing cell label 'cell_05'",),
    ("hw net", "arch.json a gap (cell_05 missing, cell_14 given)"): ("cell_05",),
    ("evaluate", "--checkpoint search run dir"): ("a3cs search", "a3cs retrain"),
    ("evaluate", "--checkpoint search last.ckpt"): ("a3cs search", "a3cs retrain"),
    ("search", "config:area_budget tiny"): ("area_budget_mm2", "smallest design"),
    ("search", "config:cost_model_options.bogus"): ("hardware.cost_model_options.bogus",),
    ("search", "config:fps_target=true"): ("fps_target", "boolean"),
    ("search", "config:lambda=.inf"): ("hardware.lambda", "finite"),
    ("hw map", "mapper:optimization_metrics=['speed']"): ("optimization_metrics", "speed"),
    ("hw map", "--ert the problem file"): ("ERT",),
    ("fit-surrogate", "--out the packaged surrogate"): ("--force",),
    ("train", "--device tpu"): ("--device", "auto, cpu, cuda or cuda:N"),
    ("train", "--device cuda:99"): ("--device",),
    ("evaluate", "--device cuda:99"): ("--device",),
    ("search", "--device cuda:99"): ("--device",),
    ("search", "config:device=tpu"): ("key 'device'", "auto, cpu, cuda or cuda:N"),
    ("search", "config:device=cuda:99"): ("key 'device'",),
    ("retrain", "--device tpu"): ("--device",),
}


COMMANDS = ("hw model", "hw map", "hw net", "search", "train", "evaluate", "retrain", "fit-surrogate")


def format_tally(tally: dict) -> str:
    cols = ("cases", "clean", "traceback", "accepted", "multiline", "misleading")
    lines = [f"{'command':<16}" + "".join(f"{c:>11}" for c in cols)]
    total = Counter()
    for cmd in COMMANDS:
        t = tally.get(cmd, Counter())
        total.update(t)
        lines.append(f"{cmd:<16}" + "".join(f"{t.get(c, 0):>11}" for c in cols))
    lines.append(f"{'total':<16}" + "".join(f"{total.get(c, 0):>11}" for c in cols))
    return "\n".join(lines)


def test_fuzz_corpus_gives_one_clean_line_each(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    results, tally = run_corpus(tmp_path / "corpus", capsys)
    with capsys.disabled():
        sys.stdout.write("\n" + format_tally(tally) + "\n")
    assert sum(t["cases"] for t in tally.values()) >= 150
    assert set(tally) == set(COMMANDS)
    assert set(MUST_SAY) <= {(c.command, c.name) for c, _, _ in results}
    controls = [f"[{c.command}] {c.name}: {outcome}: {detail}" for c, outcome, detail in results
                if c.control and outcome != "accepted"]
    assert not controls, "valid inputs must be accepted:\n" + "\n".join(controls)
    bad = [f"[{c.command}] {c.name}: {outcome}: {detail}" for c, outcome, detail in results
           if not c.control and outcome != "clean"]
    assert not bad, f"{len(bad)} of {len(results)} cases not clean:\n" + "\n".join(bad)
