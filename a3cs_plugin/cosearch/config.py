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
import typing
from typing import Any, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from a3cs_plugin.errors import ConfigError


def _accepts_bool(annotation) -> bool:
    if annotation is bool or annotation is Any:
        return True
    return any(_accepts_bool(a) for a in typing.get_args(annotation))


class _Strict(BaseModel):
    # unknown keys, inf and nan are errors; a YAML boolean is only accepted where a bool is meant
    # (pydantic would read ``fps_target: true`` as 1.0)
    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_numbers(cls, v, info):
        field = cls.model_fields.get(info.field_name)
        if field is None:
            return v
        if not _accepts_bool(field.annotation):
            items = v if isinstance(v, list) else [v]
            if any(isinstance(x, bool) for x in items):
                raise ValueError("expected a number or a name, not a boolean")
        elif field.annotation in (bool, Optional[bool]) and v is not None and not isinstance(v, bool):
            raise ValueError("expected true or false")    # not 1, 0 or "yes" (pydantic's lax bool)
        return v


class HardwareConfig(_Strict):
    template: str = "eyeriss_like"
    cost_model: str = "surrogate"
    cost_model_options: dict[str, Any] = Field(default_factory=dict)
    metric: Literal["latency", "energy", "edp"] = "edp"
    hw_lambda: float = Field(0.1, alias="lambda", ge=0)
    fps_target: Optional[Union[float, list[float]]] = None
    lambda_rate: float = Field(0.05, gt=0)
    area_budget_mm2: Optional[float] = Field(None, gt=0)
    # parameters held at one value (not searched), on top of those the template pins itself
    fixed: dict[str, Any] = Field(default_factory=dict)
    recost_time_limit: float = Field(2.0, gt=0)
    # mapper budget per distinct layer as a count of evaluated mappings (replaces the time limit):
    # re-costed numbers then do not depend on the machine's speed or load
    recost_evaluations: Optional[int] = Field(None, gt=0)
    recost_metric: Literal["latency", "energy", "edp"] = "edp"
    # hand-designed specs (arch_specs/NAME.yaml or files) on which the derived agent and the
    # teacher are also re-costed; default: eyeriss_like for the eyeriss_like template
    baselines: Optional[list[str]] = None

    @model_validator(mode="after")
    def _baselines(self):
        if self.baselines is None:
            self.baselines = ["eyeriss_like"] if self.template == "eyeriss_like" else []
        from a3cs_plugin.paths import arch_spec
        for name in self.baselines:
            try:
                arch_spec(name)
            except ConfigError as exc:
                raise _Keyed(exc.message, "baselines", got=name) from None
        return self

    @field_validator("cost_model")
    @classmethod
    def _cost_model(cls, v):
        from a3cs_plugin.strategy import registry
        names = registry.available(registry.COST_MODEL_GROUP)
        if v not in names:
            raise ValueError("unknown cost model; expected one of " + ", ".join(sorted(names)))
        return v

    @model_validator(mode="after")
    def _options(self):
        bad = unknown_cost_model_options(self.cost_model, self.cost_model_options)
        if bad:
            name, allowed = bad
            raise _Keyed(f"unknown option of cost model '{self.cost_model}'; expected "
                         f"{', '.join(allowed) or 'no options'}", f"cost_model_options.{name}")
        return self

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


def unknown_cost_model_options(cost_model: str, options: dict) -> tuple[str, list] | None:
    """``(first unknown option, accepted names)`` of ``options`` against the cost model factory's
    signature (and, for a ``Class.from_template(template, **options)`` factory, the class's
    ``__init__``); None when all are accepted or the factory takes any keyword."""
    import inspect

    from a3cs_plugin.strategy import registry
    if not options:
        return None
    try:
        factory = registry.load(registry.COST_MODEL_GROUP, cost_model)
    except ConfigError as exc:
        raise _Keyed(exc.message, "cost_model", got=cost_model) from None
    targets = [factory]
    owner = getattr(factory, "__self__", None)
    if inspect.isclass(owner):
        targets.append(owner.__init__)
    elif inspect.isclass(factory):
        targets = [factory.__init__]
    allowed: list = []
    for t in targets:
        try:
            params = list(inspect.signature(t).parameters.values())
        except (TypeError, ValueError):
            return None
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            allowed = [p.name for p in params[1 + (t is not factory or inspect.isclass(factory)):]
                       if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
            break
    else:
        return None
    for name in options:
        if name not in allowed:
            return str(name), allowed
    return None


class SearchConfig(_Strict):
    num_cells: int = Field(14, ge=1)
    supernet: Literal["single-path", "mixed"] = "single-path"
    arc_lr: float = Field(3e-3, gt=0)
    beta_lr: Optional[float] = Field(None, gt=0)
    tau_init: float = Field(5.0, gt=0)
    tau_min: float = Field(0.5, gt=0)
    distill_actor: float = Field(1.0, ge=0)
    distill_critic: float = Field(0.5, ge=0)
    # weight-only updates before alpha/beta move: a fraction of the search's rollouts
    # (warmup_epochs, when given, means warmup_epochs / epochs of them)
    warmup_frac: float = Field(0.2, ge=0, lt=1)
    warmup_epochs: Optional[int] = Field(None, ge=0)
    epochs: int = Field(10, ge=1)          # checkpoint granularity: the search is split into epochs
    # how the hardware term's alpha-gradient is scaled: "normalize" (to lambda x the task term's
    # gradient norm, a running mean) or "none" (lambda x cost / baseline, as written)
    balance: Literal["normalize", "none"] = "normalize"
    das_steps: int = Field(400, ge=1)      # accelerator-only search (agent: set): Adam steps on beta
    beta_samples: int = Field(4, ge=1)     # hard Gumbel samples of the accelerator per hardware step
    # test score of the derived agent (argmax alpha, supernet weights) after every search epoch:
    # this many full games, unclipped, sampled actions (0: off); the curve of Fig. 2
    score_episodes: int = Field(0, ge=0)

    def warmup_fraction(self) -> float:
        if self.warmup_epochs is not None:
            return min(0.95, self.warmup_epochs / self.epochs)
        return self.warmup_frac

    @model_validator(mode="after")
    def _tau(self):
        if self.tau_min > self.tau_init:
            raise ValueError("tau_min must be <= tau_init")
        return self


class EvalConfig(_Strict):
    episodes: int = Field(30, ge=1)         # the field's protocol: 30 full games, unclipped
    teacher: bool = True                    # also score the teacher
    random: bool = True                     # also score a uniform-random agent (normalized score)
    greedy: bool = False                    # arg-max actions instead of sampling


class FinetuneConfig(_Strict):
    """The short training of the derived agent that ends ``a3cs search`` (inherits the supernet's
    weights of its ops; the algorithm, ``hp`` and distillation of the search)."""
    frames: int = Field(0, ge=0)            # 0: no fine-tune
    lr: Optional[float] = Field(None, gt=0)  # default: the search's lr
    checkpoint_every: int = Field(100_000, ge=1)


class RunConfig(_Strict):
    game: str = "Pong"
    teacher: Optional[str] = "Pong"
    frames: int = Field(100_000, ge=1)
    # direct-nas: the A3C-S default optimisation (one-level) without distillation; or set
    # mode: bi-level with distill: false for the bi-level comparison
    mode: Literal["one-level", "bi-level", "direct-nas"] = "one-level"
    distill: bool = True
    # a fixed agent (zoo name, "teacher", arch.json or agent file): search only the accelerator (DAS)
    agent: Optional[str] = None
    algo: str = "ppo"
    hp: dict[str, Any] = Field(default_factory=dict)
    seed: int = Field(1, ge=0)
    seeds: Optional[list[int]] = None       # several searches (RUN_DIR/seed_<s>/); the best is copied up
    threads: int = Field(0, ge=0)           # torch threads; 0: min(2, cores)
    # compute device of the search, its fine-tune and evaluations (a3cs_plugin.rl.device):
    # auto (a GPU when torch sees one, else the CPU), cpu, cuda or cuda:N
    device: str = "auto"
    hardware: HardwareConfig = Field(default_factory=HardwareConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    finetune: FinetuneConfig = Field(default_factory=FinetuneConfig)

    @field_validator("device", mode="before")
    @classmethod
    def _device(cls, v):
        from a3cs_plugin.rl.device import DEVICES, check_device_spec
        try:
            return check_device_spec(v)
        except ConfigError:
            raise ValueError(f"unknown device; expected {DEVICES}") from None

    @field_validator("algo")
    @classmethod
    def _algo(cls, v):
        from a3cs_plugin.rl.algorithms import ALGORITHMS
        if str(v).lower() not in ALGORITHMS:
            raise ValueError("must be one of " + ", ".join(sorted(ALGORITHMS)))
        return str(v).lower()

    @model_validator(mode="after")
    def _hp(self):
        from a3cs_plugin.rl.config import algo_config
        try:
            algo_config(self.algo, **self.hp)
        except ConfigError as exc:
            text = exc.message.removeprefix(f"key '{exc.key}': ") if exc.key else exc.message
            raise _Keyed(text, f"hp.{exc.key}" if exc.key else "hp") from None
        return self

    @property
    def optimisation(self) -> str:
        """The optimisation that runs: ``one-level`` or ``bi-level`` (direct-nas is one-level)."""
        return "one-level" if self.mode == "direct-nas" else self.mode

    @property
    def distilling(self) -> bool:
        return bool(self.teacher) and self.distill and self.mode != "direct-nas" and \
            (self.search.distill_actor > 0 or self.search.distill_critic > 0)

    @property
    def scheme(self) -> str:
        """``a3cs`` (with distillation) or ``direct-nas`` (without): the paper's names."""
        return "a3cs" if self.distilling else "direct-nas"

    def rollout_frames(self) -> int:
        from a3cs_plugin.rl.config import algo_config
        return algo_config(self.algo, **self.hp).batch_size * 4

    def search_settings(self, fixed: dict[str, Any] | None = None):
        """The algorithm's :class:`~a3cs_plugin.strategy.settings.SearchSettings` for this run
        (the one place the config becomes the strategy's settings): the frame plan's warm-up and
        update counts, ``fixed`` accelerator parameters (default ``hardware.fixed``)."""
        from a3cs_plugin.strategy.settings import SearchSettings
        plan = self.plan()
        hw, se = self.hardware, self.search
        return SearchSettings(
            hw_lambda=hw.hw_lambda, metric=hw.metric, mode=self.optimisation, distill=self.distilling,
            supernet=se.supernet, arc_learning_rate=se.arc_lr, beta_learning_rate=se.beta_lr,
            tau_init=se.tau_init, tau_min=se.tau_min,
            fps_target=tuple(hw.fps_target) if hw.fps_target else None, lambda_rate=hw.lambda_rate,
            warmup_updates=plan["warmup"], total_updates=plan["updates"],
            area_budget_mm2=hw.area_budget_mm2, balance=se.balance, beta_samples=se.beta_samples,
            fixed=dict(hw.fixed if fixed is None else fixed))

    def plan(self) -> dict[str, int]:
        """How the frame budget is spent: ``warmup`` weight-only updates (one rollout each), then
        ``search`` updates (one rollout one-level, two bi-level); ``updates`` in all, ``per_epoch``
        of them per checkpoint epoch, ``frames`` consumed (= ``frames`` within one rollout)."""
        per = self.rollout_frames()
        rollouts = max(1, round(self.frames / per))
        k = 2 if self.optimisation == "bi-level" else 1
        warm = min(rollouts - k if rollouts > k else 0, round(self.search.warmup_fraction() * rollouts))
        search = max(1, (rollouts - warm) // k) if rollouts - warm >= k else 0
        if search == 0:
            warm = rollouts
        extra = rollouts - warm - k * search   # 0, or 1 leftover rollout (bi-level): weight-only
        warm += extra
        updates = warm + search
        epochs = max(1, min(self.search.epochs, updates))
        per_epoch = -(-updates // epochs)
        return {"warmup": warm, "search": search, "updates": updates, "epochs": -(-updates // per_epoch),
                "per_epoch": per_epoch, "rollout_frames": per,
                "frames": (warm + k * search) * per}

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v):
        if v is not None and (not v or len(set(v)) != len(v) or min(v) < 0):
            raise ValueError("must be a non-empty list of distinct integers >= 0")
        return v

    def updates(self) -> int:
        """Updates of the search (warm-up included); see :meth:`plan`."""
        return self.plan()["updates"]

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
        # union members ('float', 'list[float]') are not keys of the file
        loc = [str(p) for p in err.get("loc", ()) if str(p) not in _TYPE_NAMES and "[" not in str(p)]
        got = err.get("input") if err.get("type") != "missing" and loc else None
        msg = err.get("msg", "invalid value").replace("\n", " ").removeprefix("Value error, ")
        inner = (err.get("ctx") or {}).get("error")
        expected = None
        if isinstance(inner, _Keyed):       # a model-level check that knows the exact key
            loc, got, msg = loc + [inner.key], inner.got, str(inner)
        elif err.get("type") == "extra_forbidden":
            names = _section_keys(loc[:-1])
            msg, got, expected = "unknown key", None, ("one of " + ", ".join(names)) if names else None
        raise ConfigError(msg, file=source, key=".".join(loc) or None, expected=expected, got=got) from None


def _section_keys(loc: list) -> list:
    """The keys a section of the config accepts (``loc``: its path from the top)."""
    model: Any = RunConfig
    for part in loc:
        field = next((f for n, f in model.model_fields.items() if part in (n, f.alias)), None)
        ann = field.annotation if field is not None else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        model = ann
    return [f.alias or n for n, f in model.model_fields.items()]


_TYPE_NAMES = {"float", "int", "str", "bool", "function-after", "function-before", "function-wrap"}


class _Keyed(ValueError):
    """A validation error of a model-level check, with the (relative) key it is about."""

    def __init__(self, message: str, key: str, got: Any = None):
        super().__init__(message)
        self.key, self.got = key, got


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a YAML run configuration."""
    from a3cs_plugin.hardware.spec.yamlio import read_text
    path = Path(path)
    if not path.is_file() and not path.is_dir():
        raise ConfigError("config file not found", file=str(path), expected="an existing YAML file")
    text = read_text(path, ConfigError)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"invalid YAML{where}", file=str(path)) from None
    return parse_config(data, str(path))
