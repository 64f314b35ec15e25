"""Accelerator area from the built-in (Accelergy-style) area tables."""
from __future__ import annotations

import functools
import json

from ..energy import component_actions

__all__ = ["components_area_um2", "component_area_um2"]


@functools.lru_cache(maxsize=4096)
def _area(cls: str, attrs_json: str) -> float:
    _, area = component_actions(cls, cls, json.loads(attrs_json))
    return float(area or 0.0)


def component_area_um2(cls: str, attributes: dict) -> float:
    """Area (um^2) of one instance of a component, from the built-in tables (cached)."""
    return _area(str(cls), json.dumps(attributes, sort_keys=True, default=str))


def components_area_um2(components) -> float:
    """Sum of per-instance area x instances over ``(name, class, attributes, instances)``."""
    return sum(component_area_um2(cls, attrs) * inst for _, cls, attrs, inst in components)
