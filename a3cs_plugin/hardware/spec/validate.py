"""Typed checks of Timeloop inputs that the parsers otherwise take as they come: the ``mapper``
section (pydantic, as Timeloop's mapper reads it) and the numeric component attributes
(``meshX``/``meshY``, ``depth``, ``width``, ``datawidth``, ``n_banks``, ... >= 1)."""
from __future__ import annotations

import math
import numbers
from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from a3cs_plugin.errors import SpecError

# the checks of constraints at load time live with the one constraint parser
from .constraints import check_constraints  # noqa: F401

METRICS = ("edp", "energy", "delay", "last_level_accesses", "last-level-accesses")
_Metric = Literal["edp", "energy", "delay", "last_level_accesses", "last-level-accesses"]


class MapperSettings(BaseModel):
    """Timeloop v0.4 ``mapper`` keys (timeloopfe's ``Mapper``), strictly typed."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    version: Optional[Union[float, str]] = None
    optimization_metrics: Optional[list[_Metric]] = None
    optimization_metric: Optional[list[_Metric]] = None      # older spelling
    algorithm: Optional[Literal["random", "exhaustive", "linear_pruned", "random_pruned", "hybrid"]] = None
    num_threads: Optional[StrictInt] = Field(None, ge=1)
    timeout: Optional[StrictInt] = Field(None, ge=0)
    victory_condition: Optional[StrictInt] = Field(None, ge=0)
    search_size: Optional[StrictInt] = Field(None, ge=0)
    sync_interval: Optional[StrictInt] = Field(None, ge=0)
    log_interval: Optional[StrictInt] = Field(None, ge=0)
    max_permutations_per_if_visit: Optional[StrictInt] = Field(None, ge=1)
    max_temporal_loops_in_a_mapping: Optional[StrictInt] = Field(None, ge=-1)
    out_prefix: Optional[str] = None
    live_status: Optional[StrictBool] = None
    diagnostics: Optional[StrictBool] = None
    log_stats: Optional[StrictBool] = None
    log_suboptimal: Optional[StrictBool] = None
    log_all_mappings: Optional[StrictBool] = None
    log_mappings_yaml: Optional[StrictBool] = None
    log_mappings_verbose: Optional[StrictBool] = None
    log_oaves: Optional[StrictBool] = None
    log_oave_mappings: Optional[StrictBool] = None
    log_oaves_mappings: Optional[StrictBool] = None
    penalize_consecutive_bypass_fails: Optional[StrictBool] = None
    emit_whoop_nest: Optional[StrictBool] = None
    filter_revisits: Optional[StrictBool] = None


def check_mapper(mapper, file: str) -> dict:
    """The ``mapper`` section as given (a dict), or SpecError naming the first bad key."""
    if mapper is None:
        return {}
    if not isinstance(mapper, dict):
        raise SpecError("mapper must be a mapping", file=file, key="mapper",
                        expected="{optimization_metrics: [edp], num_threads: N, ...}", got=mapper)
    try:
        MapperSettings.model_validate(dict(mapper))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = err.get("msg", "invalid value")
        if err.get("type") == "extra_forbidden":
            msg = "unknown mapper key"
        expected = None
        if loc.startswith("optimization_metric"):
            expected = "a list of " + ", ".join(METRICS[:4])
        raise SpecError(msg, file=file, key=f"mapper.{loc}", expected=expected,
                        got=err.get("input") if err.get("type") != "extra_forbidden" else None) from None
    return mapper


# attribute name -> (integer?, minimum)
_COUNTS = ("meshX", "meshY", "depth", "memory_depth", "width", "memory_width", "datawidth",
           "word-bits", "word_bits", "n_banks", "block_size", "block-size", "n_words",
           "cluster_size", "cluster-size", "multiplier_width", "adder_width", "n_rdwr_ports",
           "n_rd_ports", "n_wr_ports")
_POSITIVE = ("read_bandwidth", "read-bandwidth", "write_bandwidth", "write-bandwidth",
             "shared_bandwidth", "shared-bandwidth", "size", "entries", "sizeKB",
             "multiple_buffering", "multiple-buffering", "global_cycle_seconds")


def check_attributes(attrs: dict, file: str, key: str) -> None:
    """Counts and sizes are integers >= 1, bandwidths and capacities finite numbers > 0, and
    ``min_utilization`` in [0, 1]; ``None`` means "not given". Raises SpecError naming the key."""
    for name, v in attrs.items():
        if v is None:
            continue
        where = f"{key}.{name}"
        if name in _COUNTS:
            ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) \
                and float(v) == int(v) and v >= 1
            if not ok:
                raise SpecError("not a positive integer", file=file, key=where,
                                expected="an integer >= 1", got=v)
        elif name in _POSITIVE:
            ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) and v > 0
            if not ok:
                raise SpecError("not a positive number", file=file, key=where,
                                expected="a finite number > 0", got=v)
        elif name in ("min_utilization", "min-utilization"):
            ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and 0 <= v <= 1
            if not ok:
                raise SpecError("not a fraction", file=file, key=where, expected="a number in [0, 1]",
                                got=v)


