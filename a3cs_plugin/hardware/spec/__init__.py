"""Timeloop/Accelergy YAML -> typed specification objects (architecture, problem, mapping, ERT/ART)."""
from .arch import Architecture, Level, parse_architecture, strip_range
from .constraints import Constraints, LevelConstraints, ModelFlags, model_flags, parse_constraints
from .energy import EnergyTable, component_key, parse_art, parse_ert
from .mapping import LevelMapping, Mapping, parse_factors, parse_mapping, parse_permutation
from .problem import DataSpace, Problem, conv2d_problem, linear_problem, parse_problem
from .spec import Spec, dump_spec, load_spec, to_yaml
from .yamlio import TaggedNode, load_yaml_file, merge_sources

__all__ = ["Architecture", "Level", "parse_architecture", "strip_range", "EnergyTable", "component_key",
           "parse_art", "parse_ert", "LevelMapping", "Mapping", "parse_factors", "parse_mapping",
           "parse_permutation", "DataSpace", "Problem", "conv2d_problem", "linear_problem",
           "parse_problem", "Spec", "dump_spec", "load_spec", "to_yaml", "TaggedNode",
           "load_yaml_file", "merge_sources", "ModelFlags", "model_flags", "Constraints",
           "LevelConstraints", "parse_constraints"]
