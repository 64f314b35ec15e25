"""The one implementation of the dense, uniform-shape Timeloop model, vectorised over mappings.

Semantics (Timeloop's, for dense tensors and perfectly factorised loop nests):

* Loop nest: storage level ``l`` owns its temporal loops (outer) and its spatial loops (inner, they
  distribute level ``l``'s tile over the instances of level ``l-1``).  The tile of level ``l`` is the
  data-space footprint of all loops at levels ``<= l``; footprints are exact for affine projections
  (e.g. ``W = Wstride*P + Wdilation*R`` gives ``Wstride*(P-1) + Wdilation*(R-1) + 1`` -- halos).
* Arrivals into a level (per instance): temporal loops above the level that do not index the data
  space and sit directly above it keep the tile stationary; every iteration of the first loop that
  does index it (the "sliding" loop) brings a new tile, and every loop outside it repeats that.
  Whether a new tile costs only its new part (the halo overlap with the previous tile kept) or the
  whole tile follows Timeloop's delta computation (``nest-analysis.cpp`` ComputeDeltas ->
  ``OperationSpace::SaveAndSubtractIfSameStride``): per spatial instance, consecutive invocations
  of the level's tile are subtracted only while the translation between them repeats; a changed
  translation discards the previous tile (full refetch) and restarts the detection.  For perfectly
  factorised nests this gives, along the sliding loop, the union of the shifted tiles per sweep
  (``_sliding_footprint``), or the whole tile per step, decided by ``HALO_RULE``:

  - ``"timeloop-2024"`` (default; the reference outputs): a stationary step (translation 0) also
    counts as a change, so the halo is kept only when the sliding loop is the innermost
    non-trivial temporal loop above the level; an irrelevant loop inside it makes every step a
    full refetch (Eyeriss ``shared_glb`` Inputs: 573440 fills, not 475136).
  - ``"timeloop-2025"`` (Timeloop from commit a12fff5 on): stationary steps leave the detection
    alone, so the halo is always kept along the sliding loop.

  ``"ref"`` and ``"head"`` are accepted as aliases (the names of the oracle data's variants);
  :func:`set_timeloop_semantics` selects them (``--timeloop-version`` on the command line).

  Neither rule keeps a halo along an outer relevant loop (the inner sweep's jump back changes the
  translation), and both assume steps of equal stride (no imperfect factorisation / remainders).
  With a ``no_temporal_reuse`` flag every step of every loop above refetches the whole tile.
  The compute unit has no reuse: one operand access per compute.
* The parent of a level supplies those arrivals; identical data needed by several children (spatial
  loops that do not index the data space) is read once (multicast); outputs from such children are
  reduced spatially before they reach the parent.
* Read-write data spaces (outputs): the first arrival of every output needs no read from the parent
  (first-read elision), so fills = arrivals - distinct outputs; updates come from the child level
  (or one per compute); reads at a level = what its child needs (fills of the child, or for the
  innermost level the partial sums the compute unit reads back).
* Energy: per data space and level, ``ceil(accesses / block_size) * action energy`` for reads,
  fills (``write``) and updates (``update``), times utilised instances (utilised clusters when
  ``cluster_size > 1``); leakage = ``leak`` x cycles x utilised instances (at least one);
  compute = computes x ``compute``/``mac`` energy.  Which table and action energy a level gets
  (ERT/ART or built-in, Timeloop's action choice): :mod:`a3cs_plugin.hardware.energy.resolve`.
  Network, address-generation and temporal-reduction energies are zero (as in Timeloop with Accelergy tables that lack them).
* Cycles: product of temporal loop bounds, stretched by any level whose read / write / shared
  bandwidth (words per cycle per instance) is below the demand.
* Constraint flags (:mod:`a3cs_plugin.hardware.spec.constraints`): ``no_multicast_no_reduction``
  counts every child's access at the parent, ``rmw_first_update`` turns first-read elision off at
  the level, ``min_utilization`` makes mappings whose kept tiles under-fill a buffer invalid.
* Link transfers (:mod:`.links`, on by default as in Timeloop; ``LINK_TRANSFERS`` or the
  environment variable ``TIMELOOP_DISABLE_LINK_TRANSFERS`` turns them off): a child instance that
  needs at a step the data its mesh neighbour needed one step earlier gets it over the link.
* Current Timeloop (``HALO_RULE = "timeloop-2025"``) also skips an outer step whose sampled
  translation is zero (the tile does not move), where the reference rule refetches the tile.
* Not modelled: link transfers of read-write data spaces, sparse tensors, imperfect factorisation.
"""
from __future__ import annotations

import os

import numpy as np

from a3cs_plugin.errors import MappingError, SpecError
from a3cs_plugin.hardware.energy.resolve import level_energies
# ResolvedMapping / resolve_mapping: old import names of the spec layer's mapping resolution
from a3cs_plugin.hardware.spec.mapping import (LevelMapping, Mapping, ResolvedMapping,  # noqa: F401
                                               check_mapping, resolve_mapping)
from a3cs_plugin.hardware.spec.problem import footprint as _footprint

from .batch import MappingBatch

#: The checks of a user mapping (one-line :class:`MappingError`); they need no model.
validate_mapping = check_mapping

# Sliding-window (halo) reuse, see the module docstring: "timeloop-2024" (default) reproduces
# Timeloop before commit a12fff5 ("Translation fix", #297, January 2025), which produced the
# reference outputs; "timeloop-2025" follows Timeloop from that commit on.
HALO_RULE = "timeloop-2024"

# Link transfers between neighbouring spatial instances (see :mod:`.links`): on, as in Timeloop;
# off when TIMELOOP_DISABLE_LINK_TRANSFERS is set to anything but "0", as Timeloop reads it.
def links_from_env(environ=os.environ) -> bool:
    return environ.get("TIMELOOP_DISABLE_LINK_TRANSFERS", "0") == "0"


LINK_TRANSFERS = links_from_env()

# the two Timeloop revisions by the names the oracle data uses: "ref" (the reference outputs)
# and "head" (current Timeloop)
TIMELOOP_VERSIONS = {"ref": "timeloop-2024", "head": "timeloop-2025"}


def halo_rule() -> str:
    """``HALO_RULE`` resolved to ``"timeloop-2024"`` / ``"timeloop-2025"`` (aliases ``ref`` / ``head``)."""
    rule = TIMELOOP_VERSIONS.get(HALO_RULE, HALO_RULE)
    if rule not in ("timeloop-2024", "timeloop-2025"):
        raise SpecError(f"unknown HALO_RULE {HALO_RULE!r}", key="a3cs_plugin.hardware.model.engine.HALO_RULE",
                        expected="'timeloop-2024' (= 'ref') or 'timeloop-2025' (= 'head')")
    return rule


def set_timeloop_semantics(version: str | None = None, link_transfers: bool | None = None) -> None:
    """Select the Timeloop revision (``ref`` / ``head``) and link transfers for every evaluation."""
    global HALO_RULE, LINK_TRANSFERS
    if version is not None:
        if version not in TIMELOOP_VERSIONS:
            raise SpecError(f"unknown Timeloop version {version!r}", key="--timeloop-version",
                            expected="ref or head")
        HALO_RULE = TIMELOOP_VERSIONS[version]
    if link_transfers is not None:
        LINK_TRANSFERS = bool(link_transfers)
    _CACHE.clear()


# ----------------------------------------------------------------------------------------------
# mapping <-> batch (resolution and the checks of a user mapping live in hardware.spec.mapping)
# ----------------------------------------------------------------------------------------------
def batch_from_mapping(spec, mapping=None) -> MappingBatch:
    r = resolve_mapping(spec, spec.mapping if mapping is None else mapping)
    return MappingBatch(temporal=np.array([r.temporal]), spatial_x=np.array([r.spatial_x]),
                        spatial_y=np.array([r.spatial_y]), perm=np.array([r.perm]),
                        keep=np.array([r.keep], dtype=bool), spatial_order=np.array([r.sorder]))


def mapping_from_batch(spec, batch: MappingBatch, i: int):
    dims, dsn = spec.problem.dimensions, spec.problem.ds_names
    m = Mapping(source="<batch>")
    for li, lv in enumerate(spec.arch.levels):
        t = batch.temporal[i, li]
        x, y = batch.spatial_x[i, li], batch.spatial_y[i, li]
        lm = LevelMapping(temporal={d: int(t[k]) for k, d in enumerate(dims)},
                          temporal_perm=[dims[int(k)] for k in batch.perm[i, li]])
        if lv.fanout_x * lv.fanout_y > 1 or (x * y > 1).any():
            so = [int(k) for k in batch.orders()[i, li]]
            xs = [k for k in so if x[k] > 1]
            ys = [k for k in so if y[k] > 1 and k not in xs]
            rest = [k for k in so if k not in xs and k not in ys]
            lm.spatial = {d: int(x[k] * y[k]) for k, d in enumerate(dims)}
            lm.spatial_perm = [dims[k] for k in xs + rest + ys]
            lm.split = len(xs) + len(rest)
        lm.keep = {dsn[s] for s in range(len(dsn)) if batch.keep[i, li, s]}
        lm.bypass = {dsn[s] for s in range(len(dsn)) if not batch.keep[i, li, s]}
        m.levels[lv.name] = lm
    return m


# ----------------------------------------------------------------------------------------------
# static per-spec tables
# ----------------------------------------------------------------------------------------------
class _Tables:
    """Everything about ``spec`` the vectorised model needs, computed once per spec."""

    def __init__(self, spec):
        arch, prob = spec.arch, spec.problem
        self.L, self.D, self.S = len(arch.levels), len(prob.dimensions), len(prob.data_spaces)
        self.sizes = np.array(prob.sizes, dtype=np.int64)
        self.rel = np.array([[ds.relevant(d) for d in range(self.D)] for ds in prob.data_spaces])
        self.rw = np.array([ds.read_write for ds in prob.data_spaces])
        self.proj = [ds.projection for ds in prob.data_spaces]
        lv = arch.levels
        self.block = np.array([l.block_size for l in lv], dtype=np.float64)
        self.cap = np.array([np.inf if l.effective_size is None else l.effective_size for l in lv])
        self.fan_x = np.array([l.fanout_x for l in lv], dtype=np.int64)
        self.fan_y = np.array([l.fanout_y for l in lv], dtype=np.int64)
        self.rbw = np.array([np.nan if l.read_bandwidth is None else l.read_bandwidth for l in lv])
        self.wbw = np.array([np.nan if l.write_bandwidth is None else l.write_bandwidth for l in lv])
        self.sbw = np.array([np.nan if l.shared_bandwidth is None else l.shared_bandwidth for l in lv])
        self.n_macs = arch.compute.instances
        self.n_clusters = np.array([max(1, l.instances // l.cluster_size) for l in lv], dtype=np.float64)
        # Timeloop's min_utilization: only where the size is given
        self.min_fill = np.array([0.0 if l.effective_size is None else l.min_utilization * l.effective_size
                                  for l in lv])
        from a3cs_plugin.hardware.spec.constraints import model_flags
        self.flags = model_flags(spec)
        e = level_energies(spec)
        self.energy_source, self.e_read, self.e_fill, self.e_update, self.e_leak = \
            e.source, e.read, e.fill, e.update, e.leak
        self.e_compute, self.e_compute_leak, self.area = e.compute, e.compute_leak, e.area


_CACHE: dict = {}


def _fingerprint(spec) -> str:
    """Cheap identity of everything the tables depend on (so in-place edits are picked up)."""
    ert = spec.tables
    m = spec.mapping
    flags = None if m is None else [(k, lm.flags) for k, lm in m.levels.items() if lm.flags]
    return repr((spec.arch.levels, spec.arch.compute, spec.problem.instance, spec.constraints, flags,
                 None if ert is None else (id(ert.energy), len(ert.energy), id(ert.area), len(ert.area))))


def tables_for(spec) -> _Tables:
    """Per-spec constant tables, cached by spec identity + content fingerprint."""
    key = id(spec)
    fp = _fingerprint(spec)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is spec and hit[1] == fp:
        return hit[2]
    t = _Tables(spec)
    if len(_CACHE) > 64:
        _CACHE.clear()
    _CACHE[key] = (spec, fp, t)
    return t


# ----------------------------------------------------------------------------------------------
# vectorised model
# ----------------------------------------------------------------------------------------------
def _sliding_footprint(ext, proj, dim, bound, stride):
    """Footprint of the union of ``bound`` tiles shifted by ``stride`` along dimension ``dim``."""
    out = None
    for rank in proj:
        e = None
        shift = None
        for coef, d in rank:
            term = coef * (ext[d] - 1.0)
            e = term if e is None else e + term
            sh = np.where(dim == d, coef * stride, 0.0)
            shift = sh if shift is None else shift + sh
        e = e + 1.0
        union = np.where(shift >= e, bound * e, e + (bound - 1.0) * shift)
        r = np.where(shift > 0, union, e)
        out = r if out is None else out * r
    return out


def _cumprod0(a):
    """``np.cumprod(a, axis=0)`` (same multiplication order), row by row: much faster than numpy's
    strided cumulative loop for the short first axis and long contiguous rows used here."""
    out = np.empty_like(a)
    out[0] = a[0]
    for i in range(1, a.shape[0]):
        np.multiply(out[i - 1], a[i], out=out[i])
    return out


def _gather(arr2d, idx, cols):
    """``arr2d[idx[b], b]`` for a C-contiguous [K, B] array."""
    return arr2d.ravel()[idx * arr2d.shape[1] + cols]


def evaluate_arrays(spec, batch: MappingBatch) -> dict:
    """Full per-level / per-data-space statistics for every mapping (arrays over the batch).

    Internally arrays are laid out ``[level, dim, batch]`` so that every per-level vector is
    contiguous; outputs are batch-major (``[B, ...]``).
    """
    T = tables_for(spec)
    L, D, S = T.L, T.D, T.S
    if batch.temporal.shape[1:] != (L, D) or batch.keep.shape[1:] != (L, S):
        raise MappingError("batch shape does not match the spec", key="MappingBatch",
                           expected=f"[B, {L}, {D}] factors and [B, {L}, {S}] keep",
                           got=tuple(batch.temporal.shape))
    B = batch.temporal.shape[0]
    LD = L * D
    tf = np.ascontiguousarray(batch.temporal.transpose(1, 2, 0), dtype=np.float64)       # [L, D, B]
    sxy = np.ascontiguousarray((batch.spatial_x * batch.spatial_y).transpose(1, 2, 0), dtype=np.float64)
    perm = np.ascontiguousarray(batch.perm.transpose(1, 2, 0))                           # [L, D, B]
    keep = np.ascontiguousarray(batch.keep.transpose(1, 2, 0))                           # [L, S, B]
    cols = np.arange(B)

    all_f = tf * sxy
    tile_ext = _cumprod0(all_f)                        # [L, D, B] box of levels <= l
    cum_sp = _cumprod0(sxy)                            # [L, D, B]
    tot_t = np.prod(tf, axis=0)                        # [D, B]
    cycles_c = np.prod(tot_t, axis=0)                  # compute cycles (temporal iterations)
    computes = np.prod(tile_ext[-1], axis=0)
    sp_lvl = np.prod(sxy, axis=1)                      # [L, B]
    inst_above = np.empty((L, B))                      # utilised instances of level l
    acc = np.ones(B)
    for l in range(L - 1, -1, -1):
        inst_above[l] = acc
        acc = acc * sp_lvl[l]
    mac_util = acc

    # flattened temporal loops, innermost first: level-major, permutation order inside a level
    loop_dim = perm.reshape(LD, B)
    loop_lvl = np.repeat(np.arange(L), D)
    loop_bound = np.take_along_axis(tf, perm, axis=1).reshape(LD, B)
    cum_bound = _cumprod0(loop_bound)
    total_bound = cum_bound[-1]

    def next_at_levels(mask):
        """[L+1, B]: first loop index >= l*D (level boundary) where ``mask`` holds; LD if none."""
        out = np.full((L + 1, B), LD)
        running = np.full(B, LD)
        m3 = mask.reshape(L, D, B)
        for l in range(L - 1, -1, -1):
            blk = m3[l]
            pos = np.argmax(blk, axis=0)
            running = np.where(blk.any(axis=0), l * D + pos, running)
            out[l] = running
        return out

    nontrivial = loop_bound > 1
    next_nt = next_at_levels(nontrivial)

    valid = np.ones(B, dtype=bool)
    valid &= np.all(tile_ext[-1] == T.sizes[:, None], axis=0)
    valid &= np.all(np.prod(batch.spatial_x, axis=2) <= T.fan_x[None, :], axis=1)
    valid &= np.all(np.prod(batch.spatial_y, axis=2) <= T.fan_y[None, :], axis=1)
    valid &= np.all(keep[L - 1], axis=0)
    # permutations: D values in [0, D) whose bits cover all D positions
    in_range = np.all((perm >= 0) & (perm < D), axis=(0, 1))
    bits = np.bitwise_or.reduce(np.left_shift(1, np.clip(perm, 0, D - 1)), axis=1)   # [L, B]
    valid &= in_range & np.all(bits == (1 << D) - 1, axis=0)
    keep[L - 1] = True

    reads = np.zeros((L, S, B))
    fills = np.zeros((L, S, B))
    updates = np.zeros((L, S, B))
    util_cap = np.zeros((L, S, B))
    F = T.flags
    dist_ext = tot_t[None, :, :] * cum_sp              # [L, D, B] every point a level instance holds
    rule = halo_rule()
    legacy_halo = rule == "timeloop-2024"
    links_on = LINK_TRANSFERS and bool(np.any(sp_lvl[1:] > 1))
    sx_t = np.ascontiguousarray(batch.spatial_x.transpose(1, 2, 0), dtype=np.float64) if links_on else None
    so_t = np.ascontiguousarray(batch.orders().transpose(1, 2, 0)) if links_on else None
    step_cache: dict = {}   # loop steps above each level (links, head rule), shared by data spaces
    for s in range(S):
        proj, rel, rw = T.proj[s], T.rel[s], T.rw[s]
        rel_dims = np.nonzero(rel)[0]
        rel_loop = nontrivial & rel[loop_dim]
        next_rel = next_at_levels(rel_loop)
        rel_sp = np.prod(sxy[:, rel_dims, :], axis=1) if len(rel_dims) else np.ones((L, B))
        cum_rel_sp = _cumprod0(rel_sp)                 # [L, B] distinct data over the fan-outs
        nomc = F.no_multicast[:, s]
        if nomc.any():   # no multicast / spatial reduction: every child's access reaches the parent
            cum_acc_sp = _cumprod0(np.where(nomc[:, None], sp_lvl, rel_sp))
        else:
            cum_acc_sp = cum_rel_sp
        arrivals = np.zeros((L, B))
        distinct = np.zeros((L, B))
        kany = keep[:, s, :].any(axis=1)
        for c in range(L):
            if not kany[c]:
                continue
            ext = tile_ext[c]
            fp = _footprint(ext, proj)
            util_cap[c, s] = np.where(keep[c, s], fp, 0.0)
            distinct[c] = _footprint(dist_ext[c], proj)
            if c + 1 >= L:
                arrivals[c] = fp
                continue
            if F.no_temporal_reuse[c, s]:
                # no temporal reuse: every iteration of every temporal loop above refetches the tile
                arrivals[c] = fp * (total_bound / cum_bound[(c + 1) * D - 1])
                continue
            j = next_rel[c + 1]
            has = j < LD
            jc = np.minimum(j, LD - 1)
            jd = _gather(loop_dim, jc, cols)
            jb = _gather(loop_bound, jc, cols)
            jl = loop_lvl[jc]
            stride = (_gather(ext, jd, cols) * _gather(cum_sp.reshape(LD, B), jl * D + jd, cols)
                      / _gather(cum_sp[c], jd, cols))
            # halo (overlap of consecutive tiles) kept: see HALO_RULE
            if legacy_halo:
                win = np.where(next_nt[c + 1] == j, _sliding_footprint(ext, proj, jd, jb, stride), jb * fp)
            else:
                win = _sliding_footprint(ext, proj, jd, jb, stride)
            outer = total_bound / _gather(cum_bound, jc, cols)   # loops outside the sliding loop
            arr = win * outer
            if not legacy_halo and has.any():
                # current Timeloop: an outer step whose sampled translation is zero (e.g. S after Q
                # on H = Q + S) leaves the tile where it was, so it brings nothing
                from .links import loop_steps, step_translations
                key = ("head", c)
                if key not in step_cache:
                    step_cache[key] = loop_steps(c, tile_ext, sxy, loop_dim, loop_bound, cum_bound,
                                                 total_bound)
                nt_k, tau_k, w_k = step_translations(c, proj, tile_ext, sxy, loop_dim, loop_bound,
                                                     cum_bound, total_bound, step_cache[key])
                kpos = (c + 1) * D + np.arange(len(nt_k))[:, None]
                still = nt_k & (kpos > j[None, :]) & np.all(tau_k == 0, axis=1)
                arr = arr - fp * np.where(still, w_k, 0.0).sum(axis=0)
            arrivals[c] = np.where(has, arr, fp)
        # walk levels bottom-up: child (compute = -1) -> next keeping level above
        child_rel = np.ones(B)                            # cum_rel_sp at the child (1 for compute)
        child_acc = np.ones(B)                            # cum_acc_sp at the child
        child_arr = cycles_c.copy()                       # compute: one access per compute
        child_dist = _footprint(tot_t, proj) if rw else np.zeros(B)
        for p in range(L):
            if not kany[p]:
                continue
            kp = keep[p, s]
            relsp = cum_rel_sp[p] / child_rel
            accsp = relsp if cum_acc_sp is cum_rel_sp else cum_acc_sp[p] / child_acc
            elide = rw and not F.rmw_first_update[p, s]   # first-read elision at this level
            if rw:
                if not elide:
                    r = child_arr * accsp
                elif accsp is relsp:
                    r = (child_arr - child_dist) * relsp
                else:
                    r = child_arr * accsp - child_dist * relsp
                reads[p, s] = np.where(kp, r, 0.0)
                updates[p, s] = np.where(kp, child_arr * accsp, 0.0)
            else:
                reads[p, s] = np.where(kp, child_arr * accsp, 0.0)
            own_fill = (arrivals[p] - distinct[p]) if elide else arrivals[p]
            has_parent = keep[p + 1:, s].any(axis=0) if p + 1 < L else np.zeros(B, dtype=bool)
            fills[p, s] = np.where(kp & has_parent, own_fill, 0.0)
            child_rel = np.where(kp, cum_rel_sp[p], child_rel)
            if cum_acc_sp is not cum_rel_sp:
                child_acc = np.where(kp, cum_acc_sp[p], child_acc)
            else:
                child_acc = child_rel
            child_arr = np.where(kp, arrivals[p], child_arr)
            if rw:
                child_dist = np.where(kp, distinct[p], child_dist)
        if links_on and not rw:
            _apply_links(s, proj, T, keep, tile_ext, sxy, sx_t, so_t, loop_dim, loop_bound, cum_bound,
                         total_bound, sp_lvl, inst_above, cum_rel_sp, reads, fills, step_cache)

    cap_used = util_cap.sum(axis=1)                       # [L, B]
    valid &= np.all(cap_used <= T.cap[:, None] + 1e-9, axis=0)
    if T.min_fill.any():                                  # Timeloop's min_utilization
        valid &= np.all(cap_used >= T.min_fill[:, None] - 1e-9, axis=0)

    # bandwidth throttling (words per cycle per instance)
    rd = reads.sum(axis=1)
    wr = fills.sum(axis=1) + updates.sum(axis=1)
    cyc = np.maximum(cycles_c, 1.0)
    rdem, wdem = rd / cyc, wr / cyc
    slow = np.ones((L, B))
    with np.errstate(divide="ignore", invalid="ignore"):
        for bw, dem in ((T.rbw, rdem), (T.wbw, wdem), (T.sbw, rdem + wdem)):
            ok = np.isnan(bw)[:, None] | (dem <= bw[:, None])
            slow = np.minimum(slow, np.where(ok, 1.0, bw[:, None] / dem))
    level_cycles = np.ceil(cycles_c / slow)
    cycles = np.maximum(cycles_c, level_cycles.max(axis=0))

    # energy
    bs = T.block[:, None, None]
    e_access = (np.ceil(reads / bs) * T.e_read[:, None, None] + np.ceil(fills / bs) * T.e_fill[:, None, None]
                + np.ceil(updates / bs) * T.e_update[:, None, None])     # per instance
    # a vector access serves a whole cluster: energy counts utilised clusters, not instances
    e_ds = e_access * np.minimum(inst_above, T.n_clusters[:, None])[:, None, :]
    any_keep = keep.any(axis=1)
    leak = T.e_leak[:, None] * cycles * np.where(any_keep, inst_above, 1.0)
    level_e = e_ds.sum(axis=1) + leak                     # [L, B]
    compute_e = computes * T.e_compute
    energy = level_e.sum(axis=0) + compute_e
    bt = lambda a: np.moveaxis(a, -1, 0)  # noqa: E731  (batch axis first)
    return {
        "cycles": cycles, "compute_cycles": cycles_c, "computes": computes, "energy_pJ": energy,
        "edp": energy * cycles, "valid": valid,
        "levels_pJ": np.concatenate([level_e, compute_e[None, :]], axis=0).T,
        "utilization": computes / (cycles * T.n_macs), "reads": bt(reads).transpose(0, 1, 2),
        "fills": bt(fills), "updates": bt(updates), "utilized_capacity": bt(util_cap),
        "utilized_instances": inst_above.T, "energy_ds_pJ": bt(e_ds), "leak_pJ": leak.T,
        "level_cycles": level_cycles.T, "mac_utilized": mac_util,
    }


def _apply_links(s, proj, T, keep, tile_ext, sxy, sx_t, so_t, loop_dim, loop_bound, cum_bound, total_bound,
                 sp_lvl, inst_above, cum_rel_sp, reads, fills, step_cache):
    """Link transfers of read-only data space ``s`` (see :mod:`.links`), in place."""
    from .links import link_corrections
    L = T.L
    for M in range(1, L):
        if T.flags.no_link_transfer[M, s]:
            continue
        rows = np.nonzero((sp_lvl[M] > 1) & keep[M - 1, s])[0]
        if not len(rows):
            continue
        if M not in step_cache:   # per level, shared by the data spaces (full batch)
            from .links import loop_steps
            step_cache[M] = loop_steps(M - 1, tile_ext, sxy, loop_dim, loop_bound, cum_bound, total_bound)
        steps = tuple(a[:, rows] for a in step_cache[M])
        sx = sx_t[M][:, rows]
        lt, saved = link_corrections(proj, tile_ext[M - 1][:, rows], steps, loop_bound[M * T.D:, rows], sx,
                                     sxy[M][:, rows] / sx, so_t[M][:, rows], T.fan_x[M], rule=halo_rule())
        hit = lt > 0
        if not hit.any():
            continue
        rows, lt, saved = rows[hit], lt[hit], saved[hit]
        peer = lt / inst_above[M - 1, rows]
        fills[M - 1, s, rows] += peer - lt / sp_lvl[M, rows]
        reads[M - 1, s, rows] += peer
        above = keep[M:, s][:, rows]                      # next keeping level (the outermost keeps all)
        p = M + np.argmax(above, axis=0)
        reads[p, s, rows] -= saved * cum_rel_sp[p, rows] / cum_rel_sp[M, rows]


_CHUNK = 4096  # rows per pass: keeps the working set in cache


def evaluate_batch(spec, batch: MappingBatch) -> dict:
    """Summary arrays over the batch (see :func:`a3cs_plugin.hardware.model.batch.evaluate_batch`)."""
    keys = ("cycles", "computes", "energy_pJ", "edp", "valid", "levels_pJ", "utilization")
    B = len(batch)
    if B <= _CHUNK:
        full = evaluate_arrays(spec, batch)
        return {k: full[k] for k in keys}
    parts = [evaluate_arrays(spec, batch.take(slice(i, i + _CHUNK))) for i in range(0, B, _CHUNK)]
    return {k: np.concatenate([p[k] for p in parts]) for k in keys}


def evaluate_arrays_caponly(spec, batch: MappingBatch) -> np.ndarray:
    """[B, L] words each level holds (sum of kept tiles)."""
    prob = spec.problem
    all_f = (batch.temporal * batch.spatial_x * batch.spatial_y).astype(np.float64).transpose(1, 2, 0)
    tile_ext = np.cumprod(all_f, axis=0)
    L, _, B = all_f.shape
    out = np.zeros((L, B))
    keep = batch.keep.transpose(1, 2, 0)
    for s, ds in enumerate(prob.data_spaces):
        for c in range(L):
            out[c] += np.where(keep[c, s], _footprint(tile_ext[c], ds.projection), 0)
    return out.T
