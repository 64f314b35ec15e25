"""Write Timeloop's processed input (what its v0.4 front-end hands to the binaries) from a Spec.

``timeloop-model`` / ``timeloop-mapper`` do not read v0.4 ``nodes`` trees; the Python front-end
flattens them first.  :func:`processed_input` does the same from our parsed :class:`Spec`:

* ``architecture``: one ``subtree`` entry ``<top>_top_level`` whose ``local`` list holds every
  level outermost first, named ``name[1..instances]``, with its attributes (inherited ones
  included), ``meshX`` / ``meshY`` of its instances, and the compute unit last; spatial containers
  become ``dummy_storage`` levels ``inter_<name>_spatial`` as in the front-end;
* ``architecture_constraints.targets``: every constraint of the spec (per-node ones included, with
  the front-end's spatial permutation rewrite, see :mod:`a3cs_plugin.hardware.spec.frontend`), a
  ``!Parallel`` branch's implied bypasses, and a dummy level's full bypass, factors written
  ``D=n,...`` and permutations as strings;
* ``problem`` (shape and instance), ``mapping`` (a fully resolved Timeloop mapping list, when the
  spec or the caller gives one), ``mapper`` (the spec's settings) and ``mapspace: {template: uber}``.

:func:`normalize` reduces a processed input (ours or the one Timeloop dumped) to a form where two
descriptions of the same run compare equal: ordering, default values the front-end fills in and
number formatting do not matter.
"""
from __future__ import annotations

import re
from typing import Any

# attributes the front-end fills in with these values when a component does not set them
ATTRIBUTE_DEFAULTS = {
    "has_power_gating": False, "power_gated_at": None, "n_banks": 2, "cluster_size": 1,
    "reduction_supported": True, "multiple_buffering": 1, "min_utilization": 0,
    "allow_overbooking": False, "meshX": 1, "meshY": 1, "version": "0.4",
}
# attributes that do not change what Timeloop computes once ERT/ART are given
IGNORED_ATTRIBUTES = {"technology", "global_cycle_seconds", "version", "has_power_gating",
                      "power_gated_at"}


def _dim_string(names) -> str:
    names = list(names)
    return "".join(names) if all(len(n) == 1 for n in names) else " ".join(names)


def _factor_string(value) -> str | None:
    if value is None:
        return None
    items = value if isinstance(value, (list, tuple)) else re.split(r"[\s,]+", str(value).strip())
    return ",".join(re.sub(r"\s+", "", str(i)) for i in items if str(i).strip())


def _perm_string(value, dims) -> str | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return _dim_string(str(v) for v in value)
    return str(value).strip()


def _constraint(c: dict, dims) -> dict:
    out = {"target": c.get("target"), "type": c.get("type")}
    typ = str(c.get("type"))
    if typ in ("dataspace", "datatype", "bypass", "bypassing"):
        out["type"] = "bypass"
        for k in ("keep", "bypass"):
            if c.get(k) is not None:
                v = c[k]
                out[k] = [v] if isinstance(v, str) else list(v)
        return out
    for k, v in c.items():
        if k in ("target", "type"):
            continue
        if k == "factors":
            out[k] = _factor_string(v)
        elif k == "permutation":
            out[k] = _perm_string(v, dims)
        else:
            out[k] = v
    return out


def _level_entry(lv) -> dict:
    attrs = dict(lv.attributes)
    if lv.is_dummy:
        attrs = {"width": 1, "depth": 1, "datawidth": 1}
    attrs["meshX"], attrs["meshY"] = int(lv.meshX), int(lv.meshY)
    entry = {"name": f"{lv.name}[1..{lv.instances}]", "class": "dummy_storage" if lv.is_dummy else lv.cls,
             "attributes": attrs}
    if lv.subclass:
        entry["subclass"] = lv.subclass
    return entry


def processed_input(spec, mapping=None, *, with_mapper: bool = True, with_mapping: bool = True) -> dict:
    """Timeloop's processed input for ``spec`` (``mapping``: a model Mapping; default the spec's)."""
    from a3cs_plugin.hardware.spec.mapping import dump_mapping
    arch, prob = spec.arch, spec.problem
    dims, dsn = list(prob.dimensions), list(prob.ds_names)
    local = [_level_entry(lv) for lv in reversed(arch.levels)] + [_level_entry(arch.compute)]
    top = str(arch.name or "system")
    if not top.endswith("_top_level"):
        top = f"{top}_top_level"
    out: dict[str, Any] = {
        "architecture": {"version": "0.4", "subtree": [
            {"name": top, "attributes": dict(arch.attributes), "local": local}]},
    }
    targets = [_constraint(c, dims) for c in spec.constraints]
    have_bypass = {t["target"] for t in targets if t["type"] == "bypass"}
    for lv in arch.levels:
        implied = sorted(lv.branch_bypass(dsn)) if lv.parallel_group is not None else []
        if lv.is_dummy and lv.name not in have_bypass:
            targets.append({"target": lv.name, "type": "bypass", "bypass": list(dsn)})
        if lv.is_dummy:   # the front-end gives a container's dummy level no temporal loops
            targets.append({"target": lv.name, "type": "temporal",
                            "factors": ",".join(f"{d}=1" for d in dims), "permutation": _dim_string(dims)})
        elif implied:
            for t in targets:
                if t["target"] == lv.name and t["type"] == "bypass":
                    t["bypass"] = sorted(set(t.get("bypass", [])) | set(implied))
                    break
            else:
                targets.append({"target": lv.name, "type": "bypass", "bypass": implied})
    out["architecture_constraints"] = {"targets": targets}
    out["problem"] = prob.to_dict()
    m = spec.mapping if mapping is None else mapping
    if m is not None and with_mapping:
        out["mapping"] = dump_mapping(spec, m)
    if with_mapper:
        out["mapper"] = dict(spec.mapper or {})
        out["mapspace"] = {"version": "0.4", "template": "uber"}
    return out


# ----------------------------------------------------------------------------------------------
# comparison up to ordering and defaults
# ----------------------------------------------------------------------------------------------
def _num(v):
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, (int, float)):
        return float(v)
    s = str(v).strip()
    try:
        return float(s)
    except ValueError:
        return s


def _split_range(name: str):
    m = re.fullmatch(r"(.+?)\[(\d+)\.\.(\d+)\]", str(name))
    return (m.group(1), int(m.group(3)) - int(m.group(2)) + 1) if m else (str(name), 1)


def _components(arch: dict) -> list:
    """Flattened components of a v0.3 ``subtree`` architecture, outermost first."""
    out = []

    def walk(tree, mult, inherited):
        name, count = _split_range(tree.get("name", ""))
        mult *= count
        attrs = {**inherited, **(tree.get("attributes") or {})}
        for loc in tree.get("local") or []:
            lname, lcount = _split_range(loc["name"])
            a = {**attrs, **(loc.get("attributes") or {})}
            out.append((lname, mult * lcount, str(loc.get("class")), a))
        for sub in tree.get("subtree") or []:
            walk(sub, mult, attrs)

    for t in arch.get("subtree") or []:
        walk(t, 1, {})
    return out


def _norm_attrs(attrs: dict, dummy: bool) -> dict:
    if dummy:
        return {}
    out = {}
    for k, v in attrs.items():
        if k in IGNORED_ATTRIBUTES:
            continue
        if k in ATTRIBUTE_DEFAULTS and _num(v) == _num(ATTRIBUTE_DEFAULTS[k]):
            continue
        out[k] = _num(v)
    return out


def _norm_dims(text, dims) -> tuple:
    if text is None:
        return ()
    if isinstance(text, (list, tuple)):
        return tuple(str(t) for t in text)
    s = str(text).strip()
    if any(c in s for c in " ,"):
        return tuple(t for t in re.split(r"[\s,]+", s) if t)
    return tuple(s)


def _norm_factors(value) -> tuple:
    if value is None:
        return ()
    items = value if isinstance(value, (list, tuple)) else re.split(r"[\s,]+", str(value).strip())
    out = []
    for it in items:
        it = re.sub(r"\s+", "", str(it))
        m = re.fullmatch(r"([A-Za-z_]\w*?)(<=|>=|=)?(\d+)", it)
        if m:
            out.append((m.group(1), m.group(2) or "=", int(m.group(3))))
    return tuple(sorted(out))


def _norm_constraints(targets, dims, sizes, dummies=()) -> set:
    """One frozen entry per (target, type, key) so that split-up or merged entries compare.
    A dummy level's bypass of everything and its unit temporal loops are defaults (dropped)."""
    out = set()
    unit = {}   # (target, type) -> dimensions fixed to 1 there (their loops order nothing)
    for t in targets or []:
        for name, op, n in _norm_factors(t.get("factors")):
            if op == "=" and n == 1:
                unit.setdefault((str(t.get("target")), str(t.get("type"))), set()).add(name)
    for t in targets or []:
        typ = str(t.get("type"))
        tgt = str(t.get("target"))
        if tgt in dummies and typ in ("dataspace", "datatype", "bypass", "bypassing", "temporal"):
            if typ != "temporal" and not t.get("keep"):
                continue
            if typ == "temporal" and all(n == 1 for _, op, n in _norm_factors(t.get("factors"))):
                continue
        if typ in ("dataspace", "datatype", "bypass", "bypassing"):
            for k in ("keep", "bypass"):
                for ds in t.get(k) or []:
                    out.add((tgt, "bypass", k, ds))
            continue
        for k, v in t.items():
            if k in ("target", "type"):
                continue
            if k == "factors":
                for name, op, n in _norm_factors(v):
                    # a factor the problem cannot take (unknown dimension, D=1 of a unit dim) is moot
                    if name not in dims or (op == "=" and n == 1 and int(sizes.get(name, 0)) == 1):
                        continue
                    out.add((tgt, typ, "factor", name, op, n))
            elif k == "permutation":
                # unit loops do not order anything: drop dimensions of problem size 1
                moot = unit.get((tgt, typ), set()) if typ == "temporal" else set()
                p = tuple(d for d in _norm_dims(v, dims)
                          if d in dims and int(sizes.get(d, 0)) != 1 and d not in moot)
                if p:
                    out.add((tgt, typ, "permutation", p))
                if typ == "spatial" and t.get("split") is not None:
                    full = [d for d in _norm_dims(v, dims)]
                    split = int(t["split"])
                    free = unit.get((tgt, typ), set())
                    out.add((tgt, typ, "axes", tuple((d, "X" if i < split else "Y")
                                                     for i, d in enumerate(full)
                                                     if d in dims and d not in free
                                                     and int(sizes.get(d, 0)) != 1)))
            else:
                out.add((tgt, typ, k, repr(_num(v) if not isinstance(v, (list, dict)) else v)))
    return out


def _norm_mapping(entries, dims, spaces, levels) -> dict:
    """Per level: kept data spaces, temporal factors / order of the loops that iterate, spatial
    factors / X part.  Missing entries take Timeloop's defaults (factor 1, keep all; dummy levels
    bypass all); spatial entries without a factor above 1 are dropped."""
    if not entries:
        return {}
    out = {}
    for name, dummy in levels:
        out[(name, "keep")] = () if dummy else tuple(sorted(spaces))
        out[(name, "temporal")] = {"factors": tuple((d, 1) for d in dims), "permutation": ()}
    for e in entries:
        typ = str(e.get("type"))
        tgt = str(e.get("target"))
        if typ in ("dataspace", "datatype", "bypass", "bypassing"):
            byp = set(e.get("bypass") or [])
            keep = set(e.get("keep") or [])
            base = set(out.get((tgt, "keep"), tuple(spaces)))
            out[(tgt, "keep")] = tuple(sorted((base | keep) - byp))
            continue
        facs = {n: v for n, _, v in _norm_factors(e.get("factors"))}
        facs = tuple(sorted((n, facs.get(n, 1)) for n in dims))
        big = {n for n, v in facs if v > 1}
        perm = tuple(d for d in _norm_dims(e.get("permutation"), dims) if d in big)
        val = {"factors": facs, "permutation": perm}
        if typ == "spatial":
            if not big:
                continue
            full = list(_norm_dims(e.get("permutation"), dims))
            split = int(e.get("split", len(full)))
            val["x"] = tuple(d for d in full[:split] if d in big)
        out[(tgt, typ)] = val
    return out


def normalize(processed: dict) -> dict:
    """A comparable digest of a processed input (see the module docstring)."""
    prob = processed.get("problem") or {}
    shape = prob.get("shape") or {}
    inst = prob.get("instance") or {}
    dims = [str(d) for d in shape.get("dimensions") or []]
    sizes = {str(k): v for k, v in inst.items() if k in dims}
    comps = []
    for name, count, cls, attrs in _components(processed.get("architecture") or {}):
        dummy = cls == "dummy_storage"
        comps.append((name, count, cls, tuple(sorted(_norm_attrs(attrs, dummy).items()))))
    spaces = []
    for ds in shape.get("data_spaces") or []:
        proj = ds.get("projection")
        spaces.append((ds["name"], repr(proj), bool(ds.get("read_write", ds.get("read-write", False)))))
    coefs = {str(c["name"]): c.get("default", 1) for c in shape.get("coefficients") or []}
    instance = {str(k): _num(v) for k, v in inst.items() if k != "densities"}
    for k, v in coefs.items():
        instance.setdefault(k, _num(v))
    cons = processed.get("architecture_constraints") or {}
    targets = cons.get("targets") if isinstance(cons, dict) else cons
    extra = processed.get("mapspace_constraints") or {}
    if isinstance(extra, dict):
        extra = extra.get("targets") or []
    return {
        "components": comps,
        "dimensions": dims,
        "data_spaces": spaces,
        "instance": instance,
        "constraints": _norm_constraints(list(targets or []) + list(extra or []), dims, sizes,
                                         {c[0] for c in comps if c[2] == "dummy_storage"}),
        "mapping": _norm_mapping(processed.get("mapping"), dims, [d[0] for d in spaces],
                                 [(c[0], c[2] == "dummy_storage") for c in comps[:-1]]),
    }


def differences(ours: dict, theirs: dict) -> list:
    """Human-readable differences between two processed inputs (empty when they agree)."""
    a, b = normalize(ours), normalize(theirs)
    out = []
    for key in ("components", "dimensions", "data_spaces", "instance"):
        if a[key] != b[key]:
            out.append(f"{key}: ours {a[key]} vs Timeloop {b[key]}")
    if a["constraints"] != b["constraints"]:
        out.append(f"constraints: only ours {sorted(a['constraints'] - b['constraints'])}; "
                   f"only Timeloop {sorted(b['constraints'] - a['constraints'])}")
    if b["mapping"] and a["mapping"] != b["mapping"]:
        keys = sorted(set(a["mapping"]) | set(b["mapping"]))
        diff = [(k, a["mapping"].get(k), b["mapping"].get(k)) for k in keys
                if a["mapping"].get(k) != b["mapping"].get(k)]
        out.append(f"mapping: {diff}")
    return out
