"""Alias module (kept for one release): ``a3cs_plugin.teachers.ship`` is now ``a3cs_plugin.rl.ship``
(code out of the data folder).  The old name is the same module object."""
import sys

import a3cs_plugin.rl.ship as _module

sys.modules[__name__] = _module
if __name__ == "__main__":   # python -m a3cs_plugin.teachers.ship RUN_DIR --game GAME
    raise SystemExit(_module.main())
