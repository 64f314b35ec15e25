"""Single-path Gumbel supernet layer: one candidate op runs per forward (fits 2 CPU cores).

:class:`SinglePathMixedLayer` replaces a ``LayerChoice`` like NNI's ``DifferentiableMixedLayer`` but
executes only one op, drawn by hard Gumbel-softmax over ``alpha`` at :meth:`resample` time (GDAS-style).
The output is scaled by the straight-through weight ``hard - soft.detach() + soft`` of the drawn op, so
the loss still has a gradient with respect to every entry of ``alpha``.  The path stays fixed between
resamples, so a rollout and its loss see the same policy.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from nni.nas.oneshot.pytorch.supermodule.differentiable import DifferentiableMixedLayer


class SinglePathMixedLayer(DifferentiableMixedLayer):
    """One-op-per-forward mixed layer with a straight-through Gumbel weight."""

    def __init__(self, paths, alpha, softmax, label):
        super().__init__(paths, alpha, softmax, label)
        self.tau = 1.0
        self._gumbel: torch.Tensor | None = None

    def resample(self, memo):
        """Draw Gumbel noise; the op is ``argmax(alpha + g)`` until the next resample."""
        if self.label in memo:  # shared label: reuse the same noise
            return {}
        u = torch.rand_like(self._arch_alpha.detach()).clamp_(1e-9, 1 - 1e-9)
        self._gumbel = -torch.log(-torch.log(u))
        idx = int(torch.argmax(self._arch_alpha.detach() + self._gumbel))
        return {self.label: self.names[idx]}

    def sampled_index(self) -> int:
        if self._gumbel is None:
            self.resample({})
        assert self._gumbel is not None
        return int(torch.argmax(self._arch_alpha.detach() + self._gumbel))

    def forward(self, *args, **kwargs):
        idx = self.sampled_index()
        soft = F.softmax((self._arch_alpha + self._gumbel) / self.tau, dim=-1)
        weight = 1.0 - soft[idx].detach() + soft[idx]     # value 1, gradient of soft[idx]
        return self[self.names[idx]](*args, **kwargs) * weight
