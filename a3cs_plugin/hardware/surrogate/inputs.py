"""The surrogate's derived inputs: what an accelerator choice implies for one layer, as tables.

Per PE-mesh parameter and layer dimension (or product of dimensions) d, the expected log2 of the
largest divisor of d that fits the mesh (Timeloop factorises dimensions exactly, so this is the
most a mesh of size m can hold); with two mesh parameters X, Y, per dimension set d, the expected
log2 of the largest a*b with a | d, b | d/a, a <= X, b <= Y (the most the whole array can hold);
and (feature version 4) the expected log2 of the exact compute/bandwidth bound ``U``
(:mod:`.utilization`).  All are expectations under the choice probabilities, so linear in each
probability vector.

Feature versions kept live (one per shipped surrogate, see ``a3cs_plugin/surrogates/*.json``):

* **2** -- per-axis divisor features of the dimension sets :data:`DIM_SETS` and, with two mesh
  parameters, the joint (X, Y) features of :data:`JOINT_SETS` + :data:`JOINT_SETS_V2`, indexed by
  the prime-exponent code of the set's size (exact for products far above :data:`DMAX`);
* **4** -- version 2 plus the bound ``U``: the most PEs any mapping can fill per joint mesh x
  dataflow choice, lowered to ``MACs / bound`` where a single-instance buffer's bandwidth bounds
  the cycles more; the cycles output becomes a residual over ``log2(MACs / U)``.

(Versions 1 -- divisor tables indexed by the size, capped at :data:`DMAX` -- and 3 -- the bound
without bandwidth -- fitted no shipped surrogate and were removed.)

Everything derived from a layer's sizes alone (table rows, bound grids) is cached per distinct
layer, so a batch of thousands of rows over a few hundred layers costs one ``searchsorted``; rows
that are concrete designs (one-hot, no gradient asked for) read each input as one table entry.
"""
from __future__ import annotations

import torch
from torch import nn

from ...errors import ConfigError

__all__ = ["DerivedInputs", "FEATURE_VERSIONS", "DIM_SETS", "JOINT_SETS", "JOINT_SETS_V2", "DMAX"]

#: live feature versions -> what their inputs are
FEATURE_VERSIONS = {2: "divisor features (per mesh axis and joint X x Y, exact for products)",
                    4: "divisor features + the compute and bandwidth bound"}
# dimension sets (indices into the N C M P Q R S G log2 block of the features) whose size a PE mesh
# may hold: C M P Q S G, and products M*Q, C*M, P*Q, C*S, M*P (dims sharing one mesh axis)
DIM_SETS = ((1,), (2,), (3,), (4,), (6,), (7,), (2, 4), (1, 2), (3, 4), (1, 6), (2, 3))
# dimension sets for the joint X*Y fit: G, C, M, C*M, M*Q, P*Q
JOINT_SETS = ((7,), (1,), (2,), (1, 2), (2, 4), (3, 4))
# and the dimension sets a dataflow may spread over the mesh (with G): M*Q*G and C*M*S*G (row
# stationary), M*P*Q*G (output stationary), C*M*G (weight stationary), ...
JOINT_SETS_V2 = ((1, 2, 7), (2, 3, 4, 7), (1, 2, 4, 6, 7), (2, 4, 7))
DMAX = 4096                         # per-axis divisor tables cover sizes 1..DMAX (larger are clipped)
_LFEAT_MAX_ROWS = 2_000_000         # one-hot fast path table cap (layers x combo choices)


def check_feature_version(fv: int) -> int:
    """``fv`` if it is a live feature version, else ConfigError naming the live ones."""
    if fv not in FEATURE_VERSIONS:
        raise ConfigError(f"surrogate feature_version {fv} is not supported", key="feature_version",
                          expected=", ".join(f"{k} ({v})" for k, v in FEATURE_VERSIONS.items()))
    return fv


def _first_rows(keys: torch.Tensor) -> tuple[list[int], list[int]]:
    """Distinct values of ``keys`` and the first row holding each."""
    uniq, inv = torch.unique(keys, return_inverse=True)
    first = torch.full((uniq.shape[0],), keys.shape[0], dtype=torch.long).scatter_reduce(
        0, inv, torch.arange(keys.shape[0]), reduce="amin")
    return uniq.tolist(), first.tolist()


class DerivedInputs(nn.Module):
    """The derived-input tables of one design space and their per-layer cache (module doc).

    ``param_choices``: the choices of every template parameter (their order is the order of the
    probability blocks); ``mesh_index``: which parameters are PE-mesh sizes; ``util``: the bound's
    description from :func:`.utilization.spatial_slots` (version 4).  Every buffer is
    non-persistent: the tables follow from the config, so a saved surrogate holds none of them.
    """

    def __init__(self, param_choices: list, mesh_index: list[int], feature_version: int,
                 util: dict | None = None, axis_features: bool = True):
        super().__init__()
        self.fv = check_feature_version(int(feature_version))
        self.param_choices = param_choices
        self.sizes = [len(c) for c in param_choices]
        offs = [0]
        for s in self.sizes:
            offs.append(offs[-1] + s)
        self.offsets = offs
        total = offs[-1]
        self.mesh_index = list(mesh_index)
        # per-axis divisor features (one per dimension set and mesh parameter); the joint X*Y
        # features exist whenever there are exactly two mesh parameters
        self.axis_features = bool(axis_features) and bool(self.mesh_index)
        # a mesh of size m holds at most the largest divisor of a (product of) dimension(s) that is
        # <= m. Table: log2 of that divisor per size d (1..DMAX) and mesh choice, [DMAX + 1, sum
        # K_mesh]; a batch needs one gather instead of elementwise math.
        km = sum(self.sizes[i] for i in self.mesh_index)
        nm = len(self.mesh_index)
        d = torch.arange(DMAX + 1, dtype=torch.int64).clamp_min(1).unsqueeze(1)
        cols = []
        for i in self.mesh_index:
            for mk in param_choices[i]:
                best = torch.ones(DMAX + 1, dtype=torch.float32)
                for a in range(2, int(mk) + 1):
                    best = torch.where((d[:, 0] % a) == 0, torch.full_like(best, float(a)), best)
                cols.append(torch.log2(best))
        table = torch.stack(cols, dim=1) if cols else torch.zeros(DMAX + 1, 0)
        self.register_buffer("mesh_table", table, persistent=False)
        blocks = torch.zeros(km, nm)          # sums each mesh parameter's block of choices
        o = 0
        for j, i in enumerate(self.mesh_index):
            blocks[o:o + self.sizes[i], j] = 1.0
            o += self.sizes[i]
        self.register_buffer("mesh_blocks", blocks, persistent=False)
        self.mesh_cols = [c for i in self.mesh_index for c in range(offs[i], offs[i + 1])]
        self.joint = len(self.mesh_index) == 2
        sets = torch.zeros(8, len(DIM_SETS))
        for j, ds in enumerate(DIM_SETS):
            sets[list(ds), j] = 1.0
        self.register_buffer("dim_sets", sets, persistent=False)
        if self.joint:
            self._prime_code_tables()

        # version 4: the exact compute bound (utilization.py) over the joint grid of mesh and
        # dataflow parameters, one input column and the baseline of the cycles output
        self.util = util if self.fv >= 4 else None
        self.util_params = (list(self.util["mesh"]) + list(self.util["struct"])) if self.util else []
        k_grid = 1
        for i in self.util_params:
            k_grid *= self.sizes[i]
        # per-layer cache (sorted by a hash of the layer's feature bits): the divisor-table
        # rows of its dimension sets and its bound grid; a batch then costs one searchsorted
        self._lkeys = torch.zeros(0, dtype=torch.long)
        self._lidx = torch.zeros(0, len(DIM_SETS), dtype=torch.long)     # axis-feature rows
        self._ljdx = torch.zeros(0, 0, dtype=torch.long)                 # joint-feature rows
        self._util_table = torch.zeros(0, k_grid)                        # log2 bound grids
        # one-hot fast path: every derived input of a layer depends only on the "combo" parameters
        # (mesh, and with the bound the dataflow too); per layer, a table over their joint choices
        self._combo = self.util_params if self.util else list(self.mesh_index)
        self._combo_stride: dict[int, int] = {}
        self._kc = 1
        for i in reversed(self._combo):
            self._combo_stride[i] = self._kc
            self._kc *= self.sizes[i]
        self._lfeat: torch.Tensor | None = None                          # [layers * _kc, F]
        # a one-hot row times this map: its count per parameter block, then its combo index
        self._onehot_map = torch.zeros(total, len(self.sizes) + 1)
        for i in range(len(self.sizes)):
            self._onehot_map[offs[i]:offs[i + 1], i] = 1.0
        for i in self._combo:
            self._onehot_map[offs[i]:offs[i + 1], -1] = torch.arange(self.sizes[i]).float() * self._combo_stride[i]
        #: number of derived columns: per dimension set and mesh parameter, per joint set, the bound
        self.width = ((len(DIM_SETS) * nm if self.axis_features else 0)
                      + (len(JOINT_SETS) + len(JOINT_SETS_V2) if self.joint else 0)
                      + (1 if self.util else 0))
        # random odd 62-bit weights: (feature bits * w).sum() (wrapping int64) keys the distinct layers
        self.register_buffer("_util_hash", torch.randint(
            1, 2 ** 62, (10,), generator=torch.Generator().manual_seed(20211205)) | 1, persistent=False)

    # ------------------------------------------------------------------ tables
    def _prime_code_tables(self) -> None:
        """Index the joint divisor tables by the (capped) prime exponents of the size of a
        dimension set instead of the size itself, so products of several dimensions (far above
        DMAX) stay exact. Only primes up to the largest mesh size matter, each up to the power that
        still fits the largest whole array; row = mixed-radix code of those exponents."""
        mesh_ch = [[int(c) for c in self.param_choices[i]] for i in self.mesh_index]
        biggest = max(max(c) for c in mesh_ch)
        full = 1
        for c in mesh_ch:
            full *= max(c)
        primes = [p for p in range(2, biggest + 1) if all(p % q for q in range(2, p))]
        caps = []
        for p in primes:
            e = 0
            while p ** (e + 1) <= full:
                e += 1
            caps.append(e)
        radix = [1]
        for c in caps[:-1]:
            radix.append(radix[-1] * (c + 1))
        rows = radix[-1] * (caps[-1] + 1)
        d = torch.arange(DMAX + 1, dtype=torch.int64).clamp_min(1)
        exps = torch.zeros(DMAX + 1, len(primes))
        for k, p in enumerate(primes):
            r = d.clone()
            while True:
                ok = (r % p) == 0
                if not bool(ok.any()):
                    break
                exps[:, k] += ok.float()
                r = torch.where(ok, r // p, r)
        self.register_buffer("code_exps", exps, persistent=False)                 # [DMAX+1, P]
        union = [tuple(1.0 if dd in ds else 0.0 for dd in range(8)) for ds in JOINT_SETS + JOINT_SETS_V2]
        npr, nu = len(primes), len(union)
        csum = torch.zeros(8 * npr, nu * npr)      # exps [8 x P] -> per set and prime [U x P]
        cmix = torch.zeros(nu * npr, nu)           # capped exponents -> mixed-radix row
        for u, col in enumerate(union):
            for k in range(npr):
                for dd in range(8):
                    csum[dd * npr + k, u * npr + k] = col[dd]
                cmix[u * npr + k, u] = radix[k]
        self.register_buffer("code_sum", csum, persistent=False)
        self.register_buffer("code_mix", cmix, persistent=False)
        self.register_buffer("code_capv", torch.tensor(caps * nu, dtype=torch.float32), persistent=False)
        code = torch.arange(rows, dtype=torch.int64)
        val = torch.ones(rows, dtype=torch.int64)
        for k, p in enumerate(primes):
            val *= p ** ((code // radix[k]) % (caps[k] + 1))

        def best_div(v, m):   # largest divisor of v that is <= m (elementwise)
            best = torch.ones_like(v)
            for a in range(2, int(m) + 1):
                best = torch.where(v % a == 0, torch.full_like(v, a), best)
            return best

        mx, my = mesh_ch
        jcols = []
        by_a = {}
        for a in range(1, max(mx) + 1):
            ok = (val % a) == 0
            rest = torch.where(ok, val // a, torch.ones_like(val))
            by_a[a] = (ok, torch.stack([best_div(rest, y_) for y_ in my], dim=1) * a)
        for x_ in mx:
            best = torch.ones(rows, len(my), dtype=torch.int64)
            for a in range(1, x_ + 1):
                ok, cand = by_a[a]
                best = torch.where(ok.unsqueeze(1), torch.maximum(best, cand), best)
            jcols.append(torch.log2(best.float()))
        self.register_buffer("code_joint_table", torch.cat(jcols, dim=1), persistent=False)

    def _set_index(self, x: torch.Tensor, sets: torch.Tensor) -> torch.Tensor:
        """Row of the per-axis divisor tables per layer and dimension set ``[N, S]``."""
        return torch.round(torch.exp2(x[:, :8] @ sets)).clamp_(1, DMAX).long()

    def _set_codes(self, x: torch.Tensor) -> torch.Tensor:
        """Row ``[N, U]`` of the joint table for each joint dimension set: per prime, the sum of the
        exponents of the set's dimensions capped at ``code_capv``, as one mixed-radix number (two
        small matmuls)."""
        dims = torch.round(torch.exp2(x[:, :8])).clamp_(1, DMAX).long()               # [N, 8]
        e = self.code_exps.index_select(0, dims.reshape(-1)).reshape(x.shape[0], -1)  # [N, 8P]
        se = torch.minimum(e @ self.code_sum, self.code_capv)                         # [N, U P]
        return (se @ self.code_mix).long()

    # ------------------------------------------------------------------ the bound
    def util_log2(self, x: torch.Tensor, a: torch.Tensor, pos: torch.Tensor | None = None) -> torch.Tensor:
        """Expected log2 of the exact compute bound (most PEs any mapping can fill) ``[N]`` under
        the joint (independent) probabilities of the mesh and dataflow parameters.  Per distinct
        layer, the grid over all their joint choices comes from
        :func:`utilization.log2_util_grid` once."""
        pos = self.layer_rows(x) if pos is None else pos
        return self._util_expect(a, self._util_table, pos)

    def _util_expect(self, a: torch.Tensor, table: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Expected log2 bound ``[N]``: grids ``table[rows]`` contracted with the joint choice
        probabilities of the bound's parameters."""
        pj = None
        for i in self.util_params:
            p = a[:, self.offsets[i]:self.offsets[i + 1]]
            pj = p if pj is None else (pj.unsqueeze(2) * p.unsqueeze(1)).reshape(a.shape[0], -1)
        if a.shape[0] == 1:
            return (table @ pj[0]).index_select(0, rows)
        return (table.index_select(0, rows) * pj).sum(1)

    # ------------------------------------------------------------------ per-layer cache
    def layer_rows(self, x: torch.Tensor) -> torch.Tensor:
        """Row of each layer in the per-layer cache (new layers are added first)."""
        # key: the bit patterns of the log2 sizes and strides (layer_features computes them the
        # same way for the same layer), mixed by random odd weights in wrapping int64 arithmetic
        keys = (x[:, :10].contiguous().view(torch.int32).long() * self._util_hash).sum(1)
        pos = torch.searchsorted(self._lkeys, keys).clamp_(max=max(0, self._lkeys.numel() - 1))
        hit = self._lkeys.numel() > 0 and bool((self._lkeys[pos] == keys).all())
        if not hit:
            dims = torch.cat([torch.round(torch.exp2(x[:, :8])), torch.round(x[:, 8:10])], dim=1).long()
            self._layer_add(x, dims, keys)
            pos = torch.searchsorted(self._lkeys, keys)
        return pos

    def onehot_choices(self, a: torch.Tensor) -> torch.Tensor | None:
        """For rows of ``a`` that are all concrete designs (one 1 per parameter block, zeros
        elsewhere) with no gradient asked for: the joint choice index of the combo parameters
        ``[N]`` (row-major); else None. Every derived input is then one entry of the per-layer
        table ``_lfeat`` (same numbers as the expectation, read by a single gather). The index is
        linear in a one-hot row, so one matmul gives it together with the per-block counts."""
        if a.shape[0] == 1 or a.requires_grad or not self._combo:
            return None
        if not torch.equal((a == 1.0).to(a.dtype), a):      # only zeros and ones
            return None
        r = a @ self._onehot_map
        n_p = len(self.sizes)
        if not bool((r[:, :n_p] == 1.0).all()):               # exactly one 1 in every block
            return None
        return r[:, n_p].long()

    def _layer_add(self, x: torch.Tensor, dims: torch.Tensor, keys: torch.Tensor) -> None:
        """Add the layers of ``x`` not yet cached (table rows, bound grids) and re-sort."""
        from .utilization import log2_util_grid
        known = set(self._lkeys.tolist())
        new_k, rows = [], []
        for k, i in zip(*_first_rows(keys)):
            if k not in known:
                known.add(k)
                new_k.append(k)
                rows.append(i)
        if not new_k:
            return
        xr = x.detach()[torch.tensor(rows, dtype=torch.long)]
        k_all = torch.cat([self._lkeys, torch.tensor(new_k, dtype=torch.long)])
        order = torch.argsort(k_all)
        self._lkeys = k_all[order]
        idx_new = self._set_index(xr, self.dim_sets) if self.axis_features else None
        jdx_new = self._set_codes(xr) if self.joint else None
        if idx_new is not None:
            self._lidx = torch.cat([self._lidx, idx_new])[order].contiguous()
        if jdx_new is not None:
            self._ljdx = (torch.cat([self._ljdx, jdx_new]) if self._ljdx.numel() else jdx_new)[order].contiguous()
        if self.util:
            grids = torch.tensor([log2_util_grid(tuple(dims[i].tolist()), self.util, self.param_choices)
                                  for i in rows], dtype=torch.float32)
            self._util_table = torch.cat([self._util_table, grids])[order].contiguous()
        else:
            grids = None
        # one-hot fast path table: the derived inputs of each new layer for every combo choice,
        # computed by the expectation path on one-hot rows (so the two paths agree exactly)
        if self._combo and (self._lkeys.numel() * self._kc <= _LFEAT_MAX_ROWS):
            kc, nn_ = self._kc, len(rows)
            combos = torch.zeros(kc, self.offsets[-1])
            for c in range(kc):
                for i in range(len(self.sizes)):
                    k = (c // self._combo_stride[i]) % self.sizes[i] if i in self._combo_stride else 0
                    combos[c, self.offsets[i] + k] = 1.0
            rep = torch.arange(nn_).repeat_interleave(kc)
            mesh, _ = self._mesh_expect(combos.repeat(nn_, 1),
                                        None if idx_new is None else idx_new[rep],
                                        None if jdx_new is None else jdx_new[rep], grids, rep)
            f = mesh.shape[1]
            old = (self._lfeat.reshape(-1, kc, f) if self._lfeat is not None
                   else torch.zeros(0, kc, f))
            self._lfeat = torch.cat([old, mesh.reshape(nn_, kc, f)])[order].reshape(-1, f).contiguous()
        else:
            self._lfeat = None

    # ------------------------------------------------------------------ the inputs
    def derived(self, x: torch.Tensor, a: torch.Tensor):
        """Unnormalised derived inputs of layers ``x`` under probabilities ``a``: ``(the divisor
        features then the bound [N, width] or None, the bound [N] or None)``."""
        pos = self.layer_rows(x)
        col = self.onehot_choices(a) if self._lfeat is not None else None
        if col is not None:      # concrete designs: one gather from the per-layer table
            feats = self._lfeat.index_select(0, pos * self._kc + col)
            return feats, (feats[:, -1] if self.util else None)
        return self._mesh_expect(
            a, self._lidx.index_select(0, pos) if self.axis_features else None,
            self._ljdx.index_select(0, pos) if self.joint else None, self._util_table, pos)

    def _mesh_expect(self, a: torch.Tensor, idx, jdx, util_table, util_rows):
        """Expectation under ``a`` of the divisor features (table rows ``idx`` [N, S] and ``jdx``
        [N, U]) and of the bound (``util_table[util_rows]``): ``(cat of them or None, bound or
        None)``."""
        n = (idx if idx is not None else jdx if jdx is not None else util_rows).shape[0]
        parts = []
        shared = a.shape[0] == 1
        if self.axis_features:
            pm = a[:, self.mesh_cols]                                                      # [1|N, Km]
            if shared:   # shared accelerator: contract the table first, then gather [N, S, nm]
                tab = self.mesh_table @ (pm.reshape(-1, 1) * self.mesh_blocks)             # [D, nm]
                mesh = tab.index_select(0, idx.reshape(-1))
            else:
                g = self.mesh_table.index_select(0, idx.reshape(-1)).reshape(n, idx.shape[1], -1)
                mesh = (g * pm.unsqueeze(1)).reshape(-1, g.shape[-1]) @ self.mesh_blocks
            parts.append(mesh.reshape(n, -1))
        if self.joint:
            # exact for products of several dimensions (rows by prime-exponent code)
            jtab = self.code_joint_table
            (lo1, hi1), (lo2, hi2) = ((self.offsets[i], self.offsets[i + 1]) for i in self.mesh_index)
            pj = (a[:, lo1:hi1].unsqueeze(2) * a[:, lo2:hi2].unsqueeze(1)).reshape(a.shape[0], -1)
            if shared:
                parts.append((jtab @ pj.reshape(-1)).index_select(0, jdx.reshape(-1)).reshape(n, -1))
            else:
                gj = jtab.index_select(0, jdx.reshape(-1)).reshape(n, jdx.shape[1], -1)
                parts.append(torch.bmm(gj, pj.unsqueeze(2)).reshape(n, -1))
        util = None
        if self.util:
            util = self._util_expect(a, util_table, util_rows)
            parts.append(util.unsqueeze(1))
        if not parts:
            return None, util
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1), util
