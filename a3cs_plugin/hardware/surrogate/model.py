"""Differentiable cost model: (layer features, accelerator choice probabilities) -> energy, cycles.

The accelerator enters as one probability vector per template parameter (one-hot for a concrete
design, a softmax / Gumbel-softmax relaxation during search). The network (an MLP) sees

* the standardised layer features (:data:`features.FEATURE_NAMES`);
* the concatenated probability vectors;
* per numeric parameter, the expected log2 of its value under the probabilities;
* the derived inputs of :mod:`.inputs` (divisor features of the PE meshes and, feature version 4,
  the compute/bandwidth bound, which also moves the cycles output to a residual over
  ``log2(MACs / U)``),

all of which are expectations under the probabilities (linear in each probability vector), so
gradients reach the accelerator logits and a soft mix of choices is a valid input. It predicts
log2(energy / MACs) and log2(cycles / MACs).
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
from .inputs import DerivedInputs

__all__ = ["Surrogate", "SURROGATE_DIR"]

SURROGATE_DIR = Path(__file__).resolve().parents[2] / "surrogates"
FORMAT_VERSION = 1
_CHUNK = 4096                       # rows per pass for large no-grad batches


class Surrogate(nn.Module):
    """Fitted cost model for one design-space template (see module doc).

    ``config``: ``template``, ``param_names``, ``param_choices``, ``mesh_params``,
    ``feature_version`` (2 or 4, :data:`.inputs.FEATURE_VERSIONS`), ``util`` (version 4), the MLP's
    ``hidden`` / ``depth`` / ``activation``, and the exact tables' ``area_params`` /
    ``period_params``.
    """

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
        # the derived inputs (tables rebuilt from the config; none of them is saved)
        self.inputs = DerivedInputs(self.param_choices, self.mesh_index, int(config.get("feature_version", 1)),
                                    util=config.get("util"), axis_features=bool(config.get("axis_features", True)))
        self.fv = self.inputs.fv
        self.util = self.inputs.util
        # z columns: expected log2 of numeric parameters, then the derived inputs
        n_in = NUM_FEATURES + total + len(numeric) + self.inputs.width
        self.n_in = n_in
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

    def baseline(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """``[N, 2]`` what the network's output is added to: log2 MACs for energy; log2 MACs
        (version 2) or the log2 bound cycles ``log2(MACs / U)`` (version 4) for cycles."""
        base = x[:, 10:11].expand(-1, 2)
        if not self.util:
            return base
        return base - torch.stack([torch.zeros(x.shape[0]), self.inputs.util_log2(x, a)], dim=1)

    def _extra(self, x: torch.Tensor, a: torch.Tensor):
        """Unnormalised accelerator-derived inputs: expected log2 parameter values ``[1|N, V]``,
        the derived inputs ``[N, ...]`` of :class:`.inputs.DerivedInputs` (None without mesh
        parameters) and the bound ``[N]`` (or None)."""
        return (a @ self.logval,) + self.inputs.derived(x, a)

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
