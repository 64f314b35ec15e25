"""A design-space template from an ordinary Timeloop v0.4 specification (``a3cs hw template``).

The spec's knobs become categorical parameters whose default is the spec's own value, so the
template at its defaults renders back to the spec (same nodes, attributes and constraints):

* **meshes** -- every ``spatial: {meshX | meshY: v}`` with ``v > 1`` gives ``<node>_meshX`` /
  ``<node>_meshY`` with the choices ``v * 2**k`` for ``k = -2, -1, 0, 1`` that are integers and
  at most ``max(v, 16)`` (16 -> 4, 8, 16; 12 -> 3, 6, 12; 4 -> 1, 2, 4, 8; 32 -> 8, 16, 32): the
  surrogate's divisor tables over two mesh axes grow steeply with the largest mesh size (at 32 x 32
  they take minutes to build), so a mesh grows only up to 16 unless the spec's is larger;
* **buffer depth** -- every storage component except the outermost (the backing store, DRAM) with
  ``depth > 1`` gives ``<node>_depth`` with ``depth * 2**k`` for ``k = -2 .. 2`` (x1/4 .. x4) that
  are integers >= 1; a storage of depth 1 is a register sized by the datapath and gets no parameter;
* **buffer width** -- where it matters: a storage (depth > 1) whose ``width`` holds several words
  (``width > datawidth``, a vector access) gives ``<node>_width`` with ``width * 2**k`` for
  ``k = -1, 0, 1`` that still hold a whole number of words (at least one); a width of one word is
  the word size, not a knob;
* **clock** -- a ``global_cycle_seconds`` gives ``clock_mhz`` with the choices ``f * (0.2, 0.5,
  1)`` (1 GHz -> 200, 500, 1000 MHz), ``search: false`` like the shipped templates: the energy
  tables have no voltage-frequency model, so a faster clock would cost nothing;
* **dataflow** -- the spec's constraints stay as it wrote them; named alternatives (``dataflows``:
  other v0.4 architectures with the same node names, e.g. ``simple_os.yaml`` for
  ``simple_ws.yaml``) add a ``dataflow`` parameter whose ``constraint_sets`` give each named node
  its constraints in each set (the spec's own set is the default).

``overrides`` (``--param NODE.attr=v1,v2,...``) replace a choice list or add a parameter for any
numeric attribute of a node; the list must hold the spec's own value (the default); a single value
removes the parameter (the spec's value stays literal).
"""
from __future__ import annotations

import copy
import math
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

from ...errors import ConfigError, SpecError
from ..spec.yamlio import KNOWN_TOP_KEYS, iter_nodes, merge_section, read_text
from .design import CARRIED_SECTIONS as CARRIED_KEYS
from .template import dump_yaml, load_yaml_text

__all__ = ["template_from_spec", "template_yaml", "parse_param_override", "RULES"]

MESH_STEPS = (-2, -1, 0, 1)
MESH_CAP = 16       # a mesh grows beyond the spec's value only up to this size
DEPTH_STEPS = (-2, -1, 0, 1, 2)
WIDTH_STEPS = (-1, 0, 1)
CLOCK_FACTORS = (0.2, 0.5, 1.0)
# sections of a spec the template carries into every rendered point: space.CARRIED_SECTIONS
# sections that describe a run, not the accelerator: dropped from the template
DROPPED_KEYS = ("problem", "mapping", "mapper", "mapspace", "model", "sparse_optimizations",
                "problem_instance", "ERT_summary", "ART_summary", "dumped_by_timeloop_front_end",
                "globals")

RULES = (f"meshes: v*2^k, k=-2..1 (integers, at most max(v, {MESH_CAP})); buffer depth: depth*2^k, k=-2..2 (storage below the "
         "backing store, depth > 1); buffer width where a word fits several times: width*2^k, "
         "k=-1..1 (whole words); clock: f*(0.2, 0.5, 1), not searched; defaults = the spec's values")


# --------------------------------------------------------------------------------------------- io
def _read(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise ConfigError("file not found", file=str(p), expected="a Timeloop v0.4 YAML file")
    doc = load_yaml_text(read_text(p, ConfigError), str(p))
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError("top level must be a mapping of sections", file=str(p),
                          expected="keys such as architecture, components, constraints")
    for key in doc:
        if key not in KNOWN_TOP_KEYS:
            raise ConfigError("unknown top-level key", file=str(p), key=str(key),
                              expected="one of " + ", ".join(sorted(KNOWN_TOP_KEYS)))
    return doc


def _merge(paths: list[str]) -> tuple[dict, dict]:
    """Merge spec files by top-level key (as the spec loader does); ``(merged, origin)``."""
    merged: dict = {}
    origin: dict = {}
    for path in paths:
        for key, value in _read(path).items():
            merged[key] = merge_section(merged[key], value) if key in merged else value
            origin[key] = f"{origin[key]},{path}" if key in origin else str(path)
    return merged, origin


def _nodes(arch_body: dict):
    """Every (tag, body) of a v0.4 architecture, outermost first, Parallel branches in order."""
    return iter_nodes(arch_body)


# --------------------------------------------------------------------------------------- choices
def _num(v) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v.strip())
        except ValueError:
            return None
    return None


def _as_choice(x: float):
    return int(x) if float(x).is_integer() else float(x)


def _scaled(v: int, steps, ok=lambda x: True) -> list:
    out = []
    for k in steps:
        x = v * 2.0 ** k
        if x >= 1 and float(x).is_integer() and ok(int(x)):
            out.append(int(x))
    return sorted(set(out) | {int(v)})


def _ident(text: str) -> str:
    s = re.sub(r"\W", "_", str(text))
    return s if s and not s[0].isdigit() else "n_" + s


def parse_param_override(text: str) -> tuple[str, list]:
    """``NODE.attr=v1,v2,...`` (or ``PARAM=v1,...``) -> ``(target, [values])``; ConfigError otherwise."""
    m = re.match(r"^\s*([^=\s]+)\s*=\s*(.+?)\s*$", str(text))
    if not m:
        raise ConfigError("malformed override", key="--param", expected="NODE.attr=v1,v2,...", got=text)
    vals = []
    for item in m.group(2).split(","):
        x = _num(item)
        if x is None or not math.isfinite(x) or x <= 0:
            raise ConfigError(f"choice {item.strip()!r} is not a positive number", key="--param",
                              expected="NODE.attr=v1,v2,... with positive numbers", got=text)
        vals.append(_as_choice(x))
    if len(set(vals)) != len(vals):
        raise ConfigError("duplicate choices", key="--param", expected="distinct values", got=text)
    return m.group(1), sorted(vals)


# ------------------------------------------------------------------------------------ generation
def template_from_spec(paths: Iterable[str | Path], *, name: str, overrides: Iterable[str] = (),
                       dataflows: Iterable[tuple[str, Iterable[str | Path]]] = (),
                       description: str | None = None) -> dict:
    """The template document (``template``, ``parameters``, ``architecture`` and the carried
    sections) for the spec in ``paths``; see the module doc for the rules."""
    from ..spec import conv2d_problem, load_spec

    paths = [str(p) for p in paths]
    if not paths:
        raise ConfigError("no spec file", key="SPEC.yaml", expected="a Timeloop v0.4 spec")
    merged, origin = _merge(paths)
    src = ",".join(paths)
    arch = merged.get("architecture")
    if arch is None:
        raise ConfigError("no 'architecture' section", file=src, key="architecture",
                          expected="a Timeloop v0.4 architecture (nodes with !Container / !Component)")
    if not isinstance(arch, dict) or not isinstance(arch.get("nodes"), list):
        raise ConfigError("not a v0.4 architecture", file=origin["architecture"], key="architecture.nodes",
                          expected="version 0.4 with a 'nodes' list (v0.3 'subtree' specs are not supported)")
    if str(arch.get("version", "0.4")) != "0.4":
        raise ConfigError(f"architecture version {arch.get('version')}", file=origin["architecture"],
                          key="architecture.version", expected="0.4")
    # the spec must load (our loader checks structure, classes, constraints)
    carried = {k: merged[k] for k in CARRIED_KEYS if merged.get(k) is not None}
    probe = conv2d_problem(N=1, C=8, M=8, P=4, Q=4, R=3, S=3)
    import warnings
    with warnings.catch_warnings():     # the spec's own warnings show where it is modelled
        warnings.simplefilter("ignore")
        spec = load_spec([copy.deepcopy({"architecture": arch, **carried}), probe])
    levels = {lv.name: lv for lv in spec.arch.levels}
    backing = spec.arch.levels[-1].name if spec.arch.levels else None

    arch = copy.deepcopy(arch)
    names = [b.get("name") for _, b in _nodes(arch) if b.get("name") is not None]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"node name '{dup[0]}' appears twice", file=origin["architecture"],
                          key="architecture.nodes", expected="unique node names (parameters are named by node)")
    params: dict[str, dict] = {}
    slots: dict[tuple[str, str], str] = {}      # (node, attr) -> parameter name

    def add(node: str, attr: str, value, choices: list, doc: str, where: dict, key: str):
        pname = _ident(f"{node}_{attr}")
        while pname in params:
            pname += "_"
        params[pname] = {"doc": doc, "choices": choices, "default": _as_choice(value)}
        slots[(node, attr)] = pname
        where[key] = "${" + pname + "}"

    clock_node = None
    for tag, body in _nodes(arch):
        node = body.get("name")
        if node is None:
            continue
        attrs = body.get("attributes") if isinstance(body.get("attributes"), dict) else {}
        if "global_cycle_seconds" in attrs and clock_node is None:
            clock_node = body
        spatial = body.get("spatial") if isinstance(body.get("spatial"), dict) else {}
        for axis in ("meshX", "meshY"):
            v = _num(spatial.get(axis))
            if v is not None and v > 1 and v.is_integer():
                cap = max(int(v), MESH_CAP)
                add(node, axis, int(v), _scaled(int(v), MESH_STEPS, lambda x, cap=cap: x <= cap),
                    f"{node} spatial {axis} (the spec: {int(v)})", spatial, axis)
        lv = levels.get(node)
        if tag != "!Component" or lv is None or lv.is_compute or lv.is_dummy or node == backing:
            continue
        depth = _num(attrs.get("depth"))
        if depth is None or depth <= 1 or not depth.is_integer():
            continue
        depth = int(depth)
        add(node, "depth", depth, _scaled(depth, DEPTH_STEPS),
            f"{node} depth in entries of its width (the spec: {depth})", attrs, "depth")
        width, word = _num(attrs.get("width")), lv.word_bits
        if width is not None and width.is_integer() and word and width > word and width % word == 0:
            width = int(width)
            add(node, "width", width, _scaled(width, WIDTH_STEPS, lambda x: x >= word and x % word == 0),
                f"{node} width in bits, {word}-bit words (the spec: {width})", attrs, "width")

    if clock_node is not None:
        attrs = clock_node["attributes"]
        period = _num(attrs["global_cycle_seconds"])
        if period is None or not period > 0:
            raise ConfigError("global_cycle_seconds is not a positive number", file=origin["architecture"],
                              key=f"architecture.{clock_node.get('name')}.attributes.global_cycle_seconds",
                              got=attrs["global_cycle_seconds"])
        f0 = _as_choice(float(f"{1e-6 / period:.6g}"))
        choices = sorted({_as_choice(float(f"{f0 * c:.6g}")) for c in CLOCK_FACTORS})
        params["clock_mhz"] = {
            "doc": (f"clock frequency in MHz; sets global_cycle_seconds (the spec: {period:g} s). Not "
                    "searched: the energy tables have no voltage-frequency model, so a faster clock "
                    "would cost nothing and always win (hardware.fixed may pick another choice)"),
            "choices": choices, "default": f0, "search": False}
        slots[(str(clock_node.get("name")), "clock_mhz")] = "clock_mhz"
        # exactly the spec's period at the default: period * (f0 / f0) == period
        attrs["global_cycle_seconds"] = "${" + f"{period!r} * ({f0!r} / clock_mhz)" + "}"

    for text in overrides:
        target, values = parse_param_override(text)
        _override(arch, params, slots, target, values, origin["architecture"], levels)

    for pname in [p for p, d in params.items() if len(d["choices"]) < 2]:
        _drop(arch, params, slots, pname)

    if dataflows:
        _add_dataflows(arch, params, paths, list(dataflows), origin)

    if description is None:   # the spec's leading comment, if any
        head = []
        for line in read_text(paths[0], ConfigError).splitlines():
            if not line.startswith("#"):
                break
            head.append(line.lstrip("#").strip())
        description = " ".join(h for h in head if h)
    made = f"Generated by a3cs hw template from {', '.join(Path(p).name for p in paths)}."
    doc = {"template": {"name": name, "version": 1,
                        "description": f"{description} {made}".strip(),
                        "generated_from": [Path(p).name for p in paths], "rules": RULES},
           "parameters": params, "architecture": arch}
    doc.update(carried)
    if not params:
        raise ConfigError("the spec has no knob a template could vary", file=src,
                          expected="meshes > 1, storage depths > 1, a global_cycle_seconds or --param")
    return doc


def _find(arch: dict, node: str) -> dict | None:
    for _, body in _nodes(arch):
        if body.get("name") == node:
            return body
    return None


def _override(arch, params, slots, target, values, file, levels):
    if "." in target:
        node, attr = target.rsplit(".", 1)
    elif target in params:
        node, attr = next(((n, a) for (n, a), p in slots.items() if p == target), (None, None))
    else:
        raise ConfigError(f"no parameter '{target}'", key="--param",
                          expected="NODE.attr=... or one of " + ", ".join(params))
    pname = slots.get((node, attr))
    if pname is not None:
        p = params[pname]
        if p["default"] not in values:
            raise ConfigError(f"choices for {node}.{attr} leave out the spec's value {p['default']}",
                              key="--param", expected="a list holding the default (the template renders "
                                                      "back to the spec at its defaults)", got=values)
        p["choices"] = values
        return
    body = _find(arch, node)
    if body is None:
        raise ConfigError(f"no node '{node}' in the architecture", file=file, key="--param",
                          expected="one of " + ", ".join(b.get("name") for _, b in _nodes(arch) if b.get("name")))
    if attr in ("meshX", "meshY"):
        where = body.setdefault("spatial", {})
        value = _num(where.get(attr, 1))
    elif attr == "clock_mhz":
        raise ConfigError(f"node '{node}' sets no global_cycle_seconds", file=file, key="--param",
                          expected="clock_mhz=... or the node holding global_cycle_seconds")
    else:
        where = body.get("attributes")
        value = _num(where.get(attr)) if isinstance(where, dict) else None
        if value is None:
            have = [k for k, v in (where or {}).items() if _num(v) is not None]
            raise ConfigError(f"node '{node}' has no numeric attribute '{attr}'", file=file, key="--param",
                              expected="meshX, meshY or one of " + (", ".join(have) or "(none)"))
    value = _as_choice(value)
    if value not in values:
        raise ConfigError(f"choices for {node}.{attr} leave out the spec's value {value}", key="--param",
                          expected="a list holding the spec's value (the default)", got=values)
    pname = _ident(f"{node}_{attr}")
    while pname in params:
        pname += "_"
    params[pname] = {"doc": f"{node} {attr} (the spec: {value}; set by --param)", "choices": values,
                     "default": value}
    slots[(node, attr)] = pname
    where[attr] = "${" + pname + "}"


def _drop(arch, params, slots, pname):
    """Remove a parameter with one choice: its placeholder becomes the literal value again."""
    value = params.pop(pname)["default"]
    node, attr = next((k for k, p in slots.items() if p == pname))
    del slots[(node, attr)]
    body = _find(arch, node)
    if attr == "clock_mhz":
        body["attributes"]["global_cycle_seconds"] = float(
            body["attributes"]["global_cycle_seconds"][2:-1].split(" * ")[0])
    elif attr in ("meshX", "meshY"):
        body["spatial"][attr] = value
    else:
        body["attributes"][attr] = value


def _node_constraints(arch: dict) -> dict:
    return {b["name"]: copy.deepcopy(b.get("constraints")) for _, b in _nodes(arch) if b.get("name") is not None}


def _add_dataflows(arch, params, paths, dataflows, origin):
    """A ``dataflow`` parameter: the spec's constraints plus the named alternatives."""
    if any(origin.get(k) for k in ("constraints", "architecture_constraints", "mapspace_constraints")):
        raise ConfigError("--dataflow needs the spec's constraints inside its nodes (v0.4 style)",
                          file=origin.get("constraints") or origin.get("architecture_constraints")
                          or origin.get("mapspace_constraints"), key="--dataflow",
                          expected="no top-level constraints section")
    own = _node_constraints(arch)
    spec_files = {Path(p).resolve() for p in paths}
    own_name = None
    sets: dict[str, dict] = {}
    for dname, files in dataflows:
        files = [str(f) for f in files]
        if not re.match(r"^[A-Za-z_][\w-]*$", dname):
            raise ConfigError(f"dataflow name {dname!r}", key="--dataflow",
                              expected="NAME=SPEC.yaml with NAME a word (letters, digits, _ -)")
        if dname in sets:
            raise ConfigError(f"dataflow '{dname}' named twice", key="--dataflow", expected="distinct names")
        if {Path(f).resolve() for f in files} <= spec_files:
            own_name = dname
            sets[dname] = own
            continue
        other, o_origin = _merge(files)
        oarch = other.get("architecture")
        if not isinstance(oarch, dict) or not isinstance(oarch.get("nodes"), list):
            raise ConfigError("no v0.4 architecture", file=",".join(files), key="--dataflow",
                              expected="a spec whose nodes carry the constraints of this dataflow")
        cons = _node_constraints(oarch)
        unknown = sorted(n for n, c in cons.items() if c and n not in own)
        if unknown:
            raise ConfigError(f"dataflow '{dname}' constrains node '{unknown[0]}', which the spec lacks",
                              file=",".join(files), key="--dataflow",
                              expected="node names of " + ", ".join(Path(p).name for p in paths))
        sets[dname] = {n: c for n, c in cons.items() if n in own}
    if own_name is None:
        own_name = "spec"
        if own_name in sets:
            raise ConfigError("dataflow name 'spec' is taken by the spec's own constraints", key="--dataflow",
                              expected="another name")
        sets = {own_name: own, **sets}
    else:
        sets = {own_name: sets.pop(own_name), **sets}
    # nodes whose constraints differ between the sets; the others keep theirs inline
    touched = [n for n in own if len({repr(s.get(n) or {}) for s in sets.values()}) > 1]
    csets = {d: {n: (copy.deepcopy(s.get(n)) or {}) for n in touched} for d, s in sets.items()}
    for _, body in _nodes(arch):
        if body.get("name") in touched:
            body.pop("constraints", None)
    params["dataflow"] = {
        "doc": ("constraints of each node (the spec's own set is the default: "
                + ", ".join(f"{d}" for d in csets) + ")"),
        "choices": list(csets), "default": own_name, "constraint_sets": csets}


def template_yaml(doc: dict, command: str) -> str:
    """The template document as YAML with a header saying how it was made and what it holds."""
    params = doc["parameters"]
    lines = [f"# Design-space template generated by `{command}`.",
             "# Parameters (categorical choices; the default is the spec's own value, so the template at",
             "# its defaults renders back to the spec):"]
    for n, p in params.items():
        extra = "" if p.get("search", True) else "  (not searched)"
        lines.append(f"#   {n}: {p['choices']}  default {p['default']}{extra}")
    lines += ["# Rules: " + RULES + ".",
              "# \"${expr}\" strings are placeholders over the parameter names (see eyeriss_like.yaml).", ""]
    return "\n".join(lines) + dump_yaml(doc)
