"""Parameterised accelerator design spaces (templates in ``arch_specs/templates``)."""
from .design import TEMPLATE_DIR, DesignSpace, Parameter, list_templates
from .template import Tagged

__all__ = ["DesignSpace", "Parameter", "Tagged", "TEMPLATE_DIR", "list_templates"]
