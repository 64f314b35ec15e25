"""YAML with Timeloop's tags (the one reader and writer of them), and merging files by top-level key.

Timeloop v0.4 architectures tag their nodes (``!Container``, ``!Component``, ``!Parallel``,
``!Hierarchical``, ``!Nothing``).  A tagged mapping is read as a :class:`TaggedNode` -- a dict
that keeps its tag -- and written back with it, so the spec loader, the design-space templates
and the template generator share one representation of a v0.4 tree.  (Tags on sequences or
scalars, which no Timeloop input uses, are dropped.)
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from a3cs_plugin.errors import SpecError

# Top-level keys Timeloop / timeloopfe / Accelergy accept in a specification file.
KNOWN_TOP_KEYS = {
    "architecture", "components", "compound_components", "problem", "mapping", "constraints",
    "architecture_constraints", "mapspace_constraints", "mapspace", "mapper", "variables",
    "globals", "ERT", "ART", "ERT_summary", "ART_summary", "sparse_optimizations", "model",
    "dumped_by_timeloop_front_end", "architecture_extra_constraints", "problem_instance",
}


class TaggedNode(dict):
    """A mapping read from a ``!Tag`` node; ``tag`` keeps the tag name (without ``!``).

    Equal to a plain dict with the same items; two tagged nodes are equal when their tags are too.
    """

    def __init__(self, tag: str, data: dict | None = None):
        super().__init__(data or {})
        self.tag = tag

    def __eq__(self, other):
        if isinstance(other, TaggedNode) and other.tag != self.tag:
            return False
        return dict.__eq__(self, other)

    def __ne__(self, other):
        return not self == other

    __hash__ = None

    def __repr__(self):
        return f"TaggedNode({self.tag!r}, {dict.__repr__(self)})"


def merge_section(old, new):
    """A top-level section given by two files, as Timeloop merges its inputs: lists concatenate;
    mappings merge key by key (lists inside concatenate, mappings inside update); otherwise the
    later file wins."""
    if isinstance(old, list) and isinstance(new, list):
        return old + new
    if isinstance(old, dict) and isinstance(new, dict):
        out = dict(old)
        for k, v in new.items():
            if k in out and isinstance(out[k], list) and isinstance(v, list):
                out[k] = out[k] + v
            elif k in out and isinstance(out[k], dict) and isinstance(v, dict):
                out[k] = {**out[k], **v}
            else:
                out[k] = v
        return out
    return new


def iter_nodes(tree: dict):
    """Every node of a raw v0.4 architecture tree as ``(tag, body)``, outermost first, children
    (``!Container`` / ``!Parallel`` branches) right after their parent; ``tag`` is ``!Component``
    for an untagged node.  The one walker over the YAML tree (the parsed tree is walked by
    :mod:`a3cs_plugin.hardware.spec.arch`)."""
    if not isinstance(tree, dict):
        return
    for node in tree.get("nodes") or []:
        if not isinstance(node, dict):
            continue
        yield ("!" + node.tag if isinstance(node, TaggedNode) else "!Component"), node
        yield from iter_nodes(node)


class _Loader(yaml.SafeLoader):
    pass


def _construct_tagged(loader: yaml.Loader, suffix: str, node: yaml.Node):
    if isinstance(node, yaml.MappingNode):
        return TaggedNode(suffix, loader.construct_mapping(node, deep=True))
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_Loader.add_multi_constructor("!", _construct_tagged)


class _Dumper(yaml.SafeDumper):
    pass


def _represent_tagged(dumper: yaml.SafeDumper, node: TaggedNode):
    return dumper.represent_mapping("!" + node.tag, dict(node))


_Dumper.add_representer(TaggedNode, _represent_tagged)


def parse_yaml(text: str) -> Any:
    """Parse YAML text, tagged mappings as :class:`TaggedNode` (``yaml.YAMLError`` on bad YAML;
    :func:`load_yaml_file` and the template reader turn it into their one-line errors)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def dump_yaml(data: Any, width: int | None = None) -> str:
    """YAML text with :class:`TaggedNode` values written as tagged mappings, keys in insertion
    order (``width``: the line width, PyYAML's default of 80 when None)."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=None,
                     **({} if width is None else {"width": width}))


def read_text(path: str | Path, error: type = SpecError) -> str:
    """The UTF-8 text of ``path``; unreadable or non-UTF-8 files raise ``error`` naming the file."""
    p = Path(path)
    if p.is_dir():
        raise error("is a directory", file=str(p), expected="a file")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 text (byte {exc.start})", file=str(p),
                    expected="a UTF-8 encoded text file") from None
    except OSError as exc:
        raise error(f"cannot read file ({exc.strerror})", file=str(p)) from None


def load_yaml_file(path: str | Path) -> Any:
    """Parse one YAML file (Timeloop tags allowed). Raises SpecError naming the file."""
    p = Path(path)
    if not p.is_file():
        raise SpecError("file not found", file=str(p), expected="an existing YAML file")
    text = read_text(p, SpecError)
    try:
        return parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"malformed YAML{where}: {problem}", file=str(p),
                        expected="valid YAML") from None


def merge_sources(sources) -> tuple[dict, dict]:
    """Merge files/dicts by top-level key, as Timeloop does.

    Returns ``(merged, origin)`` where ``origin[key]`` is the file (or ``<dict>``) the key came from.
    Lists under the same key (e.g. ``mapping``) are concatenated; dicts are merged shallowly
    (``compound_components.classes`` and ``variables`` are combined).
    """
    if isinstance(sources, (str, Path, dict)):
        sources = [sources]
    merged: dict = {}
    origin: dict = {}
    for src in sources:
        if isinstance(src, dict):
            data, name = src, "<dict>"
        else:
            data, name = load_yaml_file(src), str(src)
        if data is None:
            continue
        if not isinstance(data, dict):
            raise SpecError("top level must be a mapping of sections", file=name,
                            expected="keys such as architecture, problem, mapping")
        for key, value in data.items():
            if key not in KNOWN_TOP_KEYS:
                raise SpecError("unknown top-level key", file=name, key=str(key),
                                expected="one of " + ", ".join(sorted(KNOWN_TOP_KEYS)))
            if key in merged and merged[key] is not None and value is not None:
                merged[key] = merge_section(merged[key], value)
                origin[key] = origin[key] + "," + name
            else:
                merged[key] = value
                origin[key] = name
    return merged, origin
