"""Optional external backends (the real Timeloop, when installed)."""
from a3cs_plugin.hardware.backend.timeloop import available, parse_stats, run_timeloop

__all__ = ["available", "parse_stats", "run_timeloop"]
