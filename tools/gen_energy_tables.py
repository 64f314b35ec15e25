#!/usr/bin/env python3
"""Generate a3cs's built-in energy/area tables with hwcomponents (the Accelergy successor).

Run ONCE, outside the a3cs environment, in a separate Python 3.12 venv::

    python3.12 -m venv VENV312
    VENV312/bin/pip install hwcomponents hwcomponents-cacti hwcomponents-library \
        hwcomponents-neurosim       # hwcomponents-library imports hwcomponents-neurosim
    # if the shipped CACTI binary does not run (glibc too old): rebuild it
    (cd VENV312/lib/python3.12/site-packages/hwcomponents_cacti/cacti && make opt)
    VENV312/bin/python tools/gen_energy_tables.py [--out PATH] [--quick]

a3cs never imports hwcomponents; it only reads the JSON written here
(``a3cs_plugin/hardware/energy/tables/builtin_tables.json``).

Units in the output: energy pJ per action, area um^2, leak pJ per 1 ns cycle (scaled at use
time by the component's ``global_cycle_seconds``).

What comes from where
- SRAM: CACTI 7 through ``hwcomponents_cacti.SRAM`` (grid depth x width x n_banks per node).
- regfile: Accelergy's compound ``regfile`` (``width`` x 1-bit registers read/written, one
  ``ceil(log2 depth)``-bit comparator per entry) built from ``hwcomponents_library`` Aladdin
  register and comparator models (grid depth x width per node).
- intadder / intmultiplier / intmac: Aladdin adder and multiplier models (by bit width).
- fpmac: hwcomponents has no floating-point model; the 45 nm energies/areas of Horowitz,
  ISSCC 2014 (fp16/fp32 add and multiply) scaled to other nodes with hwcomponents'
  Stillmaker-Baas technology scaling.
- DRAM: energy per bit. LPDDR4, LPDDR, DDR3, HBM2 from ``hwcomponents_cacti`` (_DRAM table);
  GDDR5 from Accelergy's CACTI plug-in table (Chatterjee et al., MICRO'17); DDR4 derived
  from the DDR3 figure scaled by nominal VDD^2 (1.2 V / 1.5 V)^2.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.metadata as md
import json
import logging
import math
import os
import sys
import time

TECHS_NM = [32, 40, 45, 65]
SRAM_DEPTHS = [2 ** k for k in range(6, 17)]          # 64 .. 65536
SRAM_WIDTHS = [2 ** k for k in range(3, 11)]          # 8 .. 1024
SRAM_BANKS = [1, 2, 4, 8, 16, 32]
RF_DEPTHS = sorted({d for k in range(0, 13) for d in (2 ** k, 3 * 2 ** k) if d <= 4096})
RF_WIDTHS = [2 ** k for k in range(0, 11)]            # 1 .. 1024
INT_WIDTHS = [1, 2, 4, 8, 12, 16, 24, 32, 48, 64]

# Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014,
# 45 nm, 0.9 V: energy pJ, area um^2.
HOROWITZ_45NM = {
    16: {"add": 0.4, "mult": 1.1, "add_area": 1360.0, "mult_area": 1640.0},
    32: {"add": 0.9, "mult": 3.7, "add_area": 4184.0, "mult_area": 7700.0},
}

DRAM_PJ_PER_BIT = {
    "LPDDR4": (8.0, "hwcomponents_cacti _DRAM table (cites public data, en.wikipedia.org/wiki/LPDDR)"),
    "LPDDR": (40.0, "hwcomponents_cacti _DRAM table (cites Malladi et al., ISCA'12)"),
    "DDR3": (70.0, "hwcomponents_cacti _DRAM table (cites Chatterjee et al., MICRO'17); Accelergy's "
                   "CACTI plug-in gives the same 70 pJ/bit citing Malladi et al., ISCA'12"),
    "HBM2": (6.25, "hwcomponents_cacti _DRAM table; Accelergy's CACTI plug-in used 3.9 pJ/bit "
                   "(Chatterjee et al., MICRO'17)"),
    "GDDR5": (14.0, "Accelergy accelergy-cacti-plug-in DRAM table (Chatterjee et al., MICRO'17); "
                    "hwcomponents has no GDDR5 model"),
    "DDR4": (70.0 * (1.2 / 1.5) ** 2,
             "derived: the DDR3 70 pJ/bit above x (VDD 1.2 V / 1.5 V)^2 (JEDEC nominal DDR4/DDR3 "
             "supply); neither hwcomponents nor Accelergy models DDR4"),
}

CYCLE = 1e-9  # leak is stored per 1 ns cycle


def _pj(j: float) -> float:
    return float(j) * 1e12


def _um2(m2: float) -> float:
    return float(m2) * 1e12


def _r(x: float) -> float:
    return float(f"{x:.6g}")


def gen_sram(tech_nm: int, cache: dict, quick: bool) -> dict:
    from hwcomponents_cacti import SRAM
    depths = SRAM_DEPTHS[::3] if quick else SRAM_DEPTHS
    widths = SRAM_WIDTHS[::3] if quick else SRAM_WIDTHS
    banks = SRAM_BANKS[:2] if quick else SRAM_BANKS
    out = {"axes": ["depth", "width", "n_banks"], "depth": depths, "width": widths,
           "n_banks": banks, "read": [], "write": [], "leak": [], "area": []}
    for d in depths:
        rows = {k: [] for k in ("read", "write", "leak", "area")}
        for w in widths:
            cols = {k: [] for k in ("read", "write", "leak", "area")}
            for b in banks:
                key = f"{tech_nm}|{d}|{w}|{b}"
                if key not in cache:
                    t = time.time()
                    s = SRAM(tech_node=tech_nm * 1e-9, width=w, size=w * d, n_banks=b)
                    cache[key] = [_pj(s.read_energy), _pj(s.write_energy),
                                  _pj(s.cacti_leak_power * CYCLE), _um2(s.cacti_area)]
                    print(f"  SRAM {tech_nm}nm d={d} w={w} b={b}: {cache[key]} "
                          f"({time.time() - t:.2f}s)", flush=True)
                r, wr, lk, ar = cache[key]
                cols["read"].append(_r(r))
                cols["write"].append(_r(wr))
                cols["leak"].append(_r(lk))
                cols["area"].append(_r(ar))
            for k in rows:
                rows[k].append(cols[k])
        for k in rows:
            out[k].append(rows[k])
    return out


def gen_regfile(tech_nm: int) -> dict:
    from hwcomponents_library.library.aladdin import AladdinComparator, AladdinRegister
    t = tech_nm * 1e-9
    reg = AladdinRegister(tech_node=t, width=1)
    reg_read, reg_write = _pj(reg.read().energy), _pj(reg.write().energy)
    reg_leak, reg_area = _pj(reg.leak_power * CYCLE), _um2(reg.area)
    register = {"read": _r(reg_read), "write": _r(reg_write), "leak": _r(reg_leak),
                "area": _r(reg_area), "per": "bit"}
    out = {"axes": ["depth", "width"], "depth": RF_DEPTHS, "width": RF_WIDTHS,
           "read": [], "write": [], "leak": [], "area": []}
    for d in RF_DEPTHS:
        bits = max(1, math.ceil(math.log2(d))) if d > 1 else 1
        cmp_ = AladdinComparator(tech_node=t, width=bits)
        c_e, c_leak, c_area = _pj(cmp_.compare().energy), _pj(cmp_.leak_power * CYCLE), _um2(cmp_.area)
        rows = {k: [] for k in ("read", "write", "leak", "area")}
        for w in RF_WIDTHS:
            rows["read"].append(_r(w * reg_read + d * c_e))
            rows["write"].append(_r(w * reg_write + d * c_e))
            rows["leak"].append(_r(w * d * reg_leak + d * c_leak))
            rows["area"].append(_r(w * d * reg_area + d * c_area))
        for k in rows:
            out[k].append(rows[k])
    return {"regfile": out, "register": register}


def gen_int(tech_nm: int) -> dict:
    from hwcomponents_library.library.aladdin import AladdinAdder, AladdinMultiplier
    t = tech_nm * 1e-9
    add = {"width": INT_WIDTHS, "add": [], "leak": [], "area": []}
    mul = {"width": INT_WIDTHS, "multiply": [], "leak": [], "area": []}
    for w in INT_WIDTHS:
        a = AladdinAdder(tech_node=t, width=w)
        add["add"].append(_r(_pj(a.add().energy)))
        add["leak"].append(_r(_pj(a.leak_power * CYCLE)))
        add["area"].append(_r(_um2(a.area)))
        m = AladdinMultiplier(tech_node=t, width_a=w, width_b=w)
        mul["multiply"].append(_r(_pj(m.multiply().energy)))
        mul["leak"].append(_r(_pj(m.leak_power * CYCLE)))
        mul["area"].append(_r(_um2(m.area)))
    mac = {"width": INT_WIDTHS,
           "compute": [_r(a + m) for a, m in zip(add["add"], mul["multiply"])],
           "leak": [_r(a + m) for a, m in zip(add["leak"], mul["leak"])],
           "area": [_r(a + m) for a, m in zip(add["area"], mul["area"])]}
    return {"intadder": add, "intmultiplier": mul, "intmac": mac}


def gen_fp(tech_nm: int) -> dict:
    from hwcomponents.scaling import tech_node_area, tech_node_energy
    es = tech_node_energy(tech_nm * 1e-9, 45e-9)
    as_ = tech_node_area(tech_nm * 1e-9, 45e-9)
    widths = sorted(HOROWITZ_45NM)
    return {"fpmac": {
        "width": widths,
        "compute": [_r((HOROWITZ_45NM[w]["add"] + HOROWITZ_45NM[w]["mult"]) * es) for w in widths],
        "leak": [0.0 for _ in widths],
        "area": [_r((HOROWITZ_45NM[w]["add_area"] + HOROWITZ_45NM[w]["mult_area"]) * as_)
                 for w in widths],
        "energy_scale_from_45nm": _r(es), "area_scale_from_45nm": _r(as_)}}


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    default_out = os.path.join(here, "..", "a3cs_plugin", "hardware", "energy", "tables",
                               "builtin_tables.json")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=default_out)
    p.add_argument("--cache", default=os.path.expanduser("~/.cache/a3cs_gen_energy_cacti.json"),
                   help="CACTI result cache (outside the repo) so a rerun is cheap")
    p.add_argument("--quick", action="store_true", help="coarse grid, for a smoke run")
    args = p.parse_args()
    logging.disable(logging.WARNING)

    cache = {}
    if os.path.exists(args.cache):
        with open(args.cache) as f:
            cache = json.load(f)
    versions = {}
    for pkg in ("hwcomponents", "hwcomponents-cacti", "hwcomponents-library",
                "hwcomponents-neurosim"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    data = {
        "meta": {
            "generator": "tools/gen_energy_tables.py",
            "command": " ".join(["python", "tools/gen_energy_tables.py"] + sys.argv[1:]),
            "python": sys.version.split()[0],
            "packages": versions,
            "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "units": {"energy": "pJ per action", "area": "um^2",
                      "leak": "pJ per 1 ns cycle (scale by global_cycle_seconds / 1e-9)"},
            "parameters": {"technologies_nm": TECHS_NM, "sram_depths": SRAM_DEPTHS,
                           "sram_widths": SRAM_WIDTHS, "sram_n_banks": SRAM_BANKS,
                           "regfile_depths": RF_DEPTHS, "regfile_widths": RF_WIDTHS,
                           "int_widths": INT_WIDTHS, "quick": args.quick,
                           "sram_n_rw_ports": 1},
            "sources": {
                "SRAM": "CACTI 7 via hwcomponents_cacti.SRAM(tech_node, width, size=width*depth, "
                        "n_banks); CACTI binary rebuilt with `make opt`",
                "register": "hwcomponents_library AladdinRegister(width=1): per-bit read/write/leak/area",
                "regfile": "Accelergy compound regfile: width x AladdinRegister(1 bit) read/write + "
                           "depth x AladdinComparator(ceil(log2 depth) bits) compare "
                           "(hwcomponents_library Aladdin models, 40 nm data + tech scaling)",
                "intadder/intmultiplier/intmac": "hwcomponents_library AladdinAdder(width), "
                                                 "AladdinMultiplier(width_a=width_b=width); "
                                                 "intmac = adder + multiplier",
                "fpmac": "M. Horowitz, 'Computing's energy problem (and what we can do about it)', "
                         "ISSCC 2014, 45 nm fp16/fp32 add+mult energy and area, scaled with "
                         "hwcomponents.scaling.tech_node_energy/tech_node_area "
                         "(Stillmaker & Baas 2017); leak unknown (0)",
                "DRAM": {k: v[1] for k, v in DRAM_PJ_PER_BIT.items()},
            },
        },
        "dram_pj_per_bit": {k: _r(v[0]) for k, v in DRAM_PJ_PER_BIT.items()},
        "dram_default_type": "LPDDR4",
        "tech": {},
    }
    try:
        for tech in TECHS_NM:
            print(f"== {tech} nm", flush=True)
            entry = gen_regfile(tech)
            entry.update(gen_int(tech))
            entry.update(gen_fp(tech))
            entry["SRAM"] = gen_sram(tech, cache, args.quick)
            data["tech"][f"{tech}nm"] = entry
    finally:
        os.makedirs(os.path.dirname(args.cache), exist_ok=True)
        with open(args.cache, "w") as f:
            json.dump(cache, f)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(data, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
