"""The map space of one (architecture, problem, constraints) triple, in numpy form.

A candidate mapping ("genome") is four arrays over a population of ``n`` mappings:

* ``F[n, 2L, D]`` -- loop bounds: slots ``0..L-1`` are the temporal loops of storage level ``l``
  (innermost first), slots ``L..2L-1`` the spatial loop (X*Y) below level ``l``;
* ``X[n, L, D]`` -- True if the spatial loop of ``d`` at level ``l`` runs along mesh X (else Y);
* ``perm[n, L, D]`` -- temporal loop order per level, innermost first;
* ``keep[n, L, S]`` -- keep (True) or bypass (False) per level and data space.

As in Timeloop, each (level, dimension) has one temporal and one spatial loop whose bounds are
divisors of the problem bound (perfect factorisation); the spatial loop goes entirely along X or Y.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import permutations as _itperms

import numpy as np

from ...errors import MappingError
from .constraints import LevelConstraints

__all__ = ["MapSpace", "Genome", "prime_factors"]


def prime_factors(n: int) -> list[int]:
    """Prime factors of ``n`` with multiplicity, ascending."""
    out, p = [], 2
    n = int(n)
    while p * p <= n:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    if n > 1:
        out.append(n)
    return out


def _smallest_prime_table(n: int) -> np.ndarray:
    spf = np.arange(n + 1, dtype=np.int64)
    for p in range(2, int(math.isqrt(n)) + 1):
        if spf[p] == p:
            sl = spf[p * p::p]
            np.minimum(sl, np.where(sl == np.arange(p * p, n + 1, p), p, sl), out=sl)
            spf[p * p::p] = sl
    return spf


def _ordered_factorizations(n: int, k: int) -> list[tuple]:
    """All ordered ``k``-tuples of positive integers whose product is ``n``."""
    if k == 0:
        return [()] if n == 1 else []
    if k == 1:
        return [(n,)]
    out = []
    for d in range(1, n + 1):
        if n % d == 0:
            for rest in _ordered_factorizations(n // d, k - 1):
                out.append((d,) + rest)
    return out


@dataclass
class Genome:
    """A population of mappings in map-space coordinates (see module doc)."""

    F: np.ndarray
    X: np.ndarray
    perm: np.ndarray
    keep: np.ndarray

    def __len__(self):
        return int(self.F.shape[0])

    def take(self, idx) -> "Genome":
        return Genome(self.F[idx], self.X[idx], self.perm[idx], self.keep[idx])

    def copy(self) -> "Genome":
        return Genome(self.F.copy(), self.X.copy(), self.perm.copy(), self.keep.copy())

    @staticmethod
    def concatenate(parts: "list[Genome]") -> "Genome":
        return Genome(*(np.concatenate([getattr(p, f) for p in parts])
                        for f in ("F", "X", "perm", "keep")))

    def rows(self) -> np.ndarray:
        """One int64 hash per mapping (for de-duplication; collisions are negligible)."""
        n = len(self)
        flat = np.concatenate([self.F.reshape(n, -1), self.X.reshape(n, -1),
                               self.perm.reshape(n, -1), self.keep.reshape(n, -1)],
                              axis=1).astype(np.int64)
        h = (flat @ _hash_weights(flat.shape[1])).view(np.uint64)     # wraps modulo 2**64
        h ^= h >> np.uint64(29)
        return h


_HASH_CACHE: dict = {}


def _hash_weights(m: int) -> np.ndarray:
    if m not in _HASH_CACHE:
        rng = np.random.default_rng(0x5EED)
        _HASH_CACHE[m] = rng.integers(1, 2**62, size=m, dtype=np.int64) | 1
    return _HASH_CACHE[m]


@dataclass
class MapSpace:
    """Map space of a spec.  Build with :func:`a3cs_plugin.hardware.mapper.build_mapspace`."""

    name: str
    dims: list
    bounds: np.ndarray            # int [D]
    levels: list                  # storage level names, innermost first
    spaces: list                  # data-space names
    fanx: np.ndarray              # int [L]: mesh-X fan-out below level l
    fany: np.ndarray              # int [L]
    cons: list                    # LevelConstraints per level
    min_parallelism: float = 0.0

    # ------------------------------------------------------------------ construction
    def __post_init__(self):
        self.bounds = np.asarray(self.bounds, dtype=np.int64)
        self.fanx = np.asarray(self.fanx, dtype=np.int64)
        self.fany = np.asarray(self.fany, dtype=np.int64)
        self.L, self.D, self.S = len(self.levels), len(self.dims), len(self.spaces)
        L, D = self.L, self.D
        fixed = np.zeros((2 * L, D), np.int64)
        fmax = np.zeros((2 * L, D), np.int64)
        fmin = np.zeros((2 * L, D), np.int64)
        src = {}
        for lvl, lc in enumerate(self.cons):
            fixed[lvl], fmax[lvl], fmin[lvl] = lc.t_fixed, lc.t_max, lc.t_min
            fixed[L + lvl], fmax[L + lvl], fmin[L + lvl] = lc.s_fixed, lc.s_max, lc.s_min
            for key, where in lc.sources.items():
                if key[0] in ("t", "s"):
                    src[(lvl + (L if key[0] == "s" else 0), key[2])] = where
        self._src = src
        # no spatial loop where there is no fan-out
        nofan = (self.fanx * self.fany) <= 1
        for lvl in np.nonzero(nofan)[0]:
            for d in range(D):
                if fixed[L + lvl, d] > 1 or fmin[L + lvl, d] > 1:
                    v = max(fixed[L + lvl, d], fmin[L + lvl, d])
                    self._src = src
                    self._fail(f"spatial factor {self.dims[d]}={v} at level {self.levels[lvl]}, "
                               f"which has no spatial fan-out", self._where(L + lvl, d), "factor 1")
            fixed[L + lvl] = 1
        self.fixed, self.fmax, self.fmin = fixed, fmax, fmin
        self.free = fixed == 0
        # orientation: 0 free, 1 X, 2 Y
        orient = np.zeros((L, D), np.int64)
        for lvl, lc in enumerate(self.cons):
            if lc.s_orient is not None:
                orient[lvl] = lc.s_orient
            if self.fany[lvl] <= 1 < self.fanx[lvl]:
                orient[lvl][orient[lvl] == 0] = 1
            elif self.fanx[lvl] <= 1 < self.fany[lvl]:
                orient[lvl][orient[lvl] == 0] = 2
            elif self.fanx[lvl] <= 1 and self.fany[lvl] <= 1:
                orient[lvl][orient[lvl] == 0] = 1
        self.orient = orient
        # order of the spatial loops (innermost first): a spatial permutation constraint's prefix,
        # the other dimensions in dimension order, its suffix -- the order Timeloop's map space
        # allows (it matters for link transfers).  Without a split, X must be a prefix of it.
        self.s_order = np.array([list(lc.s_prefix) + [d for d in range(D) if d not in lc.s_prefix + lc.s_suffix]
                                 + list(lc.s_suffix) for lc in self.cons], np.int64).reshape(L, D)
        self.s_free_split = [bool((lc.s_prefix or lc.s_suffix) and lc.split is None
                                  and self.fanx[l] > 1 and self.fany[l] > 1) for l, lc in enumerate(self.cons)]
        # permutations
        self.t_prefix = [list(lc.t_prefix) for lc in self.cons]
        self.t_suffix = [list(lc.t_suffix) for lc in self.cons]
        self.perm_free = [[d for d in range(D) if d not in self.t_prefix[l] + self.t_suffix[l]]
                          for l in range(L)]
        keep = np.stack([lc.keep for lc in self.cons]) if L else np.zeros((0, self.S), np.int64)
        keep = keep.copy()
        if L:
            keep[L - 1][keep[L - 1] == -1] = 1   # Timeloop: everything lives in the outermost level
        self.keep_fixed = keep
        self._check_feasible()
        # prime multiset of what the free slots must share, per dimension
        self.primes = []
        for d in range(D):
            for p in sorted(prime_factors(self.rem[d]), reverse=True):
                self.primes.append((d, p))
        self.primes.sort(key=lambda t: -t[1])
        self.spf = _smallest_prime_table(int(max(2, self.bounds.max())))
        # mutation helpers
        self._free_slots = [np.nonzero(self.free[:, d])[0] for d in range(D)]
        nfree = self.free.sum(0)
        self.movable_dims = np.array([d for d in range(D) if nfree[d] >= 2 and self.rem[d] > 1],
                                     dtype=np.int64)
        self.perm_lo = np.array([len(self.t_prefix[l]) for l in range(L)], np.int64)
        self.perm_hi = np.array([D - len(self.t_suffix[l]) for l in range(L)], np.int64)
        self.perm_levels = np.array([l for l in range(L) if self.perm_hi[l] - self.perm_lo[l] >= 2],
                                    np.int64)
        self.free_keep = np.argwhere(self.keep_fixed == -1)
        both = (self.fanx > 1) & (self.fany > 1)
        self.free_orient = np.argwhere((self.orient == 0) & both[:, None]
                                       & (self.free[L:] | (self.fixed[L:] > 1)))

    def _fail(self, message: str, key: str = "constraints", expected: str | None = None):
        raise MappingError(f"no valid mapping: {message}", file=self.name, key=key, expected=expected)

    def _where(self, slot: int, d: int) -> str:
        if (slot, d) in self._src:
            return self._src[(slot, d)]
        kind = "spatial" if slot >= self.L else "temporal"
        return f"target {self.levels[slot % self.L]} type {kind}"

    def _check_feasible(self):
        L, D = self.L, self.D
        rem = np.ones(D, np.int64)
        for d in range(D):
            prod = int(np.prod(np.maximum(self.fixed[:, d], 1)))
            b = int(self.bounds[d])
            fixed_slots = [s for s in range(2 * L) if self.fixed[s, d] > 1]
            names = ", ".join(f"{self.levels[s % L]}{'(spatial)' if s >= L else ''}"
                              f"={self.fixed[s, d]}" for s in fixed_slots) or "none"
            key = self._where(fixed_slots[0], d) if fixed_slots else "constraints"
            if b % prod != 0:
                self._fail(f"fixed factors of {self.dims[d]} ({names}) multiply to {prod}, which "
                           f"does not divide the problem bound {b}", key,
                           f"factors of {self.dims[d]} dividing {b}")
            rem[d] = b // prod
            if rem[d] > 1 and not self.free[:, d].any():
                self._fail(f"every loop of {self.dims[d]} is fixed ({names}) and they multiply to "
                           f"{prod}, not the problem bound {b}", key,
                           f"factors of {self.dims[d]} multiplying to {b}")
            # max factors must leave room for the remainder
            cap = 1
            for s in range(2 * L):
                if self.free[s, d]:
                    cap *= int(self.fmax[s, d]) if self.fmax[s, d] > 0 else b
            if cap < rem[d]:
                self._fail(f"max factors of {self.dims[d]} allow at most {cap} but {rem[d]} must "
                           f"still be mapped", "constraints", f"looser '{self.dims[d]}<=' bounds")
        self.rem = rem
        # fixed spatial factors against the mesh
        for lvl in range(L):
            for axis, cap, code in (("X", self.fanx[lvl], 1), ("Y", self.fany[lvl], 2)):
                ds = [d for d in range(D) if self.orient[lvl, d] == code and self.fixed[L + lvl, d] > 1]
                used = int(np.prod([self.fixed[L + lvl, d] for d in ds])) if ds else 1
                if used > cap:
                    facs = ", ".join(f"{self.dims[d]}={self.fixed[L + lvl, d]}" for d in ds)
                    self._fail(f"fixed spatial factors {facs} at level {self.levels[lvl]} need mesh "
                               f"{axis} >= {used} but it is {cap}", self._where(L + lvl, ds[0]),
                               f"product <= {cap}")
            fx = [d for d in range(D) if self.fixed[L + lvl, d] > 1]
            total = int(np.prod([self.fixed[L + lvl, d] for d in fx])) if fx else 1
            big = [d for d in fx if self.fixed[L + lvl, d] > max(self.fanx[lvl], self.fany[lvl])]
            if big or total > self.fanx[lvl] * self.fany[lvl]:
                d0 = (big or fx)[0]
                self._fail(f"fixed spatial factors at level {self.levels[lvl]} "
                           f"({', '.join(f'{self.dims[d]}={self.fixed[L + lvl, d]}' for d in fx)}) "
                           f"do not fit its {self.fanx[lvl]}x{self.fany[lvl]} mesh",
                           self._where(L + lvl, d0), "factors fitting mesh X or mesh Y")
        if self.min_parallelism > 1.0:
            self._fail(f"utilization min {self.min_parallelism} > 1", "constraints", "a value in [0, 1]")

    # ------------------------------------------------------------------ helpers
    def size(self) -> float:
        """Number of points of the (unpruned) map space, as a float."""
        total = 1.0
        for d in range(self.D):
            k = int(self.free[:, d].sum())
            for p in set(prime_factors(self.rem[d])):
                e = prime_factors(self.rem[d]).count(p)
                total *= math.comb(e + k - 1, k - 1)
        total *= 2.0 ** len(self.free_orient)
        for l in range(self.L):
            total *= math.factorial(len(self.perm_free[l]))
        total *= 2.0 ** len(self.free_keep)
        return total

    def to_batch(self, g: Genome):
        from ..model.batch import MappingBatch
        L = self.L
        sp = g.F[:, L:, :]
        return MappingBatch(temporal=g.F[:, :L, :], spatial_x=np.where(g.X, sp, 1),
                            spatial_y=np.where(g.X, 1, sp), perm=g.perm, keep=g.keep,
                            spatial_order=np.broadcast_to(self.s_order, (len(g),) + self.s_order.shape))

    def from_batch(self, batch) -> Genome:
        """Map-space coordinates of a :class:`MappingBatch` (inverse of :meth:`to_batch`).

        Loop orders are rewritten into the constrained form (fixed prefix / suffix, free middle in
        the given order) when that keeps the order of the loops that iterate (bound > 1), so a
        mapping that satisfies a permutation constraint only up to unit loops -- as Timeloop
        prints its mappings -- lies in the map space; otherwise it is left as given."""
        sx, sy = np.asarray(batch.spatial_x), np.asarray(batch.spatial_y)
        t = np.asarray(batch.temporal, np.int64)
        F = np.concatenate([t, sx * sy], axis=1)
        X = (sy <= 1) & ~((sx <= 1) & (self.orient[None] == 2))
        perm = np.array(batch.perm, np.int64, copy=True)
        for i in range(perm.shape[0]):
            for l in range(self.L):
                perm[i, l] = self._canonical_perm(l, perm[i, l], t[i, l])
        return Genome(F.astype(np.int64), X, perm, np.asarray(batch.keep, bool))

    def _canonical_perm(self, l: int, order, bounds) -> np.ndarray:
        pre, suf = self.t_prefix[l], self.t_suffix[l]
        if not pre and not suf:
            return np.asarray(order)
        order = [int(d) for d in order]
        fixed = set(pre) | set(suf)
        mid = [d for d in order if d not in fixed]
        new = pre + mid + suf
        if [d for d in new if bounds[d] > 1] == [d for d in order if bounds[d] > 1]:
            return np.asarray(new)
        return np.asarray(order)

    def utilization(self, g: Genome) -> np.ndarray:
        L = self.L
        sp = g.F[:, L:, :]
        ux = np.where(g.X, sp, 1).prod(2)
        uy = np.where(g.X, 1, sp).prod(2)
        return (ux * uy / np.maximum(self.fanx * self.fany, 1)[None]).prod(1)

    def feasible(self, g: Genome, *, batch=None) -> np.ndarray:
        """Bool [n]: the mapping lies in the map space (factors, constraints, mesh fan-out).

        Buffer capacity is not checked here; the model's ``valid`` flag covers it.
        """
        L = self.L
        F = g.F
        ok = (F.prod(1) == self.bounds[None]).all(1)
        ok &= (F >= 1).all((1, 2))
        ok &= ((self.fixed[None] == 0) | (F == self.fixed[None])).all((1, 2))
        ok &= ((self.fmax[None] == 0) | (F <= self.fmax[None])).all((1, 2))
        ok &= ((self.fmin[None] == 0) | (F >= self.fmin[None])).all((1, 2))
        if batch is not None:
            sx, sy = np.asarray(batch.spatial_x), np.asarray(batch.spatial_y)
            ok &= ~((sx > 1) & (sy > 1)).any((1, 2))
        sp = F[:, L:, :]
        X = g.X
        ok &= ~((self.orient[None] == 1) & ~X & (sp > 1)).any((1, 2))
        ok &= ~((self.orient[None] == 2) & X & (sp > 1)).any((1, 2))
        ux = np.where(X, sp, 1).prod(2)
        uy = np.where(X, 1, sp).prod(2)
        ok &= (ux <= self.fanx[None]).all(1) & (uy <= self.fany[None]).all(1)
        if self.min_parallelism > 0:
            ok &= self.utilization(g) >= self.min_parallelism - 1e-12
        # a spatial permutation without split: the X loops must come first in some allowed order
        for l in range(L):
            if not self.s_free_split[l]:
                continue
            lc = self.cons[l]
            pre, suf = list(lc.s_prefix), list(lc.s_suffix)
            mid = [d for d in range(self.D) if d not in pre + suf]
            xnt = X[:, l, :] & (sp[:, l, :] > 1)
            ynt = ~X[:, l, :] & (sp[:, l, :] > 1)
            # best case for the free middle: its X loops first, its Y loops last
            pos_pre = {d: i for i, d in enumerate(pre)}
            pos_suf = {d: len(pre) + len(mid) + i for i, d in enumerate(suf)}
            last_x = np.full(len(F), -1)
            first_y = np.full(len(F), self.D + 1)
            for d in range(self.D):
                if d in pos_pre or d in pos_suf:
                    p = pos_pre.get(d, pos_suf.get(d))
                    last_x = np.where(xnt[:, d], np.maximum(last_x, p), last_x)
                    first_y = np.where(ynt[:, d], np.minimum(first_y, p), first_y)
                else:
                    last_x = np.where(xnt[:, d], np.maximum(last_x, len(pre)), last_x)
                    first_y = np.where(ynt[:, d], np.minimum(first_y, len(pre) + len(mid) - 1), first_y)
            ok &= last_x < first_y
        # permutations: a valid permutation of all dims honouring prefix / suffix
        ok &= (np.sort(g.perm, axis=2) == np.arange(self.D)[None, None]).all((1, 2))
        for l in range(L):
            for i, d in enumerate(self.t_prefix[l]):
                ok &= g.perm[:, l, i] == d
            for j, d in enumerate(self.t_suffix[l]):
                ok &= g.perm[:, l, self.D - len(self.t_suffix[l]) + j] == d
        kf = self.keep_fixed[None]
        ok &= ((kf == -1) | (g.keep == (kf == 1))).all((1, 2))
        return ok

    # ------------------------------------------------------------------ sampling
    def _sample_perm(self, rng, n):
        L, D = self.L, self.D
        keys = rng.random((n, L, D))
        for l in range(L):
            for i, d in enumerate(self.t_prefix[l]):
                keys[:, l, d] = -10.0 + i * 1e-3
            for j, d in enumerate(self.t_suffix[l]):
                keys[:, l, d] = 10.0 + j * 1e-3
        return np.argsort(keys, axis=2, kind="stable").astype(np.int64)

    def _sample_keep(self, rng, n):
        q = rng.uniform(0.15, 0.95, size=(n, 1, 1))
        keep = rng.random((n, self.L, self.S)) < q
        kf = self.keep_fixed[None]
        return np.where(kf == -1, keep, kf == 1)

    def _sample_orient(self, rng, n):
        X = rng.random((n, self.L, self.D)) < 0.5
        X = np.where(self.orient[None] == 1, True, X)
        return np.where(self.orient[None] == 2, False, X)

    def sample(self, rng: np.random.Generator, n: int) -> tuple[Genome, np.ndarray]:
        """``n`` random mappings; returns (genome, ok) where ok flags the map-space-feasible ones.

        Prime factors (largest first) go to a random free slot of their dimension that keeps the
        mesh fan-out and ``<=`` bounds satisfied; each sample draws its own slot preferences, so
        the batch spreads between spatial-heavy, inner-heavy and outer-heavy tilings.
        """
        L, D = self.L, self.D
        base = np.where(self.fixed > 0, self.fixed, 1)
        Fd = np.broadcast_to(base.T[:, None, :], (D, n, 2 * L)).copy()     # [D, n, 2L]
        X = self._sample_orient(rng, n)
        sp = Fd[:, :, L:].transpose(1, 2, 0)
        ux = np.where(X, sp, 1).prod(2)
        uy = np.where(X, 1, sp).prod(2)
        sigma = rng.uniform(0.3, 3.0, size=(n, 1))
        style = rng.normal(size=(n, 2 * L)) * sigma
        style[:, L:] += rng.uniform(0.0, 3.0, size=(n, 1))     # some samples favour parallelism
        # exponential races == Gumbel-max sampling with slot weights exp(style)
        weight = np.exp(style).astype(np.float32)
        ok = np.ones(n, bool)
        ar = np.arange(n)
        XT = np.ascontiguousarray(X.transpose(2, 0, 1))                      # [D, n, L]
        for d, p in self.primes:
            sl = self._free_slots[d]                                         # free slots of d
            k = sl.size
            score = weight[:, sl] / (rng.standard_exponential(size=(n, k), dtype=np.float32)
                                     + np.float32(1e-30))
            cand = np.ones((n, k), bool)
            mx = self.fmax[sl, d]
            if (mx > 0).any():
                cand &= (mx[None] == 0) | (Fd[d][:, sl] * p <= mx[None])
            spm = sl >= L
            if spm.any():
                lv = sl[spm] - L
                xd = XT[d][:, lv]
                cand[:, spm] &= np.where(xd, ux[:, lv] * p <= self.fanx[lv][None],
                                         uy[:, lv] * p <= self.fany[lv][None])
            score[~cand] = -1.0
            c = score.argmax(1)
            ok &= cand[ar, c]
            slot = sl[c]
            Fd[d][ar, slot] *= p
            if spm.any():
                hs = slot >= L
                rows, lvl = ar[hs], slot[hs] - L
                isx = XT[d][rows, lvl]
                ux[rows[isx], lvl[isx]] *= p
                uy[rows[~isx], lvl[~isx]] *= p
        F = np.ascontiguousarray(Fd.transpose(1, 2, 0))
        g = Genome(F, X, self._sample_perm(rng, n), self._sample_keep(rng, n))
        ok &= ((self.fmin[None] == 0) | (F >= self.fmin[None])).all((1, 2))
        if self.min_parallelism > 0:
            ok &= self.utilization(g) >= self.min_parallelism - 1e-12
        return g, ok

    # ------------------------------------------------------------------ mutation
    def mutate(self, rng: np.random.Generator, parents: Genome) -> Genome:
        """One to three random local moves per mapping (factor move between loops, loop swap,
        keep/bypass flip, X/Y flip).  Returns new arrays; feasibility is checked by the caller."""
        g = parents.copy()
        n = len(g)
        n_ops = 1 + (rng.random(n) < 0.45) + (rng.random(n) < 0.2)
        for k in range(3):
            active = np.nonzero(n_ops > k)[0]
            if active.size == 0:
                break
            weights = np.array([0.55 if self.movable_dims.size else 0.0,
                                0.25 if self.perm_levels.size else 0.0,
                                0.12 if len(self.free_keep) else 0.0,
                                0.08 if len(self.free_orient) else 0.0])
            if weights.sum() == 0:
                break
            op = rng.choice(4, size=active.size, p=weights / weights.sum())
            self._move_factor(rng, g, active[op == 0])
            self._swap_loops(rng, g, active[op == 1])
            self._flip_keep(rng, g, active[op == 2])
            self._flip_orient(rng, g, active[op == 3])
        return g

    def _move_factor(self, rng, g: Genome, idx):
        if idx.size == 0:
            return
        m = idx.size
        L2 = 2 * self.L
        d = self.movable_dims[rng.integers(0, self.movable_dims.size, size=m)]
        Fd = g.F[idx, :, d]                                     # [m, 2L]
        freemask = self.free[:, d].T                            # [m, 2L]
        r = rng.random((m, L2))
        src = np.where(freemask & (Fd > 1), r, -1.0).argmax(1)
        has = (freemask & (Fd > 1))[np.arange(m), src]
        r2 = rng.random((m, L2))
        r2[np.arange(m), src] = -1.0
        dst = np.where(freemask, r2, -1.0).argmax(1)
        has &= freemask[np.arange(m), dst] & (dst != src)
        v = Fd[np.arange(m), src]
        p = self.spf[np.minimum(v, self.spf.size - 1)]
        whole = rng.random(m) < 0.25
        p = np.where(whole, v, p)
        rows, dd, s, t, pp = idx[has], d[has], src[has], dst[has], p[has]
        g.F[rows, s, dd] //= pp
        g.F[rows, t, dd] *= pp

    def _swap_loops(self, rng, g: Genome, idx):
        if idx.size == 0:
            return
        m = idx.size
        lv = self.perm_levels[rng.integers(0, self.perm_levels.size, size=m)]
        lo, hi = self.perm_lo[lv], self.perm_hi[lv]
        pos = np.arange(self.D)[None]
        inrange = (pos >= lo[:, None]) & (pos < hi[:, None])
        dims_here = g.perm[idx, lv, :]                           # [m, D]
        nonunit = g.F[idx[:, None], lv[:, None], dims_here] > 1
        r = rng.random((m, self.D))
        # prefer swapping loops that actually iterate; fall back to any position in range
        pick = np.where(inrange & nonunit, r + 1.0, np.where(inrange, r, -1.0))
        order = np.argsort(-pick, axis=1)
        i, j = order[:, 0], order[:, 1]
        ok = pick[np.arange(m), j] >= 0
        rows, l2, i, j = idx[ok], lv[ok], i[ok], j[ok]
        a = g.perm[rows, l2, i].copy()
        g.perm[rows, l2, i] = g.perm[rows, l2, j]
        g.perm[rows, l2, j] = a

    def _flip_keep(self, rng, g: Genome, idx):
        if idx.size == 0:
            return
        e = self.free_keep[rng.integers(0, len(self.free_keep), size=idx.size)]
        g.keep[idx, e[:, 0], e[:, 1]] ^= True

    def _flip_orient(self, rng, g: Genome, idx):
        if idx.size == 0:
            return
        e = self.free_orient[rng.integers(0, len(self.free_orient), size=idx.size)]
        g.X[idx, e[:, 0], e[:, 1]] ^= True

    def neighbors(self, g: Genome, i: int = 0) -> Genome:
        """Every single-move neighbour of mapping ``i`` of ``g``: one prime (or the whole loop
        bound) of one dimension moved between two free loops, two loops of one level swapped (at
        least one of them iterating), one free keep/bypass or X/Y choice flipped.  Mappings that
        leave the map space are included; filter with :meth:`feasible`."""
        L2, D = 2 * self.L, self.D
        F0, perm0 = g.F[i], g.perm[i]
        fmoves, swaps = [], []
        for d in range(D):
            slots = np.nonzero(self.free[:, d])[0]
            if slots.size < 2:
                continue
            for a in slots:
                v = int(F0[a, d])
                if v <= 1:
                    continue
                amounts = sorted(set(prime_factors(v)) | {v})
                for b in slots:
                    if b != a:
                        fmoves.extend((d, a, b, q) for q in amounts)
        for l in self.perm_levels:
            lo, hi = int(self.perm_lo[l]), int(self.perm_hi[l])
            for x in range(lo, hi):
                for y in range(x + 1, hi):
                    if F0[l, perm0[l, x]] > 1 or F0[l, perm0[l, y]] > 1:
                        swaps.append((l, x, y))
        n = len(fmoves) + len(swaps) + len(self.free_keep) + len(self.free_orient)
        out = g.take(np.full(n, i))
        k = 0
        if fmoves:
            fm = np.array(fmoves, np.int64)
            r = np.arange(k, k + len(fm))
            out.F[r, fm[:, 1], fm[:, 0]] //= fm[:, 3]
            out.F[r, fm[:, 2], fm[:, 0]] *= fm[:, 3]
            k += len(fm)
        if swaps:
            sw = np.array(swaps, np.int64)
            r = np.arange(k, k + len(sw))
            a = out.perm[r, sw[:, 0], sw[:, 1]].copy()
            out.perm[r, sw[:, 0], sw[:, 1]] = out.perm[r, sw[:, 0], sw[:, 2]]
            out.perm[r, sw[:, 0], sw[:, 2]] = a
            k += len(sw)
        if len(self.free_keep):
            r = np.arange(k, k + len(self.free_keep))
            out.keep[r, self.free_keep[:, 0], self.free_keep[:, 1]] ^= True
            k += len(self.free_keep)
        if len(self.free_orient):
            r = np.arange(k, k + len(self.free_orient))
            out.X[r, self.free_orient[:, 0], self.free_orient[:, 1]] ^= True
        return out

    # ------------------------------------------------------------------ enumeration
    def enumerate_all(self, chunk: int = 8192):
        """Yield every point of the map space (as Genome chunks) -- only for small spaces."""
        L, D, S = self.L, self.D, self.S
        per_dim = []
        for d in range(D):
            slots = np.nonzero(self.free[:, d])[0]
            base = np.where(self.fixed[:, d] > 0, self.fixed[:, d], 1)
            opts = []
            for t in _ordered_factorizations(int(self.rem[d]), len(slots)):
                col = base.copy()
                col[slots] = t
                opts.append(col)
            per_dim.append(np.array(opts, np.int64).reshape(-1, 2 * L))
        perms = []
        for l in range(L):
            ps = [self.t_prefix[l] + list(p) + self.t_suffix[l] for p in _itperms(self.perm_free[l])]
            perms.append(np.array(ps, np.int64).reshape(-1, D))
        radices = [len(o) for o in per_dim] + [2] * len(self.free_orient) + \
                  [len(p) for p in perms] + [2] * len(self.free_keep)
        total = int(np.prod(radices, dtype=object)) if radices else 1
        base_X = self.orient != 2
        for start in range(0, total, chunk):
            ids = np.arange(start, min(total, start + chunk), dtype=np.int64)
            n = ids.size
            digits = []
            rest = ids.copy()
            for r in radices:
                digits.append(rest % r)
                rest //= r
            k = 0
            F = np.empty((n, 2 * L, D), np.int64)
            for d in range(D):
                F[:, :, d] = per_dim[d][digits[k]]
                k += 1
            X = np.broadcast_to(base_X, (n, L, D)).copy()
            for (l, d) in self.free_orient:
                X[:, l, d] = digits[k] == 1
                k += 1
            perm = np.empty((n, L, D), np.int64)
            for l in range(L):
                perm[:, l, :] = perms[l][digits[k]]
                k += 1
            keep = np.broadcast_to(self.keep_fixed == 1, (n, L, S)).copy()
            for (l, s) in self.free_keep:
                keep[:, l, s] = digits[k] == 1
                k += 1
            yield Genome(F, X, perm, keep)
