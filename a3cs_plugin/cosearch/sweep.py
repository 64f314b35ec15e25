"""Sweeps of co-searches: read the finished trials, mark their Pareto front, write the report.

A *sweep* is a set of co-search runs that differ in lambda / FPS target, template or seed -- the
trials of an NNI experiment (``examples/nni/``) or simply a directory of ``a3cs search`` run
directories.  :func:`load_sweep` reads either:

- an NNI experiment, by id or by its directory: the trials' hyper-parameters and final results come
  from the experiment's database (``<experiment dir>/db/nni.sqlite``), the run directory of each
  trial from the ``run_dir`` its final result names (``examples/nni/trial.py`` reports it);
- a directory holding run directories (anywhere below it): every ``report.json`` of a search, the
  trial parameters read from the ``config.yaml`` next to it.

:func:`pareto_front` marks the points no other point beats on all of (score up, FPS up, energy
down); :func:`write_report` writes ``pareto.png``, ``pareto.md`` and ``pareto.json``.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from a3cs_plugin.errors import ConfigError

#: objective name -> +1 (larger is better) or -1 (smaller is better)
OBJECTIVES = {"score": +1, "fps": +1, "energy_mJ": -1}
#: the numbers a trial reports (``examples/nni/trial.py``) and the report reads
METRICS = ("score", "normalized_score", "fps", "energy_mJ", "area_mm2")
#: tuner parameters shown in the report, in this order
PARAMS = ("lambda", "fps_target", "template", "seed")
#: where nnictl keeps its list of experiments (id -> logDir)
NNI_HOME = Path("~/nni-experiments")


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def trial_metrics(report: Mapping[str, Any]) -> dict[str, float]:
    """The sweep numbers of one search's ``report.json``: the derived agent's evaluation score,
    FPS, energy per inference and area -- the mapper's numbers when the run was re-costed, the
    surrogate's otherwise.  Missing numbers are NaN."""
    d = report.get("derived") or {}
    s = d.get("surrogate") or {}

    def pick(key, fallback=None):
        v = d.get(key)
        return _num(v if v is not None else fallback)

    return {"score": pick("score"),
            "normalized_score": pick("normalized_score"),
            "fps": pick("fps", s.get("fps")),
            "energy_mJ": pick("energy_mJ", s["energy_pJ"] * 1e-9 if s.get("energy_pJ") is not None else None),
            "area_mm2": pick("area_mm2", s.get("area_mm2"))}


# -- Pareto front -------------------------------------------------------------------------------

def _ranked(p: Mapping[str, Any]) -> bool:
    return all(math.isfinite(_num(p.get(k))) for k in OBJECTIVES)


def dominates(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """``a`` is at least as good as ``b`` on every objective and better on one."""
    better = False
    for k, sign in OBJECTIVES.items():
        x, y = sign * _num(a[k]), sign * _num(b[k])
        if x < y:
            return False
        better = better or x > y
    return better


def pareto_front(points: Sequence[Mapping[str, Any]]) -> list[bool]:
    """For each point: whether it is on the front of (score up, FPS up, energy down).  A point
    without a finite score, FPS and energy is never on it; equal points are both on it."""
    ranked = [_ranked(p) for p in points]
    return [ranked[i] and not any(ranked[j] and dominates(points[j], p)
                                  for j in range(len(points)) if j != i)
            for i, p in enumerate(points)]


# -- reading a sweep ----------------------------------------------------------------------------

def _home() -> Path:
    return NNI_HOME.expanduser()


def _registry_dir(exp_id: str) -> Path | None:
    """The experiment directory nnictl recorded for ``exp_id`` (``~/nni-experiments/.experiment``)."""
    path = _home() / ".experiment"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    entry = data.get(exp_id) if isinstance(data, dict) else None
    if not isinstance(entry, dict) or not entry.get("logDir"):
        return None
    return Path(entry["logDir"]).expanduser() / exp_id


def find_experiment(exp_id: str, experiments_dir: str | Path | None = None) -> Path:
    """The directory of the NNI experiment ``exp_id`` (the one holding ``db/nni.sqlite``)."""
    cands = []
    if experiments_dir is not None:
        cands.append(Path(experiments_dir).expanduser() / exp_id)
    reg = _registry_dir(exp_id)
    if reg is not None:
        cands.append(reg)
    cands.append(_home() / exp_id)
    for c in cands:
        if (c / "db" / "nni.sqlite").is_file():
            return c
    where = f"{experiments_dir} or " if experiments_dir is not None else ""
    raise ConfigError(f"unknown NNI experiment '{exp_id}' (no db/nni.sqlite for it in {where}"
                      f"nnictl's experiment list)", key="EXPERIMENT_ID|DIR",
                      expected="an id from `nnictl experiment list --all`, an experiment directory, "
                      "or a directory of search run directories (report.json)")


def _loads(text: Any) -> Any:
    """NNI stores final results JSON-encoded twice (a JSON string holding the JSON of the dict)."""
    v = text
    for _ in range(3):
        if not isinstance(v, str):
            return v
        try:
            v = json.loads(v)
        except ValueError:
            return v
    return v


def _run_files(run_dir: str | None) -> dict[str, Any]:
    """Where a trial's derived pair lies (on the machine that ran it: the point's ``host``)."""
    if not run_dir:
        return {"run_dir": None, "arch_json": None, "accelerator_yaml": None}
    p = Path(run_dir)
    return {"run_dir": str(p), "arch_json": str(p / "arch.json"), "accelerator_yaml": str(p / "accelerator.yaml")}


def _read_db(exp_dir: Path) -> dict[str, Any]:
    import sqlite3

    db = exp_dir / "db" / "nni.sqlite"
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            events = con.execute("select trialJobId, event, data, sequenceId, timestamp "
                                 "from TrialJobEvent order by timestamp, rowid").fetchall()
            finals = con.execute("select trialJobId, data, parameterId from MetricData where type='FINAL' "
                                 "order by timestamp, rowid").fetchall()
            prof = con.execute("select params from ExperimentProfile order by revision desc limit 1").fetchone()
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise ConfigError(f"unreadable NNI experiment database ({exc})", file=str(db),
                          expected="the db/nni.sqlite of an NNI 3.0 experiment") from None
    trials: dict[str, dict[str, Any]] = {}
    by_id: dict[str, dict] = {}      # parameter_id -> parameters, as the tuner generated them
    for tid, event, data, seq, _ts in events:
        t = trials.setdefault(tid, {"trial_id": tid, "sequence": None, "status": None, "params": {}})
        t["status"] = event
        if seq is not None:
            t["sequence"] = int(seq)
        hp = _loads(data) if data else None
        if isinstance(hp, dict) and isinstance(hp.get("parameters"), dict):
            t["params"] = hp["parameters"]
            by_id[str(hp.get("parameter_id"))] = hp["parameters"]
    for tid, data, pid in finals:
        t = trials.setdefault(tid, {"trial_id": tid, "sequence": None, "status": None, "params": {}})
        t["final"] = _loads(data)
        # NNI 3.0 hands the queued parameters to trials first come, first served, so two trials
        # started together may each run the other's (microsoft/nni#5726): the parameter id a
        # trial reports with its result says which it ran
        if pid is not None and str(pid) in by_id:
            t["params"] = by_id[str(pid)]
    platform = None
    if prof:
        cfg = _loads(prof[0])
        ts = cfg.get("trainingService") if isinstance(cfg, dict) else None
        if isinstance(ts, dict):
            platform = ts.get("platform")
        elif isinstance(ts, list):
            platform = "hybrid"
    return {"trials": trials, "platform": platform}


def _experiment_points(exp_dir: Path) -> tuple[list[dict], list[dict], str | None]:
    got = _read_db(exp_dir)
    points, skipped = [], []
    for t in sorted(got["trials"].values(), key=lambda t: (t["sequence"] is None, t["sequence"] or 0)):
        base = {"label": f"#{t['sequence']} {t['trial_id']}" if t["sequence"] is not None else t["trial_id"],
                "trial_id": t["trial_id"], "sequence": t["sequence"], "status": t["status"],
                "params": {k: t["params"].get(k) for k in PARAMS if k in t["params"]}}
        final = t.get("final")
        if final is None:
            skipped.append({**base, "why": f"no final result (status {t['status']})"})
            continue
        if not isinstance(final, dict):
            final = {"default": final}
        nums = {k: _num(final.get(k)) for k in METRICS}
        if not math.isfinite(nums["score"]):
            nums["score"] = _num(final.get("default"))
        if not (math.isfinite(nums["fps"]) and math.isfinite(nums["energy_mJ"])):
            skipped.append({**base, "why": "its final result has no fps / energy_mJ"})
            continue
        run_dir = final.get("run_dir")
        if not run_dir:   # a trial that did not say: its output directory on the local training service
            cands = [exp_dir / "trials" / t["trial_id"] / "search",
                     *sorted(exp_dir.glob(f"environments/*/trials/{t['trial_id']}/search"))]
            run_dir = next((str(c) for c in cands if (c / "report.json").is_file()), None)
        points.append({**base, **nums, "host": final.get("host"), **_run_files(run_dir)})
    return points, skipped, got["platform"]


def _config_params(run_dir: Path) -> dict[str, Any]:
    import yaml
    try:
        cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return {}
    if not isinstance(cfg, dict):
        return {}
    hw = cfg.get("hardware") if isinstance(cfg.get("hardware"), dict) else {}
    out = {"lambda": hw.get("lambda"), "fps_target": hw.get("fps_target"), "template": hw.get("template"),
           "seed": cfg.get("seed")}
    return {k: v for k, v in out.items() if v is not None}


def _dir_points(root: Path) -> tuple[list[dict], list[dict]]:
    points, skipped = [], []
    for rp in sorted(root.rglob("report.json")):
        run = rp.parent
        if (run / "seeds.json").is_file():   # a multi-seed run: its seed_<s>/ runs are the points
            continue
        label = str(run.relative_to(root)) if run != root else run.name
        try:
            report = json.loads(rp.read_text())
        except (OSError, ValueError):
            skipped.append({"label": label, "why": "unreadable report.json"})
            continue
        if not isinstance(report, dict) or not isinstance(report.get("derived"), dict):
            continue   # not the report of a search (e.g. retrain/report.json)
        nums = trial_metrics(report)
        params = _config_params(run)
        if "template" not in params and report.get("template"):
            params["template"] = report["template"]
        base = {"label": label, "trial_id": None, "sequence": None, "status": "SUCCEEDED",
                "params": {k: params[k] for k in PARAMS if k in params}}
        if not (math.isfinite(nums["fps"]) and math.isfinite(nums["energy_mJ"])):
            skipped.append({**base, "why": "report.json has no FPS / energy"})
            continue
        points.append({**base, **nums, "host": None, **_run_files(str(run.resolve()))})
    return points, skipped


def load_sweep(source: str | Path, *, experiments_dir: str | Path | None = None) -> dict[str, Any]:
    """The trials of ``source`` -- an NNI experiment id, an experiment directory (with
    ``db/nni.sqlite``) or a directory of run directories -- with their Pareto front marked."""
    text = str(source)
    p = Path(text).expanduser()
    exp_id = None
    platform = None
    if p.is_dir():
        if (p / "db" / "nni.sqlite").is_file():
            kind, base, exp_id = "nni", p, p.name
        else:
            kind, base = "dir", p
    elif p.exists():
        raise ConfigError("not a directory", file=text, key="EXPERIMENT_ID|DIR",
                          expected="an NNI experiment id or a directory of search run directories")
    elif os.sep in text or text.startswith(".") or not text.isalnum():
        raise ConfigError("no such directory", file=text, key="EXPERIMENT_ID|DIR",
                          expected="an NNI experiment id or a directory of search run directories")
    else:
        kind, exp_id = "nni", text
        base = find_experiment(text, experiments_dir)
    if kind == "nni":
        points, skipped, platform = _experiment_points(base)
        if not points:
            why = f" ({len(skipped)} trials: {skipped[0]['why']}, ...)" if skipped else " (no trials)"
            raise ConfigError(f"NNI experiment {exp_id} has no trial with a final result{why}",
                              file=str(base / "db" / "nni.sqlite"),
                              expected="an experiment whose trials report {default, score, fps, energy_mJ} "
                              "(examples/nni/trial.py)")
    else:
        points, skipped = _dir_points(base)
        if not points:
            raise ConfigError("no finished search below this directory (no report.json of a search)",
                              file=text, key="EXPERIMENT_ID|DIR",
                              expected="a directory holding `a3cs search` run directories, or an NNI "
                              "experiment id")
    for pt, on in zip(points, pareto_front(points)):
        pt["pareto"] = on
    return {"source": text, "kind": kind, "experiment_id": exp_id, "platform": platform,
            "base_dir": str(base.resolve()), "objectives": dict(OBJECTIVES), "points": points,
            "skipped": skipped}


# -- writing the report -------------------------------------------------------------------------

def _shown(path: str | None, base: str | Path, exp_id: str | None = None, remote: bool = False) -> str:
    """A path as the Markdown shows it: relative to the sweep's directory (or the working
    directory), ``~`` for the home directory -- never the machine's absolute path when avoidable.
    A remote trial's directory lies below ``~/nni-experiments/<id>/`` of its SSH user (NNI 3.0
    puts it there), and is shown so."""
    if not path:
        return "n/a"
    p = Path(path)
    parts = p.parts
    for i in range(1, len(parts)):
        if remote and exp_id and parts[i] == exp_id and parts[i - 1] == "nni-experiments":
            return str(Path("~", *parts[i - 1:]))
    for root, prefix in ((Path(base), ""), (Path.cwd(), ""), (Path.home(), "~/")):
        try:
            rel = p.resolve().relative_to(Path(root).resolve())
        except (ValueError, OSError):
            continue
        return prefix + (str(rel) if str(rel) != "." else ".")
    return str(p)


def _shown_file(point: Mapping[str, Any], key: str, sweep: Mapping[str, Any]) -> str:
    if not point.get(key):
        return "n/a"
    remote = sweep.get("platform") not in (None, "local")
    text = _shown(point[key], sweep["base_dir"], sweep.get("experiment_id"), remote)
    if remote and point.get("host"):
        text = f"{point['host']}:{text}"
    return f"`{text}`"


def _fmt(v: Any, spec: str = ".4g") -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return format(v, spec) if math.isfinite(v) else "n/a"
    return str(v)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _ordered(points: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    def key(p):
        score = _num(p.get("score"))
        return (not p["pareto"], -(score if math.isfinite(score) else -1e300), -_num(p.get("fps")))
    return sorted(points, key=key)


def markdown(sweep: Mapping[str, Any], png_name: str = "pareto.png") -> str:
    base = sweep["base_dir"]
    pts = sweep["points"]
    front = [p for p in pts if p["pareto"]]
    if sweep["kind"] == "nni":
        what = f"NNI experiment `{sweep['experiment_id']}`" + (f" ({sweep['platform']} training service)"
                                                             if sweep.get("platform") else "")
    else:
        what = f"run directories below `{sweep['source']}`"
    lines = [f"# Sweep report: {what}", "",
             f"{_n(len(pts), 'trial')} with a final result"
             + (f", {len(sweep['skipped'])} without" if sweep["skipped"] else "")
             + f". Pareto front of (score ↑, FPS ↑, energy per inference ↓): {_n(len(front), 'trial')} (★). "
             "Score: the derived agent's evaluation score; FPS, energy, area: the mapper's numbers on the "
             "searched accelerator (the surrogate's where a run was not re-costed).", "",
             f"![score vs FPS]({png_name})", ""]
    has = {k: any(k in p["params"] for p in pts) for k in PARAMS}
    heads = {"lambda": "λ", "fps_target": "FPS target", "template": "template", "seed": "seed"}
    cols = [heads[k] for k in PARAMS if has[k]]
    lines.append("| | trial | " + " | ".join(cols + ["score", "FPS", "energy (mJ)", "area (mm²)",
                                                        "arch.json", "accelerator.yaml"]) + " |")
    lines.append("|" + "---|" * (2 + len(cols) + 6))
    for p in _ordered(pts):
        row = ["★" if p["pareto"] else "", p["label"]]
        row += [_fmt(p["params"].get(k)) for k in PARAMS if has[k]]
        row += [_fmt(p["score"], ".3g"), _fmt(p["fps"], ".4g"), _fmt(p["energy_mJ"], ".4g"),
                _fmt(p["area_mm2"], ".3g"),
                _shown_file(p, "arch_json", sweep), _shown_file(p, "accelerator_yaml", sweep)]
        lines.append("| " + " | ".join(row) + " |")
    if sweep["skipped"]:
        lines += ["", "Not in the table:", ""]
        lines += [f"- {s['label']}: {s['why']}" for s in sweep["skipped"]]
    where = (f"the experiment directory (`{_shown(base, Path.cwd())}`)" if sweep["kind"] == "nni"
             else f"`{sweep['source']}`")
    remote = sweep.get("platform") not in (None, "local")
    lines += ["", f"Paths are relative to {where}"
              + ("; a remote trial's files are on the machine named before the colon (`~`: the home "
                 "directory of the SSH user there)." if remote else "."), ""]
    return "\n".join(lines)


def plot(sweep: Mapping[str, Any], path: str | Path) -> Path:
    """``pareto.png``: score vs FPS (log x), colour = energy per inference, the front ringed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm, Normalize
    from matplotlib.ticker import FuncFormatter, LogLocator

    pts = [p for p in sweep["points"] if math.isfinite(_num(p["fps"])) and math.isfinite(_num(p["energy_mJ"]))]
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    energies = [p["energy_mJ"] for p in pts]
    lo, hi = min(energies), max(energies)
    norm = (LogNorm(lo, hi) if lo > 0 and hi / lo > 10 else Normalize(lo, hi if hi > lo else lo + 1e-12))
    markers = "osD^vP*X"
    templates = sorted({str(p["params"].get("template", "")) for p in pts})
    sc = None
    for i, tpl in enumerate(templates):
        group = [p for p in pts if str(p["params"].get("template", "")) == tpl]
        for on in (False, True):
            g = [p for p in group if p["pareto"] == on]
            if not g:
                continue
            sc = ax.scatter([p["fps"] for p in g],
                            [p["score"] if math.isfinite(_num(p["score"])) else float("nan") for p in g],
                            c=[p["energy_mJ"] for p in g], cmap="viridis", norm=norm,
                            marker=markers[i % len(markers)], s=110 if on else 55,
                            edgecolors="crimson" if on else "0.4", linewidths=2.0 if on else 0.6,
                            label=(tpl or "points") if not on or not any(not q["pareto"] for q in group) else None,
                            zorder=3 if on else 2)
    front = sorted((p for p in pts if p["pareto"]), key=lambda p: p["fps"])
    ax.scatter([], [], s=110, facecolors="none", edgecolors="crimson", linewidths=2.0,
               label="on the Pareto front of (score, FPS, energy)")
    if len(front) > 1:
        ax.plot([p["fps"] for p in front], [p["score"] for p in front], color="crimson", lw=0.8, ls="--",
                zorder=1, label="the front, in FPS order")
    spots: dict[tuple, list[str]] = {}          # one label per position ("0, 2" for equal points)
    for p in pts:
        if math.isfinite(_num(p["score"])):
            spots.setdefault((p["fps"], p["score"]), []).append(
                f"#{p['sequence']}" if p.get("sequence") is not None else p["label"])
    for i, ((x, y), names) in enumerate(sorted(spots.items())):   # neighbours alternate above/below
        ax.annotate(", ".join(names), (x, y), textcoords="offset points", xytext=(6, 5 if i % 2 == 0 else -11),
                    fontsize=7)
    ax.set_xscale("log")
    plain = FuncFormatter(lambda v, _pos: f"{v:,.0f}")
    ax.xaxis.set_major_formatter(plain)             # 1, 2, 5 per decade, written out
    ax.xaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
    ax.xaxis.set_minor_formatter(plain)
    ax.tick_params(axis="x", which="both", labelsize=7)
    ax.set_xlabel("FPS of the derived agent on its accelerator (log)")
    ax.set_ylabel("evaluation score")
    title = (f"sweep {sweep['experiment_id']}" if sweep.get("experiment_id") else "sweep") + \
        f": {len(pts)} trials, front ringed in red"
    ax.set_title(title, fontsize=10)
    if sc is not None:
        fig.colorbar(sc, ax=ax, label="energy per inference (mJ)")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def write_report(sweep: Mapping[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write ``pareto.png``, ``pareto.md`` and ``pareto.json`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"png": plot(sweep, out / "pareto.png")}
    paths["md"] = out / "pareto.md"
    paths["md"].write_text(markdown(sweep))
    paths["json"] = out / "pareto.json"
    doc = dict(sweep)
    doc["front"] = [p["label"] for p in _ordered(sweep["points"]) if p["pareto"]]
    paths["json"].write_text(json.dumps(_plain(doc), indent=2))
    return paths


def _plain(x: Any) -> Any:
    """JSON without NaN tokens: non-finite numbers become null."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def summary_rows(sweep: Mapping[str, Any]) -> Iterable[str]:
    """One line per trial (front first) for the terminal."""
    for p in _ordered(sweep["points"]):
        params = " ".join(f"{k}={p['params'][k]}" for k in PARAMS if k in p["params"])
        yield (f"{'*' if p['pareto'] else ' '} {p['label']:<22} {params:<40} score {_fmt(p['score'], '.3g'):>6}  "
               f"FPS {_fmt(p['fps'], '.4g'):>8}  energy {_fmt(p['energy_mJ'], '.4g'):>8} mJ  "
               f"area {_fmt(p['area_mm2'], '.3g')} mm2")
