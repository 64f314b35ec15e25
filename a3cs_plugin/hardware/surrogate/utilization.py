"""Exact compute bound of a layer on a design point: the most MACs per cycle any mapping can use.

Timeloop factorises every dimension exactly and a spatial loop runs along one mesh axis, so a PE
array can only be filled with products of divisors of the dimensions the dataflow lets each axis
hold. ``U = max prod_slots s_slot`` over per-dimension factors ``f[slot, d]`` with
``prod_slots f[slot, d] | D_d``, ``f[slot, d] = 1`` where the slot may not hold ``d``, and
``s_slot = prod_d f[slot, d] <= fan-out(slot)``. ``MACs / U`` cycles is a hard lower bound of every
mapping's cycles; on mapper labels of the Eyeriss-like template about two thirds of the best
mappings sit exactly on it, the rest above (bandwidth, buffer capacity).

Which dimensions a slot may hold is read once per template from the map space our mapper builds
for each choice of the parameters that carry ``constraint_sets`` (the dataflow), so user templates
work without extra annotations: :func:`spatial_slots` returns a JSON-able description that the
surrogate stores in its config; :func:`log2_util_grid` evaluates it for one layer over the joint
grid of (mesh parameters x dataflow parameters).

Bandwidth (``bandwidth=True``, surrogate feature_version 4): a storage level above every PE mesh
(one instance) with a finite ``read_bandwidth`` / ``write_bandwidth`` / ``shared_bandwidth`` must
move at least every word of each tensor it is forced to keep: reads >= the inputs and weights it
keeps (each word reaches a child at least once, multicast counted once), writes >= those same
tensors (filled from its parent; none at the outermost level) plus the outputs (each updated at
least once). ``words / bandwidth`` cycles is then a lower bound too, and the grid holds
``log2(MACs / max(MACs / U, bandwidth cycles))`` -- the "effective" number of PEs. Depthwise layers
on the Eyeriss-like global buffer (16 words per cycle, no reuse across channels) are bound by this,
not by the array.
"""
from __future__ import annotations

import itertools
import math

__all__ = ["spatial_slots", "log2_util_grid", "max_utilization", "bandwidth_cycles", "tensor_words"]

# dimension order of the surrogate's layer features (features.DIMS)
_DIMS = ("N", "C", "M", "P", "Q", "R", "S", "G")


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def max_utilization(dims: tuple[int, ...], slots: list[tuple[int, tuple[int, ...]]]) -> int:
    """Largest number of PEs a mapping can fill: ``dims`` per :data:`_DIMS` index, ``slots`` a list
    of ``(fan_out, allowed dimension indices)``."""
    best = 1
    order = sorted(range(len(slots)), key=lambda i: slots[i][0])      # small fans first: more pruning
    slots = [slots[i] for i in order]
    cap = [1] * (len(slots) + 1)
    for i in range(len(slots) - 1, -1, -1):
        cap[i] = cap[i + 1] * slots[i][0]

    def rec(i: int, rem: list[int], prod: int) -> None:
        nonlocal best
        if prod * cap[i] <= best:
            return
        if i == len(slots):
            best = max(best, prod)
            return
        fan, allowed = slots[i]
        ds = [d for d in allowed if rem[d] > 1]

        def fill(j: int, r: list[int], s: int) -> None:
            if j == len(ds):
                rec(i + 1, r, prod * s)
                return
            d = ds[j]
            for f in _divisors(r[d]):
                if s * f > fan:
                    break
                if f == 1:
                    fill(j + 1, r, s)
                else:
                    r2 = list(r)
                    r2[d] //= f
                    fill(j + 1, r2, s * f)
        fill(0, rem, 1)

    rec(0, list(dims), 1)
    return best


def spatial_slots(space, bandwidth: bool = False) -> dict:
    """Describe ``space``'s spatial slots for :func:`log2_util_grid`.

    Returns ``{"params": [parameter indices of the grid], "grid": [sizes],
    "slots": {"i,j,..": [[mesh parameter index or -fan, [dim indices]], ...]}}`` keyed by the
    choice indices of the structural (``constraint_sets``) parameters; mesh parameters are found
    by changing each numeric parameter and watching the fan-outs. ``bandwidth``: also
    ``"bw": {"i,j,..": [[read_bw, write_bw, shared_bw, keeps_weights, keeps_inputs, keeps_outputs,
    outermost], ...]}`` per structural choice for the single-instance levels with a finite
    bandwidth (a bandwidth that a parameter changes enters with its largest value, so the bound
    stays a bound).
    """
    from ..mapper.adapter import build_mapspace
    from ..spec import conv2d_problem, load_spec

    names = space.names
    struct = [i for i, n in enumerate(names) if space.parameters[n].constraint_sets]
    base = space.default_point()
    probe = conv2d_problem(N=2, C=8, M=8, P=8, Q=8, R=3, S=3, G=2)

    def fans(point, with_spec=False):
        spec = load_spec([space.render(point), probe])
        ms = build_mapspace(spec)
        f = [(int(fx), int(fy)) for fx, fy in zip(ms.fanx, ms.fany)]
        return (ms, f, spec) if with_spec else (ms, f)

    def bandwidths(spec):
        return [[lv.read_bandwidth, lv.write_bandwidth, lv.shared_bandwidth] for lv in spec.arch.levels]

    _, f0, spec0 = fans(base, with_spec=True)
    bw_max = bandwidths(spec0)
    mesh_of: dict[tuple[int, int], int] = {}          # (level, axis) -> parameter index
    for i, n in enumerate(names):
        p = space.parameters[n]
        if i in struct or len(p.choices) < 2 or not all(isinstance(c, (int, float)) for c in p.choices):
            continue
        other = max(p.choices) if base[n] != max(p.choices) else min(p.choices)
        try:
            _, f1 = fans({**base, n: other})
        except Exception:  # noqa: BLE001 - a probe that cannot map says nothing about the mesh
            continue
        for lvl, (a, b) in enumerate(zip(f0, f1)):
            for axis in (0, 1):
                if a[axis] != b[axis]:
                    mesh_of.setdefault((lvl, axis), i)
        if bandwidth:   # the largest bandwidth any choice of this parameter gives each level
            for c in p.choices:
                try:
                    bws = bandwidths(load_spec([space.render({**base, n: c}), probe]))
                except Exception:  # noqa: BLE001 - a point that cannot be built adds nothing
                    continue
                for lvl, row in enumerate(bws):
                    for k, v in enumerate(row):
                        old_v = bw_max[lvl][k]
                        if old_v is not None and (v is None or v > old_v):
                            bw_max[lvl][k] = v
    slots: dict[str, list] = {}
    bw: dict[str, list] = {}
    for combo in itertools.product(*[range(space.parameters[names[i]].size) for i in struct]):
        point = dict(base)
        for i, c in zip(struct, combo):
            point[names[i]] = space.parameters[names[i]].choices[c]
        ms, f = fans(point)
        L = ms.L
        dim_index = {d: _DIMS.index(d) for d in ms.dims if d in _DIMS}
        entry = []
        for lvl in range(L):
            for axis, code in ((0, 1), (1, 2)):
                fan = f[lvl][axis]
                if fan <= 1:
                    continue
                allowed = [dim_index[ms.dims[d]] for d in range(ms.D)
                           if ms.dims[d] in dim_index
                           and (ms.free[L + lvl, d] or ms.fixed[L + lvl, d] > 1)
                           and ms.orient[lvl, d] in (0, code)]
                src = mesh_of.get((lvl, axis), -fan)
                entry.append([src, sorted(set(allowed))])
        slots[",".join(map(str, combo))] = entry
        if bandwidth:
            kinds = _tensor_kinds(ms, spec0)
            rows = []
            for lvl in range(L):
                if any(f[u][0] * f[u][1] > 1 for u in range(lvl + 1, L)):
                    continue        # several instances: traffic spreads over an unknown number
                bws = bw_max[lvl]
                if all(v is None for v in bws):
                    continue
                kept = [False, False, False]
                for si, kind in enumerate(kinds):
                    if kind is not None and ms.keep_fixed[lvl, si] == 1:
                        kept[kind] = True
                if not any(kept):
                    continue
                rows.append([None if v is None else float(v) for v in bws] + kept + [lvl == L - 1])
            bw[",".join(map(str, combo))] = rows
    grid_params = sorted({s for e in slots.values() for s, _ in e if s >= 0})
    out = {"mesh": grid_params, "struct": struct, "slots": slots}
    if bandwidth:
        out["bw"] = bw
    return out


def _tensor_kinds(ms, spec) -> list:
    """Per data space of the map space: 0 weights, 1 inputs, 2 outputs (read-write), None other."""
    by_name = {ds.name: ds for ds in spec.problem.data_spaces}
    out = []
    for name in ms.spaces:
        ds = by_name.get(name)
        if ds is not None and ds.read_write:
            out.append(2)
        elif name.lower().startswith("weight"):
            out.append(0)
        elif name.lower().startswith("input"):
            out.append(1)
        else:
            out.append(None)
    return out


def _touched(size: int, kernel: int, stride: int) -> int:
    """Input positions along one axis that some output position reads (dilation 1)."""
    if stride <= kernel:
        return (size - 1) * stride + kernel
    return size * kernel


def tensor_words(dims) -> tuple[int, int, int]:
    """(weights, inputs actually read, outputs) of a conv layer; ``dims`` in :data:`_DIMS` order
    plus optional (Hstride, Wstride) at the end."""
    n, c, m, p, q, r, s, g = (int(v) for v in dims[:8])
    hs, ws = (int(dims[8]), int(dims[9])) if len(dims) >= 10 else (1, 1)
    return (g * c * m * r * s, g * n * c * _touched(p, r, ws) * _touched(q, s, hs), g * n * m * p * q)


def bandwidth_cycles(words: tuple[int, int, int], rows: list) -> float:
    """Lower bound of the cycles the bandwidth-limited single-instance levels ``rows`` (entries of
    :func:`spatial_slots`' ``"bw"``) need for a layer moving ``words`` (weights, inputs, outputs)."""
    best = 0.0
    for rb, wb, sb, kw, ki, ko, outermost in rows:
        rd = (words[0] if kw else 0) + (words[1] if ki else 0)
        wr = (0 if outermost else rd) + (words[2] if ko else 0)
        for bw, dem in ((rb, rd), (wb, wr), (sb, rd + wr)):
            if bw and dem:
                best = max(best, dem / bw)
    return best


def log2_util_grid(dims, desc: dict, param_choices: list[list]) -> tuple[float, ...]:
    """log2 of :func:`max_utilization` of one layer (``dims`` in :data:`_DIMS` order) for every
    joint choice of the ``desc["mesh"]`` then ``desc["struct"]`` parameters (row-major, last
    fastest).  Callers cache per layer (:class:`..model.Surrogate` does)."""
    dims = tuple(int(v) for v in dims)
    mesh, struct = list(desc["mesh"]), list(desc["struct"])
    bw = desc.get("bw")
    if bw is not None:
        words = tensor_words(dims)
        macs = math.prod(dims[:8])
    out = []
    for mvals in itertools.product(*[param_choices[i] for i in mesh]):
        fan_of = dict(zip(mesh, mvals))
        for combo in itertools.product(*[range(len(param_choices[i])) for i in struct]):
            entry = desc["slots"][",".join(map(str, combo))]
            slots = [(int(fan_of[s]) if s >= 0 else -int(s), tuple(ds)) for s, ds in entry]
            u = max_utilization(dims[:8], slots)
            if bw is not None:
                bc = bandwidth_cycles(words, bw[",".join(map(str, combo))])
                if bc > 0:
                    u = min(float(u), macs / bc)
            out.append(math.log2(u))
    return tuple(out)
