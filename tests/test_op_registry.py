"""The op registry of agents/ops.py: a new candidate op touches only its registration, and the
surrogates' layer mix stays pinned to the built-in ops."""
from __future__ import annotations

import pytest
import torch

from a3cs_plugin.agents.ops import MBConv, OP_NAMES, op_names, op_spec, parse_op, register_op, unregister_op
from a3cs_plugin.agents.space import AgentSpace
from a3cs_plugin.errors import ConfigError


@pytest.fixture
def k7_op():
    register_op("k7_e2", lambda c_in, c_out, stride: MBConv(c_in, c_out, kernel=7, expansion=2, stride=stride),
                kernel=7, expansion=2, groups=1)
    yield "k7_e2"
    unregister_op("k7_e2")


def test_a_new_op_is_searched_and_costed_with_only_its_registration(k7_op):
    space = AgentSpace(6, num_cells=3)
    assert space.op_names[-1] == k7_op and len(space.op_names) == len(OP_NAMES) + 1
    # the NNI LayerChoice of every cell offers it
    for label, mutable in space.simplify().items():
        assert k7_op in list(mutable.values), label
    # its Timeloop problems come from the module itself: expand 1x1, depthwise 7x7, project 1x1
    probs = space.op_problems("cell_00", k7_op)
    assert len(probs) == 3 and {p.problem["problem"]["instance"]["R"] for p in probs} == {1, 7}
    # a frozen agent with it runs
    arch = {label: k7_op for label in space.cell_labels}
    logits, value = space.freeze(arch)(torch.zeros(2, 4, 84, 84, dtype=torch.uint8))
    assert logits.shape == (2, 6) and value.shape[0] == 2
    # and the surrogate cost model costs it (features from the problems alone)
    from a3cs_plugin.cost.base import NetworkCost
    from a3cs_plugin.strategy import registry
    cm = registry.cost_model("surrogate", "eyeriss_like")
    nc = NetworkCost(cm, {"cell_00": {k7_op: probs, "skip": []}}, [])
    e, c = nc.derived({"cell_00": k7_op}, {n: torch.full((len(v),), 1.0 / len(v))
                                           for n, v in cm.accelerator_params().items()})
    assert float(e) > 0 and float(c) > 0


def test_registry_errors_and_built_ins():
    assert op_names()[:len(OP_NAMES)] == OP_NAMES
    assert parse_op("k3_e1_g2") == (3, 1, 2) and parse_op("skip") == (0, 0, 0)
    with pytest.raises(ConfigError, match="already registered"):
        register_op("k3_e1", lambda *a: None)
    with pytest.raises(ConfigError, match="built in"):
        unregister_op("skip")
    with pytest.raises(ConfigError, match="unknown op"):
        op_spec("k9_e9")


def test_surrogate_layer_mix_is_pinned_to_the_built_in_ops():
    """The shipped surrogates were fitted on MBConv layers of the built-in ops' shapes: a change of
    the built-in ops must come with a refit (and a change of this pin)."""
    from a3cs_plugin.hardware.surrogate import layers
    built_in = sorted(parse_op(n) for n in OP_NAMES if n != "skip")
    assert sorted(layers._OPS) == built_in
