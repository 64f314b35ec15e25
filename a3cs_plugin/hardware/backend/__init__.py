"""Optional external backends (the real Timeloop, when installed) and Timeloop's processed input."""
from a3cs_plugin.hardware.backend.timeloop import (TimeloopUnavailable, available, find_binary, parse_stats,
                                                   run_spec, run_timeloop)

__all__ = ["available", "parse_stats", "run_timeloop", "run_spec", "find_binary", "TimeloopUnavailable"]
