"""The cost-model plugin API: what an accelerator researcher implements or extends.

* :class:`CostModel` -- the contract of a cost-model plugin (``a3cs.cost_models`` entry points):
  the design space it searches (``accelerator_params``, ``design_space``), per-layer features and
  differentiable per-layer costs, area and clock;
* :class:`NetworkCost` -- the expected whole-agent cost over the cells' op probabilities;
* :class:`HardwarePenalty` -- NNI's ``ExpectationProfilerPenalty`` with a real gradient;
* :func:`metric_value`, :func:`one_hot_probs`.

The built-in plugin is the fitted surrogate (``a3cs_plugin.strategy.surrogate_cost``, entry point
``surrogate``).  The NNI algorithm that uses a cost model is in :mod:`a3cs_plugin.strategy`; the
run orchestration in :mod:`a3cs_plugin.cosearch`.
"""
from a3cs_plugin.cost.base import (CostModel, HardwarePenalty, NetworkCost, metric_value,  # noqa: F401
                                   one_hot_probs)

__all__ = ["CostModel", "HardwarePenalty", "NetworkCost", "metric_value", "one_hot_probs"]
