"""Labels for the surrogate: the mapper's best mapping for (layer problem, accelerator point) pairs.

Labels are cached on disk as JSON lines, one record per pair, keyed by a hash of the template,
the point, the problem instance, the mapper metric, time limit and seed. Generation runs in worker
processes (``workers``) with a tqdm progress bar; finished records are appended as they arrive so an
interrupted run resumes where it stopped.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path
from typing import Iterable

from ...errors import A3CSError

__all__ = ["LabelTask", "label_key", "label_one", "generate_labels", "read_cache"]

LabelTask = dict  # {"key", "template", "point", "problem", "metric", "time_limit", "seed", ...}


def label_key(template: str, point: dict, problem: dict, metric: str, time_limit: float,
              seed: int, max_evaluations: int | None = None) -> str:
    inst = problem.get("problem", problem)["instance"]
    text = json.dumps({"t": template, "p": point, "i": inst, "m": metric, "tl": round(time_limit, 4),
                       "s": seed, "me": max_evaluations}, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()


_SPACES: dict = {}


def _space(template: str):
    from ..space import DesignSpace
    if template not in _SPACES:
        _SPACES[template] = DesignSpace.from_template(template)
    return _SPACES[template]


def label_one(task: LabelTask) -> dict:
    """Map one problem on one accelerator point; returns a JSON-able record (``error`` set when no
    valid mapping was found)."""
    from ..mapper import search
    from ..spec import load_spec
    space = _space(task["template"])
    rec = {"key": task["key"], "template": space.name, "point": task["point"],
           "instance": task["problem"].get("problem", task["problem"])["instance"],
           "time_limit": task["time_limit"], "seed": task["seed"], "metric": task["metric"],
           "max_evaluations": task.get("max_evaluations")}
    t0 = time.perf_counter()
    try:
        spec = load_spec([space.render(task["point"]), task["problem"]])
        kw = {"max_evaluations": task["max_evaluations"]} if task.get("max_evaluations") else {}
        res = search(spec, metric=task["metric"], time_limit=task["time_limit"], seed=task["seed"], **kw)
        r = res.result
        rec.update(energy_pJ=float(r.energy_pJ), cycles=float(r.cycles),
                   area_um2=None if r.area_um2 is None else float(r.area_um2),
                   search_seconds=float(res.search_seconds), evaluated=int(res.evaluated),
                   stopped=str(res.stopped))
    except A3CSError as exc:
        rec["error"] = str(exc)
    rec["wall_s"] = round(time.perf_counter() - t0, 4)
    return rec


def read_cache(path: str | Path | None) -> dict:
    out = {}
    if path and Path(path).is_file():
        for line in Path(path).read_text().splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by an interrupted run
            out[rec["key"]] = rec
    return out


def _worker_init(nice: int):
    if nice:
        try:
            os.nice(nice)
        except OSError:
            pass
    os.environ.setdefault("OMP_NUM_THREADS", "1")


class _LineProgress:
    """Progress when stderr is not a terminal: one line per tenth of the work (rate and ETA)."""

    def __init__(self, total: int, desc: str):
        self.total, self.desc, self.n, self.t0 = int(total), desc, 0, time.time()
        self.next = max(1, self.total // 10)

    def step(self) -> None:
        self.n += 1
        if self.n >= self.next or self.n == self.total:
            rate = self.n / max(1e-9, time.time() - self.t0)
            eta = (self.total - self.n) / rate if rate > 0 else float("nan")
            print(f"{self.desc}: {self.n}/{self.total} points, {rate:.1f} labels/s, ETA {eta:.0f} s",
                  file=sys.stderr, flush=True)
            self.next = self.n + max(1, self.total // 10)


def generate_labels(template: str, pairs: Iterable[tuple[dict, dict]], *, cache: str | Path | None,
                    metric: str = "edp", time_limit: float = 0.5, seed: int = 0, workers: int = 2,
                    nice: int = 0, progress: bool = True, desc: str = "labels",
                    max_evaluations: int | None = None) -> list[dict]:
    """Label ``(point, problem)`` pairs (points completed with defaults); returns one record per
    pair in order, reading/writing the JSONL ``cache``."""
    from tqdm.auto import tqdm
    space = _space(template)
    tasks = []
    for point, problem in pairs:
        point = space.check_point(point)
        key = label_key(space.name, point, problem, metric, time_limit, seed, max_evaluations)
        tasks.append({"key": key, "template": template, "point": point, "problem": problem,
                      "metric": metric, "time_limit": float(time_limit), "seed": int(seed),
                      "max_evaluations": max_evaluations})
    done = read_cache(cache)
    todo, seen = [], set()
    for t in tasks:
        if t["key"] not in done and t["key"] not in seen:
            seen.add(t["key"])
            todo.append(t)
    if todo:
        if cache:
            Path(cache).parent.mkdir(parents=True, exist_ok=True)
        fh = open(cache, "a") if cache else None
        tty = sys.stderr.isatty()
        bar = tqdm(total=len(todo), desc=desc, disable=not (progress and tty), unit="pt")
        lines = _LineProgress(len(todo), desc) if progress and not tty else None
        pool = None
        try:
            if workers <= 1:
                results = map(label_one, todo)
                pool = None
            else:
                pool = mp.get_context("fork").Pool(workers, initializer=_worker_init, initargs=(nice,))
                results = pool.imap_unordered(label_one, todo, chunksize=1)
            for rec in results:
                done[rec["key"]] = rec
                if fh:
                    fh.write(json.dumps(rec) + "\n")
                    fh.flush()
                bar.update(1)
                if lines is not None:
                    lines.step()
            if pool is not None:
                pool.close()
                pool.join()
                pool = None
        finally:
            if workers > 1 and pool is not None:
                pool.terminate()
            bar.close()
            if fh:
                fh.close()
    return [done[t["key"]] for t in tasks]
