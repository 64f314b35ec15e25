"""One error type for every user-facing failure.

Anything a user can get wrong (a file, a key, a value, a CLI argument) raises :class:`A3CSError`
with a single-line message that names *where* (file and key) and *what was expected*.  The CLI
prints that line and exits non-zero; it never shows a traceback for these.
"""
from __future__ import annotations

from typing import Any


class A3CSError(Exception):
    """A user-facing error with a one-line message."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None,
                 expected: str | None = None, got: Any = None):
        parts = []
        if file:
            parts.append(str(file))
        if key:
            parts.append(f"key '{key}'")
        where = ": ".join(parts)
        text = message
        if expected is not None:
            text += f"; expected {expected}"
        if got is not None:
            g = repr(got)
            if len(g) > 80:
                g = g[:77] + "..."
            text += f", got {g}"
        self.file, self.key, self.expected, self.got = file, key, expected, got
        self.message = (f"{where}: {text}" if where else text).replace("\n", " ")
        super().__init__(self.message)


class SpecError(A3CSError):
    """Malformed or inconsistent Timeloop/Accelergy specification."""


class MappingError(SpecError):
    """A mapping that is impossible for the problem or architecture."""


class ConfigError(A3CSError):
    """Bad run configuration or CLI argument."""


class CheckpointError(A3CSError):
    """Missing, corrupt or incompatible checkpoint."""
