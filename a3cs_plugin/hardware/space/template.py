"""Design-space templates' YAML and the placeholder expressions (``${expr}``) they hold.

Templates are read and written with the spec layer's tag-keeping YAML
(:mod:`a3cs_plugin.hardware.spec.yamlio`): tagged v0.4 nodes are
:class:`~a3cs_plugin.hardware.spec.yamlio.TaggedNode` dicts, as in a loaded spec, so a rendered
architecture is both a ``load_spec`` input and the Timeloop YAML it writes.
"""
from __future__ import annotations

import ast
import math
import operator
import re
from typing import Any

import yaml

from ...errors import ConfigError
from ..spec.yamlio import TaggedNode, dump_yaml as _dump_tagged, parse_yaml

__all__ = ["load_yaml_text", "dump_yaml", "evaluate_expression", "substitute"]


def load_yaml_text(text: str, source: str) -> Any:
    """Parse YAML keeping v0.4 tags; malformed YAML -> ConfigError naming ``source``."""
    try:
        return parse_yaml(text)
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f"{source}:{line + 1}" if line is not None else source
        raise ConfigError(f"malformed YAML ({getattr(exc, 'problem', exc)})", file=where) from None


def dump_yaml(data: Any) -> str:
    """YAML text of a template or rendered spec: tags kept, keys in insertion order, 110 columns."""
    return _dump_tagged(data, width=110)


# ---------------------------------------------------------------------------------------------
# placeholder expressions
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Pow: operator.pow,
           ast.Mod: operator.mod}
_FUNCS = {"min": min, "max": max, "ceil": math.ceil, "floor": math.floor, "log2": math.log2,
          "int": int, "round": round}
_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


def evaluate_expression(expr: str, names: dict, *, source: str = "template", key: str | None = None):
    """Evaluate an arithmetic placeholder expression over ``names`` (no attribute access, no calls
    other than min/max/ceil/floor/log2/int/round)."""
    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in names:
                raise ConfigError(f"unknown name '{node.id}' in placeholder '${{{expr}}}'", file=source,
                                  key=key, expected="one of " + ", ".join(sorted(names)))
            return names[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = ev(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS
                and not node.keywords):
            return _FUNCS[node.func.id](*[ev(a) for a in node.args])
        raise ConfigError(f"unsupported placeholder expression '${{{expr}}}'", file=source, key=key,
                          expected="arithmetic on parameter names (+ - * / // ** %, min, max, ceil, "
                                   "floor, log2)")
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError:
        raise ConfigError(f"malformed placeholder '${{{expr}}}'", file=source, key=key,
                          expected="an arithmetic expression") from None
    value = ev(tree)
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1:
        value = int(value)
    return value


def substitute(obj: Any, names: dict, *, source: str = "template", path: str = "") -> Any:
    """Copy ``obj`` replacing ``${expr}`` placeholders in strings (a string that is exactly one
    placeholder becomes the expression's value; otherwise placeholders are formatted into the text)."""
    if isinstance(obj, TaggedNode):
        return TaggedNode(obj.tag, {k: substitute(v, names, source=source, path=f"{path}.{k}" if path else str(k))
                                    for k, v in obj.items()})
    if isinstance(obj, dict):
        return {k: substitute(v, names, source=source, path=f"{path}.{k}" if path else str(k))
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [substitute(v, names, source=source, path=f"{path}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, str) and "${" in obj:
        whole = _PLACEHOLDER.fullmatch(obj.strip())
        if whole:
            return evaluate_expression(whole.group(1), names, source=source, key=path)
        return _PLACEHOLDER.sub(
            lambda m: str(evaluate_expression(m.group(1), names, source=source, key=path)), obj)
    return obj
