"""DRL agents: the NNI search space of A3C-S (:class:`AgentSpace`) and fixed zoo agents (``agents.zoo``).

Architectures are plain ``{label: op}`` dicts (labels ``cell_00``..; ops in :data:`OP_NAMES`),
stored as JSON by :func:`export_arch` / :func:`load_arch`.  ``AgentSpace`` / ``AgentNet`` are
imported on first use, so ``import a3cs_plugin.agents.zoo`` does not load NNI.
"""
from .arch import cell_label, cell_labels, export_arch, load_arch, network_problems, random_arch, validate_arch
from .ops import OP_NAMES, make_op, parse_op

_LAZY = {"AgentSpace", "AgentNet", "default_schedule"}

__all__ = ["AgentSpace", "AgentNet", "OP_NAMES", "make_op", "parse_op", "default_schedule", "cell_label",
           "cell_labels", "export_arch", "load_arch", "random_arch", "validate_arch", "network_problems"]


def __getattr__(name):
    if name in _LAZY:
        from . import space
        return getattr(space, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
