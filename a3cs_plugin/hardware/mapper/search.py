"""Vectorised mapping search over a :class:`MapSpace`, scored with the model's ``evaluate_batch``.

Small map spaces (<= ``exhaustive_limit`` points) are enumerated exhaustively.  Otherwise every
batch holds, all evaluated at once:

* the full single-move neighbourhood of the best elite mapping not yet scanned (steepest descent),
* mutants of elite mappings (1-3 random moves: a prime factor moved between two loops, two loops
  swapped, a keep/bypass or X/Y choice flipped),
* fresh random samples (prime factors spread over the free loops within the mesh and ``<=``
  bounds, random permutations and keep/bypass choices).

The elite is the set of the best distinct mappings of the current restart; when it has not improved
for ``restart`` evaluated mappings a fresh population is drawn (the overall best is kept).  The
search stops when the overall best has not improved for ``victory_condition`` evaluated mappings,
after ``max_evaluations`` or after ``time_limit`` seconds.  Same seed and no time-limit stop ->
same mapping.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ...errors import ConfigError, MappingError
from .mapspace import Genome, MapSpace

__all__ = ["MapResult", "search", "METRICS", "resolve_metric"]

METRICS = {"edp": "edp", "energy": "energy_pJ", "delay": "cycles", "cycles": "cycles"}


@dataclass
class MapResult:
    """Outcome of :func:`search`."""

    result: Any                 # model Result of the best mapping (scalar ``evaluate``)
    mapping: Any                # model Mapping of the best mapping
    metric: tuple               # metric names, most significant first
    metric_value: float         # value of ``metric[0]`` for the best mapping (scalar model)
    metric_values: tuple        # values of every metric in ``metric``
    search_seconds: float
    evaluated: int              # mappings evaluated with the model
    valid: int                  # of which valid (fit the buffers)
    stopped: str                # "exhausted", "victory", "max_evaluations" or "time_limit"
    mapspace_size: float        # number of points of the unpruned map space
    batch: Any = field(default=None, repr=False)   # the best mapping as a MappingBatch of one
    spec: Any = field(default=None, repr=False)

    def mapping_list(self) -> list:
        """The best mapping as a Timeloop v0.4 mapping list (outermost level first)."""
        from ..spec.mapping import dump_mapping
        return dump_mapping(self.spec, self.mapping)


def resolve_metric(spec, metric) -> tuple:
    """Metric names (most significant first): ``metric`` itself, or the spec's mapper settings
    (``optimization_metrics``) when ``metric`` is None, else ``("edp",)``."""
    if metric is None:
        from .adapter import spec_metrics
        metric = spec_metrics(spec) or ("edp",)
    if isinstance(metric, str):
        metric = (metric,)
    out = []
    for m in metric:
        m = str(m).strip().lower()
        if m not in METRICS:
            raise ConfigError(f"unknown mapper metric {m!r}", key="optimization_metrics",
                              expected="edp, energy or delay")
        out.append(m)
    if not out:
        raise ConfigError("empty mapper metric list", key="optimization_metrics",
                          expected="edp, energy or delay")
    return tuple(out)


def _keys(res: dict, metric: tuple) -> np.ndarray:
    """[n, m] metric values; invalid mappings get +inf."""
    valid = np.asarray(res["valid"], bool)
    cols = []
    for m in metric:
        v = np.asarray(res[METRICS[m]], dtype=np.float64).copy()
        v[~valid | ~np.isfinite(v)] = np.inf
        cols.append(v)
    return np.stack(cols, axis=1)


def _order(keys: np.ndarray) -> np.ndarray:
    """Indices sorting rows of ``keys`` lexicographically (column 0 most significant)."""
    return np.lexsort(tuple(keys[:, j] for j in range(keys.shape[1] - 1, -1, -1)))


def _better(a: np.ndarray, b: np.ndarray | None, rtol: float = 1e-12) -> bool:
    if b is None:
        return bool(np.isfinite(a[0]))
    for x, y in zip(a, b):
        if x < y * (1 - rtol):
            return True
        if x > y * (1 + rtol):
            return False
    return False


class _Search:
    """Evaluation bookkeeping: the elite population (best distinct mappings of the current
    restart), the overall best mapping, and improvement counters."""

    def __init__(self, spec, space: MapSpace, metric: tuple, elite: int):
        from ..model.batch import evaluate_batch
        self.spec, self.space, self.metric, self.k = spec, space, metric, elite
        self._evaluate = evaluate_batch
        self.evaluated = 0
        self.valid = 0
        self.elite: Genome | None = None
        self.elite_keys: np.ndarray | None = None
        self.elite_rows: np.ndarray | None = None
        self.best: Genome | None = None
        self.best_key: np.ndarray | None = None
        self.local_key: np.ndarray | None = None
        self.since_improvement = 0          # since the overall best improved
        self.since_local = 0                # since this restart's best improved

    def restart(self):
        """Forget the elite population (the overall best is kept)."""
        self.elite = self.elite_keys = self.elite_rows = self.local_key = None
        self.since_local = 0

    def consider(self, g: Genome, ok: np.ndarray):
        g = g.take(np.nonzero(ok)[0])
        if len(g) == 0:
            return
        g_rows = g.rows()
        _, first = np.unique(g_rows, return_index=True)
        first = np.sort(first)
        g, g_rows = g.take(first), g_rows[first]
        res = self._evaluate(self.spec, self.space.to_batch(g))
        keys = _keys(res, self.metric)
        n = len(g)
        self.evaluated += n
        self.since_improvement += n
        self.since_local += n
        good = np.isfinite(keys[:, 0])
        self.valid += int(good.sum())
        if not good.any():
            return
        cand_g = g.take(np.nonzero(good)[0])
        cand_k = keys[good]
        if self.elite is not None:
            cand_g = Genome.concatenate([self.elite, cand_g])
            cand_k = np.concatenate([self.elite_keys, cand_k])
        order = _order(cand_k)
        rows = (np.concatenate([self.elite_rows, g_rows[good]]) if self.elite is not None
                else g_rows[good])[order]
        _, first = np.unique(rows, return_index=True)
        keep = order[np.sort(first)][: self.k]
        self.elite, self.elite_keys = cand_g.take(keep), cand_k[keep]
        self.elite_rows = rows[np.sort(first)][: self.k]
        top = self.elite_keys[0]
        if _better(top, self.local_key):
            self.local_key = top.copy()
            self.since_local = 0
        if _better(top, self.best_key):
            self.best_key = top.copy()
            self.best = self.elite.take(np.array([0]))
            self.since_improvement = 0


def search(spec, metric: str | Sequence[str] | None = "edp", time_limit: float = 10.0, seed: int = 0,
           progress: bool = False, *, victory_condition: int | None = None,
           max_evaluations: int | None = None, batch_size: int = 2048, elite: int = 32,
           exhaustive_limit: int = 150_000, initial: Sequence | None = None,
           restart: int | None = None) -> MapResult:
    """Search the map space of ``spec`` for the mapping minimising ``metric``.

    ``metric``: ``"edp"``, ``"energy"``, ``"delay"`` or a list of them compared lexicographically
    (like Timeloop's ``optimization_metrics``); None takes the spec's mapper settings (default
    ``edp``).  Ties are broken by energy, then delay.

    Stopping: ``time_limit`` seconds; ``victory_condition`` evaluated mappings without improvement
    of the best (default 200,000; 0 disables); ``max_evaluations`` (about; None disables).
    ``restart``: draw a fresh population after this many evaluated mappings without improvement of
    the current one (default ``victory_condition / 16``).  ``initial``: mappings to start from
    (``spec.mapping`` is used too when it lies in the map space).  ``progress``: log to stderr.

    Raises :class:`MappingError` (one line naming the spec and the binding constraint) when no
    valid mapping exists, :class:`ConfigError` for an unknown metric.
    """
    from .adapter import build_mapspace, spec_label
    from ..model.batch import batch_from_mapping, mapping_from_batch
    _evaluate_scalar = _scalar_evaluate()

    t0 = time.perf_counter()
    metric = resolve_metric(spec, metric)
    rank = metric + tuple(m for m in ("energy", "delay") if m not in metric)
    space = build_mapspace(spec)
    rng = np.random.default_rng(seed)
    victory = 200_000 if victory_condition is None else int(victory_condition)
    restart = max(victory // 16, 5 * batch_size) if restart is None else int(restart)
    if time_limit is None or time_limit <= 0:
        time_limit = float("inf")
    max_eval = max_evaluations if max_evaluations else None
    if not victory and max_eval is None and time_limit == float("inf"):
        raise ConfigError("the mapping search would never stop", key="time_limit",
                          expected="a time limit, a victory condition or max_evaluations")
    st = _Search(spec, space, rank, elite)
    size = space.size()
    stopped = ""
    last_log = [0.0]

    def log(msg, force=False):
        now = time.perf_counter() - t0
        if progress and (force or now - last_log[0] >= 1.0):
            last_log[0] = now
            print(f"[mapper {now:7.2f}s] {msg}", file=sys.stderr, flush=True)

    # the smallest-footprint mapping: if even it overflows a buffer, nothing fits
    small = _minimal_genome(space)
    if space.feasible(small)[0]:
        st.consider(small, np.ones(1, bool))
        if st.best is None:
            raise MappingError(_no_mapping_reason(spec, space, st, small), file=spec_label(spec))
    starts = list(initial or [])
    if spec.mapping is not None:
        starts.append(spec.mapping)
    for m in starts:
        try:
            b = batch_from_mapping(spec, m)
        except Exception:  # a partial or foreign mapping: not a starting point
            continue
        g = space.from_batch(b)
        st.consider(g, space.feasible(g, batch=b))

    if size <= exhaustive_limit:
        log(f"map space has {size:.0f} points: exhaustive enumeration", True)
        stopped = "exhausted"
        for g in space.enumerate_all(chunk=max(batch_size, 4096)):
            st.consider(g, space.feasible(g))
            if time.perf_counter() - t0 > time_limit:
                stopped = "time_limit"
                break
    else:
        log(f"map space has {size:.3g} points: random sampling + local refinement", True)
        first = 4 * batch_size if max_eval is None else max(1, min(4 * batch_size, max_eval))
        g, ok = space.sample(rng, first)
        st.consider(g, ok)
        scanned: set = set()
        while True:
            if max_eval is not None and st.evaluated >= max_eval:
                stopped = "max_evaluations"
                break
            if victory and st.since_improvement >= victory and st.best is not None:
                stopped = "victory"
                break
            if restart and st.since_local >= restart and st.elite is not None:
                st.restart()            # stagnating: a fresh population (the best is kept)
                g, ok = space.sample(rng, 2 * batch_size if max_eval is None
                                     else max(64, min(2 * batch_size, max_eval - st.evaluated)))
                st.consider(g, ok)
                continue
            if time.perf_counter() - t0 > time_limit:
                stopped = "time_limit"
                break
            parts, oks = [], []
            budget = batch_size if max_eval is None else max(64, min(batch_size, max_eval - st.evaluated))
            if st.elite is not None:
                # steepest-descent step: the full neighbourhood of the best not-yet-scanned elite
                hashes = st.elite_rows
                todo = [j for j, h in enumerate(hashes) if int(h) not in scanned]
                if todo:
                    scanned.add(int(hashes[todo[0]]))
                    nb = space.neighbors(st.elite, todo[0])
                    parts.append(nb)
                    oks.append(space.feasible(nb))
                    budget = max(budget // 4, budget - len(nb))
            n_fresh = budget // 4 if st.elite is not None else budget
            g, ok = space.sample(rng, n_fresh)
            parts.append(g)
            oks.append(ok)
            if st.elite is not None:
                k = len(st.elite)
                n_mut = budget - n_fresh
                parent = np.minimum((k * rng.random(n_mut) ** 2).astype(np.int64), k - 1)
                m = space.mutate(rng, st.elite.take(parent))
                parts.append(m)
                oks.append(space.feasible(m))
            st.consider(Genome.concatenate(parts), np.concatenate(oks))
            if st.best_key is not None:
                log(f"evaluated {st.evaluated}, valid {st.valid}, best "
                    f"{dict(zip(rank, (float(v) for v in st.best_key)))}")
    seconds = time.perf_counter() - t0
    if st.best is None:
        raise MappingError(_no_mapping_reason(spec, space, st, None), file=spec_label(spec))
    batch = space.to_batch(st.best)
    mapping = mapping_from_batch(spec, batch, 0)
    result = _evaluate_scalar(spec, mapping)
    values = tuple(float(_scalar_metric(result, m)) for m in metric)
    log(f"done ({stopped}): evaluated {st.evaluated}, best {dict(zip(metric, values))}", True)
    return MapResult(result=result, mapping=mapping, metric=metric, metric_value=values[0],
                     metric_values=values, search_seconds=seconds, evaluated=st.evaluated,
                     valid=st.valid, stopped=stopped, mapspace_size=size, batch=batch, spec=spec)


def _minimal_genome(space: MapSpace) -> Genome:
    """Every free loop at the outermost free temporal level, free data spaces bypassed: the
    smallest tile at every level below the outermost."""
    L, D = space.L, space.D
    F = np.where(space.fixed > 0, space.fixed, 1)[None].copy()
    for d in range(D):
        free_t = [s for s in range(L - 1, -1, -1) if space.free[s, d]]
        if free_t:
            F[0, free_t[0], d] *= space.rem[d]
    X = (space.orient != 2)[None]
    perm = space._sample_perm(np.random.default_rng(0), 1)
    keep = (space.keep_fixed == 1)[None]
    return Genome(F, X, perm, keep)


def _scalar_evaluate():
    from ..model import evaluate
    return evaluate


def _scalar_metric(result, m: str) -> float:
    if m == "edp":
        return float(result.energy_pJ) * float(result.cycles)
    if m == "energy":
        return float(result.energy_pJ)
    return float(result.cycles)


def _no_mapping_reason(spec, space: MapSpace, st: _Search, small: Genome | None) -> str:
    """One line naming why nothing valid was found."""
    L = space.L
    if small is not None:
        fixed = ", ".join(f"{space.levels[s % L]}{'(spatial)' if s >= L else ''}:"
                          f"{space.dims[d]}={space.fixed[s, d]}"
                          for s, d in zip(*np.nonzero(space.fixed > 1)))
        kept = ", ".join(f"{space.levels[l]}:{space.spaces[k]}"
                         for l, k in zip(*np.nonzero(space.keep_fixed[:-1] == 1)))
        return (f"no valid mapping: tiles overflow a buffer even with every free loop at the "
                f"outermost level and every free data space bypassed; binding: buffer capacity "
                f"under the fixed factors [{fixed or 'none'}] and kept data spaces [{kept or 'none'}]")
    return (f"no valid mapping found among {st.evaluated} evaluated mappings (map space of "
            f"{space.size():.3g} points); binding: buffer capacity / mesh fan-out / utilization "
            f"under the given constraints")
