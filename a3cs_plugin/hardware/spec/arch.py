"""Architecture specs (Timeloop v0.4 ``nodes`` and v0.3 ``subtree``/``local``) -> flat levels."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from a3cs_plugin.errors import SpecError

NETWORK_CLASSES = ("XY_NoC", "Legacy", "ReductionTree", "SimpleMulticast")
_RANGE = re.compile(r"^(?P<base>.*?)\[(?P<lo>\d+)\.\.(?P<hi>\d+)\]$")

# attributes inherited from a Container (v0.4) or a subtree (v0.3) by the components inside it
_SAFE_FUNCS = {"max": max, "min": min, "ceil": math.ceil, "floor": math.floor, "log2": math.log2,
               "log": math.log, "sqrt": math.sqrt, "round": round, "int": int, "abs": abs}


def strip_range(name: str) -> tuple[str, int]:
    """``'PE[0..15]'`` -> ``('PE', 16)``; a name without a range counts as one instance."""
    m = _RANGE.match(str(name).strip())
    if not m:
        return str(name).strip(), 1
    return m.group("base"), int(m.group("hi")) - int(m.group("lo")) + 1


def resolve_value(value: Any, symbols: dict) -> Any:
    """Evaluate a string attribute such as ``"max(32, width)"`` against ``symbols`` when possible."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        pass
    if text in ("true", "True"):
        return True
    if text in ("false", "False"):
        return False
    try:
        return eval(text, {"__builtins__": {}}, {**_SAFE_FUNCS, **symbols})  # noqa: S307
    except Exception:  # not an expression: a plain string (technology names etc.)
        return value


@dataclass
class Level:
    """One flattened architecture level (storage or compute)."""

    name: str
    cls: str
    attributes: dict = field(default_factory=dict)
    instances: int = 1
    meshX: int = 1
    meshY: int = 1
    is_compute: bool = False
    is_dummy: bool = False
    constraints: list = field(default_factory=list)
    # spatial fan-out from this level to the one below (set by Architecture)
    fanout_x: int = 1
    fanout_y: int = 1
    # Timeloop v0.4 ``subclass``: the Accelergy class behind a generic ``storage``/``compute`` class
    subclass: str | None = None
    # v0.4 ``!Parallel`` membership (None outside one).  A Parallel's branches are flattened into
    # consecutive levels, as Timeloop's front end does; ``parallel_group`` / ``parallel_branch``
    # name the first component of the (innermost) Parallel / of this level's branch.
    parallel_group: str | None = None
    parallel_branch: str | None = None
    # data spaces this level's branch keeps (intersected over nested Parallels); Timeloop's rule:
    # a component in a branch bypasses every data space its branch does not keep
    branch_keep: frozenset | None = None
    # data spaces kept by any branch of the group (``!Nothing`` branches included)
    group_keep: frozenset | None = None

    def branch_bypass(self, data_spaces) -> set:
        """Data spaces of ``data_spaces`` this level bypasses because of its ``!Parallel`` branch."""
        if self.branch_keep is None:
            return set()
        return {d for d in data_spaces if d not in self.branch_keep}

    @property
    def energy_class(self) -> str:
        """The class energy/area tables are looked up by (``subclass`` where given)."""
        return self.subclass or self.cls

    def _attr(self, *names, default=None):
        for n in names:
            if n in self.attributes and self.attributes[n] is not None:
                return self.attributes[n]
        return default

    @property
    def word_bits(self) -> int:
        return int(self._attr("datawidth", "word-bits", "word_bits", default=16))

    @property
    def width_bits(self) -> int | None:
        w = self._attr("width", "memory_width")
        return None if w is None else int(w)

    @property
    def cluster_size(self) -> int:
        """Instances that share one vector access (Timeloop's ``cluster_size`` rule)."""
        c = self._attr("cluster_size", "cluster-size")
        b = self._attr("block_size", "block-size", "n_words")
        w = self.width_bits
        if c is not None:
            return max(1, int(c))
        if b is not None and w is not None:
            return max(1, w // (self.word_bits * int(b)))
        return 1

    @property
    def block_size(self) -> int:
        """Words per vector access: ``block_size``, else width / (cluster_size * datawidth)."""
        b = self._attr("block_size", "block-size", "n_words")
        if b is not None:
            return max(1, int(b))
        w = self.width_bits
        if w is None:
            return 1
        c = self._attr("cluster_size", "cluster-size")
        c = 1 if c is None else max(1, int(c))
        return max(1, w // c // max(1, self.word_bits))

    @property
    def is_dram(self) -> bool:
        tech = str(self._attr("technology", default=""))
        return "DRAM" in self.cls.upper() or tech.upper() == "DRAM"

    @property
    def size(self) -> float | None:
        """Capacity in words per instance (None = unbounded, e.g. DRAM without depth)."""
        s = self._attr("size", "entries")
        if s is not None:
            return float(s)
        depth = self._attr("depth", "memory_depth")
        if depth is not None:
            return float(depth) * self.block_size
        kb = self._attr("sizeKB")
        if kb is not None:
            return float(kb) * 1024 * 8 / self.word_bits
        return None

    @property
    def effective_size(self) -> float | None:
        s = self.size
        if s is None:
            return None
        mb = float(self._attr("multiple_buffering", "multiple-buffering", default=1) or 1)
        return s / mb

    @property
    def min_utilization(self) -> float:
        """Timeloop's ``min_utilization``: the kept tiles must fill at least this fraction of the
        effective capacity (0 = no bound; only checked where the size is given)."""
        return float(self._attr("min_utilization", "min-utilization", default=0.0) or 0.0)

    @property
    def read_bandwidth(self) -> float | None:
        v = self._attr("read_bandwidth", "read-bandwidth")
        return None if v is None else float(v)

    @property
    def write_bandwidth(self) -> float | None:
        v = self._attr("write_bandwidth", "write-bandwidth")
        return None if v is None else float(v)

    @property
    def shared_bandwidth(self) -> float | None:
        v = self._attr("shared_bandwidth", "shared-bandwidth")
        return None if v is None else float(v)


@dataclass
class Architecture:
    """Storage levels innermost first (``levels[0]`` feeds the compute unit) + the compute level."""

    levels: list
    compute: Level
    name: str = "system"
    attributes: dict = field(default_factory=dict)
    version: str = field(default="0.4", compare=False)
    source: str = field(default="", compare=False)

    def __post_init__(self):
        below = self.compute
        for lv in self.levels:
            if below.instances % lv.instances:
                raise SpecError(f"level '{below.name}' has {below.instances} instances, not a "
                                f"multiple of the {lv.instances} of '{lv.name}' above it",
                                file=self.source, key="architecture",
                                expected="instance counts that divide going inwards")
            lv.fanout_x = max(1, below.meshX // max(1, lv.meshX))
            lv.fanout_y = max(1, below.meshY // max(1, lv.meshY))
            if lv.fanout_x * lv.fanout_y != below.instances // lv.instances:
                lv.fanout_x, lv.fanout_y = below.instances // lv.instances, 1
            below = lv

    @property
    def level_names(self) -> list:
        return [lv.name for lv in self.levels]

    def index(self, name: str) -> int | None:
        for i, lv in enumerate(self.levels):
            if lv.name == name:
                return i
        return None

    def all_levels(self) -> list:
        return [self.compute] + list(self.levels)


def _is_network(cls: str) -> bool:
    return cls in NETWORK_CLASSES


def _component_attrs(node: dict, inherited: dict, file: str, key: str) -> dict:
    attrs = node.get("attributes") or {}
    if not isinstance(attrs, dict):
        raise SpecError("attributes must be a mapping", file=file, key=key + ".attributes")
    merged = {**inherited, **attrs}
    out = {k: resolve_value(v, merged) for k, v in merged.items()}
    from .validate import check_attributes
    check_attributes({k: out[k] for k in attrs}, file, key + ".attributes")
    return out


def _mesh(spatial: dict, axis: str, file: str, key: str) -> int:
    v = spatial.get(axis, 1)
    if isinstance(v, str):
        v = resolve_value(v, {})
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != int(v) or v < 1:
        raise SpecError("not a positive integer", file=file, key=f"{key}.spatial.{axis}",
                        expected="an integer >= 1 (PEs along the mesh axis)", got=spatial.get(axis))
    return int(v)


def _check_node_constraints(node: dict, file: str, key: str) -> None:
    from .constraints import ALLOWED_KEYS
    cons = node.get("constraints")
    if cons is None:
        return
    if not isinstance(cons, dict):
        raise SpecError("constraints must be a mapping", file=file, key=key + ".constraints",
                        expected="{spatial: ..., temporal: ..., dataspace: ...}")
    for ctype, body in cons.items():
        if ctype not in ALLOWED_KEYS:
            raise SpecError("unknown constraint type", file=file, key=f"{key}.constraints.{ctype}",
                            expected="one of " + ", ".join(sorted(ALLOWED_KEYS)))
        if body is not None and not isinstance(body, dict):
            raise SpecError("constraint must be a mapping", file=file, key=f"{key}.constraints.{ctype}",
                            expected="{factors: ..., permutation: ...}", got=body)


_COMMON_KEYS = {"name", "attributes", "spatial", "constraints", "sparse_optimizations", "enabled"}
_CONTAINER_KEYS = _COMMON_KEYS | {"networks"}
_COMPONENT_KEYS = _COMMON_KEYS | {"class", "subclass", "required_actions", "area_share"}


def _parse_v04(arch: dict, file: str, variables: dict) -> Architecture:
    nodes = arch.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        raise SpecError("architecture v0.4 needs a non-empty 'nodes' list", file=file,
                        key="architecture.nodes")
    flat: list[tuple[dict, bool, str, dict | None]] = []

    def walk(items, parallel, path, branch, start=0):
        for i, n in enumerate(items, start):
            p = f"{path}[{i}]"
            if not isinstance(n, dict):
                raise SpecError("architecture node must be a mapping", file=file, key=p)
            tag = getattr(n, "tag", None)
            group_node = tag in ("Parallel", "Hierarchical", "Pipelined", "Nothing") or \
                ("nodes" in n and "name" not in n)
            if group_node:
                allowed = {"constraints", "name"} if tag == "Nothing" else {"nodes"}
                bad = [k for k in n if k not in allowed]
                if bad:
                    raise SpecError(f"unknown key of a !{tag or 'Hierarchical'} node", file=file,
                                    key=f"{p}.{bad[0]}", expected="one of " + ", ".join(sorted(allowed)))
            if tag == "Parallel":
                _walk_parallel(n, p, branch)
            elif tag in ("Hierarchical", "Pipelined") or ("nodes" in n and "name" not in n):
                walk(n.get("nodes") or [], False, p + ".nodes", branch)
            elif tag == "Nothing":
                continue
            else:
                if parallel and (tag == "Container" or "class" not in n):
                    raise SpecError("a Container directly inside a !Parallel is not supported (as in "
                                    "Timeloop)", file=file, key=p,
                                    expected="components or !Hierarchical branches")
                if parallel and _fanout(n) > 1:
                    raise SpecError("a component with a spatial fan-out inside a !Parallel is not "
                                    "supported (as in Timeloop)", file=file, key=p + ".spatial",
                                    expected="the fan-out on a Container above the !Parallel")
                flat.append((n, parallel, p, branch))

    def _walk_parallel(node, path, outer):
        branches = [b for b in (node.get("nodes") or [])]
        keeps = [_kept_dataspaces(b) for b in branches]
        for i in range(len(keeps)):
            for j in range(i + 1, len(keeps)):
                shared = keeps[i] & keeps[j]
                if shared:
                    raise SpecError(f"data space {sorted(shared)[0]} is kept in two branches of a "
                                    f"!Parallel", file=file, key=f"{path}.nodes[{j}]",
                                    expected="each data space kept in at most one branch")
        names = [_first_component(b) for b in branches]
        group = next((nm for nm in names if nm), None)
        group_keep = frozenset().union(*keeps) if keeps else frozenset()
        if outer is not None:
            group_keep = group_keep & outer["keep"]
        for i, b in enumerate(branches):
            keep = keeps[i] if outer is None else keeps[i] & outer["keep"]
            info = {"group": group, "branch": names[i], "keep": frozenset(keep), "group_keep": group_keep}
            walk([b], True, f"{path}.nodes", info, start=i)

    walk(nodes, False, "architecture.nodes", None)
    mesh_x = mesh_y = 1
    inherited = dict(variables)
    top_name, top_attrs = "system", {}
    levels: list[Level] = []
    first = True
    for node, _parallel, path, branch in flat:
        tag = getattr(node, "tag", None)
        name = node.get("name")
        if not name:
            raise SpecError("architecture node has no name", file=file, key=path + ".name")
        if node.get("enabled", True) is False:
            continue
        allowed = _CONTAINER_KEYS if (tag == "Container" or "class" not in node) else _COMPONENT_KEYS
        unknown = [k for k in node if k not in allowed]
        if unknown:
            raise SpecError("unknown architecture node key", file=file, key=f"{path}.{unknown[0]}",
                            expected="one of " + ", ".join(sorted(allowed)))
        spatial = node.get("spatial") or {}
        if not isinstance(spatial, dict):
            raise SpecError("spatial must be a mapping", file=file, key=path + ".spatial",
                            expected="{meshX: N, meshY: M}")
        fx, fy = _mesh(spatial, "meshX", file, path), _mesh(spatial, "meshY", file, path)
        _check_node_constraints(node, file, path)
        unknown = set(spatial) - {"meshX", "meshY"}
        if unknown:
            raise SpecError("unknown spatial key", file=file, key=f"{path}.spatial.{sorted(unknown)[0]}",
                            expected="meshX or meshY")
        is_container = tag == "Container" or ("class" not in node)
        if is_container:
            attrs = node.get("attributes") or {}
            if not isinstance(attrs, dict):
                raise SpecError("attributes must be a mapping", file=file, key=path + ".attributes")
            own = {k: resolve_value(v, inherited) for k, v in attrs.items()}
            from .validate import check_attributes
            check_attributes(own, file, path + ".attributes")
            inherited.update(own)
            if first:
                top_name, top_attrs = f"{name}_top_level", dict(attrs)
        first = False
        if fx * fy > 1:
            dummy = Level(name=f"inter_{name}_spatial", cls="dummy_storage",
                          attributes={"width": 1, "depth": 1, "datawidth": 1},
                          instances=mesh_x * mesh_y, meshX=mesh_x, meshY=mesh_y, is_dummy=True,
                          constraints=_node_constraints(node, only=("spatial",),
                                                        target=f"inter_{name}_spatial"))
            levels.append(dummy)
            mesh_x, mesh_y = mesh_x * fx, mesh_y * fy
        if is_container:
            continue
        cls = str(node.get("class"))
        if _is_network(cls):
            continue
        attrs = _component_attrs(node, inherited, file, path)
        sub = node.get("subclass")
        lv = Level(name=str(name), cls=cls, attributes=attrs, instances=mesh_x * mesh_y,
                   meshX=mesh_x, meshY=mesh_y, subclass=None if sub is None else str(sub),
                   constraints=_node_constraints(node, exclude=("spatial",) if fx * fy > 1 else ()))
        if branch is not None:
            lv.parallel_group, lv.parallel_branch = branch["group"], branch["branch"]
            lv.branch_keep, lv.group_keep = branch["keep"], branch["group_keep"]
        levels.append(lv)
    return _finish(levels, top_name, top_attrs, file, "0.4")


def _fanout(node: dict) -> int:
    sp = node.get("spatial") or {}
    if not isinstance(sp, dict):
        return 1
    try:
        return int(sp.get("meshX", 1)) * int(sp.get("meshY", 1))
    except (TypeError, ValueError):
        return 1


def _kept_dataspaces(node) -> frozenset:
    """Data spaces a ``dataspace: {keep: ...}`` constraint keeps anywhere in ``node`` (a branch)."""
    out: set = set()
    if not isinstance(node, dict):
        return frozenset()
    cons = node.get("constraints")
    if isinstance(cons, dict):
        for key in ("dataspace", "datatype", "bypass", "bypassing"):
            body = cons.get(key)
            if isinstance(body, dict):
                k = body.get("keep") or []
                out.update([k] if isinstance(k, str) else [str(x) for x in k])
    for child in node.get("nodes") or []:
        out |= _kept_dataspaces(child)
    return frozenset(out)


def _first_component(node) -> str | None:
    if not isinstance(node, dict):
        return None
    if getattr(node, "tag", None) == "Nothing":
        return None
    if isinstance(node.get("nodes"), list) and "name" not in node:
        for child in node["nodes"]:
            nm = _first_component(child)
            if nm:
                return nm
        return None
    return None if node.get("name") is None else str(node.get("name"))


def _node_constraints(node: dict, only=None, exclude=(), target=None) -> list:
    cons = node.get("constraints") or {}
    out = []
    if isinstance(cons, dict):
        for ctype, body in cons.items():
            if only and ctype not in only:
                continue
            if ctype in exclude:
                continue
            if isinstance(body, dict):
                out.append({**body, "type": ctype, "target": target or node.get("name")})
    return out


def _parse_v03(arch: dict, file: str, variables: dict) -> Architecture:
    subtree = arch.get("subtree")
    if not isinstance(subtree, list) or not subtree:
        raise SpecError("architecture v0.3 needs a 'subtree' list", file=file, key="architecture.subtree")
    levels: list[Level] = []
    top = {"name": None, "attrs": {}}

    def walk(tree: dict, mult: int, inherited: dict, path: str):
        if not isinstance(tree, dict) or not isinstance(tree.get("attributes") or {}, dict):
            raise SpecError("subtree and its attributes must be mappings", file=file, key=path)
        name, count = strip_range(tree.get("name", "system"))
        if top["name"] is None:
            top["name"], top["attrs"] = name, dict(tree.get("attributes") or {})
        own = {k: resolve_value(v, inherited) for k, v in (tree.get("attributes") or {}).items()}
        from .validate import check_attributes
        check_attributes(own, file, path + ".attributes")
        attrs = {**inherited, **own}
        mult = mult * count
        for i, loc in enumerate(tree.get("local") or []):
            lp = f"{path}.local[{i}]"
            if not isinstance(loc, dict) or "name" not in loc:
                raise SpecError("local component needs a name", file=file, key=lp)
            lname, lcount = strip_range(loc["name"])
            cls = str(loc.get("class", ""))
            if not cls:
                raise SpecError("component has no class", file=file, key=lp + ".class")
            if _is_network(cls):
                continue
            la = _component_attrs(loc, attrs, file, lp)
            inst = mult * lcount
            mx = int(la.get("meshX", inst) or inst)
            my = int(la.get("meshY", max(1, inst // max(1, mx))) or 1)
            if mx * my != inst:
                mx, my = inst, 1
            la.pop("meshX", None), la.pop("meshY", None)
            if cls == "dummy_storage":  # timeloopfe's spatial-fan-out placeholder: attributes unused
                la = {"width": 1, "depth": 1, "datawidth": 1}
            levels.append(Level(name=lname, cls=cls, attributes=la, instances=inst, meshX=mx, meshY=my,
                                is_dummy=(cls == "dummy_storage")))
        for j, sub in enumerate(tree.get("subtree") or []):
            walk(sub, mult, attrs, f"{path}.subtree[{j}]")

    for k, t in enumerate(subtree):
        walk(t, 1, dict(variables), f"architecture.subtree[{k}]")
    return _finish(levels, top["name"] or "system", top["attrs"], file, "0.3")


def _finish(levels: list, top_name: str, top_attrs: dict, file: str, version: str) -> Architecture:
    if not levels:
        raise SpecError("architecture has no components", file=file, key="architecture",
                        expected="storage levels and a compute unit")
    compute = levels[-1]
    compute.is_compute = True
    storage = levels[:-1]
    if not storage:
        raise SpecError("architecture has no storage level above the compute unit", file=file,
                        key="architecture", expected="at least one storage component")
    names = [lv.name for lv in levels]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise SpecError("duplicate component name", file=file, key=f"architecture.{sorted(dup)[0]}",
                        expected="unique names")
    return Architecture(levels=list(reversed(storage)), compute=compute, name=top_name,
                        attributes=top_attrs, version=version, source=file)


def parse_architecture(arch: Any, file: str = "<dict>", variables: dict | None = None) -> Architecture:
    """Parse the ``architecture`` section (v0.4 ``nodes`` or v0.3 ``subtree``)."""
    if not isinstance(arch, dict):
        raise SpecError("architecture must be a mapping", file=file, key="architecture")
    variables = {k: resolve_value(v, {}) for k, v in (variables or {}).items() if k != "version"}
    unknown = [k for k in arch if k not in ("version", "nodes", "subtree", "local")]
    if unknown:
        raise SpecError("unknown architecture key", file=file, key=f"architecture.{unknown[0]}",
                        expected="version and nodes (v0.4) or subtree (v0.3)")
    if "nodes" in arch:
        return _parse_v04(arch, file, variables)
    if "subtree" in arch:
        return _parse_v03(arch, file, variables)
    raise SpecError("architecture has neither 'nodes' (v0.4) nor 'subtree' (v0.3)", file=file,
                    key="architecture", expected="'nodes' or 'subtree'")


def dump_architecture(arch: Architecture) -> dict:
    """Write ``arch`` as a v0.4 ``nodes`` list (outermost first); dummy levels become Containers."""
    from .yamlio import TaggedNode
    nodes = [TaggedNode("Container", {"name": arch.name.removesuffix("_top_level"),
                                      "attributes": dict(arch.attributes)})]
    group: list = []      # (branch name, [components]) of the !Parallel being collected
    group_of = None

    def flush():
        nonlocal group, group_of
        if group_of is None:
            return
        branches = [comps[0] if len(comps) == 1 else TaggedNode("Hierarchical", {"nodes": comps})
                    for _, comps in group]
        covered = frozenset().union(*(lv.branch_keep or frozenset() for lv in members))
        rest = (members[0].group_keep or frozenset()) - covered
        if rest:   # data spaces only a !Nothing branch keeps
            branches.append(TaggedNode("Nothing", {"constraints": {"dataspace": {"keep": sorted(rest)}}}))
        nodes.append(TaggedNode("Parallel", {"nodes": branches}))
        group, group_of = [], None

    members: list = []
    for lv in reversed(arch.levels):
        if lv.parallel_group is not None:
            if lv.parallel_group != group_of:
                flush()
                group_of, members = lv.parallel_group, []
            members.append(lv)
            if group and group[-1][0] == lv.parallel_branch:
                group[-1][1].append(_dump_component(lv))
            else:
                group.append((lv.parallel_branch, [_dump_component(lv)]))
            continue
        flush()
        if lv.is_dummy and lv.name.startswith("inter_") and lv.name.endswith("_spatial"):
            c = TaggedNode("Container", {"name": lv.name[len("inter_"):-len("_spatial")],
                                         "spatial": {"meshX": lv.fanout_x, "meshY": lv.fanout_y}})
            if lv.constraints:
                c["constraints"] = {k["type"]: {kk: vv for kk, vv in k.items() if kk not in ("type", "target")}
                                    for k in lv.constraints}
            nodes.append(c)
            continue
        nodes.append(_dump_component(lv))
    flush()
    nodes.append(_dump_component(arch.compute))
    return {"version": 0.4, "nodes": nodes}


def _dump_component(lv: Level):
    from .yamlio import TaggedNode
    attrs = {k: v for k, v in lv.attributes.items() if k not in ("meshX", "meshY")}
    d = {"name": lv.name, "class": lv.cls, "attributes": attrs}
    if lv.subclass:
        d["subclass"] = lv.subclass
    if lv.constraints:
        d["constraints"] = {k["type"]: {kk: vv for kk, vv in k.items() if kk not in ("type", "target")}
                            for k in lv.constraints}
    return TaggedNode("Component", d)
