"""Parameterised accelerator design spaces (templates in ``arch_specs/templates``)."""
from .design import TEMPLATE_DIR, DesignSpace, Parameter, list_templates
from ..spec.yamlio import TaggedNode

__all__ = ["DesignSpace", "Parameter", "TaggedNode", "TEMPLATE_DIR", "list_templates"]
