"""Built-in per-action energy / area tables (Accelergy-style ERT/ART) for specs without an ERT.

``builtin_ert(spec) -> (ert, art)`` (a loaded :class:`~a3cs_plugin.hardware.spec.Spec`) and
``builtin_ert_for_components(triples)`` return the same structure as a parsed Accelergy
``*.ERT.yaml`` / ``*.ART.yaml``; ``flattened_components`` reads an Accelergy flattened
architecture into such triples. Numbers come from ``tables/builtin_tables.json`` (generated
once with hwcomponents by ``tools/gen_energy_tables.py``); see README.md for sources and the
comparison against Accelergy's reference tables.
"""
from a3cs_plugin.hardware.energy.builtin import (CLASS_ALIASES, Component, builtin_ert,
                                                 builtin_ert_for_components, component_actions,
                                                 flattened_components, known_classes, load_tables,
                                                 parse_technology)

__all__ = ["builtin_ert", "builtin_ert_for_components", "flattened_components", "Component",
           "component_actions", "known_classes", "load_tables", "parse_technology", "CLASS_ALIASES"]
