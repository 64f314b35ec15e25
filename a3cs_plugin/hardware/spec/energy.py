"""Accelergy energy-reference (ERT) and area-reference (ART) tables."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from a3cs_plugin.errors import SpecError

from .arch import strip_range


def component_key(name: str) -> str:
    """``'System.PE[0..15].Buffer'`` / ``'system_top_level.shared_glb[1..1]'`` -> ``'Buffer'`` / ``'shared_glb'``."""
    bare = re.sub(r"\[\d+\.\.\d+\]", "", str(name))
    return strip_range(bare.split(".")[-1])[0]


@dataclass
class EnergyTable:
    """Per-component action energies (pJ) and areas (um^2), keyed by the bare component name."""

    energy: dict = field(default_factory=dict)   # name -> {action: pJ}
    area: dict = field(default_factory=dict)     # name -> um^2
    source: str = field(default="", compare=False)
    area_source: str = field(default="", compare=False)

    def actions(self, level_name: str) -> dict | None:
        return self.energy.get(level_name)

    def area_of(self, level_name: str) -> float | None:
        return self.area.get(level_name)


def _tables(data: Any, key: str, file: str) -> list:
    if isinstance(data, dict) and key in data:
        data = data[key]
    if isinstance(data, dict) and "tables" in data:
        data = data["tables"]
    if isinstance(data, dict):  # {name: {...}} form
        want = "actions" if key == "ERT" else "area"
        data = {k: v for k, v in data.items() if k != "version"}
        if not data or not all(isinstance(v, dict) and want in v or key == "ART" and _is_number(v)
                               for v in data.values()):
            raise SpecError(f"no {key} tables found (is this an Accelergy {key} file?)", file=file,
                            key=key, expected=f"an Accelergy {key}: {{version, tables: [...]}}")
        return [{"name": k, **(v if isinstance(v, dict) else {"area": v})} for k, v in data.items()]
    if not isinstance(data, list):
        raise SpecError(f"no {key} tables found", file=file, key=f"{key}.tables",
                        expected="a list of {name, ...} tables")
    return data


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _amount(v, file: str, key: str, what: str) -> float:
    """A finite energy / area >= 0 (numbers or numeric strings, as Accelergy writes them)."""
    try:
        x = float(v) if not isinstance(v, bool) else float("nan")
    except (TypeError, ValueError):
        x = float("nan")
    if not (x == x and abs(x) != float("inf") and x >= 0):
        raise SpecError(f"bad {what}", file=file, key=key, expected="a finite number >= 0", got=v)
    return x


def parse_ert(data: Any, file: str = "<dict>") -> dict:
    out: dict = {}
    for i, t in enumerate(_tables(data, "ERT", file)):
        if not isinstance(t, dict) or "name" not in t:
            raise SpecError("ERT table needs a name", file=file, key=f"ERT.tables[{i}]")
        acts: dict = {}
        raw = t.get("actions") or []
        if isinstance(raw, dict):
            raw = [{"name": k, **(v[0] if isinstance(v, list) and v else v)} for k, v in raw.items()]
        if not isinstance(raw, list):
            raise SpecError("ERT actions must be a list", file=file, key=f"ERT.tables[{i}].actions",
                            expected="[{name, energy}, ...]", got=raw)
        for j, a in enumerate(raw):
            if not isinstance(a, dict) or "name" not in a or "energy" not in a:
                raise SpecError("ERT action needs name and energy", file=file,
                                key=f"ERT.tables[{i}].actions")
            # several entries per action (different arguments): Timeloop charges the largest
            name = str(a["name"])
            e = _amount(a["energy"], file, f"ERT.tables[{i}].actions[{j}].energy", "energy")
            acts[name] = max(e, acts.get(name, e))
        out[component_key(t["name"])] = acts
    return out


def parse_art(data: Any, file: str = "<dict>") -> dict:
    out: dict = {}
    for i, t in enumerate(_tables(data, "ART", file)):
        if not isinstance(t, dict) or "name" not in t or "area" not in t:
            raise SpecError("ART entry needs name and area", file=file, key=f"ART.tables[{i}]")
        out[component_key(t["name"])] = _amount(t["area"], file, f"ART.tables[{i}].area", "area")
    return out
