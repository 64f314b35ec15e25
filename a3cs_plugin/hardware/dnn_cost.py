"""Whole-DNN costing: every layer of a neural network mapped onto one accelerator.

(Named ``dnn_cost`` rather than ``network``: in Timeloop and in our engine "network" is the on-chip
interconnect.  ``a3cs_plugin.hardware.network`` is kept as an alias of this module for one release.)

:func:`evaluate_network` loads the accelerator spec once per layer problem
(``load_spec(arch_files + [problem], ert, art)``), runs the mapper on it, and sums the per-layer
results (times each layer's ``count``).  Layers run one after another, so network cycles are the
sum of layer cycles; latency = cycles x clock period (``global_cycle_seconds`` from the spec's
attributes, 1 ns when the spec gives none — stated in ``clock_source``); FPS = 1 / latency for one
inference at the problems' batch size.  Identical problems are searched once: results are cached by
(problem, architecture files, ERT/ART, metric, time limit, seed) in memory and, when ``cache`` is a
path, in a JSON file.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..errors import A3CSError, ConfigError
from .spec import Spec
from .workload import LayerProblem, problem_key

__all__ = ["LayerResult", "NetworkResult", "evaluate_network", "clear_cache"]

DEFAULT_CYCLE_SECONDS = 1e-9
_MEMORY_CACHE: dict[str, dict] = {}


def clear_cache() -> None:
    """Forget the in-memory layer results."""
    _MEMORY_CACHE.clear()


@dataclass
class LayerResult:
    name: str
    macs: int
    count: int
    cycles: float
    energy_pJ: float
    levels_pJ: dict[str, float]
    computes: int | None = None      # the model's compute count (= macs for conv / linear problems)
    mapping: Any = None              # Timeloop v0.4 mapping list (JSON-able)
    area_um2: float | None = None
    key: str = ""
    cached: bool = False
    search_seconds: float = 0.0

    @property
    def total_energy_pJ(self) -> float:
        return self.energy_pJ * self.count

    @property
    def total_cycles(self) -> float:
        return self.cycles * self.count


@dataclass
class NetworkResult:
    layers: list[LayerResult]
    cycle_seconds: float
    clock_source: str
    area_um2: float | None
    metric: str
    arch_files: list[str] = field(default_factory=list)

    @property
    def energy_pJ(self) -> float:
        return float(sum(l.total_energy_pJ for l in self.layers))

    @property
    def cycles(self) -> float:
        return float(sum(l.total_cycles for l in self.layers))

    @property
    def macs(self) -> int:
        return int(sum(l.macs * l.count for l in self.layers))

    @property
    def latency_s(self) -> float:
        return self.cycles * self.cycle_seconds

    @property
    def fps(self) -> float:
        return 1.0 / self.latency_s if self.latency_s > 0 else float("inf")

    @property
    def edp(self) -> float:
        """Energy-delay product in pJ x cycles."""
        return self.energy_pJ * self.cycles

    @property
    def levels_pJ(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for l in self.layers:
            for k, v in l.levels_pJ.items():
                out[k] = out.get(k, 0.0) + float(v) * l.count
        return out

    def totals(self) -> dict[str, Any]:
        return {"energy_pJ": self.energy_pJ, "cycles": self.cycles, "latency_s": self.latency_s,
                "fps": self.fps, "area_um2": self.area_um2, "macs": self.macs, "edp": self.edp,
                "levels_pJ": self.levels_pJ, "cycle_seconds": self.cycle_seconds,
                "clock_source": self.clock_source, "metric": self.metric,
                "layers": len(self.layers), "searched": sum(1 for l in self.layers if not l.cached)}

    def to_dict(self) -> dict[str, Any]:
        return {"totals": self.totals(), "arch_files": list(self.arch_files),
                "layers": [asdict(l) for l in self.layers]}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, default=str)

    def to_markdown(self) -> str:
        lines = ["| layer | count | MACs | cycles | energy (pJ) | pJ/MAC |",
                 "|---|---:|---:|---:|---:|---:|"]
        for l in self.layers:
            pj_mac = l.energy_pJ / l.macs if l.macs else 0.0
            lines.append(f"| {l.name} | {l.count} | {l.macs:,} | {l.cycles:,.0f} | {l.energy_pJ:,.1f} | {pj_mac:.3f} |")
        t = self.totals()
        pj_mac = t["energy_pJ"] / t["macs"] if t["macs"] else 0.0
        lines.append(f"| **total** | | {t['macs']:,} | {t['cycles']:,.0f} | {t['energy_pJ']:,.1f} | {pj_mac:.3f} |")
        area = "unknown" if self.area_um2 is None else f"{self.area_um2:,.0f} um^2"
        lines.append("")
        lines.append(f"latency {t['latency_s'] * 1e3:.4f} ms ({self.clock_source}), {t['fps']:,.1f} FPS, "
                     f"area {area}, metric {self.metric}")
        return "\n".join(lines)

    def plot(self, path: str | Path) -> Path:
        """Per-layer stacked bar plot of energy (x count) by storage/compute level, as PNG."""
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        levels: list[str] = []
        for l in self.layers:
            for k in l.levels_pJ:
                if k not in levels:
                    levels.append(k)
        names = [l.name for l in self.layers]
        fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(names) + 2), 4.5))
        bottom = [0.0] * len(names)
        for lev in levels:
            vals = [float(l.levels_pJ.get(lev, 0.0)) * l.count for l in self.layers]
            ax.bar(range(len(names)), vals, bottom=bottom, label=lev)
            bottom = [b + v for b, v in zip(bottom, vals)]
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=75, ha="right", fontsize=7)
        ax.set_ylabel("energy per inference (pJ)")
        ax.set_title(f"energy by level — total {self.energy_pJ:,.0f} pJ, {self.cycles:,.0f} cycles")
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return path


# ----------------------------------------------------------------------------------------------------
def _hash_source(src: Any) -> str:
    if src is None:
        return "-"
    if isinstance(src, (str, Path)):
        p = Path(src)
        try:
            return hashlib.sha1(p.read_bytes()).hexdigest()[:16]
        except OSError as exc:
            raise ConfigError(f"cannot read file ({exc.strerror})", file=str(p)) from exc
    return hashlib.sha1(json.dumps(src, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _find_cycle_seconds(spec: Spec) -> tuple[float, str]:
    """``global_cycle_seconds`` of the spec: the first positive one among the attributes of the
    architecture, then of its storage levels (innermost first), then of the compute level."""
    arch = spec.arch
    for attrs in [arch.attributes] + [lv.attributes for lv in arch.levels] + [arch.compute.attributes]:
        val = attrs.get("global_cycle_seconds")
        if val is None:
            continue
        try:
            v = float(val)
        except (TypeError, ValueError):
            continue
        if v > 0:
            return v, "global_cycle_seconds"
    return DEFAULT_CYCLE_SECONDS, "assumed 1 GHz (spec has no global_cycle_seconds)"


def _arch_sources(arch_files: list) -> list:
    """Arch sources for ``load_spec``; a ``problem`` or ``mapping`` section in them is dropped (each
    layer brings its own problem and the mapper its own mapping) — such files are passed as dicts."""
    from .spec import load_yaml_file

    out = []
    for src in arch_files:
        data = src if isinstance(src, dict) else load_yaml_file(str(src))
        if isinstance(data, dict) and ("problem" in data or "mapping" in data):
            out.append({k: v for k, v in data.items() if k not in ("problem", "mapping")})
        else:
            out.append(str(src) if isinstance(src, Path) else src)
    return out


def _load_disk_cache(path: Path) -> dict[str, dict]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"unreadable network cache ({exc})", file=str(path),
                          expected="a JSON object written by evaluate_network") from exc
    if not isinstance(data, dict):
        raise ConfigError("network cache is not a JSON object", file=str(path))
    return data


def _budget(time_limit: float, max_evaluations: int | None) -> dict:
    """The mapper's stopping rule: a count of evaluated mappings (reproducible) or seconds."""
    if max_evaluations is not None:
        return {"time_limit": None, "max_evaluations": int(max_evaluations)}
    return {"time_limit": time_limit}


def _budget_key(time_limit: float, max_evaluations: int | None) -> str:
    return f"evals={int(max_evaluations)}" if max_evaluations is not None else f"{float(time_limit)}"


def evaluate_network(arch_files: Sequence[str | Path | dict] | str | Path, problems: Iterable[LayerProblem | dict],
                     ert: str | Path | dict | None = None, art: str | Path | dict | None = None,
                     metric: str = "edp", time_limit: float = 5.0, cache: str | Path | bool | None = True,
                     seed: int = 0, backend: str = "a3cs", backend_env: dict | None = None,
                     max_evaluations: int | None = None) -> NetworkResult:
    """Map every layer problem onto the accelerator ``arch_files`` and sum the costs.

    ``problems``: :class:`LayerProblem` objects (or plain Timeloop problem dicts, count 1).
    ``arch_files``: architecture (+ components, constraints, mapper settings) YAML files or dicts;
    any ``problem`` / ``mapping`` section in them is ignored.
    A single pipeline description (a file or dict with a top-level ``pipeline`` key, e.g.
    ``arch_specs/dnnbuilder_like.yaml``) returns a :class:`~a3cs_plugin.hardware.pipeline.PipelineResult`
    with the same attributes (``layers`` are its stages; ``fps`` from the slowest stage; in-memory
    cache only).
    ``cache``: ``True`` in-memory only, ``False``/``None`` no caching, or a JSON file path
    (read and updated, plus the in-memory cache).  ``time_limit`` is the mapper's budget per
    distinct layer; ``max_evaluations`` (about, per layer) stops the mapper after that many
    evaluated mappings instead, with no time limit: the same numbers on any machine and load.
    ``backend="timeloop"`` maps every layer with the real ``timeloop-mapper``
    (:func:`a3cs_plugin.hardware.backend.run_spec`; ``backend_env``: its extra environment).
    """
    from .spec import load_spec
    from .mapper import search

    if isinstance(arch_files, (str, Path, dict)):
        arch_files = [arch_files]
    arch_files = list(arch_files)
    if not arch_files:
        raise ConfigError("no accelerator specification given", key="arch", expected="one or more YAML files")
    from . import pipeline as _pipeline
    if _pipeline.is_pipeline_source(arch_files):
        # a layer-pipelined design (arch_specs/dnnbuilder_like.yaml): one generated spec per stage
        if ert is not None or art is not None or backend != "a3cs":
            raise ConfigError("pipeline descriptions are costed with the built-in model, mapper and tables",
                              key="backend/ert/art", expected="backend a3cs without ERT/ART")
        return _pipeline.evaluate_pipeline(arch_files[0], list(problems), metric=metric, time_limit=time_limit,
                                           seed=seed, cache=cache is not False and cache is not None,
                                           max_evaluations=max_evaluations)
    layers_in: list[LayerProblem] = []
    for i, p in enumerate(problems):
        if isinstance(p, LayerProblem):
            layers_in.append(p)
        elif isinstance(p, dict) and "problem" in p:
            layers_in.append(LayerProblem(name=f"layer{i}", kind="custom", problem=p, macs=_instance_macs(p)))
        else:
            raise ConfigError(f"problem {i} is neither a LayerProblem nor a Timeloop problem dict",
                              key="problems", expected="{'problem': {...}}", got=type(p).__name__)
    if not layers_in:
        raise ConfigError("no layer problems to evaluate", key="problems", expected="at least one layer")

    if backend not in ("a3cs", "timeloop"):
        raise ConfigError(f"unknown backend {backend!r}", key="backend", expected="a3cs or timeloop")
    from .model import engine
    from .spec import frontend
    arch_hash = "|".join(_hash_source(a) for a in arch_files) + "|" + _hash_source(ert) + "|" + _hash_source(art)
    # the Timeloop semantics the numbers follow are part of the key
    arch_hash += f"|{backend}|{engine.halo_rule()}|{engine.LINK_TRANSFERS}|{frontend.SPLIT_SEMANTICS}"
    disk_path = Path(cache) if isinstance(cache, (str, Path)) else None
    disk = _load_disk_cache(disk_path) if disk_path is not None else {}
    use_memory = cache is not False and cache is not None

    specs_inputs = _arch_sources(arch_files)
    ert_in = str(ert) if isinstance(ert, Path) else ert
    art_in = str(art) if isinstance(art, Path) else art

    results: list[LayerResult] = []
    cycle_seconds, clock_source = None, None
    area = None
    dirty = False
    for lp in layers_in:
        key = hashlib.sha1(f"{problem_key(lp.problem)}|{arch_hash}|{metric}|{_budget_key(time_limit, max_evaluations)}"
                           f"|{int(seed)}".encode()).hexdigest()[:20]
        entry = _MEMORY_CACHE.get(key) if use_memory else None
        if entry is None and key in disk:
            entry = disk[key]
        cached = entry is not None
        if entry is None or cycle_seconds is None:
            try:
                spec = load_spec(specs_inputs + [lp.problem], ert=ert_in, art=art_in)
            except A3CSError as exc:
                raise type(exc)(f"layer {lp.name}: {exc.message}") from exc
            if cycle_seconds is None:
                cycle_seconds, clock_source = _find_cycle_seconds(spec)
        if entry is None:
            if backend == "timeloop":
                from .backend import TimeloopUnavailable, run_spec
                try:
                    if not spec.mapper.get("optimization_metrics"):
                        spec.mapper["optimization_metrics"] = [metric]
                    tl = run_spec(spec, "mapper", env=backend_env, timeout=max(60.0, 20.0 * time_limit))
                except TimeloopUnavailable:
                    raise
                except A3CSError as exc:
                    raise type(exc)(f"layer {lp.name}: {exc.message}") from exc
                entry = {k: tl.get(k) for k in ("cycles", "energy_pJ", "levels_pJ", "area_um2",
                                                "computes", "mapping", "search_seconds")}
                entry["cycles"], entry["energy_pJ"] = float(entry["cycles"]), float(entry["energy_pJ"])
            else:
                try:
                    mr = search(spec, metric=metric, seed=seed, **_budget(time_limit, max_evaluations))
                except A3CSError as exc:
                    raise type(exc)(f"layer {lp.name}: {exc.message}") from exc
                r = mr.result
                entry = {"cycles": float(r.cycles), "energy_pJ": float(r.energy_pJ),
                         "levels_pJ": {str(k): float(v) for k, v in dict(r.levels_pJ).items()},
                         "area_um2": None if r.area_um2 is None else float(r.area_um2),
                         "computes": int(r.computes),
                         "mapping": mr.mapping_list(),
                         "search_seconds": float(mr.search_seconds)}
            if disk_path is not None:
                disk[key] = entry
                dirty = True
        if use_memory:
            _MEMORY_CACHE[key] = entry
        if area is None and entry.get("area_um2") is not None:
            area = float(entry["area_um2"])
        results.append(LayerResult(name=lp.name, macs=int(lp.macs), count=int(lp.count), cycles=entry["cycles"],
                                   energy_pJ=entry["energy_pJ"], levels_pJ=dict(entry["levels_pJ"]),
                                   computes=entry.get("computes"),
                                   mapping=entry.get("mapping"), area_um2=entry.get("area_um2"), key=key,
                                   cached=cached, search_seconds=0.0 if cached else entry["search_seconds"]))
    if disk_path is not None and dirty:
        disk_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = disk_path.with_suffix(disk_path.suffix + ".tmp")
        tmp.write_text(json.dumps(disk, indent=1, default=str))
        tmp.replace(disk_path)
    return NetworkResult(layers=results, cycle_seconds=float(cycle_seconds), clock_source=str(clock_source),
                         area_um2=area, metric=metric,
                         arch_files=[str(a) if not isinstance(a, dict) else "<dict>" for a in arch_files])


def _instance_macs(problem: dict) -> int:
    """Product of all instance sizes of a problem (its MACs for conv/linear-like problems)."""
    inst = problem.get("problem", {}).get("instance", {})
    dims = problem.get("problem", {}).get("shape", {}).get("dimensions", list(inst))
    macs = 1
    for d in dims:
        macs *= int(inst.get(d, 1))
    return macs
