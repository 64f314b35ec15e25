"""Plugin registry for cost models (``a3cs.cost_models``) and strategies (``a3cs.strategies``).

Both groups are read with :func:`importlib.metadata.entry_points`.  The built-ins are declared as
entry points in ``setup.cfg`` too; they are also listed here so that a source checkout whose
metadata predates them still finds them.
"""
from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from a3cs_plugin.errors import ConfigError

COST_MODEL_GROUP = "a3cs.cost_models"
STRATEGY_GROUP = "a3cs.strategies"

_BUILTINS = {
    COST_MODEL_GROUP: {
        "surrogate": "a3cs_plugin.strategy.surrogate_cost:SurrogateCostModel.from_template",
    },
    STRATEGY_GROUP: {
        "a3cs": "a3cs_plugin.strategy.a3cs:A3CS",
        "direct-nas": "a3cs_plugin.strategy.a3cs:DirectNAS",
    },
}


def _load_target(spec: str) -> Any:
    import importlib
    module_name, _, attr = spec.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def available(group: str) -> dict[str, str]:
    """Names registered in ``group`` -> ``module:attr`` (installed entry points override built-ins)."""
    found = dict(_BUILTINS.get(group, {}))
    for ep in entry_points(group=group):
        found[ep.name] = ep.value
    return found


def load(group: str, name: str) -> Any:
    """Load the object registered as ``name`` in ``group``."""
    for ep in entry_points(group=group):
        if ep.name == name:
            return ep.load()
    if name in _BUILTINS.get(group, {}):
        return _load_target(_BUILTINS[group][name])
    raise ConfigError(f"no plugin '{name}' in entry-point group {group}", key=name,
                      expected=f"one of {sorted(available(group))}")


def cost_model(name: str, template: str, **options: Any):
    """Build the cost model ``name`` for accelerator ``template``."""
    return load(COST_MODEL_GROUP, name)(template, **options)


def strategy(name: str, **options: Any):
    """Build the strategy ``name`` (an NNI strategy instance)."""
    return load(STRATEGY_GROUP, name)(**options)
