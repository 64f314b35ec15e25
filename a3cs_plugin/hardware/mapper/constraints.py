"""Old import names of the mapper's constraint parsing; the one parser is
:mod:`a3cs_plugin.hardware.spec.constraints` (semantics documented there)."""
from a3cs_plugin.hardware.spec.constraints import (LevelConstraints, permutation_tokens,
                                                   split_orientation)
from a3cs_plugin.hardware.spec.constraints import parse_targets as _parse_targets
from a3cs_plugin.hardware.spec.constraints import constraint_factors as parse_factors
from a3cs_plugin.hardware.spec.constraints import constraint_permutation as parse_permutation


def parse_targets(targets, level_names, dims, bounds, spaces, where: str = "constraints", file=None):
    """``(levels, min_utilization)`` of constraint ``targets`` (the map-space part of
    :func:`a3cs_plugin.hardware.spec.constraints.parse_targets`)."""
    return _parse_targets(targets, level_names, dims, bounds, spaces, where, file).map_space()


__all__ = ["LevelConstraints", "parse_targets", "parse_factors", "parse_permutation", "permutation_tokens",
           "split_orientation"]
