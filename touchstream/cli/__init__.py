"""The ``touchstream`` command line.

Each sub-command lives in its own module under ``touchstream.cli`` and exposes
``register(subparsers)``; the module's parser sets ``func(args, settings) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from touchstream.config import Settings

# Order is the order shown in --help.
COMMANDS = ("stack", "publish", "query", "customer", "complaints", "kpis", "export", "rebuild", "retention", "erase",
            "keys", "demo", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="touchstream",
        description="Event-sourced backbone for customer interactions.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"touchstream.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings.from_env()
    try:
        return int(args.func(args, settings) or 0)
    except KeyboardInterrupt:
        return 130
    except CliError as exc:
        print(f"touchstream {args.command}: {exc}", file=sys.stderr)
        return 2


class CliError(Exception):
    """A user-facing failure: printed without a traceback, exit code 2."""


def echo(*args, **kwargs) -> None:
    """print() that survives a closed pipe (``touchstream up | head -1``): the reader
    leaving must not abort half-way a command that starts or stops processes."""
    try:
        print(*args, **kwargs)
    except BrokenPipeError:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
