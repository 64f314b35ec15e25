"""Built-in per-action energy and area for Accelergy component classes.

The numbers come from ``tables/builtin_tables.json``, generated once with hwcomponents
(``tools/gen_energy_tables.py``); this module only reads and interpolates them. Between grid
points (depth, width, banks, bit width, technology node) values are interpolated linearly in
log(axis) / log(value) space; beyond the grid the edge segment is extended (a power law).

Class semantics follow the compound components of the Timeloop/Accelergy exercises
(``designs/_components``): ``smartbuffer_SRAM`` = SRAM + an address-generator adder per access,
``smartbuffer_RF`` = regfile of at least 64 x 32 bits scaled down (dynamic energy by
``widthscale * depthscale**0.78``) + an adder, ``update`` = ``write``, ``intmac`` = adder +
multiplier, ``DRAM`` = energy per bit x ``width``.
"""
from __future__ import annotations

import bisect
import functools
import json
import math
import re
from pathlib import Path
from typing import Any, Iterable, Mapping, NamedTuple, Sequence

from a3cs_plugin.errors import A3CSError, SpecError
from a3cs_plugin.hardware.spec.energy import EnergyTable, parse_art, parse_ert
from a3cs_plugin.hardware.spec.spec import Spec

TABLES_PATH = Path(__file__).resolve().parent / "tables" / "builtin_tables.json"

#: Accelergy class name (lower case) -> canonical built-in class.
CLASS_ALIASES = {
    "sram": "SRAM",
    "smartbuffer_sram": "smartbuffer_SRAM",
    "smart_buffer_sram": "smartbuffer_SRAM",
    "regfile": "regfile",
    "smartbuffer_rf": "smartbuffer_RF",
    "smart_buffer_rf": "smartbuffer_RF",
    "dram": "DRAM",
    "intmac": "intmac",
    "aladdin_intmac": "intmac",
    "fpmac": "fpmac",
    "intadder": "intadder",
    "adder": "intadder",
    "aladdin_adder": "intadder",
    "intmultiplier": "intmultiplier",
    "aladdin_register": "register",
    "register": "register",
    "multiplier": "intmultiplier",
    "aladdin_multiplier": "intmultiplier",
}
#: Timeloop's zero-cost placeholder levels (e.g. spatial-only ``dummy_storage`` in Eyeriss).
ZERO_COST_CLASSES = ("dummy_storage", "dummy_compute")
for _t in ZERO_COST_CLASSES:
    CLASS_ALIASES[_t] = _t
for _t in ("LPDDR4", "LPDDR", "DDR3", "DDR4", "HBM2", "GDDR5"):
    CLASS_ALIASES[_t.lower()] = "DRAM"

KNOWN_CLASSES = tuple(sorted(set(CLASS_ALIASES.values()), key=str.lower))


def known_classes() -> list[str]:
    """Canonical class names the built-in tables cover (aliases in :data:`CLASS_ALIASES`)."""
    return list(KNOWN_CLASSES)


@functools.lru_cache(maxsize=1)
def load_tables() -> dict:
    """The parsed ``builtin_tables.json`` (cached)."""
    try:
        with open(TABLES_PATH) as f:
            return json.load(f)
    except FileNotFoundError:
        raise A3CSError("built-in energy tables missing; regenerate with tools/gen_energy_tables.py",
                        file=str(TABLES_PATH)) from None
    except json.JSONDecodeError as e:
        raise A3CSError(f"built-in energy tables unreadable ({e.msg} at line {e.lineno})",
                        file=str(TABLES_PATH)) from None


# ----------------------------------------------------------------------------- interpolation
def _seg(axis: Sequence[float], x: float) -> tuple[int, float]:
    """Index i and fraction t (in log space, may be <0 or >1 beyond the grid) of x on axis."""
    if len(axis) == 1:
        return 0, 0.0
    lx = math.log(x)
    i = bisect.bisect_right(axis, x) - 1
    i = min(max(i, 0), len(axis) - 2)
    la, lb = math.log(axis[i]), math.log(axis[i + 1])
    return i, (lx - la) / (lb - la)


def _interp(values: Any, axes: Sequence[Sequence[float]], point: Sequence[float]) -> float:
    """Multilinear interpolation of a nested-list grid, log-log where all corners are > 0."""
    segs = [_seg(ax, x) for ax, x in zip(axes, point)]
    corners: list[tuple[float, float]] = [(1.0, values)]  # (weight, sub-grid)
    for (i, t), ax in zip(segs, axes):
        nxt = []
        for w, sub in corners:
            if len(ax) == 1:
                nxt.append((w, sub[0]))
            else:
                nxt.append((w * (1.0 - t), sub[i]))
                nxt.append((w * t, sub[i + 1]))
        corners = nxt
    vals = [float(v) for _, v in corners]
    if all(v > 0 for v in vals):
        return math.exp(sum(w * math.log(v) for (w, _), v in zip(corners, vals)))
    return max(0.0, sum(w * v for (w, _), v in zip(corners, vals)))


# ----------------------------------------------------------------------------- attributes
_TECH_RE = re.compile(r"^\s*([0-9.eE+-]+)\s*(nm|um|m)?\s*$")


def parse_technology(value: Any, where: str) -> float:
    """Technology node in nm from ``"45nm"``, ``"0.045um"``, ``45`` or ``45e-9``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        v = float(value)
        return round(v * 1e9, 6) if v < 1e-3 else v
    m = _TECH_RE.match(str(value)) if value is not None else None
    if not m:
        raise SpecError(f"{where}: cannot read technology", key="technology",
                        expected="e.g. '45nm'", got=value)
    v, unit = float(m.group(1)), m.group(2)
    if unit == "m" or (unit is None and v < 1e-3):
        return round(v * 1e9, 6)
    return round(v * 1e3, 6) if unit == "um" else v


def _num(attrs: Mapping[str, Any], keys: Iterable[str], where: str, default: float | None = None,
         required: bool = True) -> float | None:
    for k in keys:
        if k in attrs and attrs[k] is not None:
            v = attrs[k]
            try:
                f = float(v)
            except (TypeError, ValueError):
                raise SpecError(f"{where}: attribute is not a number", key=k,
                                expected="a positive number", got=v) from None
            if not f > 0:
                raise SpecError(f"{where}: attribute must be positive", key=k,
                                expected="a positive number", got=v)
            return f
    if default is not None or not required:
        return default
    keys = list(keys)
    raise SpecError(f"{where}: missing attribute", key=keys[0],
                    expected="one of " + ", ".join(keys))


class _Tech:
    """Look-ups at one technology node, interpolated between the tabulated nodes."""

    def __init__(self, tables: dict, tech_nm: float, where: str):
        nodes = sorted(float(k[:-2]) for k in tables["tech"])
        if not nodes[0] * 0.999 <= tech_nm <= nodes[-1] * 1.001:
            raise SpecError(f"{where}: technology {tech_nm:g}nm outside the built-in tables",
                            key="technology", expected=f"{nodes[0]:g}nm..{nodes[-1]:g}nm")
        self.tables = tables
        i = min(max(bisect.bisect_right(nodes, tech_nm) - 1, 0), max(len(nodes) - 2, 0))
        if len(nodes) == 1 or abs(tech_nm - nodes[i]) < 1e-9:
            self.parts = [(1.0, tables["tech"][f"{nodes[i]:g}nm"])]
        elif abs(tech_nm - nodes[i + 1]) < 1e-9:
            self.parts = [(1.0, tables["tech"][f"{nodes[i + 1]:g}nm"])]
        else:
            t = (math.log(tech_nm) - math.log(nodes[i])) / (math.log(nodes[i + 1]) - math.log(nodes[i]))
            self.parts = [(1.0 - t, tables["tech"][f"{nodes[i]:g}nm"]),
                          (t, tables["tech"][f"{nodes[i + 1]:g}nm"])]

    def grid(self, cls: str, key: str, point: Sequence[float]) -> float:
        vals = []
        for w, tab in self.parts:
            g = tab[cls]
            axes = [g[a] for a in g["axes"]]
            vals.append((w, _interp(g[key], axes, point)))
        if all(v > 0 for _, v in vals):
            return math.exp(sum(w * math.log(v) for w, v in vals))
        return sum(w * v for w, v in vals)

    def scalar(self, cls: str, key: str) -> float:
        vals = [(w, float(tab[cls][key])) for w, tab in self.parts]
        if all(v > 0 for _, v in vals):
            return math.exp(sum(w * math.log(v) for w, v in vals))
        return sum(w * v for w, v in vals)

    def by_width(self, cls: str, key: str, width: float) -> float:
        vals = []
        for w, tab in self.parts:
            g = tab[cls]
            vals.append((w, _interp(g[key], [g["width"]], [width])))
        if all(v > 0 for _, v in vals):
            return math.exp(sum(w * math.log(v) for w, v in vals))
        return sum(w * v for w, v in vals)


# ----------------------------------------------------------------------------- classes
def _adder(tech: _Tech, bits: float) -> tuple[float, float, float]:
    return (tech.by_width("intadder", "add", bits), tech.by_width("intadder", "leak", bits),
            tech.by_width("intadder", "area", bits))


def _addr_bits(depth: float) -> int:
    return max(1, math.ceil(math.log2(depth))) if depth >= 1 else 1


def _memory(read: float, write: float, leak: float, area: float) -> tuple[dict, float]:
    return {"read": read, "write": write, "update": write, "leak": leak, "idle": leak}, area


def _depth(attrs, where, width: float) -> float:
    """``depth``, else Timeloop's ``size`` (words of ``datawidth`` bits) converted to entries."""
    depth = _num(attrs, ("depth", "memory_depth"), where, required=False)
    if depth is None:
        size = _num(attrs, ("size",), where, required=False)
        if size is None:
            raise SpecError(f"{where}: missing attribute", key="depth",
                            expected="depth (entries) or size (words)")
        depth = size * _num(attrs, ("datawidth", "word_bits"), where, default=width) / width
    return depth


def _sram(tech, attrs, where, smart: bool):
    width = _num(attrs, ("width", "memory_width"), where)
    depth = _depth(attrs, where, width)
    # timeloopfe (v0.4) gives every storage n_banks: 2 unless set; the smartbuffer compound
    # passes no n_banks to its SRAM, i.e. CACTI's single bank.
    banks = 1.0 if smart else _num(attrs, ("n_banks",), where, default=2.0)
    p = (depth, width, banks)
    r, w = tech.grid("SRAM", "read", p), tech.grid("SRAM", "write", p)
    lk, ar = tech.grid("SRAM", "leak", p), tech.grid("SRAM", "area", p)
    if smart:
        a_e, a_l, a_a = _adder(tech, _addr_bits(depth))
        r, w, lk, ar = r + a_e, w + a_e, lk + 2 * a_l, ar + 2 * a_a
    return _memory(r, w, lk, ar)


def _regfile(tech, attrs, where):
    width = _num(attrs, ("width", "memory_width", "datawidth"), where)
    depth = _depth(attrs, where, width)
    p = (depth, width)
    return _memory(*(tech.grid("regfile", k, p) for k in ("read", "write", "leak", "area")))


def _smartbuffer_rf(tech, attrs, where):
    width = _num(attrs, ("width", "memory_width"), where)
    depth = _depth(attrs, where, width)
    mem_w, mem_d = max(32.0, width), max(64.0, depth)
    wscale, dscale = width / mem_w, depth / mem_d
    dyn, stat = wscale * dscale ** (1.56 / 2), wscale * dscale
    p = (mem_d, mem_w)
    r, w, lk, ar = (tech.grid("regfile", k, p) for k in ("read", "write", "leak", "area"))
    a_e, a_l, a_a = _adder(tech, _addr_bits(depth))
    return _memory(r * dyn + a_e, w * dyn + a_e, lk * stat + 2 * a_l, ar * stat + 2 * a_a)


def _mac(tech, attrs, where, cls: str, default_width: float):
    width = _num(attrs, ("multiplier_width", "width", "datawidth"), where, default=default_width)
    e = tech.by_width(cls, "compute", width)
    lk = tech.by_width(cls, "leak", width)
    ar = tech.by_width(cls, "area", width)
    return {"compute": e, "mac_random": e, "mac_reused": e, "mac_gated": lk, "idle": lk,
            "leak": lk}, ar


def _dram(tables, attrs, where, cls_name: str):
    dtype = attrs.get("type")
    if dtype is None and cls_name.upper() in tables["dram_pj_per_bit"]:
        dtype = cls_name.upper()
    dtype = str(dtype or tables["dram_default_type"]).upper()
    if dtype not in tables["dram_pj_per_bit"]:
        raise SpecError(f"{where}: unknown DRAM type", key="type",
                        expected="one of " + ", ".join(sorted(tables["dram_pj_per_bit"])), got=dtype)
    width = _num(attrs, ("width",), where, required=False)
    if width is None:
        bs = _num(attrs, ("block_size", "block-size"), where, required=False)
        dw = _num(attrs, ("datawidth", "word_bits", "word-bits"), where, required=False)
        if bs is None or dw is None:
            raise SpecError(f"{where}: missing attribute", key="width",
                            expected="DRAM access width in bits (or block_size and datawidth)")
        width = bs * dw
    e = tables["dram_pj_per_bit"][dtype] * width
    return {"read": e, "write": e, "update": e, "leak": 0.0, "idle": 0.0}, 0.0


def component_actions(name: str, cls: str, attributes: Mapping[str, Any] | None) -> tuple[dict, float]:
    """Per-action energy (pJ) and area (um^2) of one component.

    ``attributes`` needs ``technology`` and, by class: ``depth``/``width`` (memories;
    ``memory_depth``/``memory_width`` accepted), ``n_banks`` (SRAM, default 2), ``width``/``type``
    (DRAM; ``type`` defaults to LPDDR4), ``multiplier_width``/``width``/``datawidth`` (MACs,
    default 8 for intmac, 32 for fpmac), ``global_cycle_seconds`` (leak per cycle; default 1e-9).
    Unknown class -> :class:`SpecError` naming the component and listing the known classes.
    """
    attrs = dict(attributes or {})
    where = f"component '{name}'"
    canon = CLASS_ALIASES.get(str(cls).lower()) if cls is not None else None
    if canon is None and str(cls).lower() in _GENERIC:
        raise SpecError(f"{where}: generic class '{cls}' has no energy model; pass its Accelergy "
                        "class (Timeloop v0.4 'subclass')", key="subclass",
                        expected="one of " + ", ".join(KNOWN_CLASSES))
    if canon is None:
        raise SpecError(f"{where}: no built-in energy model for class '{cls}' (give an Accelergy ERT)",
                        key="class", expected="one of " + ", ".join(KNOWN_CLASSES))
    tables = load_tables()
    if canon in ZERO_COST_CLASSES:
        if canon == "dummy_compute":
            return {"compute": 0.0, "leak": 0.0}, 0.0
        return {"read": 0.0, "write": 0.0, "update": 0.0, "leak": 0.0}, 0.0
    if canon == "DRAM":
        return _dram(tables, attrs, where, str(cls))
    if attrs.get("technology") is None:
        raise SpecError(f"{where}: missing attribute", key="technology", expected="e.g. '45nm'")
    tech = _Tech(tables, parse_technology(attrs["technology"], where), where)
    if canon in ("SRAM", "smartbuffer_SRAM"):
        actions, area = _sram(tech, attrs, where, smart=canon == "smartbuffer_SRAM")
    elif canon == "regfile":
        actions, area = _regfile(tech, attrs, where)
    elif canon == "smartbuffer_RF":
        actions, area = _smartbuffer_rf(tech, attrs, where)
    elif canon == "intmac":
        actions, area = _mac(tech, attrs, where, "intmac", 8.0)
    elif canon == "fpmac":
        actions, area = _mac(tech, attrs, where, "fpmac", 32.0)
    elif canon == "register":  # Aladdin register: width x 1-bit cells, depth (if given) words
        width = _num(attrs, ("width", "datawidth"), where)
        bits = width * _num(attrs, ("depth",), where, default=1.0)
        actions, area = _memory(*(tech.scalar("register", k) * f for k, f in
                                  (("read", width), ("write", width), ("leak", bits),
                                   ("area", bits))))
    elif canon == "intadder":
        width = _num(attrs, ("width", "n_bits", "precision", "datawidth"), where)
        e, lk, area = _adder(tech, width)
        actions = {"add": e, "read": e, "compute": e, "leak": lk, "idle": lk}
    else:  # intmultiplier
        width = _num(attrs, ("width", "width_a", "datawidth"), where)
        e = tech.by_width("intmultiplier", "multiply", width)
        lk = tech.by_width("intmultiplier", "leak", width)
        area = tech.by_width("intmultiplier", "area", width)
        actions = {"multiply": e, "read": e, "compute": e, "leak": lk, "idle": lk}
    cycle = _num(attrs, ("global_cycle_seconds", "cycle_seconds"), where, default=1e-9)
    scale = cycle / 1e-9
    for k in ("leak", "idle", "mac_gated"):
        if k in actions:
            actions[k] *= scale
    return actions, area


# ----------------------------------------------------------------------------- ERT / ART
def _round(x: float) -> float:
    return float(f"{x:.8g}")


class Component(NamedTuple):
    """One component as the built-in tables cost it: the ERT/ART table name (Accelergy style,
    e.g. ``system.PE[0..15].RegisterFile``), its Accelergy class and its attributes."""

    name: str
    cls: str
    attributes: Mapping[str, Any]


def builtin_ert_for_components(components: Iterable[tuple[str, str, Mapping[str, Any]]]) -> tuple[dict, dict]:
    """ERT and ART dicts (same structure as parsed Accelergy ``*.ERT.yaml`` / ``*.ART.yaml``).

    ``components``: ``(name, class, attributes)`` triples (:class:`Component` or plain tuples).
    Table names are the component names as given (Accelergy style, e.g.
    ``system_top_level.shared_glb[1..1]``).
    """
    ert_tables, art_tables = [], []
    for comp in components:
        if not isinstance(comp, tuple) or len(comp) != 3:
            raise SpecError("architecture component is not a (name, class, attributes) triple",
                            key="name", expected="(name, class, attributes)", got=comp)
        name, cls, attrs = comp
        actions, area = component_actions(str(name), cls, dict(attrs or {}))
        ert_tables.append({"name": str(name), "actions": [
            {"name": a, "arguments": {}, "energy": _round(e)} for a, e in actions.items()]})
        art_tables.append({"name": str(name), "area": _round(area)})
    return ({"ERT": {"version": "0.4", "tables": ert_tables}},
            {"ART": {"version": "0.4", "tables": art_tables}})


#: Timeloop v0.4 generic classes whose Accelergy class is in ``subclass``.
_GENERIC = ("storage", "compute")


def flattened_components(flat: Mapping[str, Any], file: str = "<flattened architecture>") -> list[Component]:
    """The components of an Accelergy *flattened architecture* (the ``architecture.local`` list of
    ``timeloop-mapper.flattened_architecture.yaml``), each entry ``{name, class, attributes}``;
    a Timeloop v0.4 generic class (``storage`` / ``compute``) is replaced by its ``subclass``."""
    local = flat.get("architecture", {}).get("local") if isinstance(flat, Mapping) else None
    if not isinstance(local, list):
        raise SpecError("not a flattened architecture", file=file, key="architecture.local",
                        expected="a list of {name, class, attributes}")
    out = []
    for i, comp in enumerate(local):
        if not isinstance(comp, Mapping) or comp.get("name") is None:
            raise SpecError("architecture component without a name", file=file,
                            key=f"architecture.local[{i}].name", expected="{name, class, attributes}")
        cls = comp.get("class")
        if comp.get("subclass") and str(cls).lower() in _GENERIC:
            cls = comp["subclass"]
        out.append(Component(str(comp["name"]), cls, dict(comp.get("attributes") or {})))
    return out


def builtin_table(spec: Spec) -> EnergyTable:
    """The built-in energies / areas of every component of ``spec`` (via
    :meth:`~a3cs_plugin.hardware.spec.Spec.ert_components`), keyed by the bare component name as a
    parsed ERT / ART is; ``source`` is the tables' file name."""
    ert, art = builtin_ert_for_components(spec.ert_components())
    return EnergyTable(energy=parse_ert(ert, "builtin"), area=parse_art(art, "builtin"),
                       source=TABLES_PATH.name)


def builtin_ert(spec: Spec) -> tuple[dict, dict]:
    """Built-in ``(ert, art)`` for every component of a loaded :class:`~a3cs_plugin.hardware.spec.Spec`
    (table names ``<level>[1..<instances>]``, from ``spec.ert_components()``).  For other inputs
    use :func:`builtin_ert_for_components` (``(name, class, attributes)`` triples) or
    :func:`flattened_components` (an Accelergy flattened architecture)."""
    if not isinstance(spec, Spec):
        raise TypeError(f"builtin_ert takes a loaded Spec, not {type(spec).__name__}; "
                        "see builtin_ert_for_components / flattened_components")
    return builtin_ert_for_components(spec.ert_components())
