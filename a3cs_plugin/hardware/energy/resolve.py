"""Which energy / area numbers a spec is costed with: the one place that resolves them.

:func:`resolve_tables` picks the table of every component: the spec's Accelergy ERT / ART
(``spec.tables``, an :class:`~a3cs_plugin.hardware.spec.EnergyTable`) where it names the component,
else the built-in tables (:func:`a3cs_plugin.hardware.energy.builtin.builtin_table`); the result
is again an :class:`EnergyTable` whose ``source`` says where the numbers came from
(``ert:FILE``, ``builtin:builtin_tables.json`` or ``ert:FILE+builtin:...(levels)``).

:func:`level_energies` turns it into the per-level action energies the model charges
(:class:`LevelEnergies`), with Timeloop's choice of ERT action per operation:

* read: ``random_read``, ``read``; fill: ``random_fill``, ``random_write``, ``fill``, ``write``;
  update: ``random_update``, ``random_write``, ``update``, ``write``; compute: ``mac_random``,
  ``mult_random``, ``mac``, ``mult``, ``compute`` (first present wins);
* a missing read / fill / update action costs the level's largest action energy divided by its
  ``cluster_size``; ``leak`` is per cycle and instance;
* the area is the sum over real (non-dummy) levels and the compute of ``area x instances``, or
  ``None`` when any of them has no area.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from a3cs_plugin.errors import A3CSError, SpecError
from a3cs_plugin.hardware.spec.energy import EnergyTable

from .builtin import builtin_table

__all__ = ["READ_ACTIONS", "FILL_ACTIONS", "UPDATE_ACTIONS", "COMPUTE_ACTIONS", "LevelEnergies",
           "resolve_tables", "level_energies"]

# ERT action priority lists (Timeloop's mapping from its operation types to Accelergy actions)
READ_ACTIONS = ("random_read", "read")
FILL_ACTIONS = ("random_fill", "random_write", "fill", "write")
UPDATE_ACTIONS = ("random_update", "random_write", "update", "write")
COMPUTE_ACTIONS = ("mac_random", "mult_random", "mac", "mult", "compute")


@dataclass(frozen=True)
class LevelEnergies:
    """Per-action energies (pJ) of ``spec.arch.levels`` (arrays ``[L]``; dummy levels 0), the
    compute unit's, the total area (um^2, ``None`` when a component has none) and the source."""

    source: str
    read: np.ndarray
    fill: np.ndarray
    update: np.ndarray
    leak: np.ndarray
    compute: float
    compute_leak: float
    area: float | None


def resolve_tables(spec) -> EnergyTable:
    """The energy / area table ``spec`` is costed with (see the module docstring)."""
    arch = spec.arch
    table = spec.tables
    source = f"ert:{table.source}" if table is not None and table.energy else None
    energy = dict(table.energy) if table is not None and table.energy else None
    area = dict(table.area) if table is not None and table.area else None
    if energy is None or area is None:
        missing = [lv for lv in arch.all_levels() if not lv.is_dummy
                   and (energy is None or lv.name not in energy)]
        if energy is None or missing:
            try:
                built = builtin_table(spec)
            except A3CSError as exc:
                if energy is None:
                    raise
                raise SpecError(f"no energy entry for level '{missing[0].name}' in the ERT and no "
                                f"built-in table ({exc.message})", file=table.source,
                                key=f"ERT.{missing[0].name}",
                                expected="an ERT table named after every level") from None
            if energy is None:
                energy, source = dict(built.energy), f"builtin:{built.source}"
            else:
                filled = [lv.name for lv in missing if lv.name in built.energy]
                for name in filled:
                    energy[name] = built.energy[name]
                if filled:
                    source += f"+builtin:{built.source}({','.join(filled)})"
            if area is None:
                area = dict(built.area)
    return EnergyTable(energy=energy, area=area or {}, source=source,
                       area_source=table.area_source if table is not None else "")


def _first(acts: dict, names) -> float | None:
    for n in names:
        if n in acts:
            return float(acts[n])
    return None


def level_energies(spec) -> LevelEnergies:
    """Per-level action energies of ``spec`` from :func:`resolve_tables` (module docstring)."""
    arch = spec.arch
    resolved = resolve_tables(spec)
    energy, area = resolved.energy, resolved.area
    L = len(arch.levels)
    e_read, e_fill, e_update, e_leak = (np.zeros(L) for _ in range(4))
    for i, lv in enumerate(arch.levels):
        acts = energy.get(lv.name)
        if acts is None:
            if lv.is_dummy:
                continue
            raise SpecError(f"no energy entry for level '{lv.name}'", file=spec.tables.source if spec.tables else spec.source,
                            key=f"ERT.{lv.name}", expected="an ERT table named after every level")
        # Timeloop's fallback for a missing read/fill/update action: the largest action energy
        vmax = max(list(acts.values()) or [0.0]) / max(1, lv.cluster_size)
        e_read[i] = _first(acts, READ_ACTIONS) if _first(acts, READ_ACTIONS) is not None else vmax
        e_fill[i] = _first(acts, FILL_ACTIONS) if _first(acts, FILL_ACTIONS) is not None else vmax
        e_update[i] = _first(acts, UPDATE_ACTIONS) if _first(acts, UPDATE_ACTIONS) is not None else vmax
        e_leak[i] = acts.get("leak", 0.0)
    cacts = energy.get(arch.compute.name)
    if cacts is None:
        raise SpecError(f"no energy entry for compute '{arch.compute.name}'", file=spec.source,
                        key=f"ERT.{arch.compute.name}", expected="a compute/mac action")
    e_compute = _first(cacts, COMPUTE_ACTIONS) or 0.0
    e_compute_leak = cacts.get("leak", 0.0)
    area_total = None
    if area:
        try:
            area_total = sum(area[lv.name] * lv.instances for lv in arch.all_levels() if not lv.is_dummy)
        except KeyError:
            area_total = None
    return LevelEnergies(resolved.source, e_read, e_fill, e_update, e_leak, e_compute, e_compute_leak,
                         area_total)
