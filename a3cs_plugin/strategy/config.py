"""Typed configuration of ``a3cs search`` (pydantic), read from YAML.

Example (``examples/quick_pong.yaml``)::

    game: Pong
    teacher: Pong            # shipped teacher name or checkpoint path; null: no distillation
    frames: 100000           # environment frames of the search (all rollouts)
    mode: one-level          # one-level | bi-level | direct-nas
    algo: ppo                # ppo | a2c
    hardware:
      template: eyeriss_like
      metric: edp            # latency | energy | edp
      lambda: 0.1            # weight of the normalised hardware cost
      fps_target: null       # number (band +-10%) or [low, high]: adaptive lambda
      area_budget_mm2: null
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from a3cs_plugin.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class HardwareConfig(_Strict):
    template: str = "eyeriss_like"
    cost_model: str = "surrogate"
    cost_model_options: dict[str, Any] = Field(default_factory=dict)
    metric: Literal["latency", "energy", "edp"] = "edp"
    hw_lambda: float = Field(0.1, alias="lambda", ge=0)
    fps_target: Optional[Union[float, list[float]]] = None
    lambda_rate: float = Field(0.05, gt=0)
    area_budget_mm2: Optional[float] = Field(None, gt=0)
    recost_time_limit: float = Field(2.0, gt=0)
    recost_metric: Literal["latency", "energy", "edp"] = "edp"

    @field_validator("fps_target")
    @classmethod
    def _band(cls, v):
        if v is None:
            return None
        if isinstance(v, (int, float)):
            if v <= 0:
                raise ValueError("must be > 0")
            return [0.9 * float(v), 1.1 * float(v)]
        if len(v) != 2 or not 0 < v[0] <= v[1]:
            raise ValueError("must be a number or [low, high] with 0 < low <= high")
        return [float(v[0]), float(v[1])]


class SearchConfig(_Strict):
    num_cells: int = Field(14, ge=1)
    supernet: Literal["single-path", "mixed"] = "single-path"
    arc_lr: float = Field(3e-3, gt=0)
    beta_lr: Optional[float] = Field(None, gt=0)
    tau_init: float = Field(5.0, gt=0)
    tau_min: float = Field(0.5, gt=0)
    distill_actor: float = Field(1.0, ge=0)
    distill_critic: float = Field(0.5, ge=0)
    warmup_epochs: int = Field(0, ge=0)
    epochs: int = Field(10, ge=1)          # checkpoint granularity: the search is split into epochs

    @model_validator(mode="after")
    def _tau(self):
        if self.tau_min > self.tau_init:
            raise ValueError("tau_min must be <= tau_init")
        return self


class EvalConfig(_Strict):
    episodes: int = Field(3, ge=1)
    teacher: bool = True                    # also score the teacher


class RunConfig(_Strict):
    game: str = "Pong"
    teacher: Optional[str] = "Pong"
    frames: int = Field(100_000, ge=1)
    mode: Literal["one-level", "bi-level", "direct-nas"] = "one-level"
    algo: Literal["ppo", "a2c"] = "ppo"
    hp: dict[str, Any] = Field(default_factory=lambda: {"num_envs": 8, "num_steps": 32})
    seed: int = 1
    seeds: Optional[list[int]] = None       # several searches (RUN_DIR/seed_<s>/); the best is copied up
    threads: int = Field(0, ge=0)           # torch threads; 0: min(2, cores)
    hardware: HardwareConfig = Field(default_factory=HardwareConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v):
        if v is not None and (not v or len(set(v)) != len(v)):
            raise ValueError("must be a non-empty list of distinct integers")
        return v

    def updates(self) -> int:
        """Search updates that fit the frame budget (a bi-level update collects two rollouts)."""
        per = int(self.hp.get("num_envs", 8)) * int(self.hp.get("num_steps", 32)) * 4
        per *= 1 if self.mode == "one-level" else 2
        return max(1, self.frames // per)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(by_alias=True, mode="json"), sort_keys=False)


def parse_config(data: Any, source: str = "config") -> RunConfig:
    """Validate a mapping; the first problem -> :class:`ConfigError` naming file and key."""
    if not isinstance(data, dict):
        raise ConfigError("config must be a YAML mapping", file=source, expected="keys game, frames, mode, ...")
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err.get("loc", ())) or None
        raise ConfigError(err.get("msg", "invalid value").replace("\n", " "), file=source, key=key,
                          got=err.get("input") if err.get("type") != "missing" else None) from None


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a YAML run configuration."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config ({exc.strerror})", file=str(path)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"invalid YAML{where}", file=str(path)) from None
    return parse_config(data, str(path))
