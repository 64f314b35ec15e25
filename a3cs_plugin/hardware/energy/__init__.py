"""Built-in per-action energy / area tables (Accelergy-style ERT/ART) for specs without an ERT.

``builtin_ert(spec) -> (ert, art)`` returns the same structure as a parsed Accelergy
``*.ERT.yaml`` / ``*.ART.yaml``. Numbers come from ``tables/builtin_tables.json`` (generated
once with hwcomponents by ``tools/gen_energy_tables.py``); see README.md for sources and the
comparison against Accelergy's reference tables.
"""
from a3cs_plugin.hardware.energy.builtin import (CLASS_ALIASES, builtin_ert,
                                                 builtin_ert_for_components, component_actions,
                                                 known_classes, load_tables, parse_technology)

__all__ = ["builtin_ert", "builtin_ert_for_components", "component_actions", "known_classes",
           "load_tables", "parse_technology", "CLASS_ALIASES"]
