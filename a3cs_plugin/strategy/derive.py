"""Derive the searched pair and re-cost it with the real engine + mapper.

* :func:`project_to_budget` — the most probable accelerator point (under softmax(beta)) whose area
  fits a budget;
* :func:`recost` — ``evaluate_network`` of an agent's layer problems on an accelerator YAML, per-layer
  mappings written to ``mappings/``, and the report numbers (energy_mJ, latency_ms, fps, area_mm2).
"""
from __future__ import annotations

import heapq
import math
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from a3cs_plugin.errors import ConfigError

MAX_ENUMERATED_POINTS = 20_000


def project_to_budget(space: Any, beta_probs: Mapping[str, Mapping[str, float]], area_mm2: float | None,
                      max_points: int = MAX_ENUMERATED_POINTS) -> tuple[dict[str, Any], bool]:
    """``(point, projected)``: the argmax point if it fits ``area_mm2`` (or there is no budget), else
    the point of highest joint probability (independent parameters) that fits, found by best-first
    enumeration.  No fitting point within ``max_points`` -> :class:`ConfigError`."""
    names = list(space.parameters)
    ranked = {}
    for n in names:
        choices = list(space.parameters[n].choices)
        logp = [math.log(max(beta_probs[n].get(str(c), 0.0), 1e-12)) for c in choices]
        order = sorted(range(len(choices)), key=lambda i: -logp[i])
        ranked[n] = [(logp[i], choices[i]) for i in order]
    point = lambda idx: {n: ranked[n][i][1] for n, i in zip(names, idx)}  # noqa: E731
    score = lambda idx: sum(ranked[n][i][0] for n, i in zip(names, idx))  # noqa: E731
    start = tuple(0 for _ in names)
    if area_mm2 is None or space.area(point(start)) <= area_mm2:
        return point(start), False
    heap = [(-score(start), start)]
    seen = {start}
    visited = 0
    while heap and visited < max_points:
        _, idx = heapq.heappop(heap)
        visited += 1
        p = point(idx)
        if space.area(p) <= area_mm2:
            return p, True
        for k, n in enumerate(names):
            if idx[k] + 1 < len(ranked[n]):
                nxt = idx[:k] + (idx[k] + 1,) + idx[k + 1:]
                if nxt not in seen:
                    seen.add(nxt)
                    heapq.heappush(heap, (-score(nxt), nxt))
    raise ConfigError("no accelerator of the template fits the area budget", key="area_budget_mm2",
                      expected=f"a budget >= the smallest design's area (searched {visited} points)",
                      got=area_mm2)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def recost(accelerator_yaml: str | Path, problems: Sequence[Any], *, out_dir: str | Path | None = None,
           metric: str = "edp", time_limit: float = 2.0, cache: str | Path | bool = True,
           area_mm2: float | None = None, mapping_prefix: str = "",
           max_evaluations: int | None = None) -> dict[str, Any]:
    """Re-cost ``problems`` on the accelerator with the real engine + mapper; returns report numbers.

    Writes one ``mappings/<prefix><index>_<layer>.yaml`` per layer when ``out_dir`` is given.
    """
    from a3cs_plugin.hardware.dnn_cost import evaluate_network

    res = evaluate_network([str(accelerator_yaml)], list(problems), metric=metric, time_limit=time_limit,
                           cache=cache, max_evaluations=max_evaluations)
    if out_dir is not None:
        mdir = Path(out_dir) / "mappings"
        mdir.mkdir(parents=True, exist_ok=True)
        for i, layer in enumerate(res.layers):
            doc = {"layer": layer.name, "count": layer.count, "macs": layer.macs, "cycles": layer.cycles,
                   "energy_pJ": layer.energy_pJ, "mapping": layer.mapping}
            path = mdir / f"{mapping_prefix}{i:02d}_{_safe(layer.name)}.yaml"
            path.write_text(yaml.safe_dump(doc, sort_keys=False, default_flow_style=None))
    area = area_mm2 if area_mm2 is not None else (res.area_um2 / 1e6 if res.area_um2 is not None else None)
    return {
        "energy_mJ": res.energy_pJ * 1e-9,
        "energy_pJ": res.energy_pJ,
        "cycles": res.cycles,
        "latency_ms": res.latency_s * 1e3,
        "fps": res.fps,
        "area_mm2": area,
        "edp_pJ_cycles": res.edp,
        "macs": res.macs,
        "layers": len(res.layers),
        "clock_source": res.clock_source,
    }


#: The search's metric names (``latency | energy | edp``) in the mapper's vocabulary, where
#: Timeloop calls latency ``delay``.
MAPPER_METRIC = {"latency": "delay", "energy": "energy", "edp": "edp"}


def mapper_metric(metric: str) -> str:
    if metric not in MAPPER_METRIC:
        raise ConfigError("unknown hardware metric", key="metric",
                          expected="latency, energy or edp", got=metric)
    return MAPPER_METRIC[metric]


def derive_pair(space: Any, module: Any, out_dir: str | Path, *, recost_pair: bool = True,
                metric: str = "edp", time_limit: float = 2.0, area_budget_mm2: float | None = None,
                teacher: Any = None, log: Any = None, max_evaluations: int | None = None) -> dict[str, Any]:
    """The searched pair of a finished one-shot ``module`` (an ``A3CSModule``): ``arch.json``, the
    accelerator (projected into ``area_budget_mm2``) as ``accelerator.yaml`` when the cost model
    has a design space, and -- with ``recost`` -- the derived agent and ``teacher`` re-costed on
    it with the real engine + mapper (``mappings/``, ``cost_cache.json``)."""
    import torch

    from a3cs_plugin.agents.arch import export_arch

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    arch = {str(k): str(v) for k, v in module.export().items()}   # NNI label objects -> plain str
    export_arch(arch, out / "arch.json", space)
    design = module.network_cost.cost_model.design_space()
    projected = False
    if design is not None:
        point, projected = project_to_budget(design, module.export_beta_probs(), area_budget_mm2)
        design.write(point, out / "accelerator.yaml")
    else:
        point = module.export_accelerator()
    derived: dict[str, Any] = {"surrogate": module.derived_cost()}
    teacher_r: dict[str, Any] | None = {} if teacher is not None else None
    area = float(design.area(point)) if design is not None else None
    if recost_pair and design is not None:
        if log:
            log("a3cs search: re-costing the derived agent"
                + (" and the teacher" if teacher is not None else "") + " with the mapper")
        kw = dict(out_dir=out, metric=mapper_metric(metric), time_limit=time_limit,
                  cache=out / "cost_cache.json", area_mm2=area, max_evaluations=max_evaluations)
        derived.update(recost(out / "accelerator.yaml", space.arch_problems(arch),
                              mapping_prefix="derived_", **kw))
        if teacher is not None:
            from a3cs_plugin.hardware.workload import problems_from_module
            probs = problems_from_module(teacher, torch.zeros((1,) + tuple(space.input_shape),
                                                              dtype=torch.uint8), prefix="teacher")
            teacher_r.update(recost(out / "accelerator.yaml", probs, mapping_prefix="teacher_", **kw))
    elif area is not None:
        derived["area_mm2"] = area
    return {"arch": arch, "accelerator": point, "area_projected": projected, "derived": derived,
            "teacher": teacher_r, "recosted": bool(recost_pair and design is not None)}
