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
  ``tau`` (``tau`` may be 0: a full refetch of data a multicast partner already holds).  Under
  current Timeloop's rule (``head``) a stationary step needs no data and is never linked, nor is
  the loop-1 step after it.
* **Neighbours.**  Children are numbered by the spatial loops of ``M`` in the mapping's spatial
  permutation order (X loops innermost, then Y; the innermost loop fastest) and laid out row-major on a mesh ``max(meshX, X loops)`` wide, as
  Timeloop does; the four neighbours are ``index +- 1`` within a row and ``index +- width``.
* **Use.**  Per step, links are used only when they remove parent accesses: at least one group of
  children that share the same delta (a multicast group) is served entirely over links.
* **Counts** (per instance, as in Timeloop's ``ComputePeerAccesses``): with ``LT`` the words moved
  over links per instance of ``M`` and ``F`` its used fan-out, the child's fills from the parent
  drop by ``LT / F``; the child gains ``LT / instances(M-1)`` reads and as many fills (Timeloop
  spreads the peer traffic of one instance of ``M`` over all instances of the child level); the next
  level above that keeps the data space reads ``saved`` fewer words per distinct instance of ``M``.

``tests/test_timeloop_links.py`` checks this closed form against a step-by-step replay of the
sampled nest (box subtraction into fragments, the stride rule, neighbour and multicast matching).

Not modelled: links of read-write data spaces (partial sums), links at a level whose child level
bypasses the data space (Timeloop discards those), toroidal links and link energy (network energy
is zero in our tables, as in Timeloop with tables that lack it).
"""
from __future__ import annotations

import numpy as np

# skip the child enumeration where no neighbour offset can match (exact: tests compare it off)
SCREEN = True


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


def link_corrections(proj, ext, steps, bounds, sp_x, sp_y, order, fan_x, rule="timeloop-2024"):
    """Words moved over links and parent accesses saved, per instance of a level ``M``.

    ``ext`` ``[dim, batch]``: the tile of the child level ``M-1``; ``steps``: :func:`loop_steps`
    of the loops above it and ``bounds`` ``[K, batch]`` their bounds; ``sp_x`` / ``sp_y``
    ``[dim, batch]``: the X / Y spatial factors of ``M``; ``order`` ``[position, batch]``: the
    dimension of each spatial loop position, innermost first.  Returns ``(LT, saved)``.
    """
    D, B = ext.shape
    lt = np.zeros(B)
    saved = np.zeros(B)
    e = _rank_vec(proj, ext - 1.0) + 1.0                           # [R, B]
    size = np.prod(e, axis=0)
    nt, W = steps[0], steps[3]
    if not nt.any():
        return lt, saved
    tau = project_steps(proj, steps)
    K = len(nt)
    cols = np.arange(B)
    first = np.argmax(nt, axis=0)                                  # loop 1 (per row)
    tau1 = tau[first, :, cols].T                                   # [R, B]
    tau1_zero = np.all(tau1 == 0, axis=0)
    ov1 = np.prod(np.maximum(0.0, e - np.abs(tau1)), axis=0)
    s1 = size - ov1                                                # size of a loop-1 delta
    full1 = (ov1 == 0) & ~tau1_zero                                # loop-1 delta is a whole tile
    n1 = bounds[first, cols]
    possible = _offset_screen(proj, ext, order, sp_x, sp_y, fan_x)
    # pass 1: the steps that may be linked (per step class: translation, rows, weight, delta size)
    classes = []
    w_full = np.zeros(B)                      # weight of loop-1 steps whose predecessor is a full tile
    w_sub = np.zeros(B)                       # ... whose predecessor is a slab of the same translation
    w_full += np.where(full1, n1 - 1.0, 0.0)  # loop-1 steps after the initial step
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
        if link_k.any():
            rows = np.nonzero(link_k & possible(tau[j]))[0]
            if len(rows):
                classes.append((tau[j], rows, wj * np.where(same, s1, size)))
    rest = (w_full + w_sub > 0) & ~tau1_zero
    if rest.any():
        rows = np.nonzero(rest & possible(tau1))[0]
        if len(rows):
            classes.append((tau1, rows, w_full * np.where(full1, size, s1) + w_sub * s1))
    if not classes:
        return lt, saved
    # pass 2: enumerate the children only of the rows a neighbour offset can serve
    sel = np.unique(np.concatenate([c[1] for c in classes]))
    where = np.full(B, -1, dtype=np.int64)
    where[sel] = np.arange(len(sel))
    pos, valid, width = _child_positions(proj, ext[:, sel], order[:, sel], sp_x[:, sel], sp_y[:, sel], fan_x)
    nb = _Neighbours(pos, valid, width)
    for sig, rows, wsz in classes:
        nl, ng = nb.count(sig[:, sel], where[rows])
        use = ng > 0
        lt[rows] += np.where(use, wsz[rows] * nl, 0.0)
        saved[rows] += np.where(use, wsz[rows] * ng, 0.0)
    return lt, saved


def loop_steps(c, tile_ext, sxy, loop_dim, loop_bound, cum_bound, total_bound):
    """Per temporal loop slot above level ``c``: ``(nt, dim, step, W)`` -- non-trivial, its
    dimension, the tile's move along it per iteration, and the real steps one sampled step of it
    stands for (all ``[K, B]``)."""
    L, D, B = tile_ext.shape
    lo = (c + 1) * D
    K = L * D - lo
    nt = loop_bound[lo:] > 1
    d = loop_dim[lo:]
    if K == 0:
        z = np.zeros((0, B))
        return nt, d, z, z
    cols = np.arange(B)
    lvls = (np.arange(lo, L * D) // D)[:, None]
    flat_t = tile_ext.reshape(L * D, B).ravel()
    flat_s = sxy.reshape(L * D, B).ravel()
    below = np.where(lvls > 0, flat_t[(np.maximum(lvls - 1, 0) * D + d) * B + cols], 1.0)
    step = np.where(nt, below * flat_s[(lvls * D + d) * B + cols], 0.0)
    W = np.where(nt, (loop_bound[lo:] - 1.0) * total_bound / cum_bound[lo:], 0.0)
    return nt, d, step, W


def project_steps(proj, steps):
    """``tau[K, R, B]``: the tile's translation in data-space ranks at the sampled step that
    advances each loop -- its own step minus one step of every non-trivial loop inside it."""
    nt, d, step, W = steps
    K, B = step.shape
    tau = np.empty((K, len(proj), B))
    for r, rank in enumerate(proj):
        move = np.zeros((K, B))
        for coef, dd in rank:
            move += np.where(d == dd, coef * step, 0.0)
        tau[:, r, :] = move - (np.cumsum(move, axis=0) - move)
    return tau


def step_translations(c, proj, tile_ext, sxy, loop_dim, loop_bound, cum_bound, total_bound, steps=None):
    """The sampled steps of the temporal loops above level ``c`` (Timeloop's extrapolation).

    Returns ``nt[K, B]`` (loop is non-trivial), ``tau[K, R, B]`` (translation of level ``c``'s tile,
    in data-space ranks, at the step that advances loop ``k``: its own step minus one step of every
    non-trivial loop inside it) and ``W[K, B]`` (how many real steps that sampled step stands for).
    """
    if steps is None:
        steps = loop_steps(c, tile_ext, sxy, loop_dim, loop_bound, cum_bound, total_bound)
    return steps[0], project_steps(proj, steps), steps[3]


def _offset_screen(proj, ext, order, sp_x, sp_y, fan_x):
    """A cheap superset test: ``possible(sig)`` is False for rows where no neighbour of any child
    can sit at data offset ``sig`` (neither +-1 in the linear child index -- a carry at one of the
    spatial loops -- nor +-1 row when the X loops fill the row)."""
    D, B = ext.shape
    cols = np.arange(B)
    ux = np.prod(sp_x, axis=0)
    uy = np.prod(sp_y, axis=0)
    wrapped = (np.maximum(fan_x, ux) > ux) & (uy > 1)      # rows wrap: no simple offsets, enumerate
    dstep = ext.copy()
    offs = []
    acc_lin = np.zeros((len(proj), B))      # sum of (b - 1) * step over the inner loops (X first)
    for part in (sp_x, sp_y):
        acc_row = np.zeros((len(proj), B))  # ... over the inner Y loops only (a row down)
        for q in range(D):
            d = order[q]
            b = part[d, cols]
            if np.all(b == 1):
                continue
            one = np.zeros((D, B))
            one[d, cols] = dstep[d, cols]
            sig = _rank_vec(proj, one)
            big = b > 1
            offs.append((big, sig - acc_lin))
            if part is sp_y:
                offs.append((big, sig - acc_row))
                acc_row = acc_row + np.where(big, b - 1.0, 0.0) * sig
            acc_lin = acc_lin + np.where(big, b - 1.0, 0.0) * sig
            dstep[d, cols] = dstep[d, cols] * b

    def possible(sig):
        if not SCREEN:
            return np.ones(B, dtype=bool)
        ok = wrapped.copy()
        for big, off in offs:
            ok |= big & (np.all(off == sig, axis=0) | np.all(off == -sig, axis=0))
        return ok
    return possible


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
            if np.all(b == 1):
                continue
            digit = np.mod(rem, b[:, None])
            rem = np.floor_divide(rem, b[:, None])
            off[cols, d, :] += digit * dstep[d, cols][:, None]
            dstep[d, cols] = dstep[d, cols] * b
    pos = _rank_vec(proj, off.transpose(1, 2, 0))                  # [R, U, B]
    valid = idx < (ux * uy)[:, None]                               # [B, U]
    return pos, valid, width


_OFF, _BASE = 1 << 14, 1 << 15


def _keys(vec):
    """int64 key of integer vectors ``vec[R, ...]`` (components within +-2**14, R <= 4)."""
    k = np.zeros(vec.shape[1:], dtype=np.int64)
    for r in range(vec.shape[0]):
        k = k * _BASE + (np.rint(vec[r]).astype(np.int64) + _OFF)
    return k


class _Neighbours:
    """Neighbour offsets and multicast groups of the children of one instance, for every row,
    computed once and queried for many translations (:meth:`count`)."""

    def __init__(self, pos, valid, width):
        self.pos, self.valid, self.width = pos, valid, width
        R, U, B = pos.shape
        self.fast = R <= 4 and (U == 0 or float(np.abs(pos).max()) < _OFF)
        if not self.fast:
            return
        w = width.astype(np.int64)
        idx = np.arange(U)[None, :]
        pk = _keys(pos.transpose(0, 2, 1))                                  # [B, U] position keys
        keys = np.full((4, B, U), np.iinfo(np.int64).min, dtype=np.int64)
        for n, kind in enumerate(("+1", "-1", "+w", "-w")):
            dl = {"+1": np.ones(B, np.int64), "-1": -np.ones(B, np.int64), "+w": w, "-w": -w}[kind]
            if kind == "+1":
                ok = (idx % w[:, None]) < (w[:, None] - 1)
            elif kind == "-1":
                ok = (idx % w[:, None]) > 0
            else:
                ok = np.ones((B, U), dtype=bool)
            nbi = idx + dl[:, None]
            inside = ok & (nbi >= 0) & (nbi < U)
            nbc = np.clip(nbi, 0, U - 1)
            good = inside & np.take_along_axis(valid, nbc, axis=1) & valid
            diff = np.stack([np.take_along_axis(pos[r].T, nbc, axis=1) - pos[r].T for r in range(R)])
            keys[n] = np.where(good, _keys(diff), keys[n])
        self.keys = keys
        # multicast groups: children of a row at the same position
        pkm = np.where(valid, pk, np.iinfo(np.int64).max)
        order = np.argsort(pkm, axis=1, kind="stable")
        srt = np.take_along_axis(pkm, order, axis=1)
        seg = np.zeros((B, U), dtype=np.int64)
        if U > 1:
            seg[:, 1:] = np.cumsum(srt[:, 1:] != srt[:, :-1], axis=1)
        local = np.empty_like(seg)
        np.put_along_axis(local, order, seg, axis=1)
        self.grp = np.arange(B)[:, None] * max(U, 1) + local              # global group id
        self.G = B * max(U, 1)
        self.grow = np.repeat(np.arange(B), max(U, 1))

    def count(self, sig, rows):
        """``(n_linked, n_full_groups)`` per row of ``rows`` for translations ``sig[R, B]``."""
        if not self.fast or float(np.abs(sig[:, rows]).max(initial=0.0)) >= _OFF:
            return _count_linked(self.pos[:, :, rows], self.valid[rows], self.width, sig[:, rows], rows)
        sk = _keys(sig[:, rows])                                            # [n]
        linked = np.any(self.keys[:, rows, :] == sk[None, :, None], axis=0)  # [n, U]
        v = self.valid[rows]
        linked &= v
        nl = linked.sum(axis=1).astype(np.float64)
        g = self.grp[rows][v]
        bad = np.bincount(g, weights=(~linked[v]).astype(np.float64), minlength=self.G)
        present = np.bincount(g, minlength=self.G) > 0
        full = present & (bad == 0)
        ng = np.bincount(self.grow[full], minlength=len(self.valid))[rows].astype(np.float64)
        return nl, ng


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
