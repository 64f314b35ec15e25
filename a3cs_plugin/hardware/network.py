"""Alias module (kept for one release): ``a3cs_plugin.hardware.network`` is now ``a3cs_plugin.hardware.dnn_cost``.

The old name is the same module object, so imports, attributes and monkeypatching keep working.
"""
import sys

import a3cs_plugin.hardware.dnn_cost as _module

sys.modules[__name__] = _module
