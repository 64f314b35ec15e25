"""Independent runs side by side: ``a3cs reproduce --jobs N``.

A figure is a set of independent runs (a training or a search each, in its own run directory,
each checkpointing and resuming on its own, one torch thread each).  Run one after the other they
use one core of the machine; :func:`run_tasks` runs up to ``jobs`` of them at once, each in its
own spawned process whose stdout and stderr go to ``RUN/reproduce.log`` (progress as lines, NNI
and Lightning output, the traceback of a failure), while this process prints one line when a run
starts and one when it ends, with how many remain.

A failed run stops the others (they resume from their last checkpoint on ``--resume``) and is
raised here as one line naming the run and its log; Ctrl-C or a kill of this process stops them
too, and a run whose parent dies (even by SIGKILL) stops itself, so a ``--resume`` never finds a
second writer in a run directory.  ``jobs <= 1`` runs the tasks in this process, in order, with
its own log and progress.
"""
from __future__ import annotations

import importlib
import multiprocessing as mp
import os
import queue
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from a3cs_plugin.errors import A3CSError


@dataclass
class Task:
    """``func`` (``"module:function"``, called as ``func(**kwargs, run=str(run), progress=...,
    log=...)``) for the run in ``run``; ``label`` names it in the log lines."""
    label: str
    func: str
    run: Path
    kwargs: dict[str, Any] = field(default_factory=dict)


def default_jobs(device: str = "cpu") -> int:
    """``--jobs 0`` (auto): one run per CPU core on a CPU (every run uses one torch thread), one
    at a time on a GPU (several runs share it; pass ``--jobs`` to choose)."""
    from a3cs_plugin.rl.device import resolve_device
    if str(device).startswith("cuda") or resolve_device(device).type == "cuda":
        return 1
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:          # not on Linux
        return max(1, os.cpu_count() or 1)


def _resolve(func: str) -> Callable:
    mod, name = func.split(":")
    return getattr(importlib.import_module(mod), name)


def _die_with_parent(parent: int) -> None:
    """A run must not outlive the command that started it (a second writer on ``--resume``):
    Linux's parent-death signal, else a thread that watches the parent's pid."""
    import signal
    import sys
    import threading
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))     # PR_SET_PDEATHSIG
            if os.getppid() != parent:          # it died before the call
                os._exit(1)
            return
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)
    threading.Thread(target=watch, daemon=True).start()


def _worker(q, label: str, func: str, kwargs: dict, logfile: str, parent: int) -> None:  # pragma: no cover
    import sys
    import traceback
    _die_with_parent(parent)
    fd = os.open(logfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)

    def log(s: str) -> None:
        print(s, file=sys.stderr, flush=True)
    try:
        _resolve(func)(**kwargs, progress=False, log=log)     # kwargs carry run= (run_tasks)
        q.put((label, None))
    except BaseException as exc:        # noqa: BLE001 - reported to the parent as one line
        traceback.print_exc()
        sys.stderr.flush()
        msg = exc.message if isinstance(exc, A3CSError) else f"{type(exc).__name__}: {exc}"
        q.put((label, msg or type(exc).__name__))


def run_tasks(tasks: list[Task], jobs: int, *, progress: bool, log: Callable[[str], None]) -> None:
    """Run every task; up to ``jobs`` at once in child processes (see the module docstring)."""
    if jobs <= 1 or len(tasks) <= 1:
        for t in tasks:
            _resolve(t.func)(**t.kwargs, run=str(t.run), progress=progress, log=log)
        return
    import signal
    import threading
    ctx = mp.get_context("spawn")       # no fork of a process holding torch / NNI threads
    q = ctx.Queue()
    old_term = None
    if threading.current_thread() is threading.main_thread():
        def on_term(signum, frame):     # a kill of this command stops its runs (the finally below)
            raise SystemExit(128 + signum)
        old_term = signal.signal(signal.SIGTERM, on_term)
    pending = list(tasks)
    running: dict[str, tuple[Any, Task, float]] = {}
    done = 0
    try:
        while pending or running:
            while pending and len(running) < jobs:
                t = pending.pop(0)
                t.run.mkdir(parents=True, exist_ok=True)
                logfile = t.run / "reproduce.log"
                p = ctx.Process(target=_worker, args=(q, t.label, t.func, {**t.kwargs, "run": str(t.run)}, str(logfile),
                                                         os.getpid()),
                                name=f"a3cs-{t.label}")
                p.start()
                running[t.label] = (p, t, time.time())
                log(f"a3cs reproduce: started {t.label} ({len(running)} running, {len(pending)} waiting) "
                    f"-> {logfile}")
            try:
                label, err = q.get(timeout=2.0)
            except queue.Empty:
                for label, (p, t, _) in list(running.items()):
                    if not p.is_alive() and p.exitcode not in (None, 0):   # killed without a word
                        raise A3CSError(f"run {label} died (exit code {p.exitcode})",
                                        file=str(t.run / "reproduce.log"))
                continue
            p, t, t0 = running.pop(label)
            p.join()
            if err is not None:
                raise A3CSError(f"run {label} failed: {err} (the other runs were stopped; --resume "
                                "continues them)", file=str(t.run / "reproduce.log"))
            done += 1
            log(f"a3cs reproduce: finished {label} in {time.time() - t0:.0f} s "
                f"({done}/{len(tasks)} done, {len(running)} running)")
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
        for p, _, _ in running.values():
            if p.is_alive():
                p.terminate()
        for p, _, _ in running.values():
            p.join(timeout=30)
            if p.is_alive():
                p.kill()


__all__ = ["Task", "default_jobs", "run_tasks"]
