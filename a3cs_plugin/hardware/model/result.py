"""Scalar evaluation: ``evaluate(spec, mapping) -> Result`` (a batch of one through the batched model)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from a3cs_plugin.errors import MappingError

from .engine import batch_from_mapping, evaluate_arrays, tables_for, validate_mapping


@dataclass
class Result:
    """Timeloop-style statistics of one mapping."""

    cycles: int
    computes: int
    energy_pJ: float
    levels_pJ: dict
    area_um2: float | None
    energy_source: str
    utilization: float
    per_level: dict = field(default_factory=dict)
    valid: bool = True

    @property
    def edp(self) -> float:
        return self.energy_pJ * self.cycles

    def summary(self) -> dict:
        return {"cycles": self.cycles, "computes": self.computes, "energy_pJ": self.energy_pJ,
                "levels_pJ": dict(self.levels_pJ), "area_um2": self.area_um2,
                "energy_source": self.energy_source}

    def to_json(self, **kw) -> str:
        d = self.summary()
        d["utilization"] = self.utilization
        d["per_level"] = self.per_level
        return json.dumps(d, **kw)


def evaluate(spec, mapping=None, check: bool = True) -> Result:
    """Evaluate ``mapping`` (``spec.mapping`` when None) on ``spec`` with Timeloop's dense model.

    With ``check`` (default) an impossible mapping raises :class:`MappingError`.
    """
    mapping = spec.mapping if mapping is None else mapping
    if mapping is None:
        raise MappingError("no mapping given", file=spec.source, key="mapping",
                           expected="a mapping section or --mapping file")
    if check:
        validate_mapping(spec, mapping)
    batch = batch_from_mapping(spec, mapping)
    return result_from_arrays(spec, evaluate_arrays(spec, batch), 0)


def result_from_arrays(spec, full: dict, i: int) -> Result:
    """Build a :class:`Result` from row ``i`` of :func:`evaluate_arrays` output."""
    t = tables_for(spec)
    arch, prob = spec.arch, spec.problem
    levels_pJ = {arch.compute.name: float(full["levels_pJ"][i, -1])}
    per_level = {}
    for li, lv in enumerate(arch.levels):
        if lv.is_dummy:
            continue
        levels_pJ[lv.name] = float(full["levels_pJ"][i, li])
        ds = {}
        for s, name in enumerate(prob.ds_names):
            if full["utilized_capacity"][i, li, s] == 0 and full["reads"][i, li, s] == 0:
                continue
            ds[name] = {"reads": int(full["reads"][i, li, s]), "fills": int(full["fills"][i, li, s]),
                        "updates": int(full["updates"][i, li, s]),
                        "utilized_capacity": int(full["utilized_capacity"][i, li, s]),
                        "utilized_instances": int(full["utilized_instances"][i, li]),
                        "energy_pJ": float(full["energy_ds_pJ"][i, li, s])}
        per_level[lv.name] = {"dataspaces": ds, "leak_pJ": float(full["leak_pJ"][i, li]),
                              "cycles": int(full["level_cycles"][i, li]),
                              "energy_pJ": float(full["levels_pJ"][i, li])}
    per_level[arch.compute.name] = {"computes": int(full["computes"][i]),
                                    "utilized_instances": int(full["mac_utilized"][i]),
                                    "energy_pJ": float(full["levels_pJ"][i, -1])}
    return Result(cycles=int(full["cycles"][i]), computes=int(full["computes"][i]),
                  energy_pJ=float(full["energy_pJ"][i]), levels_pJ=levels_pJ, area_um2=t.area,
                  energy_source=t.energy_source, utilization=float(full["utilization"][i]),
                  per_level=per_level, valid=bool(full["valid"][i]))
