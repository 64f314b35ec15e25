"""The A3C-S algorithm's settings as one frozen, validated object.

:class:`SearchSettings` is built once -- from a run config by
:meth:`a3cs_plugin.cosearch.config.RunConfig.search_settings`, or from the keyword arguments of
:class:`~a3cs_plugin.strategy.a3cs.A3CS` in the NNI way -- checked in ``__post_init__``, and read
as it is by the strategy and its one-shot module.  One vocabulary throughout: ``hw_lambda`` (the
config's ``lambda``), ``fps_target`` (a ``(low, high)`` band; the config's number ``x`` means
``(0.9x, 1.1x)``), metrics ``latency | energy | edp`` (Timeloop's ``delay`` is spoken only where
Timeloop YAML and the mapper are, see :func:`a3cs_plugin.strategy.derive.mapper_metric`).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from a3cs_plugin.errors import ConfigError

MODES = ("one-level", "bi-level", "direct-nas")
SUPERNETS = ("single-path", "mixed")
BALANCES = ("normalize", "none")
METRICS = ("latency", "energy", "edp")


def _finite(name: str, v: Any, *, low: float | None = None, strict: bool = False, optional: bool = False):
    if v is None and optional:
        return
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if ok and low is not None:
        ok = v > low if strict else v >= low
    if not ok:
        bound = "" if low is None else f" {'>' if strict else '>='} {low:g}"
        raise ConfigError(f"{name} must be a finite number{bound}", key=name, got=v)


@dataclass(frozen=True)
class SearchSettings:
    """Everything the A3C-S strategy and its one-shot module need besides the cost model."""

    hw_lambda: float = 0.1
    metric: str = "edp"
    mode: str = "one-level"                 # one-level | bi-level | direct-nas (one-level, no distillation)
    distill: bool = True
    supernet: str = "single-path"
    arc_learning_rate: float = 3e-3
    beta_learning_rate: float | None = None  # default: arc_learning_rate
    tau_init: float = 5.0
    tau_min: float = 0.5
    fps_target: tuple[float, float] | None = None
    lambda_rate: float = 0.05
    gradient_clip_val: float | None = 0.5
    log_every: int = 1
    warmup_epochs: int = 0
    warmup_frac: float = 0.2
    warmup_updates: int | None = None
    total_updates: int | None = None
    area_budget_mm2: float | None = None
    area_weight: float = 1.0
    balance: str = "normalize"
    beta_samples: int = 4
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.mode not in MODES:
            raise ConfigError("unknown search mode", key="mode", expected=f"one of {MODES}", got=self.mode)
        if self.supernet not in SUPERNETS:
            raise ConfigError("unknown supernet execution", key="supernet", expected=f"one of {SUPERNETS}",
                              got=self.supernet)
        if self.balance not in BALANCES:
            raise ConfigError("unknown gradient balance", key="balance", expected=f"one of {BALANCES}",
                              got=self.balance)
        if self.metric not in METRICS:
            raise ConfigError("unknown hardware metric", key="metric", expected=f"one of {METRICS}",
                              got=self.metric)
        if not isinstance(self.hw_lambda, (int, float)) or isinstance(self.hw_lambda, bool) \
                or not math.isfinite(self.hw_lambda) or self.hw_lambda < 0:
            raise ConfigError("lambda must be a finite number >= 0", key="lambda", got=self.hw_lambda)
        band = self.fps_target
        if band is not None:
            band = tuple(band) if isinstance(band, (list, tuple)) else band
            if not (isinstance(band, tuple) and len(band) == 2
                    and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
                            for x in band) and 0 < band[0] <= band[1]):
                raise ConfigError("bad FPS band", key="fps_target", expected="[low, high] with 0 < low <= high",
                                  got=self.fps_target)
            object.__setattr__(self, "fps_target", (float(band[0]), float(band[1])))
        _finite("arc_learning_rate", self.arc_learning_rate, low=0, strict=True)
        _finite("beta_learning_rate", self.beta_learning_rate, low=0, strict=True, optional=True)
        _finite("tau_init", self.tau_init, low=0, strict=True)
        _finite("tau_min", self.tau_min, low=0, strict=True)
        if self.tau_min > self.tau_init:
            raise ConfigError("tau_min must be <= tau_init", key="tau_min", got=self.tau_min)
        _finite("lambda_rate", self.lambda_rate, low=0, strict=True)
        _finite("warmup_frac", self.warmup_frac, low=0)
        _finite("area_budget_mm2", self.area_budget_mm2, low=0, strict=True, optional=True)
        _finite("area_weight", self.area_weight, low=0)
        if not isinstance(self.beta_samples, int) or self.beta_samples < 1:
            raise ConfigError("beta_samples must be an integer >= 1", key="beta_samples", got=self.beta_samples)
        object.__setattr__(self, "fixed", MappingProxyType(dict(self.fixed or {})))

    @property
    def distilling(self) -> bool:
        """Distillation on: A3C-S; off: Direct-NAS."""
        return bool(self.distill) and self.mode != "direct-nas"

    @property
    def optimisation(self) -> str:
        """``one-level`` or ``bi-level`` (Direct-NAS optimises one-level)."""
        return "one-level" if self.mode == "direct-nas" else self.mode

    def replace(self, **changes: Any) -> "SearchSettings":
        return dataclasses.replace(self, **{**changes, "fixed": dict(changes.get("fixed", self.fixed))})

    @classmethod
    def fields(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))


__all__ = ["SearchSettings", "MODES", "SUPERNETS", "BALANCES", "METRICS"]
