"""`a3cs` console script: a thin dispatcher over the sub-command modules.

Each sub-command module exposes ``register(subparsers)``; it adds its parser(s) and sets
``func`` (a callable taking the parsed namespace and returning an exit code).
"""
from __future__ import annotations

import argparse
import importlib
import sys

from a3cs_plugin import __version__
from a3cs_plugin.errors import A3CSError

# Modules that contribute sub-commands, in the order they appear in --help.
_COMMAND_MODULES = (
    "a3cs_plugin.cli.hw",
    "a3cs_plugin.cli.rl",
    "a3cs_plugin.cli.search",
    "a3cs_plugin.cli.sweep",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like argparse but without the usage dump
        sys.stderr.write(f"a3cs: error: {self.prog}: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="a3cs", description="A3C-S agent/accelerator co-search.")
    parser.add_argument("--version", action="version", version=f"a3cs {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except A3CSError as exc:
        sys.stderr.write(f"a3cs: error: {exc.message}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("a3cs: interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
