"""Layer-pipelined accelerators (DNNBuilder-style): one compute stage per layer.

A *pipeline description* (``arch_specs/dnnbuilder_like.yaml``, top-level key ``pipeline``) is not a
Timeloop spec itself; it states the budgets and the rules from which :func:`plan_pipeline` builds,
for any network, one Timeloop v0.4 spec per layer (a *stage*):

* **Parallelism.** Stage ``i`` has ``CPF_i x KPF_i`` MACs: ``CPF`` input channels (a divisor of
  ``C``) on mesh Y, ``KPF`` output channels (a divisor of ``M``, times a divisor of ``G`` for grouped
  convolutions) on mesh X, fixed as Timeloop spatial factors.  Its cycles are therefore
  ``MACs / (CPF x KPF)`` (the buffers have no bandwidth limit).
* **Allocation** (``balance_stage_cycles``): every stage starts at one MAC; the stage with the most
  cycles (the bottleneck) is raised to its next-larger divisor pair, again and again, while the total
  stays within ``pe_budget`` and the area within ``area_budget_mm2``; it stops when the bottleneck
  cannot grow.  Greedy water-filling: PEs end up roughly in proportion to each layer's work.
* **Memory.** Each stage has a line buffer for its input of ``(S + Hstride) x W x C x G`` words (the
  kernel rows in use plus the rows being filled, capped at the input height; the full input vector
  for fully-connected layers).  Weights stay on chip (loaded once, resident across frames) stage by
  stage in order of reuse (MACs per weight) while line buffers plus resident weights fit
  ``onchip_bytes``; the other stages read their weights from DRAM straight into the MACs' weight
  registers.  Per-PE registers (accumulators, weight registers) belong to the PEs and are not
  counted in ``onchip_bytes`` (as eyeriss_like's scratchpads are not part of its global buffer).
* **Traffic.** Each stage spec has DRAM as its backing store, as any Timeloop spec.  In the
  pipeline, feature maps move stage to stage on chip, so the stage's DRAM energy for Inputs (all but
  the first stage), Outputs (all but the last stage and the heads that read the same input) and
  resident Weights (loaded once, not per frame) is removed; the on-chip transfer is the receiving
  line buffer's fill, which its own spec counts.  Reduction loops (C, R, S) are kept below the
  accumulators and DRAM may only iterate over frames and output rows/columns (N, P, Q), so no
  partial sum and no re-read of a streamed input is hidden by that removal.
* **Throughput.** FPS = 1 / (clock period x the slowest stage's cycles); latency = the sum of the
  stage latencies for one inference.

:func:`evaluate_pipeline` maps every stage with the built-in mapper and returns a
:class:`PipelineResult`; :func:`a3cs_plugin.hardware.dnn_cost.evaluate_network` and ``a3cs hw net``
call it for a pipeline description, and the result has :class:`NetworkResult`'s attributes
(``layers`` = stages, ``fps``, ``latency_s``, ``energy_pJ``, ``area_um2``, ``edp``).  Under a PE
budget the allocation is optimal for the slowest stage (no divisor choice within the budget has a
faster one).  Errors in the description raise :class:`ConfigError` naming the file and key.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..errors import A3CSError, ConfigError
from .workload import LayerProblem

__all__ = ["PipelineConfig", "StagePlan", "StageResult", "PipelineResult", "is_pipeline_file", "is_pipeline_source",
           "load_pipeline", "plan_pipeline", "stage_spec", "evaluate_pipeline", "clear_cache"]

RULES = ("balance_stage_cycles",)
LINE_BUFFER_RULES = ("kernel_plus_stride",)
WEIGHT_RULES = ("reuse_first",)
_MEMORY_CACHE: dict[str, dict] = {}


def clear_cache() -> None:
    """Forget the in-memory stage results."""
    _MEMORY_CACHE.clear()


# ----------------------------------------------------------------------------------------------------
# the description
@dataclass
class PipelineConfig:
    name: str = "pipeline"
    source: str = "<dict>"
    technology: str = "65nm"
    global_cycle_seconds: float = 1e-9
    datawidth: int = 8
    pe_budget: int | None = 168
    area_budget_mm2: float | None = None
    onchip_bytes: int = 131072
    rule: str = "balance_stage_cycles"
    line_buffer_rule: str = "kernel_plus_stride"
    weights_rule: str = "reuse_first"
    sram_class: str = "smartbuffer_SRAM"
    sram_width: int = 64
    accumulator_depth: int = 16
    accumulator_width: int = 16
    weight_register: bool = True
    dram_type: str = "LPDDR4"
    dram_width: int = 64
    multiplier_width: int = 8
    adder_width: int = 16

    def to_dict(self) -> dict:
        return asdict(self)


# key -> (attribute, kind); kind: int+, int0 (>= 0), float+, str, bool, choice tuple, or a nested dict
_SCHEMA: dict[str, Any] = {
    "version": (None, "version"),
    "name": ("name", "str"),
    "technology": ("technology", "str"),
    "global_cycle_seconds": ("global_cycle_seconds", "float+"),
    "datawidth": ("datawidth", "int+"),
    "budget": {
        "pe_budget": ("pe_budget", "int+|null"),
        "area_budget_mm2": ("area_budget_mm2", "float+|null"),
        "onchip_bytes": ("onchip_bytes", "int0"),
    },
    "allocation": {"rule": ("rule", RULES)},
    "line_buffer": {"rows": ("line_buffer_rule", LINE_BUFFER_RULES)},
    "weights": {"placement": ("weights_rule", WEIGHT_RULES)},
    "sram": {"class": ("sram_class", ("smartbuffer_SRAM", "SRAM")), "width": ("sram_width", "int+")},
    "accumulator": {"depth": ("accumulator_depth", "int+"), "width": ("accumulator_width", "int+")},
    "weight_register": ("weight_register", "bool"),
    "dram": {"type": ("dram_type", "str"), "width": ("dram_width", "int+")},
    "mac": {"multiplier_width": ("multiplier_width", "int+"), "adder_width": ("adder_width", "int+")},
}


def _coerce(value: Any, kind: Any, file: str, key: str) -> Any:
    def bad(expected: str):
        return ConfigError("bad value", file=file, key=key, expected=expected, got=value)

    if isinstance(kind, tuple):
        if value not in kind:
            raise bad("one of " + ", ".join(kind))
        return value
    nullable = kind.endswith("|null")
    kind = kind.removesuffix("|null")
    if value is None or (isinstance(value, str) and value.strip().lower() in ("null", "none")):
        if nullable:
            return None
        raise bad({"int+": "a positive integer", "int0": "an integer >= 0", "float+": "a positive number",
                   "str": "a string", "bool": "true or false", "version": "0.1"}[kind])
    if kind == "version":
        if str(value) not in ("0.1",):
            raise bad("0.1")
        return None
    if kind == "str":
        if not isinstance(value, str) or not value.strip():
            raise bad("a non-empty string")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if isinstance(value, bool):
        raise bad("a number")
    if kind in ("int+", "int0"):
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise bad("a positive integer" if kind == "int+" else "an integer >= 0") from None
        if not math.isfinite(f) or f != int(f) or (f <= 0 if kind == "int+" else f < 0):
            raise bad("a positive integer" if kind == "int+" else "an integer >= 0")
        return int(f)
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise bad("a positive number") from None
    if not math.isfinite(f) or f <= 0:
        raise bad("a positive number")
    return f


def _apply(cfg: PipelineConfig, data: Any, schema: dict, file: str, prefix: str) -> None:
    if not isinstance(data, dict):
        raise ConfigError("must be a mapping", file=file, key=prefix, expected="key: value pairs",
                          got=type(data).__name__)
    for k, v in data.items():
        key = f"{prefix}.{k}"
        if k not in schema:
            raise ConfigError("unknown key", file=file, key=key, expected="one of " + ", ".join(schema))
        entry = schema[k]
        if isinstance(entry, dict):
            _apply(cfg, v, entry, file, key)
            continue
        attr, kind = entry
        val = _coerce(v, kind, file, key)
        if attr is not None:
            setattr(cfg, attr, val)


def is_pipeline_data(data: Any) -> bool:
    return isinstance(data, dict) and "pipeline" in data


def is_pipeline_source(sources: Sequence[Any]) -> bool:
    """Whether ``sources`` (arch files or dicts) is one pipeline description; a pipeline description
    mixed with other files raises."""
    found = [s for s in sources if (is_pipeline_data(s) if isinstance(s, dict) else is_pipeline_file(s))]
    if found and len(sources) != 1:
        raise ConfigError("a pipeline description stands alone (its stage specs are generated)",
                          file=str(found[0]) if not isinstance(found[0], dict) else None, key="arch",
                          expected="only the pipeline description")
    return bool(found)


def is_pipeline_file(path: str | Path) -> bool:
    """Whether ``path`` is a YAML file with a top-level ``pipeline`` key (malformed YAML raises)."""
    p = Path(path)
    if p.suffix not in (".yaml", ".yml") or not p.is_file():
        return False
    from .spec import load_yaml_file
    return is_pipeline_data(load_yaml_file(str(p)))


def load_pipeline(src: str | Path | dict, override_keys: dict | None = None, **overrides: Any) -> PipelineConfig:
    """Read and check a pipeline description (file or dict).  ``overrides``: attribute name ->
    value (e.g. ``pe_budget=336``), applied after the file and checked the same way; errors name
    ``override_keys[attr]`` (e.g. a command-line flag) when given."""
    from .spec import load_yaml_file
    if isinstance(src, dict):
        file, data = "<dict>", src
    else:
        file, data = str(src), load_yaml_file(str(src))
    if not is_pipeline_data(data):
        raise ConfigError("not a pipeline description", file=file, key="pipeline",
                          expected="a top-level 'pipeline' mapping")
    extra = sorted(k for k in data if k != "pipeline")
    if extra:
        raise ConfigError("unexpected top-level key", file=file, key=extra[0],
                          expected="only 'pipeline' (stage specs are generated from it)")
    cfg = PipelineConfig(source=file)
    if data["pipeline"] is None:
        raise ConfigError("empty pipeline description", file=file, key="pipeline",
                          expected="key: value pairs")
    _apply(cfg, data["pipeline"], _SCHEMA, file, "pipeline")
    flat = {}
    for k, v in _SCHEMA.items():
        if isinstance(v, dict):
            for k2, (attr, kind) in v.items():
                flat[attr] = (f"pipeline.{k}.{k2}", kind)
        elif v[0] is not None:
            flat[v[0]] = (f"pipeline.{k}", v[1])
    for attr, val in overrides.items():
        if attr not in flat:
            raise ConfigError("unknown override", key=attr, expected="one of " + ", ".join(flat))
        key, kind = flat[attr]
        where = (override_keys or {}).get(attr)
        setattr(cfg, attr, _coerce(val, kind, None if where else file, where or key))
    from .energy.builtin import component_actions
    try:
        component_actions("mac", "intmac", {"multiplier_width": cfg.multiplier_width, "technology": cfg.technology})
    except A3CSError:
        raise ConfigError("technology outside the built-in energy/area tables", file=file,
                          key="pipeline.technology", expected="32nm..65nm, e.g. 65nm", got=cfg.technology) from None
    if cfg.sram_width % cfg.datawidth:
        raise ConfigError("SRAM width must be a multiple of the data width", file=file,
                          key="pipeline.sram.width", expected=f"a multiple of {cfg.datawidth}",
                          got=cfg.sram_width)
    return cfg


# ----------------------------------------------------------------------------------------------------
# the plan: parallel factors and memory per stage
def _divisors(n: int) -> list[int]:
    n = max(1, int(n))
    small = [d for d in range(1, int(math.isqrt(n)) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def _inst(lp: LayerProblem) -> dict:
    inst = lp.problem.get("problem", {}).get("instance", {})
    return {k: int(inst.get(k, 1)) for k in ("C", "M", "R", "S", "N", "P", "Q", "G", "Wstride", "Hstride",
                                             "Wdilation", "Hdilation")}


def _dims(lp: LayerProblem) -> list[str]:
    return list(lp.problem.get("problem", {}).get("shape", {}).get("dimensions", []))


@dataclass
class StagePlan:
    index: int
    name: str
    layer: LayerProblem
    cpf: int = 1                 # input-channel parallelism (C, mesh Y)
    kpf_m: int = 1               # output-channel parallelism (M, mesh X)
    kpf_g: int = 1               # group parallelism (G, mesh X)
    line_buffer_words: int = 0
    line_buffer_rows: int = 0
    weight_words: int = 0
    weights_resident: bool = False
    input_from_dram: bool = False
    output_to_dram: bool = False

    @property
    def kpf(self) -> int:
        return self.kpf_m * self.kpf_g

    @property
    def pes(self) -> int:
        return self.cpf * self.kpf

    @property
    def work(self) -> int:
        """MACs per inference (a layer run ``count`` times does all runs on its stage)."""
        return int(self.layer.macs) * int(self.layer.count)

    @property
    def est_cycles(self) -> float:
        return self.work / self.pes

    def options(self) -> list[tuple[int, int, int]]:
        """(cpf, kpf_m, kpf_g) choices, one per PE count (the most balanced CPF/KPF), ascending."""
        i = _inst(self.layer)
        best: dict[int, tuple] = {}
        for c in _divisors(i["C"]):
            for m in _divisors(i["M"]):
                for g in _divisors(i["G"]):
                    pes, k = c * m * g, m * g
                    score = (abs(math.log(c) - math.log(k)), -k, -m)
                    if pes not in best or score < best[pes][0]:
                        best[pes] = (score, (c, m, g))
        return [best[p][1] for p in sorted(best)]


def _line_buffer(lp: LayerProblem) -> tuple[int, int]:
    """(words, rows) of a stage's input line buffer: (S + Hstride) rows of W x C x G words."""
    i = _inst(lp)
    w = (i["P"] - 1) * i["Wstride"] + (i["R"] - 1) * i["Wdilation"] + 1
    h = (i["Q"] - 1) * i["Hstride"] + (i["S"] - 1) * i["Hdilation"] + 1
    rows = min(h, (i["S"] - 1) * i["Hdilation"] + 1 + i["Hstride"])
    return rows * w * i["C"] * i["G"], rows


def _weight_words(lp: LayerProblem) -> int:
    i = _inst(lp)
    return i["C"] * i["M"] * i["R"] * i["S"] * i["G"]


def _is_fc(lp: LayerProblem) -> bool:
    i = _inst(lp)
    return i["P"] == i["Q"] == i["R"] == i["S"] == 1


def _head_start(layers: Sequence[LayerProblem]) -> int:
    """Index of the first of the trailing heads: fully-connected stages that read the same input as
    the last stage (actor and critic); their outputs all leave the chip."""
    last = len(layers) - 1
    c_last = _inst(layers[last])["C"] * _inst(layers[last])["G"]
    j = last
    while j - 1 >= 1 and _is_fc(layers[j - 1]) and _is_fc(layers[last]) and \
            _inst(layers[j - 1])["C"] * _inst(layers[j - 1])["G"] == c_last:
        j -= 1
    return j


def _bytes(words: int, cfg: PipelineConfig) -> int:
    return int(math.ceil(words * cfg.datawidth / 8))


def _sram_depth(words: int, cfg: PipelineConfig) -> int:
    return max(1, int(math.ceil(words / (cfg.sram_width // cfg.datawidth))))


_AREA_CACHE: dict[str, float] = {}


def _component_area(name: str, cls: str, attrs: dict, cfg: PipelineConfig) -> float:
    from .energy.builtin import component_actions
    a = dict(attrs, technology=cfg.technology)
    key = json.dumps([cls, a], sort_keys=True, default=str)
    if key not in _AREA_CACHE:
        _AREA_CACHE[key] = float(component_actions(name, cls, a)[1])
    return _AREA_CACHE[key]


def _components(plan: StagePlan, cfg: PipelineConfig) -> list[tuple[str, str, dict, int]]:
    """(name, class, attributes, instances) of one stage below DRAM, outermost first."""
    out = [("line_buffer", cfg.sram_class,
            {"depth": _sram_depth(plan.line_buffer_words, cfg), "width": cfg.sram_width,
             "datawidth": cfg.datawidth}, 1)]
    if plan.weights_resident:
        out.append(("weight_buffer", cfg.sram_class,
                    {"depth": _sram_depth(plan.weight_words, cfg), "width": cfg.sram_width,
                     "datawidth": cfg.datawidth}, 1))
    out.append(("accumulator", "regfile", {"depth": cfg.accumulator_depth, "width": cfg.accumulator_width,
                                           "datawidth": cfg.accumulator_width}, plan.kpf))
    if cfg.weight_register:
        out.append(("weight_reg", "regfile", {"depth": 1, "width": cfg.datawidth, "datawidth": cfg.datawidth},
                    plan.pes))
    out.append(("mac", "intmac", {"multiplier_width": cfg.multiplier_width, "adder_width": cfg.adder_width},
                plan.pes))
    return out


def stage_area_um2(plan: StagePlan, cfg: PipelineConfig) -> float:
    """Area of one stage from the built-in tables (what the model reports for its spec)."""
    return sum(_component_area(n, c, a, cfg) * k for n, c, a, k in _components(plan, cfg))


def plan_pipeline(cfg: PipelineConfig, layers: Sequence[LayerProblem]) -> list[StagePlan]:
    """Stage per layer: memory placement, then PE allocation (see the module docstring)."""
    layers = list(layers)
    if not layers:
        raise ConfigError("no layer problems to evaluate", key="problems", expected="at least one layer")
    file = cfg.source
    heads = _head_start(layers)
    plans = []
    for i, lp in enumerate(layers):
        if not isinstance(lp, LayerProblem):
            raise ConfigError(f"problem {i} is not a LayerProblem", key="problems", got=type(lp).__name__)
        dims = _dims(lp)
        if not {"C", "M"} <= set(dims):
            raise ConfigError(f"layer {lp.name}: a pipeline stage needs a problem with C and M dimensions",
                              key="problems", expected="conv2d or linear problems", got=dims)
        words, rows = _line_buffer(lp)
        plans.append(StagePlan(index=i, name=lp.name, layer=lp, line_buffer_words=words, line_buffer_rows=rows,
                               weight_words=_weight_words(lp), input_from_dram=(i == 0),
                               output_to_dram=(i >= heads)))
    # memory: line buffers first, then resident weights by reuse
    used = sum(_bytes(p.line_buffer_words, cfg) for p in plans)
    if used > cfg.onchip_bytes:
        raise ConfigError(f"the line buffers alone need {used} bytes, more than the on-chip budget",
                          file=file, key="pipeline.budget.onchip_bytes", expected=f">= {used}",
                          got=cfg.onchip_bytes)
    order = sorted(plans, key=lambda p: (-(p.work / max(1, p.weight_words)), p.index))
    for p in order:
        b = _bytes(p.weight_words, cfg)
        if used + b <= cfg.onchip_bytes:
            p.weights_resident = True
            used += b
    # PEs: water-filling on the bottleneck stage
    n = len(plans)
    if cfg.pe_budget is not None and cfg.pe_budget < n:
        raise ConfigError(f"the PE budget is below the number of stages ({n}, one MAC each at least)",
                          file=file, key="pipeline.budget.pe_budget", expected=f">= {n}", got=cfg.pe_budget)
    areas = [stage_area_um2(p, cfg) for p in plans]
    area_budget = None if cfg.area_budget_mm2 is None else cfg.area_budget_mm2 * 1e6
    if area_budget is not None and sum(areas) > area_budget:
        raise ConfigError(f"the smallest pipeline (one MAC per stage) has {sum(areas) * 1e-6:.3f} mm^2, "
                          "more than the area budget", file=file, key="pipeline.budget.area_budget_mm2",
                          expected=f">= {sum(areas) * 1e-6:.3f}", got=cfg.area_budget_mm2)
    options = [p.options() for p in plans]
    pos = [0] * n
    total_pes, total_area = n, sum(areas)
    while True:
        b = max(range(n), key=lambda k: (plans[k].est_cycles, -k))
        if pos[b] + 1 >= len(options[b]):
            break
        c, m, g = options[b][pos[b] + 1]
        new_pes = total_pes - plans[b].pes + c * m * g
        if cfg.pe_budget is not None and new_pes > cfg.pe_budget:
            break
        trial = StagePlan(**{**plans[b].__dict__, "cpf": c, "kpf_m": m, "kpf_g": g})
        a = stage_area_um2(trial, cfg)
        if area_budget is not None and total_area - areas[b] + a > area_budget:
            break
        plans[b].cpf, plans[b].kpf_m, plans[b].kpf_g = c, m, g
        total_area += a - areas[b]
        areas[b], total_pes, pos[b] = a, new_pes, pos[b] + 1
    return plans


# ----------------------------------------------------------------------------------------------------
# one stage as a Timeloop v0.4 spec
def stage_spec(cfg: PipelineConfig, plan: StagePlan) -> dict:
    """The stage's Timeloop v0.4 architecture (with its constraints) and problem, as a dict."""
    from .spec.yamlio import TaggedNode as T

    dims = _dims(plan.layer)

    def unit(names):
        return [f"{d}=1" for d in dims if d in names]

    red = ("C", "R", "S")
    comps = {n: (c, a) for n, c, a, _ in _components(plan, cfg)}
    nodes = [
        T("Container", {"name": "system", "attributes": {
            "technology": cfg.technology, "global_cycle_seconds": cfg.global_cycle_seconds,
            "datawidth": cfg.datawidth}}),
        T("Component", {"name": "DRAM", "class": "DRAM",
                        "attributes": {"type": cfg.dram_type, "width": cfg.dram_width, "datawidth": cfg.datawidth},
                        # the stream in / out: frames and output rows/columns only
                        "constraints": {"temporal": {"factors": unit(("C", "M", "R", "S", "G"))}}}),
        T("Container", {"name": f"stage{plan.index}"}),
        T("Component", {"name": "line_buffer", "class": comps["line_buffer"][0], "attributes": comps["line_buffer"][1],
                        "constraints": {"dataspace": {"keep": ["Inputs"], "bypass": ["Weights", "Outputs"]},
                                        "temporal": {"factors": unit(red)}}}),
    ]
    if plan.weights_resident:
        nodes.append(T("Component", {
            "name": "weight_buffer", "class": comps["weight_buffer"][0], "attributes": comps["weight_buffer"][1],
            "constraints": {"dataspace": {"keep": ["Weights"], "bypass": ["Inputs", "Outputs"]},
                            "temporal": {"factors": unit(red)}}}))
    x_dims = [d for d in ("M", "G") if d in dims]
    nodes += [
        T("Container", {"name": "lane", "spatial": {"meshX": plan.kpf}, "constraints": {"spatial": {
            "factors": [f"M={plan.kpf_m}"] + ([f"G={plan.kpf_g}"] if "G" in dims else [])
            + [f"{d}=1" for d in dims if d not in x_dims],
            "permutation": x_dims + [d for d in dims if d not in x_dims], "split": len(dims)}}}),
        T("Component", {"name": "accumulator", "class": "regfile", "attributes": comps["accumulator"][1],
                        "constraints": {"dataspace": {"keep": ["Outputs"], "bypass": ["Inputs", "Weights"]}}}),
        T("Container", {"name": "multiplier", "spatial": {"meshY": plan.cpf}, "constraints": {"spatial": {
            "factors": [f"C={plan.cpf}"] + [f"{d}=1" for d in dims if d != "C"],
            "permutation": ["C"] + [d for d in dims if d != "C"], "split": 0}}}),
    ]
    if cfg.weight_register:
        nodes.append(T("Component", {"name": "weight_reg", "class": "regfile", "attributes": comps["weight_reg"][1],
                                     "constraints": {"dataspace": {"keep": ["Weights"],
                                                                   "bypass": ["Inputs", "Outputs"]}}}))
    nodes.append(T("Component", {"name": "mac", "class": "intmac", "attributes": comps["mac"][1]}))
    return {"architecture": {"version": 0.4, "nodes": nodes}, "problem": plan.layer.problem["problem"]}


# ----------------------------------------------------------------------------------------------------
# results
@dataclass
class StageResult:
    index: int
    name: str
    macs: int
    count: int
    cpf: int
    kpf: int
    pes: int
    cycles: float                # per run of the layer (mapper)
    energy_pJ: float             # per run, as the pipeline sees it (inter-stage DRAM traffic removed)
    spec_energy_pJ: float        # per run, the stage spec on its own (with its DRAM traffic)
    dram_removed_pJ: float
    levels_pJ: dict
    area_um2: float
    line_buffer_rows: int
    line_buffer_bytes: int
    weight_bytes: int
    weights_resident: bool
    input_from: str
    output_to: str
    mapping: Any = None
    cached: bool = False
    search_seconds: float = 0.0
    bottleneck: bool = False

    @property
    def stage_cycles(self) -> float:
        """Cycles the stage spends per inference (all ``count`` runs)."""
        return self.cycles * self.count


@dataclass
class PipelineResult:
    stages: list[StageResult]
    config: PipelineConfig
    metric: str

    @property
    def cycle_seconds(self) -> float:
        return self.config.global_cycle_seconds

    # the attributes of a NetworkResult, so that code written for evaluate_network works unchanged
    @property
    def layers(self) -> list[StageResult]:
        return self.stages

    @property
    def clock_source(self) -> str:
        return "pipeline.global_cycle_seconds"

    @property
    def arch_files(self) -> list[str]:
        return [self.config.source]

    @property
    def edp(self) -> float:
        """Energy x latency cycles (pJ x cycles), as NetworkResult.edp."""
        return self.energy_pJ * self.cycles

    @property
    def interval_cycles(self) -> float:
        return max(s.stage_cycles for s in self.stages)

    @property
    def bottleneck(self) -> StageResult:
        return max(self.stages, key=lambda s: (s.stage_cycles, -s.index))

    @property
    def cycles(self) -> float:
        """Latency of one inference in cycles: the sum of the stage latencies."""
        return float(sum(s.stage_cycles for s in self.stages))

    @property
    def latency_s(self) -> float:
        return self.cycles * self.cycle_seconds

    @property
    def fps(self) -> float:
        return 1.0 / (self.interval_cycles * self.cycle_seconds)

    @property
    def energy_pJ(self) -> float:
        return float(sum(s.energy_pJ * s.count for s in self.stages))

    @property
    def area_um2(self) -> float:
        return float(sum(s.area_um2 for s in self.stages))

    @property
    def macs(self) -> int:
        return int(sum(s.macs * s.count for s in self.stages))

    @property
    def pes(self) -> int:
        return int(sum(s.pes for s in self.stages))

    @property
    def onchip_bytes_used(self) -> int:
        return int(sum(s.line_buffer_bytes + (s.weight_bytes if s.weights_resident else 0) for s in self.stages))

    @property
    def levels_pJ(self) -> dict:
        out: dict[str, float] = {}
        for s in self.stages:
            for k, v in s.levels_pJ.items():
                out[k] = out.get(k, 0.0) + float(v) * s.count
        return out

    def pipeline_summary(self) -> dict:
        b = self.bottleneck
        c = self.config
        return {"design": c.name, "pe_budget": c.pe_budget, "pes": self.pes,
                "area_budget_mm2": c.area_budget_mm2, "onchip_bytes": c.onchip_bytes,
                "onchip_bytes_used": self.onchip_bytes_used, "interval_cycles": self.interval_cycles,
                "bottleneck_stage": b.index, "bottleneck_layer": b.name, "stages": len(self.stages),
                "allocation": c.rule, "technology": c.technology, "datawidth": c.datawidth,
                "clock_hz": round(1.0 / c.global_cycle_seconds, 3),
                "utilization": self.macs / (self.pes * self.interval_cycles)}

    def totals(self) -> dict:
        return {"energy_pJ": self.energy_pJ, "cycles": self.cycles, "latency_s": self.latency_s,
                "fps": self.fps, "area_um2": self.area_um2, "macs": self.macs, "levels_pJ": self.levels_pJ,
                "cycle_seconds": self.cycle_seconds, "clock_source": self.clock_source, "edp": self.edp,
                "metric": self.metric, "layers": len(self.stages),
                "searched": sum(1 for s in self.stages if not s.cached), **self.pipeline_summary()}

    def to_dict(self) -> dict:
        return {"totals": self.totals(), "config": self.config.to_dict(),
                "stages": [asdict(s) for s in self.stages]}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, default=str)

    def to_markdown(self) -> str:
        lines = ["| stage | layer | MACs | CPF x KPF | PEs | cycles | energy (pJ) | line buffer (B) | weights |",
                 "|---:|---|---:|---:|---:|---:|---:|---:|---|"]
        for s in self.stages:
            w = f"on chip {s.weight_bytes:,} B" if s.weights_resident else f"DRAM {s.weight_bytes:,} B"
            mark = " **(bottleneck)**" if s.bottleneck else ""
            lines.append(f"| {s.index} | {s.name}{mark} | {s.macs * s.count:,} | {s.cpf} x {s.kpf} | {s.pes} | "
                         f"{s.stage_cycles:,.0f} | {s.energy_pJ * s.count:,.1f} | {s.line_buffer_bytes:,} | {w} |")
        t = self.totals()
        lines.append(f"| | **total** | {t['macs']:,} | | {t['pes']} | {t['cycles']:,.0f} | {t['energy_pJ']:,.1f} | "
                     f"{t['onchip_bytes_used']:,} | |")
        lines.append("")
        pe_b = "none" if t["pe_budget"] is None else t["pe_budget"]
        lines.append(f"{t['fps']:,.1f} FPS (interval {t['interval_cycles']:,.0f} cycles, bottleneck stage "
                     f"{t['bottleneck_stage']} {t['bottleneck_layer']}), latency {t['latency_s'] * 1e3:.4f} ms, "
                     f"energy {t['energy_pJ'] * 1e-9:.4f} mJ, area {t['area_um2'] * 1e-6:.3f} mm^2, "
                     f"{t['pes']} of {pe_b} PEs, on-chip {t['onchip_bytes_used']:,} of {t['onchip_bytes']:,} B, "
                     f"{self.config.technology}, {self.config.datawidth}-bit, metric {self.metric}")
        return "\n".join(lines)

    def plot(self, path: str | Path) -> Path:
        """Stage cycles (bottleneck marked) and energy by level per stage, as PNG."""
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = [f"{s.index}:{s.name}" for s in self.stages]
        fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(max(6.0, 0.4 * len(names) + 2), 7), sharex=True)
        ax1.bar(range(len(names)), [s.stage_cycles for s in self.stages],
                color=["tab:red" if s.bottleneck else "tab:blue" for s in self.stages])
        for i, s in enumerate(self.stages):
            ax1.text(i, s.stage_cycles, f"{s.pes}", ha="center", va="bottom", fontsize=7)
        ax1.set_ylabel("cycles per inference")
        c = self.config
        budget = "no PE budget" if c.pe_budget is None else f"PE budget {c.pe_budget}"
        area = "" if c.area_budget_mm2 is None else f", area budget {c.area_budget_mm2:g} mm^2"
        ax1.set_title(f"{c.name} ({c.technology}, {c.datawidth}-bit, {budget}{area})\n{self.fps:,.0f} FPS, "
                      f"{self.pes} PEs (on bars), {self.area_um2 * 1e-6:.2f} mm^2; bottleneck in red", fontsize=9)
        levels: list[str] = []
        for s in self.stages:
            levels += [k for k in s.levels_pJ if k not in levels]
        bottom = [0.0] * len(names)
        for lev in levels:
            vals = [float(s.levels_pJ.get(lev, 0.0)) * s.count for s in self.stages]
            ax2.bar(range(len(names)), vals, bottom=bottom, label=lev)
            bottom = [b + v for b, v in zip(bottom, vals)]
        ax2.set_ylabel("energy per inference (pJ)")
        ax2.set_xticks(range(len(names)))
        ax2.set_xticklabels(names, rotation=75, ha="right", fontsize=7)
        ax2.legend(fontsize=7)
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return path

    def write_stage_specs(self, folder: str | Path) -> list[Path]:
        """Every stage as a Timeloop v0.4 file (architecture, problem, the mapper's mapping)."""
        from .spec import to_yaml
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        out = []
        for s, plan in zip(self.stages, self._plans):
            d = stage_spec(self.config, plan)
            if s.mapping is not None:
                d["mapping"] = s.mapping
            safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in s.name)
            p = folder / f"stage{s.index:02d}_{safe}.yaml"
            p.write_text(f"# stage {s.index} ({s.name}) of pipeline {self.config.name}: CPF {s.cpf} x KPF {s.kpf}\n"
                         + to_yaml(_plain(d)))
            out.append(p)
        return out

    _plans: list = field(default_factory=list, repr=False)


def _plain(obj: Any) -> Any:
    from .spec.yamlio import TaggedNode
    if isinstance(obj, TaggedNode):
        return TaggedNode(obj.tag, {k: _plain(v) for k, v in obj.items()})
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


# ----------------------------------------------------------------------------------------------------
def _spec_hash(d: dict) -> str:
    def enc(o):
        from .spec.yamlio import TaggedNode
        if isinstance(o, TaggedNode):
            return {"!": o.tag, **{k: enc(v) for k, v in o.items()}}
        if isinstance(o, dict):
            return {k: enc(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [enc(v) for v in o]
        return o
    return hashlib.sha1(json.dumps(enc(d), sort_keys=True, default=str).encode()).hexdigest()[:20]


def evaluate_pipeline(cfg: PipelineConfig | str | Path | dict, problems: Sequence[LayerProblem],
                      metric: str = "edp", time_limit: float = 3.0, seed: int = 0,
                      cache: bool = True, max_evaluations: int | None = None) -> PipelineResult:
    """Plan the pipeline for ``problems``, map every stage spec with the built-in mapper and combine
    (FPS from the slowest stage, latency the sum, energy with inter-stage DRAM traffic removed)."""
    from .mapper import search
    from .model import engine
    from .dnn_cost import _budget, _budget_key
    from .spec import load_spec, frontend

    if not isinstance(cfg, PipelineConfig):
        cfg = load_pipeline(cfg)
    if time_limit <= 0:
        raise ConfigError("time limit must be positive", key="time_limit", expected="seconds > 0", got=time_limit)
    plans = plan_pipeline(cfg, problems)
    semantics = f"{engine.halo_rule()}|{engine.LINK_TRANSFERS}|{frontend.SPLIT_SEMANTICS}"
    stages = []
    for plan in plans:
        d = stage_spec(cfg, plan)
        key = hashlib.sha1(f"{_spec_hash(d)}|{semantics}|{metric}|{_budget_key(time_limit, max_evaluations)}"
                           f"|{int(seed)}".encode()).hexdigest()[:20]
        entry = _MEMORY_CACHE.get(key) if cache else None
        cached = entry is not None
        if entry is None:
            t0 = time.perf_counter()
            try:
                spec = load_spec([d])
                mr = search(spec, metric=metric, seed=seed, **_budget(time_limit, max_evaluations))
            except A3CSError as exc:
                raise type(exc)(f"{cfg.source}: stage {plan.index} ({plan.name}): {exc.message}") from None
            r = mr.result
            per_level = {k: {ds: float(v["energy_pJ"]) for ds, v in lv.get("dataspaces", {}).items()}
                         for k, lv in r.per_level.items()}
            entry = {"cycles": float(r.cycles), "energy_pJ": float(r.energy_pJ),
                     "levels_pJ": {str(k): float(v) for k, v in r.levels_pJ.items()},
                     "dram_ds_pJ": per_level.get("DRAM", {}), "area_um2": float(r.area_um2 or 0.0),
                     "mapping": mr.mapping_list(), "search_seconds": time.perf_counter() - t0}
            if cache:
                _MEMORY_CACHE[key] = entry
        dram = entry["dram_ds_pJ"]
        removed = 0.0
        if not plan.input_from_dram:
            removed += dram.get("Inputs", 0.0)
        if not plan.output_to_dram:
            removed += dram.get("Outputs", 0.0)
        if plan.weights_resident:
            removed += dram.get("Weights", 0.0)
        levels = dict(entry["levels_pJ"])
        if "DRAM" in levels:
            levels["DRAM"] = max(0.0, levels["DRAM"] - removed)
        stages.append(StageResult(
            index=plan.index, name=plan.name, macs=int(plan.layer.macs), count=int(plan.layer.count),
            cpf=plan.cpf, kpf=plan.kpf, pes=plan.pes, cycles=entry["cycles"],
            energy_pJ=entry["energy_pJ"] - removed, spec_energy_pJ=entry["energy_pJ"], dram_removed_pJ=removed,
            levels_pJ=levels, area_um2=entry["area_um2"], line_buffer_rows=plan.line_buffer_rows,
            line_buffer_bytes=_bytes(plan.line_buffer_words, cfg), weight_bytes=_bytes(plan.weight_words, cfg),
            weights_resident=plan.weights_resident,
            input_from="DRAM" if plan.input_from_dram else "previous stage (on chip)",
            output_to="DRAM" if plan.output_to_dram else "next stage (on chip)",
            mapping=entry["mapping"], cached=cached, search_seconds=0.0 if cached else entry["search_seconds"]))
    res = PipelineResult(stages=stages, config=cfg, metric=metric, _plans=plans)
    res.bottleneck.bottleneck = True
    return res
