"""Categorical accelerator design spaces built from parameterised Timeloop templates.

A template (``arch_specs/templates/<name>.yaml``) has three top-level keys:

* ``template``: ``name``, ``version``, ``description``;
* ``parameters``: ordered mapping ``name -> {choices: [...], default: v, doc: str}``; a parameter
  may carry ``constraint_sets: {choice: {node_name: constraints}}`` (a dataflow choice);
* ``architecture``: a Timeloop v0.4 architecture whose strings may hold ``${expr}`` placeholders;
* optionally the spec sections :data:`CARRIED_SECTIONS` (``components``, top-level ``constraints``,
  ``variables``, ...), rendered with every point (``a3cs hw template`` writes them from a spec).

A *point* is a dict ``{parameter: choice}``; parameters left out take their default.
"""
from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from ...errors import ConfigError
from ...paths import template_dir
from ..spec.arch import parse_architecture
from ..spec.yamlio import iter_nodes
from ..spec.yamlio import read_text as _read_text
from .template import dump_yaml, load_yaml_text, substitute

__all__ = ["Parameter", "DesignSpace", "TEMPLATE_DIR", "list_templates"]

#: ``arch_specs/templates`` as found at import (checkout, ``A3CS_ARCH_SPECS`` or installed data)
TEMPLATE_DIR = template_dir()
#: spec sections a template may carry besides its architecture (rendered with every point)
CARRIED_SECTIONS = ("components", "compound_components", "constraints", "architecture_constraints",
                    "mapspace_constraints", "variables")


def list_templates() -> list[str]:
    """Names of the templates shipped in ``arch_specs/templates``."""
    return sorted(p.stem for p in template_dir().glob("*.yaml"))


@dataclass(frozen=True)
class Parameter:
    """One categorical design parameter."""

    name: str
    choices: tuple
    default: Any
    doc: str = ""
    constraint_sets: Mapping[Any, Mapping[str, Any]] | None = None
    searched: bool = True        # False: the co-search holds it at ``default``

    @property
    def size(self) -> int:
        return len(self.choices)

    def index(self, value, *, source: str = "point") -> int:
        for i, c in enumerate(self.choices):
            if c == value or (isinstance(c, (int, float)) and isinstance(value, str)
                              and _num_equal(c, value)):
                return i
        raise ConfigError(f"invalid choice {value!r} for parameter '{self.name}'", file=source,
                          key=self.name, expected="one of " + ", ".join(map(str, self.choices)))


def _num_equal(c, text: str) -> bool:
    try:
        return float(text) == float(c)
    except ValueError:
        return False


@dataclass
class DesignSpace:
    """A parameterised accelerator template with categorical choices per parameter."""

    name: str
    parameters: dict[str, Parameter]
    architecture: Any = field(repr=False)
    source: str = "template"
    description: str = ""
    # other spec sections (components, top-level constraints, variables) rendered with every point
    sections: dict = field(default_factory=dict, repr=False)
    _area_cache: dict = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_template(cls, name_or_path: str | Path) -> "DesignSpace":
        """Load ``arch_specs/templates/<name>.yaml`` or a template file path."""
        path = Path(name_or_path)
        if not path.suffix:
            path = template_dir() / f"{name_or_path}.yaml"
        if not path.is_file():
            raise ConfigError(f"unknown accelerator template '{name_or_path}'", key="template",
                              expected="a template file or one of " + ", ".join(list_templates()))
        return cls.from_dict(load_yaml_text(_read_text(path, ConfigError), str(path)), source=str(path))

    @classmethod
    def from_dict(cls, doc: Any, source: str = "template") -> "DesignSpace":
        if not isinstance(doc, dict):
            raise ConfigError("template must be a mapping", file=source,
                              expected="keys template, parameters, architecture")
        unknown = sorted(set(doc) - {"template", "parameters", "architecture", *CARRIED_SECTIONS})
        if unknown:
            raise ConfigError(f"unknown top-level key(s) {', '.join(unknown)}", file=source,
                              key=unknown[0], expected="template, parameters, architecture, "
                                                       + ", ".join(CARRIED_SECTIONS))
        for k in ("parameters", "architecture"):
            if k not in doc:
                raise ConfigError("missing key", file=source, key=k)
        meta = doc.get("template") or {}
        params_doc = doc["parameters"]
        if not isinstance(params_doc, dict) or not params_doc:
            raise ConfigError("parameters must be a non-empty mapping", file=source, key="parameters")
        params: dict[str, Parameter] = {}
        for pname, pdoc in params_doc.items():
            key = f"parameters.{pname}"
            if not isinstance(pdoc, dict) or not isinstance(pdoc.get("choices"), list) \
                    or not pdoc["choices"]:
                raise ConfigError("parameter needs a non-empty 'choices' list", file=source, key=key)
            extra = sorted(set(pdoc) - {"choices", "default", "doc", "constraint_sets", "search"})
            if extra:
                raise ConfigError(f"unknown parameter field(s) {', '.join(extra)}", file=source,
                                  key=f"{key}.{extra[0]}", expected="choices, default, doc, "
                                                                    "constraint_sets, search")
            searched = pdoc.get("search", True)
            if not isinstance(searched, bool):
                raise ConfigError("'search' must be true or false", file=source, key=f"{key}.search",
                                  got=searched)
            choices = tuple(pdoc["choices"])
            if len(set(map(repr, choices))) != len(choices):
                raise ConfigError("duplicate choices", file=source, key=f"{key}.choices")
            default = pdoc.get("default", choices[0])
            if default not in choices:
                raise ConfigError(f"default {default!r} is not a choice", file=source,
                                  key=f"{key}.default", expected="one of " + ", ".join(map(str, choices)))
            csets = pdoc.get("constraint_sets")
            if csets is not None:
                missing = [c for c in choices if c not in csets]
                if missing:
                    raise ConfigError(f"no constraint set for choice(s) {missing}", file=source,
                                      key=f"{key}.constraint_sets")
            params[str(pname)] = Parameter(str(pname), choices, default, str(pdoc.get("doc", "")), csets,
                                           searched)
        space = cls(name=str(meta.get("name", Path(source).stem)), parameters=params,
                    architecture=doc["architecture"], source=source,
                    description=str(meta.get("description", "")).strip(),
                    sections={k: doc[k] for k in CARRIED_SECTIONS if doc.get(k) is not None})
        space.render(space.default_point())  # fail early on a broken template
        return space

    # ------------------------------------------------------------------ points
    @property
    def names(self) -> list[str]:
        return list(self.parameters)

    @property
    def sizes(self) -> dict[str, int]:
        return {n: p.size for n, p in self.parameters.items()}

    @property
    def encoding_size(self) -> int:
        return sum(p.size for p in self.parameters.values())

    @property
    def num_points(self) -> int:
        return int(np.prod([p.size for p in self.parameters.values()]))

    def default_point(self) -> dict:
        return {n: p.default for n, p in self.parameters.items()}

    def check_point(self, point: Mapping, *, source: str = "point") -> dict:
        """Complete ``point`` with defaults; unknown parameter or choice -> ConfigError."""
        if not isinstance(point, Mapping):
            raise ConfigError("accelerator point must be a mapping parameter -> choice", file=source)
        unknown = [k for k in point if k not in self.parameters]
        if unknown:
            raise ConfigError(f"unknown parameter(s) {', '.join(map(str, unknown))} for template "
                              f"'{self.name}'", file=source, key=str(unknown[0]),
                              expected="one of " + ", ".join(self.parameters))
        full = {}
        for n, p in self.parameters.items():
            full[n] = p.choices[p.index(point[n], source=source)] if n in point else p.default
        return full

    def indices(self, point: Mapping) -> list[int]:
        point = self.check_point(point)
        return [p.index(point[n]) for n, p in self.parameters.items()]

    def point_from_indices(self, idx: Iterable[int]) -> dict:
        idx = list(idx)
        if len(idx) != len(self.parameters):
            raise ConfigError(f"expected {len(self.parameters)} indices, got {len(idx)}", key="point")
        return {n: p.choices[int(i)] for (n, p), i in zip(self.parameters.items(), idx)}

    def encode(self, point: Mapping) -> np.ndarray:
        """Concatenated one-hot vectors, parameters in template order (length ``encoding_size``)."""
        out = np.zeros(self.encoding_size, dtype=np.float32)
        off = 0
        for i, (n, p) in zip(self.indices(point), self.parameters.items()):
            out[off + i] = 1.0
            off += p.size
        return out

    def decode(self, vector) -> dict:
        """Argmax per parameter block of a (relaxed) one-hot / probability vector."""
        v = np.asarray(vector, dtype=np.float64).reshape(-1)
        if v.size != self.encoding_size:
            raise ConfigError(f"encoding has {v.size} entries", key="point",
                              expected=f"{self.encoding_size} (sum of choice counts)")
        point, off = {}, 0
        for n, p in self.parameters.items():
            point[n] = p.choices[int(np.argmax(v[off:off + p.size]))]
            off += p.size
        return point

    def sample(self, rng: np.random.Generator | int | None = None) -> dict:
        """Uniformly random point."""
        rng = np.random.default_rng(rng)
        return {n: p.choices[int(rng.integers(p.size))] for n, p in self.parameters.items()}

    def point_key(self, point: Mapping) -> str:
        """Stable short hash of a (completed) point, including the template name."""
        full = self.check_point(point)
        text = json.dumps({"template": self.name, "point": full}, sort_keys=True, default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:16]

    # ------------------------------------------------------------------ rendering
    def render(self, point: Mapping | None = None, *, tagged: bool = False) -> dict:
        """Concrete Timeloop v0.4 spec ``{"architecture": {...}}`` for ``point`` (defaults filled in),
        dataflow constraints inside the nodes.

        Nodes are the spec loader's tagged dicts (``TaggedNode``: a dict with ``.tag`` such as
        ``"Container"``), so ``load_spec([space.render(p), problem])`` reads it like the YAML file
        :meth:`write` produces. (``tagged`` is kept for callers of the time when templates had a
        node type of their own; both forms are the same now.)
        """
        point = self.check_point(point or {})
        names = dict(point)
        arch = substitute(copy.deepcopy(self.architecture), names, source=self.source,
                          path="architecture")
        for n, p in self.parameters.items():
            if p.constraint_sets:
                cset = p.constraint_sets[point[n]]
                seen = set()
                for body in _walk_nodes(arch):
                    if body.get("name") in cset:
                        cons = copy.deepcopy(cset[body["name"]])
                        if cons:
                            body["constraints"] = cons
                        else:   # an empty set: the node has no constraints in this choice
                            body.pop("constraints", None)
                        seen.add(body["name"])
                missing = sorted(set(cset) - seen)
                if missing:
                    raise ConfigError(f"constraint set '{point[n]}' names unknown node(s) "
                                      f"{', '.join(missing)}", file=self.source,
                                      key=f"parameters.{n}.constraint_sets.{point[n]}")
        spec = {"architecture": arch}
        for key, value in self.sections.items():
            spec[key] = substitute(copy.deepcopy(value), names, source=self.source, path=key)
        return spec

    def to_yaml(self, point: Mapping | None = None) -> str:
        point = self.check_point(point or {})
        head = (f"# Generated by a3cs from template '{self.name}' ({self.source}).\n"
                f"# point: {json.dumps(point, default=str)}\n")
        return head + dump_yaml(self.render(point, tagged=True))

    def pinned(self) -> dict[str, Any]:
        """Parameters the template holds at their default (``search: false``)."""
        return {n: p.default for n, p in self.parameters.items() if not p.searched}

    def write(self, point: Mapping | None, path: str | Path) -> Path:
        """Write the rendered Timeloop v0.4 YAML to ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_yaml(point))
        return path

    # ------------------------------------------------------------------ area
    def components(self, point: Mapping | None = None) -> list[tuple[str, str, dict, int]]:
        """Flattened components ``(name, class, attributes, instances)``, outermost first and the
        compute level last: the levels of the rendered architecture as the spec loader reads it
        (:func:`~a3cs_plugin.hardware.spec.arch.parse_architecture`, so containers' attributes are
        inherited and meshes multiply instances as in a loaded spec; the dummy levels of spatial
        containers are left out)."""
        spec = self.render(point)
        arch = parse_architecture(spec["architecture"], self.source, spec.get("variables") or {})
        levels = [lv for lv in reversed(arch.levels) if not lv.is_dummy] + [arch.compute]
        return [(lv.name, lv.cls, dict(lv.attributes), lv.instances) for lv in levels]

    def area(self, point: Mapping | None = None) -> float:
        """Total area in mm^2 from the built-in area tables (all instances of all components)."""
        full = self.check_point(point or {})
        key = self.point_key(full)
        if key not in self._area_cache:
            from .area import components_area_um2
            self._area_cache[key] = components_area_um2(self.components(full)) / 1e6
        return self._area_cache[key]

    def within_budget(self, point: Mapping, area_mm2: float) -> bool:
        """True if the point's area (mm^2) is at most ``area_mm2``."""
        return self.area(point) <= float(area_mm2)

    def clock_hz(self, point: Mapping | None = None) -> float:
        """Clock frequency from the rendered ``global_cycle_seconds`` (1 GHz when absent)."""
        for _, _, attrs, _ in self.components(point):
            if "global_cycle_seconds" in attrs:
                return 1.0 / float(attrs["global_cycle_seconds"])
        return 1e9


def _walk_nodes(arch):
    """Every node body (dict) of a v0.4 architecture tree, Parallel children included."""
    return (body for _, body in iter_nodes(arch))


