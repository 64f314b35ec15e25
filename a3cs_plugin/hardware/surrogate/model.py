"""Differentiable cost model: (layer features, accelerator choice probabilities) -> energy, cycles.

The accelerator enters as one probability vector per template parameter (one-hot for a concrete
design, a softmax / Gumbel-softmax relaxation during search). The network sees

* the standardised layer features (:data:`features.FEATURE_NAMES`);
* the concatenated probability vectors;
* per numeric parameter, the expected log2 of its value under the probabilities;
* per PE-mesh parameter and layer dimension (or product of two dimensions) d, the expected log2 of
  the largest divisor of d that fits the mesh (Timeloop factorises dimensions exactly, so this is
  the most a mesh of size m can hold);
* with two mesh parameters X, Y: per dimension set d, the expected log2 of the largest a*b with
  a | d, b | d/a, a <= X, b <= Y (the most the whole array can hold),

* (feature_version 3) the expected log2 of the exact compute bound ``U`` -- the most PEs any
  mapping can fill, per joint mesh x dataflow choice (:mod:`.utilization`) -- which also moves the
  cycles output to a residual over ``log2(MACs / U)``; feature_version 4 lowers ``U`` to
  ``MACs / bound`` where the bandwidth of a single-instance buffer bounds the cycles more
  (depthwise layers on the Eyeriss-like global buffer),

all of which are expectations under the probabilities (linear in each probability vector), so
gradients reach the accelerator logits and a soft mix of choices is a valid input. It predicts log2(energy / MACs) and log2(cycles / MACs).
Everything derived from a layer's sizes alone (divisor-table rows, bound grids) is cached per
distinct layer, so a batch of thousands of rows over a few hundred layers costs one
``searchsorted``; rows that are concrete designs (one-hot, no gradient asked for) read each
expectation as one table entry.
Area and clock period of a point do not need a learned model: they are stored as exact tables over
the parameters they depend on and contracted with the probabilities (the expectation under
independent per-parameter choices; exact for one-hot inputs).
"""
from __future__ import annotations

import string
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from ...errors import CheckpointError, ConfigError
from .features import NUM_FEATURES

__all__ = ["Surrogate", "SURROGATE_DIR"]

SURROGATE_DIR = Path(__file__).resolve().parents[2] / "surrogates"
# dimension sets (indices into the N C M P Q R S G log2 block of the features) whose size a PE mesh
# may hold: C M P Q S G, and products M*Q, C*M, P*Q, C*S, M*P (dims sharing one mesh axis)
_DIM_SETS = ((1,), (2,), (3,), (4,), (6,), (7,), (2, 4), (1, 2), (3, 4), (1, 6), (2, 3))
# dimension sets for the joint X*Y fit: G, C, M, C*M, M*Q, P*Q
_JOINT_SETS = ((7,), (1,), (2,), (1, 2), (2, 4), (3, 4))
# feature_version 2 adds the dimension sets a dataflow may spread over the mesh (with G): M*Q*G and
# C*M*S*G (row stationary), M*P*Q*G (output stationary), C*M*G (weight stationary), ...
_DIM_SETS_V2 = ()
_JOINT_SETS_V2 = ((1, 2, 7), (2, 3, 4, 7), (1, 2, 4, 6, 7), (2, 4, 7))
_DMAX = 4096                        # divisor tables cover sizes 1.._DMAX (larger sizes are clipped)
FORMAT_VERSION = 1
_CHUNK = 4096                       # rows per pass for large no-grad batches
_LFEAT_MAX_ROWS = 2_000_000         # one-hot fast path table cap (layers x combo choices)


def _first_rows(keys: torch.Tensor) -> tuple[list[int], list[int]]:
    """Distinct values of ``keys`` and the first row holding each."""
    uniq, inv = torch.unique(keys, return_inverse=True)
    first = torch.full((uniq.shape[0],), keys.shape[0], dtype=torch.long).scatter_reduce(
        0, inv, torch.arange(keys.shape[0]), reduce="amin")
    return uniq.tolist(), first.tolist()


class Surrogate(nn.Module):
    """Fitted cost model for one design-space template (see module doc)."""

    def __init__(self, config: dict):
        super().__init__()
        self.config = dict(config)
        self.heldout: dict | None = None   # held-out set {"x", "a", "y"} stored by fit_surrogate
        self.path: str | None = None
        self.template = config["template"]
        self.param_names: list[str] = list(config["param_names"])
        self.param_choices: list[list] = [list(c) for c in config["param_choices"]]
        self.sizes = [len(c) for c in self.param_choices]
        self.mesh_params: list[str] = list(config.get("mesh_params", []))
        hidden = int(config.get("hidden", 64))
        depth = int(config.get("depth", 2))
        total = sum(self.sizes)

        # expected log2 value of each numeric parameter: probs @ logval  ([sumK, n_numeric])
        numeric = [i for i, ch in enumerate(self.param_choices)
                   if all(isinstance(c, (int, float)) and not isinstance(c, bool) and c > 0 for c in ch)]
        logval = torch.zeros(total, len(numeric))
        offs = [0]
        for s in self.sizes:
            offs.append(offs[-1] + s)
        self.offsets = offs
        for j, i in enumerate(numeric):
            logval[offs[i]:offs[i + 1], j] = torch.log2(torch.tensor(self.param_choices[i],
                                                                     dtype=torch.float32))
        self.register_buffer("logval", logval)
        self.mesh_index = [self.param_names.index(p) for p in self.mesh_params]
        # per-axis divisor features (one per dimension set and mesh parameter); the joint X*Y
        # features below exist whenever there are exactly two mesh parameters
        self.axis_features = bool(config.get("axis_features", True)) and bool(self.mesh_index)
        # Timeloop's mapper factorises every dimension exactly, so a mesh of size m can hold at most
        # the largest divisor of a (product of) dimension(s) that is <= m. Table: log2 of that
        # divisor per size d (1.._DMAX) and mesh choice, [_DMAX + 1, sum K_mesh]; a batch needs
        # one gather instead of elementwise math.
        self.fv = int(config.get("feature_version", 1))
        dim_sets_l = _DIM_SETS + (_DIM_SETS_V2 if self.fv >= 2 else ())
        joint_sets_l = _JOINT_SETS
        km = sum(self.sizes[i] for i in self.mesh_index)
        nm = len(self.mesh_index)
        d = torch.arange(_DMAX + 1, dtype=torch.int64).clamp_min(1).unsqueeze(1)
        cols = []
        for i in self.mesh_index:
            for mk in self.param_choices[i]:
                best = torch.ones(_DMAX + 1, dtype=torch.float32)
                for a in range(2, int(mk) + 1):
                    best = torch.where((d[:, 0] % a) == 0, torch.full_like(best, float(a)), best)
                cols.append(torch.log2(best))
        table = torch.stack(cols, dim=1) if cols else torch.zeros(_DMAX + 1, 0)
        self.register_buffer("mesh_table", table, persistent=False)
        blocks = torch.zeros(km, nm)          # sums each mesh parameter's block of choices
        o = 0
        for j, i in enumerate(self.mesh_index):
            blocks[o:o + self.sizes[i], j] = 1.0
            o += self.sizes[i]
        self.register_buffer("mesh_blocks", blocks, persistent=False)
        self.mesh_cols = [c for i in self.mesh_index for c in range(offs[i], offs[i + 1])]
        # with exactly two mesh parameters (X, Y): log2 of the largest product a*b with a | d,
        # b | d/a, a <= X, b <= Y, per (X, Y) choice pair: [_DMAX + 1, K_x K_y]
        self.joint = len(self.mesh_index) == 2
        if self.joint:
            mx, my = (self.param_choices[i] for i in self.mesh_index)
            dd = d[:, 0]
            div_y = torch.stack([torch.exp2(c) for c in cols[len(mx):]], dim=1)          # [D, Ky]
            jcols = []
            for x_ in mx:
                best = torch.ones(_DMAX + 1, len(my))
                for a in range(1, int(x_) + 1):
                    ok = (dd % a) == 0
                    cand = a * div_y[dd // a]
                    best = torch.where(ok.unsqueeze(1), torch.maximum(best, cand), best)
                jcols.append(torch.log2(best))
            jtable = torch.cat(jcols, dim=1)
            jsets = torch.zeros(8, len(joint_sets_l))
            for j, ds in enumerate(joint_sets_l):
                jsets[list(ds), j] = 1.0
        else:
            jtable, jsets = torch.zeros(_DMAX + 1, 0), torch.zeros(8, 0)
        self.register_buffer("joint_table", jtable, persistent=False)
        self.register_buffer("joint_sets", jsets, persistent=False)
        sets = torch.zeros(8, len(dim_sets_l))
        for j, ds in enumerate(dim_sets_l):
            sets[list(ds), j] = 1.0
        self.register_buffer("dim_sets", sets, persistent=False)
        if self.fv >= 2 and self.joint:
            self._prime_code_tables()

        # feature_version 3: the exact compute bound (utilization.py) over the joint grid of mesh and
        # dataflow parameters, one input column and the baseline of the cycles output
        self.util = config.get("util") if self.fv >= 3 else None
        self.util_params = (list(self.util["mesh"]) + list(self.util["struct"])) if self.util else []
        k_grid = 1
        for i in self.util_params:
            k_grid *= self.sizes[i]
        # per-layer cache (sorted by a hash of the layer's feature bits): the divisor-table
        # rows of its dimension sets and its bound grid; a batch then costs one searchsorted
        self._lkeys = torch.zeros(0, dtype=torch.long)
        self._lidx = torch.zeros(0, len(dim_sets_l), dtype=torch.long)   # axis-feature rows
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
        n_in = (NUM_FEATURES + total + len(numeric) + (len(dim_sets_l) * nm if self.axis_features else 0)
                + (len(joint_sets_l) + (len(_JOINT_SETS_V2) if self.fv >= 2 else 0) if self.joint else 0)
                + (1 if self.util else 0))
        # z columns: expected log2 of numeric parameters, then per dimension set and mesh parameter
        # the expected log2 of the largest divisor that fits the mesh
        self.n_in = n_in
        # random odd 62-bit weights: (feature bits * w).sum() (wrapping int64) keys the distinct layers
        self.register_buffer("_util_hash", torch.randint(
            1, 2 ** 62, (10,), generator=torch.Generator().manual_seed(20211205)) | 1, persistent=False)
        self.register_buffer("x_mean", torch.zeros(NUM_FEATURES))
        self.register_buffer("x_std", torch.ones(NUM_FEATURES))
        self.register_buffer("z_mean", torch.zeros(n_in - NUM_FEATURES - total))
        self.register_buffer("z_std", torch.ones(n_in - NUM_FEATURES - total))
        self.register_buffer("y_mean", torch.zeros(2))
        self.register_buffer("y_std", torch.ones(2))
        layers: list[nn.Module] = []
        d = n_in
        acts = {"silu": nn.SiLU, "relu": nn.ReLU, "hardswish": nn.Hardswish}
        act = config.get("activation", "silu")
        if act not in acts:
            raise ConfigError(f"unknown surrogate activation '{act}'", key="activation",
                              expected=", ".join(acts))
        for _ in range(depth):
            layers += [nn.Linear(d, hidden), acts[act]()]
            d = hidden
        layers.append(nn.Linear(d, 2))
        self.net = nn.Sequential(*layers)

        # exact tables: area (mm^2) and clock period (s) over the parameters they depend on
        self.area_params: list[int] = list(config.get("area_params", []))
        self.period_params: list[int] = list(config.get("period_params", []))
        self.register_buffer("area_table", torch.zeros([self.sizes[i] for i in self.area_params]))
        self.register_buffer("period_table", torch.ones([self.sizes[i] for i in self.period_params]))

    # ------------------------------------------------------------------ inputs
    def accel_tensor(self, accel_probs, n: int | None = None) -> torch.Tensor:
        """Concatenated probability vectors ``[1 or N, sum K]`` from a dict ``param -> [K] / [N, K]``
        or a tensor ``[sum K]`` / ``[N, sum K]``."""
        total = self.offsets[-1]
        if isinstance(accel_probs, Mapping):
            unknown = [k for k in accel_probs if k not in self.param_names]
            missing = [k for k in self.param_names if k not in accel_probs]
            if unknown or missing:
                raise ConfigError(f"accelerator probabilities for template '{self.template}': "
                                  f"unknown {unknown}, missing {missing}", key="accel_probs",
                                  expected="one entry per parameter: " + ", ".join(self.param_names))
            parts = []
            for name, k in zip(self.param_names, self.sizes):
                t = torch.as_tensor(accel_probs[name], dtype=torch.float32)
                if t.shape[-1] != k:
                    raise ConfigError(f"probability vector for '{name}' has {t.shape[-1]} entries",
                                      key=f"accel_probs.{name}", expected=f"{k} (one per choice)")
                parts.append(t.reshape(1, k) if t.dim() == 1 else t)
            rows = max(p.shape[0] for p in parts)
            a = torch.cat([p.expand(rows, -1) for p in parts], dim=1)
        else:
            a = torch.as_tensor(accel_probs, dtype=torch.float32)
            if a.shape[-1] != total:
                raise ConfigError(f"accelerator encoding has {a.shape[-1]} entries", key="accel_probs",
                                  expected=f"{total} (sum of choice counts of {self.template})")
            a = a.reshape(1, total) if a.dim() == 1 else a
        if n is not None and a.shape[0] not in (1, n):
            raise ConfigError(f"accelerator probabilities have {a.shape[0]} rows for {n} layers",
                              key="accel_probs", expected="1 row or one per layer")
        return a

    def _prime_code_tables(self) -> None:
        """feature_version 2: index the divisor tables by the (capped) prime exponents of the size of
        a dimension set instead of the size itself, so products of several dimensions (far above
        _DMAX) stay exact. Only primes up to the largest mesh size matter, each up to the power that
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
        d = torch.arange(_DMAX + 1, dtype=torch.int64).clamp_min(1)
        exps = torch.zeros(_DMAX + 1, len(primes))
        for k, p in enumerate(primes):
            r = d.clone()
            while True:
                ok = (r % p) == 0
                if not bool(ok.any()):
                    break
                exps[:, k] += ok.float()
                r = torch.where(ok, r // p, r)
        self.register_buffer("code_exps", exps, persistent=False)                 # [_DMAX+1, P]
        union = [tuple(1.0 if dd in ds else 0.0 for dd in range(8)) for ds in _JOINT_SETS + _JOINT_SETS_V2]
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

        if True:
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
        """Row of the (feature_version 1) divisor tables per layer and dimension set ``[N, S]``."""
        return torch.round(torch.exp2(x[:, :8] @ sets)).clamp_(1, _DMAX).long()

    def _set_codes(self, x: torch.Tensor) -> torch.Tensor:
        """feature_version 2: table row ``[N, U]`` of each dimension set in ``code_sets`` (the union
        of the per-axis and joint sets): per prime, the sum of the exponents of the set's
        dimensions capped at ``code_caps``, as one mixed-radix number (two small matmuls)."""
        dims = torch.round(torch.exp2(x[:, :8])).clamp_(1, _DMAX).long()               # [N, 8]
        e = self.code_exps.index_select(0, dims.reshape(-1)).reshape(x.shape[0], -1)  # [N, 8P]
        se = torch.minimum(e @ self.code_sum, self.code_capv)                         # [N, U P]
        return (se @ self.code_mix).long()

    def _util_log2(self, x: torch.Tensor, a: torch.Tensor, pos: torch.Tensor | None = None) -> torch.Tensor:
        """feature_version 3: expected log2 of the exact compute bound (most PEs any mapping can
        fill) ``[N]`` under the joint (independent) probabilities of the mesh and dataflow
        parameters.  Per distinct layer, the grid over all their joint choices comes from
        :func:`utilization.log2_util_grid` once; rows are kept in a table sorted by a hash of the
        layer's dimensions, so a batch costs one ``searchsorted`` and one gather."""
        pos = self._layer_rows(x) if pos is None else pos
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

    def _layer_rows(self, x: torch.Tensor) -> torch.Tensor:
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

    def _onehot_choices(self, a: torch.Tensor) -> torch.Tensor | None:
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
        jdx_new = ((self._set_codes(xr) if self.fv >= 2 else self._set_index(xr, self.joint_sets))
                   if self.joint else None)
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

    def baseline(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """``[N, 2]`` what the network's output is added to: log2 MACs for energy; log2 MACs (v1,
        v2) or the log2 compute-bound cycles ``log2(MACs / U)`` (v3) for cycles."""
        base = x[:, 10:11].expand(-1, 2)
        if not self.util:
            return base
        return base - torch.stack([torch.zeros(x.shape[0]), self._util_log2(x, a)], dim=1)

    def _extra(self, x: torch.Tensor, a: torch.Tensor):
        """Unnormalised accelerator-derived inputs: expected log2 parameter values ``[1|N, V]`` and
        the expected log2 largest fitting divisors ``[N, ...]`` (None without mesh parameters),
        then (v3) the expected log2 compute bound; third item: that bound ``[N]`` (or None)."""
        logv = a @ self.logval
        pos = self._layer_rows(x)
        col = self._onehot_choices(a) if self._lfeat is not None else None
        if col is not None:      # concrete designs: one gather from the per-layer table
            feats = self._lfeat.index_select(0, pos * self._kc + col)
            return logv, feats, (feats[:, -1] if self.util else None)
        return (logv,) + self._mesh_expect(
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
            # v2: exact for products of several dimensions (rows by prime-exponent code)
            jtab = self.code_joint_table if self.fv >= 2 else self.joint_table
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

    def _inputs(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """The standardised network input ``[N, n_in]`` (layer features, probabilities, derived)."""
        n = x.shape[0]
        logv, mesh, _ = self._extra(x, a)
        z = torch.cat([logv.expand(n, -1)] + ([] if mesh is None else [mesh]), dim=1)
        z = (z - self.z_mean) / self.z_std
        xs = (x - self.x_mean) / self.x_std
        return torch.cat([xs, a.expand(n, -1), z], dim=1)

    def _forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Log2 prediction ``[N, 2]``: ``net(_inputs(x, a))`` (standardisation folded into the first
        layer, no concatenation: same numbers, less memory traffic), de-standardised, plus the
        :meth:`baseline`."""
        first = self.net[0]
        w, f, t = first.weight, NUM_FEATURES, a.shape[1]
        logv, mesh, util = self._extra(x, a)
        nv = logv.shape[1]
        wx = w[:, :f] / self.x_std
        wz = w[:, f + t:] / self.z_std
        # the expected log2 values are linear in a (a @ logval): fold their weights into a's
        wa = w[:, f:f + t] + wz[:, :nv] @ self.logval.T
        bias = first.bias - self.x_mean @ wx.T - self.z_mean @ wz.T
        if a.shape[0] == 1:   # shared accelerator: its terms fold into the bias
            h = torch.addmm(bias + a @ wa.T, x, wx.T)
            if mesh is not None:
                h = torch.addmm(h, mesh, wz[:, nv:].T)
        else:                 # one accelerator per row: accumulate the input blocks' GEMMs
            h = torch.addmm(bias, x, wx.T).addmm_(a, wa.T)
            if mesh is not None:
                h = h.addmm_(mesh, wz[:, nv:].T)
        out = torch.addcmul(self.y_mean, self.net[1:](h), self.y_std).add_(x[:, 10:11])
        if util is not None:
            out[:, 1].sub_(util)
        return out

    def predict_log2(self, layer_feats, accel_probs) -> torch.Tensor:
        """``[N, 2]``: log2 energy (pJ) and log2 cycles."""
        x = torch.as_tensor(layer_feats, dtype=torch.float32)
        if x.dim() == 1:
            x = x.unsqueeze(0)
        if x.shape[-1] != NUM_FEATURES:
            raise ConfigError(f"layer features have {x.shape[-1]} columns", key="layer_feats",
                              expected=f"{NUM_FEATURES} (surrogate.layer_features)")
        a = self.accel_tensor(accel_probs, x.shape[0])
        n = x.shape[0]
        if n > 2 * _CHUNK and not torch.is_grad_enabled():
            # large inference batches: cache-sized chunks are ~2x faster than one big pass
            out = torch.cat([self._forward(x[i:i + _CHUNK], a if a.shape[0] == 1 else a[i:i + _CHUNK])
                             for i in range(0, n, _CHUNK)])
        else:
            out = self._forward(x, a)
        return out

    def predict(self, layer_feats, accel_probs) -> tuple[torch.Tensor, torch.Tensor]:
        """``(energy_pJ[N], cycles[N])``, differentiable in ``accel_probs``."""
        out = self.predict_log2(layer_feats, accel_probs)
        return torch.exp2(out[:, 0]), torch.exp2(out[:, 1])

    forward = predict

    # ------------------------------------------------------------------ exact tables
    def _contract(self, table: torch.Tensor, params: list[int], accel_probs) -> torch.Tensor:
        a = self.accel_tensor(accel_probs)
        if not params:
            return table.reshape(()).expand(a.shape[0]).clone()
        letters = string.ascii_lowercase
        ops, subs = [table], letters[:len(params)]
        for j, i in enumerate(params):
            ops.append(a[:, self.offsets[i]:self.offsets[i + 1]])
        expr = subs + "," + ",".join(f"z{letters[j]}" for j in range(len(params))) + "->z"
        return torch.einsum(expr, *ops)

    def area_mm2(self, accel_probs) -> torch.Tensor:
        """Expected area ``[1 or N]`` (mm^2) under independent per-parameter choices."""
        return self._contract(self.area_table, self.area_params, accel_probs)

    def cycle_seconds(self, accel_probs) -> torch.Tensor:
        """Expected clock period ``[1 or N]`` in seconds."""
        return self._contract(self.period_table, self.period_params, accel_probs)

    def latency_s(self, cycles: torch.Tensor, accel_probs) -> torch.Tensor:
        return cycles * self.cycle_seconds(accel_probs)

    # ------------------------------------------------------------------ I/O
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = {"format": FORMAT_VERSION, "config": self.config,
                "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()}}
        if self.heldout is not None:
            blob["heldout"] = {k: torch.as_tensor(v).detach().cpu() for k, v in self.heldout.items()}
        torch.save(blob, path)
        return path

    @classmethod
    def load(cls, path_or_template: str | Path) -> "Surrogate":
        """Load a fitted surrogate file, or the shipped one for a template name."""
        path = Path(path_or_template)
        if not path.is_file():
            cand = SURROGATE_DIR / f"{path_or_template}.pt"
            if not cand.is_file():
                shipped = sorted(p.stem for p in SURROGATE_DIR.glob("*.pt"))
                raise CheckpointError(f"no surrogate '{path_or_template}'", key="surrogate",
                                      expected="a .pt file or a shipped template: "
                                               + (", ".join(shipped) or "(none shipped)"))
            path = cand
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is a checkpoint error
            raise CheckpointError(f"unreadable surrogate ({type(exc).__name__})", file=str(path)) from None
        if not isinstance(blob, dict) or blob.get("format") != FORMAT_VERSION:
            raise CheckpointError("not an a3cs surrogate file", file=str(path),
                                  expected=f"format {FORMAT_VERSION}")
        try:
            model = cls(blob["config"])
            model.load_state_dict(blob["state_dict"])
        except (KeyError, RuntimeError, TypeError) as exc:
            raise CheckpointError(f"incompatible surrogate ({type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0][:80]})", file=str(path)) from None
        model.heldout = blob.get("heldout")
        model.path = str(path)
        model.eval()
        return model

    def point_probs(self, point: Mapping) -> dict:
        """One-hot probability dict for a concrete point ``{param: choice}``."""
        out = {}
        for name, choices in zip(self.param_names, self.param_choices):
            if name not in point:
                raise ConfigError(f"point misses parameter '{name}'", key=name,
                                  expected="a value for every parameter")
            v = torch.zeros(len(choices))
            try:
                v[choices.index(point[name])] = 1.0
            except ValueError:
                raise ConfigError(f"invalid choice {point[name]!r} for '{name}'", key=name,
                                  expected="one of " + ", ".join(map(str, choices))) from None
            out[name] = v
        return out
