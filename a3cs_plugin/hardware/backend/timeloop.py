"""Optional backend: run the real Timeloop when it is installed, and read its ``*.stats.txt``.

``parse_stats`` works everywhere (it only reads text).  ``run_spec`` (behind ``--backend
timeloop``) takes our parsed :class:`Spec`, writes Timeloop's processed input
(:mod:`.processed`) and the ERT/ART, and runs ``timeloop-model`` / ``timeloop-mapper`` found
through ``A3CS_TIMELOOP_BIN`` (the binary or the folder holding it) or PATH; without them it falls
back to an importable ``pytimeloop`` front end on the user's files, and otherwise raises
:class:`TimeloopUnavailable` (one line).  ``run_timeloop`` passes files that are already Timeloop
input (a processed input) to the binaries as they are.

Energies from the summary follow the reference ``cases.yaml`` convention: a level's energy is
its ``fJ/Compute`` line x ``Computes`` / 1000 (pJ), total energy the ``Total`` line likewise.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from a3cs_plugin.errors import A3CSError

_NUM = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_LEVEL = re.compile(r"^Level (\d+)\s*$")
_NAME = re.compile(r"^=== (.+) ===\s*$")
_KV = re.compile(r"^(\s*)([^:=]+?)\s*:\s*(.*?)\s*$")
_DATASPACE = re.compile(r"^(\s+)([A-Za-z_][\w ]*):\s*$")


def _key(text: str) -> str:
    """'Scalar reads (per-instance)' -> 'scalar_reads_per_instance'."""
    return re.sub(r"[^0-9a-z]+", "_", text.strip().lower()).strip("_")


def _value(text: str) -> Any:
    """Number (units like pJ, um^2, %, words/cycle dropped; % -> fraction) or the raw string."""
    t = text.strip()
    m = _NUM.match(t)
    if not m:
        return t
    num = m.group(0)
    rest = t[len(num):].strip()
    if rest.startswith("("):  # "1 (1*1)" instance counts
        rest = ""
    v = float(num) if any(c in num for c in ".eE") else int(num)
    if rest.startswith("%"):
        return float(v) / 100.0
    return v


def _dataspace_summary(d: dict) -> dict:
    """Short names for the per-dataspace fields most users want."""
    alias = {
        "reads": "scalar_reads_per_instance", "fills": "scalar_fills_per_instance",
        "updates": "scalar_updates_per_instance",
        "energy_per_access_pJ": "energy_per_scalar_access",
        "energy_per_instance_pJ": "energy_per_instance", "energy_pJ": "energy_total",
        "utilized_capacity": "utilized_capacity", "partition_size": "partition_size",
        "utilized_instances": "utilized_instances_max",
    }
    out = {k: d[v] for k, v in alias.items() if v in d}
    if isinstance(d.get("utilized_capacity"), (int, float)) and d.get("partition_size"):
        out["utilization"] = d["utilized_capacity"] / d["partition_size"]
    return out


def parse_stats(source: str | os.PathLike) -> dict:
    """Parse Timeloop's ``*.stats.txt`` (path or text).

    Returns ``cycles``, ``computes`` (ints), ``energy_pJ`` (total), ``area_um2`` (sum over levels of
    the printed areas times instances), ``levels_pJ`` (level name ->
    pJ, compute level included, in the order printed), ``fJ_per_compute`` (as printed),
    ``utilization`` (fraction), ``summary`` (every ``key: value`` of Summary Stats) and ``levels``:
    level name -> ``{"index", "specs", "stats", "dataspaces"}``, where ``stats`` holds the level's
    own lines (cycles, bandwidth throttling; for the compute level computes, energy, ...) and
    ``dataspaces`` maps Weights/Inputs/Outputs to all their fields in snake_case plus the short
    aliases ``reads``, ``fills``, ``updates``, ``energy_per_access_pJ``, ``energy_pJ``,
    ``utilization`` (utilized capacity / partition size).
    """
    text = str(source)
    where = "<text>"
    if "\n" not in text and Path(text).is_file():
        where = text
        text = Path(text).read_text()
    lines = text.splitlines()
    levels: dict[str, dict] = {}
    cur = None
    section = None
    ds = None
    summary: dict[str, Any] = {}
    fj: dict[str, float] = {}
    computes = None
    mode = "levels"
    for line in lines:
        s = line.strip()
        if s in ("Networks", "Operational Intensity Stats"):
            mode, cur = "other", None
            continue
        if s == "Summary Stats":
            mode, cur = "summary", None
            continue
        if mode == "levels":
            m = _LEVEL.match(s)
            if m:
                cur, section, ds = {"index": int(m.group(1)), "specs": {}, "stats": {},
                                    "dataspaces": {}}, None, None
                continue
            m = _NAME.match(s)
            if m and cur is not None and "name" not in cur:
                cur["name"] = m.group(1).strip()
                levels[cur["name"]] = cur
                continue
            if cur is None or not s or set(s) <= {"-"}:
                continue
            if s in ("SPECS", "STATS", "MAPPING"):
                section, ds = s, None
                continue
            if section == "MAPPING":
                continue
            m = _DATASPACE.match(line)
            if m and section == "STATS":
                ds = m.group(2).strip()
                cur["dataspaces"][ds] = {}
                continue
            m = _KV.match(line)
            if m:
                k, v = _key(m.group(2)), _value(m.group(3))
                if section == "SPECS":
                    cur["specs"][k] = v
                elif ds is not None and len(m.group(1)) > 4:
                    cur["dataspaces"][ds][k] = v
                else:
                    ds = None
                    cur["stats"][k] = v
        elif mode == "summary":
            if s.startswith("Computes"):
                computes = int(_value(s.split("=", 1)[1]))
                continue
            if s == "fJ/Compute":
                mode = "fj"
                continue
            m = _KV.match(line)
            if m and ":" in line:
                summary[_key(m.group(2))] = _value(m.group(3))
        elif mode == "fj":
            if "=" in s:
                name, val = s.rsplit("=", 1)
                fj[name.strip()] = float(val)
    if computes is None or "cycles" not in summary or "Total" not in fj:
        raise A3CSError("not a complete Timeloop stats file", file=where,
                        expected="'Summary Stats' with Cycles, 'Computes = N' and fJ/Compute Total")
    for lv in levels.values():
        for d in lv["dataspaces"].values():
            d.update(_dataspace_summary(d))
    levels_pJ = {n: v * computes / 1000.0 for n, v in fj.items() if n != "Total"}
    area = 0.0
    for lv in levels.values():   # compute: its total; storage: per-instance area x instances
        if isinstance(lv["stats"].get("area_total"), (int, float)):
            area += lv["stats"]["area_total"]
        elif isinstance(lv["specs"].get("area"), (int, float)):
            area += lv["specs"]["area"] * (lv["specs"].get("instances") or 1)
    return {
        "area_um2": area,
        "cycles": int(summary["cycles"]),
        "computes": computes,
        "energy_pJ": fj["Total"] * computes / 1000.0,
        "levels_pJ": levels_pJ,
        "fJ_per_compute": fj,
        "utilization": summary.get("utilization"),
        "summary": summary,
        "levels": levels,
    }


# ----------------------------------------------------------------------------- running Timeloop
_BIN = {"model": "timeloop-model", "mapper": "timeloop-mapper"}


def _pytimeloop_frontend():
    if importlib.util.find_spec("pytimeloop") is None:
        return None
    try:
        from pytimeloop.timeloopfe import v4 as tl  # type: ignore
    except Exception:  # noqa: BLE001 - any import failure means "not usable"
        return None
    return tl if hasattr(tl, "call_model") and hasattr(tl, "call_mapper") else None


def available(mode: str = "model") -> bool:
    """True when ``run_timeloop(..., mode)`` can run (binary on PATH or pytimeloop front end)."""
    if mode not in _BIN:
        raise A3CSError("unknown Timeloop mode", key="mode", expected="'model' or 'mapper'", got=mode)
    return find_binary(mode) is not None or _pytimeloop_frontend() is not None


def _write_inputs(spec_files: Iterable[Any], workdir: Path) -> list[Path]:
    paths = []
    for i, item in enumerate(spec_files):
        if isinstance(item, Mapping):
            p = workdir / f"a3cs_input_{i}.yaml"
            with open(p, "w") as f:
                yaml.safe_dump(dict(item), f, sort_keys=False)
            paths.append(p)
        else:
            p = Path(item)
            if not p.is_file():
                raise A3CSError("Timeloop input file not found", file=str(p))
            paths.append(p.resolve())
    if not paths:
        raise A3CSError("no Timeloop input given", key="spec_files", expected="YAML files or dicts")
    return paths


def run_timeloop(spec_files: Iterable[Any], mode: str = "model", workdir: str | os.PathLike = ".",
                 timeout: float | None = None) -> dict:
    """Run ``timeloop-model`` or ``timeloop-mapper`` on the inputs and parse its stats.

    ``spec_files``: YAML paths and/or dicts (written to ``workdir``); outputs go to ``workdir``.
    Returns :func:`parse_stats`'s dict plus ``stats_file``. Raises :class:`A3CSError` when
    Timeloop is not installed, exits non-zero, or writes no stats file.
    """
    if mode not in _BIN:
        raise A3CSError("unknown Timeloop mode", key="mode", expected="'model' or 'mapper'", got=mode)
    binary = shutil.which(_BIN[mode])
    tl = None if binary else _pytimeloop_frontend()
    if binary is None and tl is None:
        raise A3CSError(f"Timeloop backend unavailable: {_BIN[mode]} not on PATH and pytimeloop "
                        "not importable; install Timeloop/Accelergy or use a3cs's built-in model")
    wd = Path(workdir).resolve()
    wd.mkdir(parents=True, exist_ok=True)
    inputs = _write_inputs(spec_files, wd)
    if binary is not None:
        cmd = [binary, *map(str, inputs), "-o", str(wd)]
        try:
            proc = subprocess.run(cmd, cwd=wd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise A3CSError(f"{_BIN[mode]} did not finish within {timeout} s", file=str(wd)) from None
        log = (proc.stdout or "") + (proc.stderr or "")
        (wd / f"a3cs_{_BIN[mode]}.log").write_text(log)
        if proc.returncode != 0:
            last = log.strip().splitlines()[-1] if log.strip() else "no output"
            raise A3CSError(f"{_BIN[mode]} exited with {proc.returncode}: {last}",
                            file=str(wd / f"a3cs_{_BIN[mode]}.log"))
    else:
        try:
            spec = tl.Specification.from_yaml_files(*[str(p) for p in inputs])
            (tl.call_model if mode == "model" else tl.call_mapper)(spec, output_dir=str(wd))
        except Exception as e:  # noqa: BLE001 - surface pytimeloop failures as one line
            raise A3CSError(f"pytimeloop {mode} failed: {type(e).__name__}: {e}", file=str(wd)) from None
    stats = sorted(wd.glob(f"{_BIN[mode]}.stats.txt")) or sorted(wd.glob("*.stats.txt"))
    if not stats:
        raise A3CSError(f"{_BIN[mode]} wrote no stats file", file=str(wd),
                        expected=f"{_BIN[mode]}.stats.txt")
    out = parse_stats(stats[0])
    out["stats_file"] = str(stats[0])
    return out


# ----------------------------------------------------------------------------- from a parsed Spec
class TimeloopUnavailable(A3CSError):
    """Neither the Timeloop binaries nor pytimeloop can be found."""


def find_binary(mode: str) -> str | None:
    """``timeloop-model`` / ``timeloop-mapper``: ``A3CS_TIMELOOP_BIN`` (the binary itself, or the
    folder holding both) first, then PATH."""
    name = _BIN[mode]
    env = os.environ.get("A3CS_TIMELOOP_BIN")
    if env:
        p = Path(env)
        cands = [p / name] if p.is_dir() else [p if p.name == name else p.with_name(name)]
        for c in cands:
            if c.is_file() and os.access(c, os.X_OK):
                return str(c)
    return shutil.which(name)


def _unavailable(mode: str) -> TimeloopUnavailable:
    env = os.environ.get("A3CS_TIMELOOP_BIN")
    where = f"A3CS_TIMELOOP_BIN={env} or PATH" if env else "PATH (or A3CS_TIMELOOP_BIN)"
    return TimeloopUnavailable(f"Timeloop is not installed: no {_BIN[mode]} on {where} and pytimeloop "
                               "is not importable; use --backend a3cs (the built-in model)",
                               key="--backend", expected="a Timeloop installation")


def _ert_art(spec) -> tuple[dict, dict]:
    """Accelergy-format ERT / ART for the spec's levels, from the energy tables the model uses."""
    from a3cs_plugin.hardware.energy.resolve import level_energies
    T = level_energies(spec)
    top = str(spec.arch.name or "system")
    top = top if top.endswith("_top_level") else f"{top}_top_level"
    ert, art = [], []
    area = dict(spec.tables.area) if spec.tables is not None and spec.tables.area else {}
    for i, lv in enumerate(spec.arch.levels):
        if lv.is_dummy:
            continue
        name = f"{top}.{lv.name}[1..{lv.instances}]"
        acts = [("read", T.read[i]), ("write", T.fill[i]), ("update", T.update[i]), ("leak", T.leak[i])]
        ert.append({"name": name, "actions": [{"name": a, "arguments": None, "energy": float(e)} for a, e in acts]})
        if lv.name in area:
            art.append({"name": name, "area": float(area[lv.name])})
    c = spec.arch.compute
    name = f"{top}.{c.name}[1..{c.instances}]"
    ert.append({"name": name, "actions": [{"name": "compute", "arguments": None, "energy": float(T.compute)},
                                          {"name": "leak", "arguments": None, "energy": float(T.compute_leak)}]})
    if c.name in area:
        art.append({"name": name, "area": float(area[c.name])})
    return ({"ERT": {"version": "0.4", "tables": ert}}, {"ART": {"version": "0.4", "tables": art}})


def _table_file(spec, kind: str):
    """The user's ERT/ART file when it was given as a file, else None."""
    if spec.tables is None:
        return None
    src = spec.tables.source if kind == "ERT" else spec.tables.area_source
    return src if src and Path(src).is_file() else None


def write_inputs(spec, workdir: Path, mapping=None, mode: str = "model") -> list[Path]:
    """Write the processed input and the ERT/ART the binaries read; returns the input files."""
    from .processed import processed_input
    workdir.mkdir(parents=True, exist_ok=True)
    data = processed_input(spec, mapping, with_mapper=(mode == "mapper"), with_mapping=(mode == "model"))
    if mode == "mapper":
        data["mapper"] = {**{"optimization_metrics": ["edp"], "num_threads": 1, "timeout": 1000,
                             "victory_condition": 100, "algorithm": "random-pruned"}, **data["mapper"]}
    files = [workdir / "a3cs.processed.yaml"]
    files[0].write_text(yaml.safe_dump(data, sort_keys=False))
    ert, art = _ert_art(spec)
    for kind, generated in (("ERT", ert), ("ART", art)):
        user = _table_file(spec, kind)
        if user is not None:
            files.append(Path(user).resolve())
        elif generated[kind]["tables"]:
            p = workdir / f"a3cs.{kind}.yaml"
            p.write_text(yaml.safe_dump(generated, sort_keys=False))
            files.append(p)
    return files


def _stats_summary(stats: dict, binary: str) -> dict:
    return {"cycles": int(stats["cycles"]), "computes": int(stats["computes"]),
            "energy_pJ": float(stats["energy_pJ"]),
            "levels_pJ": {k: float(v) for k, v in stats["levels_pJ"].items()},
            "area_um2": stats.get("area_um2"), "energy_source": f"timeloop:{Path(binary).name}"}


def run_spec(spec, mode: str = "model", mapping=None, workdir: str | os.PathLike | None = None,
             timeout: float | None = None, env: dict | None = None) -> dict:
    """Run the real Timeloop on our parsed ``spec`` (``mode`` ``model`` or ``mapper``).

    Writes Timeloop's processed input (:mod:`.processed`) and the ERT/ART, runs the binary and
    returns the same fields as our engine's summary (``cycles``, ``computes``, ``energy_pJ``,
    ``levels_pJ``, ``area_um2``, ``energy_source``) plus, for the mapper, ``mapping`` (Timeloop's
    best, as a v0.4 list) and ``search_seconds``.  ``env``: extra environment variables (e.g.
    ``TIMELOOP_DISABLE_LINK_TRANSFERS``).  ``workdir``: where the inputs and Timeloop's outputs
    are kept (``stats_file`` names the stats there); ``None``: a temporary directory, removed
    after a successful run (no ``stats_file`` then) and kept after a failure, whose one-line
    error names the log in it.
    """
    import tempfile
    if workdir is not None:
        return _run_spec_in(spec, mode, mapping, Path(workdir), timeout, env)
    wd = Path(tempfile.mkdtemp(prefix="a3cs-timeloop-"))
    try:
        out = _run_spec_in(spec, mode, mapping, wd, timeout, env)
    except TimeloopUnavailable:         # nothing ran, nothing to look at
        shutil.rmtree(wd, ignore_errors=True)
        raise
    shutil.rmtree(wd, ignore_errors=True)
    out.pop("stats_file", None)
    return out


def _run_spec_in(spec, mode: str, mapping, workdir: Path, timeout: float | None, env: dict | None) -> dict:
    import time
    if mode not in _BIN:
        raise A3CSError("unknown Timeloop mode", key="mode", expected="'model' or 'mapper'", got=mode)
    binary = find_binary(mode)
    if binary is None:
        if _pytimeloop_frontend() is not None and spec.sources:
            files = sorted(set(spec.sources.values()))
            out = run_timeloop([f for f in files if Path(f).is_file()], mode, workdir, timeout)
            return {**_stats_summary(out, "pytimeloop"), "stats_file": out["stats_file"]}
        raise _unavailable(mode)
    wd = workdir.resolve()
    inputs = write_inputs(spec, wd, mapping, mode)
    cmd = [binary, *map(str, inputs), "-o", str(wd)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=wd, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        raise A3CSError(f"{_BIN[mode]} did not finish within {timeout} s", file=str(wd)) from None
    seconds = time.perf_counter() - t0
    log = (proc.stdout or "") + (proc.stderr or "")
    (wd / f"a3cs_{_BIN[mode]}.log").write_text(log)
    if proc.returncode != 0:
        last = log.strip().splitlines()[-1] if log.strip() else "no output"
        raise A3CSError(f"{_BIN[mode]} exited with {proc.returncode}: {last}",
                        file=str(wd / f"a3cs_{_BIN[mode]}.log"))
    stats = sorted(wd.glob(f"{_BIN[mode]}.stats.txt")) or sorted(wd.glob("*.stats.txt"))
    if not stats:
        raise A3CSError(f"{_BIN[mode]} wrote no stats file", file=str(wd),
                        expected=f"{_BIN[mode]}.stats.txt")
    out = _stats_summary(parse_stats(stats[0]), binary)
    out["stats_file"] = str(stats[0])
    if mode == "mapper":
        maps = sorted(wd.glob(f"{_BIN[mode]}.map.yaml"))
        out["mapping"] = (yaml.safe_load(maps[0].read_text()) or {}).get("mapping") if maps else None
        out["search_seconds"] = seconds
    return out
