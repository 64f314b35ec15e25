"""Link transfers: a spatial instance takes its new data from a mesh neighbour (vectorised).

Timeloop's nest analysis (``ComputeNetworkLinkTransfers``, on unless
``TIMELOOP_DISABLE_LINK_TRANSFERS`` is set) compares, at every level ``M`` with a spatial fan-out
and at every step of the loops above it, the delta (new data) each child instance needs with the
delta its ±X / ±Y neighbour needed one step earlier.  Where they are equal, the child gets the data
over the link instead of from the parent.  What we reproduce, for read-only data spaces kept by
the child level ``M-1``:

* **Steps.**  Timeloop samples every temporal loop above ``M`` at index 0 and index 1 (the second
  standing for all remaining iterations), so the steps form a binary counter over the non-trivial
  loops.  A step that advances loop ``k`` moves the child's tile by
  ``tau_k = step_k - sum(step_i, i < k)`` (inner loops fall back one step).  Under the reference
  halo rule the delta of a loop-1 step is the tile minus its predecessor, and a step of an outer
  loop is a full refetch unless ``tau_k == tau_1`` (``OperationSpace::SaveAndSubtractIfSameStride``).
  Two deltas are equal only with the same shape: both full tiles, or both slabs of the same
  translation; the neighbour's delta one step earlier is then ours shifted by ``tau``.  So a child
  is served over a link at a step of translation ``tau`` when a neighbour sits at data offset
  ``tau`` (``tau`` may be 0: a full refetch of data a multicast partner already holds).
* **Neighbours.**  Children are numbered by the spatial loops of ``M`` (X loops innermost, then Y;
  the innermost loop fastest) and laid out row-major on a mesh ``max(meshX, X loops)`` wide, as
  Timeloop does; the four neighbours are ``index +- 1`` within a row and ``index +- width``.
* **Use.**  Per step, links are used only when they remove parent accesses: at least one group of
  children that share the same delta (a multicast group) is served entirely over links.
* **Counts** (per instance, as in Timeloop's ``ComputePeerAccesses``): with ``LT`` the words moved
  over links per instance of ``M`` and ``F`` its used fan-out, the child's fills from the parent
  drop by ``LT / F``; the child gains ``LT / instances(M-1)`` reads and as many fills (Timeloop
  spreads the peer traffic of one instance of ``M`` over all instances of the child level); the next
  level above that keeps the data space reads ``saved`` fewer words per distinct instance of ``M``.

Not modelled: links of read-write data spaces (partial sums), links at a level whose child level
bypasses the data space (Timeloop discards those), toroidal links and link energy (network energy
is zero in our tables, as in Timeloop with tables that lack it).
"""
from __future__ import annotations

import numpy as np


def _rank_vec(proj, vec):
    """Project per-dimension vectors ``vec[D, ...]`` onto the data space's ranks: ``[R, ...]``."""
    out = []
    for rank in proj:
        acc = None
        for coef, d in rank:
            t = coef * vec[d]
            acc = t if acc is None else acc + t
        out.append(acc)
    return np.stack(out)


def link_corrections(M, proj, tile_ext, sxy, loop_dim, loop_bound, cum_bound, total_bound,
                     fan_x, fan_y, sp_x, order, rule="timeloop-2024"):
    """Words moved over links and parent accesses saved, per instance of level ``M``.

    Arrays are ``[level, dim, batch]`` (``loop_*`` are ``[L*D, batch]``, innermost loop first).
    ``sp_x`` is ``[dim, batch]``: the X part of ``sxy[M]``; ``order`` ``[position, batch]``: the
    dimension of each spatial loop position of ``M``, innermost first.  Returns ``(LT, saved)`` over the batch.
    """
    L, D, B = tile_ext.shape
    LD = L * D
    lt = np.zeros(B)
    saved = np.zeros(B)
    sp_y = sxy[M] / sp_x
    ext = tile_ext[M - 1]                                          # child tile [D, B]
    e = _rank_vec(proj, ext - 1.0) + 1.0                           # [R, B]
    size = np.prod(e, axis=0)
    nt, tau, W = step_translations(M - 1, proj, tile_ext, sxy, loop_dim, loop_bound, cum_bound,
                                   total_bound)
    if not nt.any():
        return lt, saved
    K = len(nt)
    lo = M * D
    cols = np.arange(B)
    first = np.argmax(nt, axis=0)                                  # loop 1 (per row)
    tau1 = tau[first, :, cols].T                                   # [R, B]
    tau1_zero = np.all(tau1 == 0, axis=0)
    ov1 = np.prod(np.maximum(0.0, e - np.abs(tau1)), axis=0)
    s1 = size - ov1                                                # size of a loop-1 delta
    full1 = (ov1 == 0) & ~tau1_zero                                # loop-1 delta is a whole tile
    n1 = loop_bound[lo + first, cols]
    # neighbour offsets of the children (positions in data-space ranks)
    pos, valid, groups = _child_positions(proj, ext, order, sp_x, sp_y, fan_x)

    def count(sig, rows):
        return _count_linked(pos[:, :, rows], valid[rows], groups, sig[:, rows], rows)

    # loop-1 steps (after the initial step or after an outer step)
    w_full = np.zeros(B)                      # weight of loop-1 steps whose predecessor is a full tile
    w_sub = np.zeros(B)                       # ... whose predecessor is a slab of the same translation
    w_full += np.where(full1, n1 - 1.0, 0.0)  # after the initial step
    for j in range(K):
        isk = nt[j] & (first != j)
        if not isk.any():
            continue
        same = np.all(tau[j] == tau1, axis=0)
        wj = np.where(isk, W[j], 0.0)
        # current Timeloop: a stationary step needs no data (empty delta), so neither it nor the
        # loop-1 step after it is linked; the reference rule refetches the whole tile there
        moving = isk if rule == "timeloop-2024" else isk & ~np.all(tau[j] == 0, axis=0)
        w_after = np.where(moving, (n1 - 1.0) * wj, 0.0)
        w_sub += np.where(same & ~tau1_zero, w_after, 0.0)
        w_full += np.where(~same & full1, w_after, 0.0)
        # the outer step itself (its predecessor is a loop-1 slab)
        link_k = moving & ((same & ~tau1_zero) | (~same & full1))
        dsize = np.where(same, s1, size)
        rows = np.nonzero(link_k)[0]
        if len(rows):
            nl, ng = count(tau[j], rows)
            use = ng > 0
            lt[rows] += np.where(use, wj[rows] * dsize[rows] * nl, 0.0)
            saved[rows] += np.where(use, wj[rows] * dsize[rows] * ng, 0.0)
    rows = np.nonzero((w_full + w_sub > 0) & ~tau1_zero)[0]
    if len(rows):
        nl, ng = count(tau1, rows)
        use = ng > 0
        wsz = (w_full[rows] * np.where(full1[rows], size[rows], s1[rows]) + w_sub[rows] * s1[rows])
        lt[rows] += np.where(use, wsz * nl, 0.0)
        saved[rows] += np.where(use, wsz * ng, 0.0)
    return lt, saved


def step_translations(c, proj, tile_ext, sxy, loop_dim, loop_bound, cum_bound, total_bound):
    """The sampled steps of the temporal loops above level ``c`` (Timeloop's extrapolation).

    Returns ``nt[K, B]`` (loop is non-trivial), ``tau[K, R, B]`` (translation of level ``c``'s tile,
    in data-space ranks, at the step that advances loop ``k``: its own step minus one step of every
    non-trivial loop inside it) and ``W[K, B]`` (how many real steps that sampled step stands for).
    """
    L, D, B = tile_ext.shape
    lo = (c + 1) * D
    K = L * D - lo
    cols = np.arange(B)
    nt = loop_bound[lo:] > 1
    step = np.zeros((K, D, B))
    for j in range(K):
        jj = lo + j
        lvl = jj // D
        d = loop_dim[jj]
        below = tile_ext[lvl - 1][d, cols] if lvl > 0 else np.ones(B)
        step[j, d, cols] = np.where(nt[j], below * sxy[lvl][d, cols], 0.0)
    prefix = np.cumsum(step, axis=0) - step
    tau_d = step - prefix
    tau = np.stack([_rank_vec(proj, tau_d[j]) for j in range(K)]) if K else np.zeros((0, len(proj), B))
    W = np.where(nt, (loop_bound[lo:] - 1.0) * total_bound / cum_bound[lo:], 0.0)
    return nt, tau, W


def _child_positions(proj, ext, order, sp_x, sp_y, fan_x):
    """Data-space position of every child of one instance: ``pos[R, U, B]``, ``valid[B, U]``."""
    D, B = ext.shape
    cols = np.arange(B)
    ux = np.prod(sp_x, axis=0)
    uy = np.prod(sp_y, axis=0)
    U = int(np.max(ux * uy))
    width = np.maximum(fan_x, ux)
    idx = np.arange(U, dtype=np.float64)[None, :] * np.ones((B, 1))   # [B, U]
    rem = idx.copy()
    off = np.zeros((B, D, U))
    dstep = ext.copy()                                             # step of the next loop per dim
    for part in (sp_x, sp_y):                                      # X loops innermost, then Y
        for q in range(D):
            d = order[q]
            b = part[d, cols]
            digit = np.mod(rem, b[:, None])
            rem = np.floor_divide(rem, b[:, None])
            off[cols, d, :] += digit * dstep[d, cols][:, None]
            dstep[d, cols] = dstep[d, cols] * b
    pos = _rank_vec(proj, off.transpose(1, 2, 0))                  # [R, U, B]
    valid = idx < (ux * uy)[:, None]                               # [B, U]
    return pos, valid, width


def _count_linked(pos, valid, width, sig, rows):
    """Children with a neighbour at offset ``sig`` and multicast groups entirely linked."""
    R, U, n = pos.shape
    w = width[rows].astype(np.int64)
    idx = np.arange(U)[None, :]
    linked = np.zeros((n, U), dtype=bool)
    for delta_kind in ("+1", "-1", "+w", "-w"):
        if delta_kind == "+1":
            dl = np.ones(n, dtype=np.int64)
            ok = (idx % w[:, None]) < (w[:, None] - 1)
        elif delta_kind == "-1":
            dl = -np.ones(n, dtype=np.int64)
            ok = (idx % w[:, None]) > 0
        elif delta_kind == "+w":
            dl = w
            ok = np.ones((n, U), dtype=bool)
        else:
            dl = -w
            ok = np.ones((n, U), dtype=bool)
        nb = idx + dl[:, None]
        inside = ok & (nb >= 0) & (nb < U)
        nbc = np.clip(nb, 0, U - 1)
        nvalid = np.take_along_axis(valid, nbc, axis=1) & inside
        match = nvalid & valid
        for r in range(R):
            pr = pos[r].T                                          # [n, U]
            diff = np.take_along_axis(pr, nbc, axis=1) - pr
            match &= diff == sig[r][:, None]
        linked |= match
    nl = linked.sum(axis=1).astype(np.float64)
    # multicast groups: children of one row with the same position in every rank
    keys = np.zeros((n, U))
    scale = np.ones(n)
    for r in range(R):
        pr = pos[r].T
        keys = keys + pr * scale[:, None]
        scale = scale * (pr.max(axis=1) + 1.0)
    ng = np.zeros(n)
    rowid = np.repeat(np.arange(n), U).reshape(n, U)
    sel = valid
    k = np.stack([rowid[sel], keys[sel]], axis=1)
    _, inv = np.unique(k, axis=0, return_inverse=True)
    inv = inv.ravel()
    bad = np.bincount(inv, weights=(~linked[sel]).astype(np.float64))
    grow = np.zeros(len(bad), dtype=np.int64)
    grow[inv] = rowid[sel]
    full = bad == 0
    ng += np.bincount(grow[full], minlength=n)[:n]
    return nl, ng
