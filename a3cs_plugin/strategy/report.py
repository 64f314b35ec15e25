"""Alias module (kept for one release): ``a3cs_plugin.strategy.report`` is now ``a3cs_plugin.cosearch.report``.

The old name is the same module object, so imports, attributes and monkeypatching keep working.
"""
import sys

import a3cs_plugin.cosearch.report as _module

sys.modules[__name__] = _module
