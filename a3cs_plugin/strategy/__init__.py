"""The A3C-S NNI one-shot strategy and the co-search driver.

* :class:`A3CS` / :class:`DirectNAS` — NNI one-shot strategies (``a3cs.strategies`` entry points);
* :class:`CostModel`, :class:`NetworkCost`, :class:`HardwarePenalty` — differentiable hardware cost
  (``a3cs.cost_models`` entry points; built-in ``surrogate``);
* :class:`RolloutModule`, :func:`step_loader` — the RL data pipeline inside Lightning;
* :func:`run_search` — config -> search -> ``arch.json`` / ``accelerator.yaml`` / report.
"""
import warnings

with warnings.catch_warnings():  # nni 3.0 warns about torch classes it does not know; harmless
    warnings.simplefilter("ignore", RuntimeWarning)
    import nni.nas.nn.pytorch  # noqa: F401
    # NNI 3.0 import-order bug: importing ``nni.nas.oneshot.pytorch.*`` before ``nni.nas.strategy``
    # leaves a circular import that turns DARTS & co. into ``ImportFailedStrategy`` for the whole
    # process.  Importing the strategy package first resolves the cycle the right way round.
    import nni.nas.strategy  # noqa: F401

from a3cs_plugin.strategy.a3cs import A3CS, A3CSModule, DirectNAS
from a3cs_plugin.cost.base import CostModel, HardwarePenalty, NetworkCost, metric_value
from a3cs_plugin.strategy.supernet import SinglePathMixedLayer

__all__ = ["A3CS", "A3CSModule", "DirectNAS", "CostModel", "HardwarePenalty", "NetworkCost",
           "SinglePathMixedLayer", "metric_value"]
