"""The closed-form link-transfer model against a step-by-step replay of Timeloop's sampled nest.

The replay walks the sampled loop steps one by one (each temporal loop above the level at index 0
and at index 1, the second standing for the remaining iterations), keeps every child's tile as a
box in data-space ranks, subtracts consecutive tiles as Timeloop's ``MultiAAHR`` does (fragments),
applies the stride-change rule of the chosen Timeloop revision, compares each child's delta with
its four neighbours' deltas of the previous step, and groups equal deltas into multicasts.  The
vectorised model (:func:`a3cs_plugin.hardware.model.links.link_corrections`) must give the same
words over links and saved parent accesses on random Eyeriss and simple-array mappings.
"""
from __future__ import annotations

import numpy as np
import pytest

from a3cs_plugin.hardware.model import engine, links


# ----------------------------------------------------------------------------------------------
# boxes and Timeloop's fragment subtraction
# ----------------------------------------------------------------------------------------------
def _subtract(a, b):
    """Fragments of box ``a`` minus box ``b`` (boxes: tuples of (lo, hi) inclusive per rank)."""
    if any(a[r][1] < b[r][0] or b[r][1] < a[r][0] for r in range(len(a))):
        return [a]
    out, mid = [], list(a)
    for r in range(len(a)):
        lo, hi = mid[r]
        if lo < b[r][0]:
            out.append(tuple(mid[:r] + [(lo, b[r][0] - 1)] + mid[r + 1:]))
            lo = b[r][0]
        if b[r][1] < hi:
            out.append(tuple(mid[:r] + [(b[r][1] + 1, hi)] + mid[r + 1:]))
            hi = b[r][1]
        mid[r] = (lo, hi)
    return out


def _size(frags):
    return sum(int(np.prod([h - l + 1 for l, h in f])) for f in frags)


def replay(proj, ext, loops, spatial, width, rule):
    """``(LT, saved)`` for one instance: ``loops`` inner->outer ``(dim, bound, step)``; ``spatial``
    innermost first ``(dim, bound, step)``; ``width`` the mesh row length."""
    def box(origin):
        lo = [sum(c * origin[d] for c, d in rank) for rank in proj]
        ex = [sum(c * (ext[d] - 1) for c, d in rank) + 1 for rank in proj]
        return tuple((lo[r], lo[r] + ex[r] - 1) for r in range(len(proj)))

    U = int(np.prod([b for _, b, _ in spatial])) if spatial else 1
    offs = []
    for i in range(U):
        o, rem = {}, i
        for d, b, st in spatial:
            o[d] = o.get(d, 0) + (rem % b) * st
            rem //= b
        offs.append(o)
    state = [{"box": None, "trans": None} for _ in range(U)]
    prev_deltas = [None] * U
    totals = {"lt": 0.0, "saved": 0.0}
    nt = [(d, b, st) for d, b, st in loops if b > 1]

    def leaf(idx, weight):
        deltas = []
        for i in range(U):
            origin = {d: offs[i].get(d, 0) for d in range(len(ext))}
            for (d, b, st), k in zip(nt, idx):
                origin[d] += k * st
            cur = box(origin)
            stt = state[i]
            if stt["box"] is None:
                delta, trans = [cur], None
            else:
                trans = tuple(cur[r][0] - stt["box"][r][0] for r in range(len(cur)))
                zero = all(t == 0 for t in trans)
                if rule == "timeloop-2024":
                    if stt["trans"] is None or trans == stt["trans"]:
                        delta = [] if zero else _subtract(cur, stt["box"])
                        stt["trans"] = trans
                    else:
                        delta, stt["trans"] = [cur], None
                else:
                    if zero:
                        delta = []
                    elif stt["trans"] is None:
                        delta, stt["trans"] = _subtract(cur, stt["box"]), trans
                    elif trans == stt["trans"]:
                        delta = _subtract(cur, stt["box"])
                    else:
                        delta, stt["trans"] = [cur], None
            stt["box"] = cur
            deltas.append(sorted(delta))
        linked = [False] * U
        for i in range(U):
            if not deltas[i]:
                continue
            for nb in ((i + 1) if (i % width) < width - 1 else None, (i - 1) if i % width > 0 else None,
                       i + width, i - width):
                if nb is None or nb < 0 or nb >= U or prev_deltas[nb] is None:
                    continue
                if prev_deltas[nb] == deltas[i]:
                    linked[i] = True
        groups = {}
        for i in range(U):
            if deltas[i]:
                groups.setdefault(tuple(deltas[i]), []).append(i)
        without = sum(_size(list(k)) for k in groups)
        with_ = sum(_size(list(k)) for k, m in groups.items() if not all(linked[i] for i in m))
        if with_ < without:
            totals["lt"] += weight * sum(_size(deltas[i]) for i in range(U) if linked[i])
            totals["saved"] += weight * (without - with_)
        prev_deltas[:] = deltas

    # idx is built outermost first; leaf wants innermost first
    def run():
        def rec(k, idx, w):
            if k < 0:
                leaf(idx[::-1], w)
                return
            rec(k - 1, idx + [0], w)
            rec(k - 1, idx + [1], w * (nt[k][1] - 1))
        rec(len(nt) - 1, [], 1.0)
    run()
    return totals["lt"], totals["saved"]


def _cases(spec, n, seed):
    from a3cs_plugin.hardware.mapper import build_mapspace
    sp = build_mapspace(spec)
    batch = sp.to_batch(sp.sample(np.random.default_rng(seed), n)[0])
    return batch


def _closed_and_replayed(spec, batch, rule, max_loops=9, max_rows=60):
    T = engine.tables_for(spec)
    L, D = T.L, T.D
    tf = batch.temporal.transpose(1, 2, 0).astype(float)
    sxy = (batch.spatial_x * batch.spatial_y).transpose(1, 2, 0).astype(float)
    tile_ext = np.cumprod(tf * sxy, axis=0)
    perm = batch.perm.transpose(1, 2, 0)
    loop_dim = perm.reshape(L * D, -1)
    loop_bound = np.take_along_axis(tf, perm, axis=1).reshape(L * D, -1)
    cum_bound = np.cumprod(loop_bound, axis=0)
    total = cum_bound[-1]
    checked, linked = 0, 0
    for M in range(1, L):
        if not (sxy[M].prod(axis=0) > 1).any():
            continue
        steps = links.loop_steps(M - 1, tile_ext, sxy, loop_dim, loop_bound, cum_bound, total)
        sx = batch.spatial_x.transpose(1, 2, 0)[M].astype(float)
        order = batch.orders().transpose(1, 2, 0)[M]
        for s, ds in enumerate(spec.problem.data_spaces):
            if ds.read_write:
                continue
            lt, saved = links.link_corrections(ds.projection, tile_ext[M - 1], steps, loop_bound[M * D:],
                                               sx, sxy[M] / sx, order, T.fan_x[M], rule=rule)
            rows = [b for b in range(len(batch)) if sxy[M][:, b].prod() > 1
                    and (loop_bound[M * D:, b] > 1).sum() <= max_loops]
            # the rows the model links first, then as many it does not (false negatives show there)
            pos = [b for b in rows if lt[b] > 0][:max_rows // 2]
            for b in pos + [b for b in rows if lt[b] == 0][:max_rows - len(pos)]:
                ext = [int(x) for x in tile_ext[M - 1][:, b]]
                lp = []
                for j in range(M * D, L * D):
                    lvl, d = j // D, int(loop_dim[j, b])
                    below = tile_ext[lvl - 1][d, b] if lvl > 0 else 1
                    lp.append((d, int(loop_bound[j, b]), int(below * sxy[lvl][d, b])))
                spat, st = [], list(ext)
                for part in (batch.spatial_x[b, M], batch.spatial_y[b, M]):
                    for d in order[:, b]:
                        if part[d] > 1:
                            spat.append((int(d), int(part[d]), int(st[d])))
                            st[d] *= int(part[d])
                ux = int(np.prod(batch.spatial_x[b, M]))
                width = max(int(T.fan_x[M]), ux)
                want = replay(ds.projection, ext, lp, spat, width, rule)
                assert (lt[b], saved[b]) == pytest.approx(want, rel=1e-9, abs=1e-6), (M, ds.name, b)
                checked += 1
                linked += want[0] > 0
    return checked, linked


@pytest.mark.parametrize("rule", ["timeloop-2024", "timeloop-2025"])
def test_closed_form_equals_replay_eyeriss(reference_dir, reference_cases, rule):
    from test_model_parity import load_case
    spec = load_case(reference_dir, reference_cases["06-eyeriss-vgg02l5"])
    batch = _cases(spec, 1500, seed=11)
    checked, linked = _closed_and_replayed(spec, batch, rule)
    print(f"{rule}: {checked} replays, {linked} with links")
    assert checked > 20 and linked > 0


@pytest.mark.slow
@pytest.mark.parametrize("rule", ["timeloop-2024", "timeloop-2025"])
def test_closed_form_equals_replay_small_layer(rule):
    """A small conv layer on the shipped Eyeriss-like spec: more loops fit the replay."""
    import warnings
    from pathlib import Path
    from a3cs_plugin.hardware.spec import conv2d_problem, load_spec
    root = Path(__file__).resolve().parents[1] / "arch_specs"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec = load_spec([root / "eyeriss_like.yaml", conv2d_problem(1, 4, 8, 6, 6, 3, 3, 1, 1)])
    batch = _cases(spec, 1500, seed=3)
    checked, linked = _closed_and_replayed(spec, batch, rule)
    print(f"{rule}: {checked} replays, {linked} with links")
    assert checked > 20 and linked > 0


@pytest.mark.slow
@pytest.mark.parametrize("rule", ["timeloop-2024", "timeloop-2025"])
def test_closed_form_equals_replay_2d_mesh(monkeypatch, rule):
    """A 2-D mesh with loops on both axes (simple_ws read literally: C on X, M on Y), partly
    filled rows included."""
    import warnings
    from pathlib import Path
    from a3cs_plugin.hardware.spec import conv2d_problem, frontend, load_spec
    monkeypatch.setattr(frontend, "SPLIT_SEMANTICS", "literal")
    root = Path(__file__).resolve().parents[1] / "arch_specs"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec = load_spec([root / "simple_ws.yaml", conv2d_problem(1, 12, 8, 5, 5, 3, 3, 1, 1)])
    batch = _cases(spec, 1500, seed=4)
    checked, linked = _closed_and_replayed(spec, batch, rule)
    print(f"{rule}: {checked} replays, {linked} with links")
    assert checked > 20
