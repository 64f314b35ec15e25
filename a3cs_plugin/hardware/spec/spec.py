"""The :class:`Spec` object, ``load_spec`` and ``dump_spec``."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from a3cs_plugin.errors import SpecError

from .arch import Architecture, dump_architecture, parse_architecture
from .constraints import model_flags
from .energy import EnergyTable, parse_art, parse_ert
from .mapping import Mapping, check_mapping, check_targets, parse_mapping
from .problem import Problem, parse_problem
from .yamlio import TaggedNode, dump_yaml, load_yaml_file, merge_sources


@dataclass
class Spec:
    """A complete Timeloop-style specification."""

    arch: Architecture
    problem: Problem
    mapping: Mapping | None = None
    constraints: list = field(default_factory=list)
    mapper: dict = field(default_factory=dict)
    variables: dict = field(default_factory=dict)
    components: dict = field(default_factory=dict)
    #: the Accelergy ERT / ART given with the spec (energies and areas), None when neither was
    tables: EnergyTable | None = None
    sources: dict = field(default_factory=dict)

    @property
    def ert(self) -> EnergyTable | None:
        """The old name of :attr:`tables` (kept for one release; it holds the ART too)."""
        return self.tables

    @ert.setter
    def ert(self, value: EnergyTable | None) -> None:
        self.tables = value

    @property
    def dims(self) -> list:
        return self.problem.dimensions

    def ert_components(self) -> list:
        """``(name[1..N], class, attributes)`` of every real component (for built-in energy tables)."""
        return [(f"{lv.name}[1..{lv.instances}]", lv.energy_class, dict(lv.attributes))
                for lv in self.arch.all_levels() if not lv.is_dummy]

    @property
    def source(self) -> str:
        return ",".join(sorted(set(self.sources.values()))) or "<spec>"


def _load_tables(path_or_dict, kind: str):
    if path_or_dict is None:
        return None, None
    if isinstance(path_or_dict, dict):
        data, name = path_or_dict, "<dict>"
    else:
        data, name = load_yaml_file(path_or_dict), str(path_or_dict)
    return (parse_ert(data, name) if kind == "ERT" else parse_art(data, name)), name


def load_spec(paths, ert=None, art=None) -> Spec:
    """Load and merge Timeloop spec files (paths or dicts) into a validated :class:`Spec`.

    ``ert`` / ``art``: Accelergy ``*.ERT.yaml`` / ``*.ART.yaml`` files (or dicts); an ``ERT`` /
    ``ART`` section inside the merged files is used when these are not given.
    """
    merged, origin = merge_sources(paths)
    for key in ("architecture", "problem"):
        if merged.get(key) is None:
            raise SpecError(f"missing '{key}' section", file=",".join(sorted(set(origin.values()))) or "<spec>",
                            key=key, expected=f"a file with a top-level '{key}' key")
    variables = merged.get("variables") or {}
    if isinstance(variables, dict):
        variables = {k: v for k, v in variables.items() if k != "version"}
    arch = parse_architecture(merged["architecture"], origin["architecture"], variables)
    problem = parse_problem(merged["problem"], origin["problem"])
    from .frontend import apply_frontend
    apply_frontend(arch, problem, origin["architecture"])
    dims, dsn = problem.dimensions, problem.ds_names
    _check_parallel(arch, dsn, origin["architecture"])
    mapping = None
    if merged.get("mapping"):
        mapping = parse_mapping(merged["mapping"], dims, dsn, origin["mapping"])
        mapping = check_targets(mapping, arch, origin["mapping"])
    constraints = []
    for ck in ("constraints", "architecture_constraints", "mapspace_constraints"):
        c = merged.get(ck)
        if isinstance(c, dict):
            bad = [k for k in c if k not in ("version", "targets")]
            if bad:
                raise SpecError(f"unknown key of the {ck} section", file=origin[ck], key=f"{ck}.{bad[0]}",
                                expected="version, targets")
            c = c.get("targets") or []
        if c:
            if not isinstance(c, list):
                raise SpecError("constraints must be a list", file=origin[ck], key=ck)
            constraints.extend(c)
    from .validate import check_constraints
    sections = [origin[k] for k in ("constraints", "architecture_constraints", "mapspace_constraints")
                if k in origin]
    check_constraints(constraints, arch, ",".join(sections) or origin["architecture"], dsn)
    node_constraints = [c for lv in arch.levels for c in lv.constraints]
    check_constraints(node_constraints, arch, origin["architecture"], dsn)
    constraints.extend(node_constraints)
    from .validate import check_mapper
    mapper = check_mapper(merged.get("mapper"), origin.get("mapper", "<spec>"))
    # energy / area
    ert_map, ert_name = _load_tables(ert, "ERT")
    if ert_map is None and merged.get("ERT"):
        ert_map, ert_name = parse_ert(merged["ERT"], origin["ERT"]), origin["ERT"]
    art_map, art_name = _load_tables(art, "ART")
    if art_map is None and merged.get("ART"):
        art_map, art_name = parse_art(merged["ART"], origin["ART"]), origin["ART"]
    table = None
    if ert_map is not None or art_map is not None:
        table = EnergyTable(energy=ert_map or {}, area=art_map or {}, source=ert_name or "",
                            area_source=art_name or "")
    comps = merged.get("compound_components") or merged.get("components") or {}
    spec = Spec(arch=arch, problem=problem, mapping=mapping, constraints=constraints,
                mapper=mapper if isinstance(mapper, dict) else {}, variables=variables,
                components=comps if isinstance(comps, dict) else {"classes": comps}, tables=table,
                sources=origin)
    model_flags(spec)   # unsupported / malformed model-side constraint settings fail here
    if mapping is not None:
        check_mapping(spec, mapping)
    return spec


def _check_parallel(arch: Architecture, ds_names: list, file: str) -> None:
    """Timeloop's front end rejects a ``!Parallel`` whose branches leave a data space unkept; we
    warn (each branch still bypasses what it does not keep) and reject unknown data-space names."""
    seen = set()
    for lv in arch.levels:
        if lv.parallel_group is None:
            continue
        unknown = sorted((lv.group_keep or frozenset()) - set(ds_names))
        if unknown:
            raise SpecError(f"!Parallel branch keeps unknown data space '{unknown[0]}'", file=file,
                            key=f"architecture.{lv.name}.constraints.dataspace.keep",
                            expected="one of " + ", ".join(ds_names))
        if lv.parallel_group in seen:
            continue
        seen.add(lv.parallel_group)
        missing = [d for d in ds_names if d not in (lv.group_keep or frozenset())]
        if missing:
            warnings.warn(f"{file}: no branch of the !Parallel holding '{lv.parallel_group}' keeps "
                          f"{', '.join(missing)}; Timeloop's front end rejects this (add a "
                          f"'!Nothing {{constraints: {{dataspace: {{keep: [{', '.join(missing)}]}}}}}}' "
                          f"branch); every branch bypasses it here", stacklevel=3)


def _plain(obj: Any) -> Any:
    if isinstance(obj, TaggedNode):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, set):
        return sorted(obj)
    return obj


def dump_spec(spec: Spec, path: str | Path | None = None) -> dict:
    """Write ``spec`` as a Timeloop v0.4 dict (architecture nodes, problem, mapping list, ...).

    With ``path`` also writes YAML there (``!Container``/``!Component`` tags included).
    ``load_spec(dump_spec(spec))`` gives back an equal spec.
    """
    from .mapping import dump_mapping
    out: dict = {"architecture": dump_architecture(spec.arch), "problem": spec.problem.to_dict()}
    if spec.mapping is not None:
        out["mapping"] = dump_mapping(spec, spec.mapping)
    if spec.mapper:
        out["mapper"] = dict(spec.mapper)
    if spec.variables:
        out["variables"] = dict(spec.variables)
    if spec.tables is not None:
        if spec.tables.energy:
            out["ERT"] = {"version": 0.4, "tables": [
                {"name": n, "actions": [{"name": a, "energy": e} for a, e in acts.items()]}
                for n, acts in spec.tables.energy.items()]}
        if spec.tables.area:
            out["ART"] = {"version": 0.4, "tables": [{"name": n, "area": a} for n, a in spec.tables.area.items()]}
    if path is not None:
        Path(path).write_text(to_yaml(out))
    return out


def to_yaml(data: dict) -> str:
    """YAML text of a spec dict, v0.4 tags kept (:func:`.yamlio.dump_yaml`)."""
    return dump_yaml(data)
