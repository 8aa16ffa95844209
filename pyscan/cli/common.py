"""What every command of the CLI shares: the exit codes and the one way to fail.

The exit codes come from the one table in ``pyscan.errors`` (docs/cli.md prints it); the
driver names in help texts come from the driver registry.
"""

from __future__ import annotations

from typing import Any, NoReturn

import typer

from pyscan import drivers
from pyscan.errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NO_PERMISSION,
    EXIT_TERMINATED,
    Error,
    exit_code,
)

__all__ = [
    "DRIVER_HELP",
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_NO_PERMISSION",
    "EXIT_TERMINATED",
    "OPTIONS_HELP",
    "fail",
    "fail_with",
    "parse_count",
    "plain_help_type",
]

DRIVER_HELP = drivers.names_help()
OPTIONS_HELP = drivers.options_help()


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """One `pyscan: error:` line on stderr, then exit with ``code``."""
    typer.echo(f"pyscan: error: {message}", err=True)
    raise typer.Exit(code)


def fail_with(error: Error) -> NoReturn:
    """Fail with the exit code the one table in pyscan.errors gives this error."""
    fail(str(error), exit_code(error))


def parse_count(text: str, what: str, low: int, high: int) -> int:
    """An integer option in ``low..high``; anything else fails with exit 2."""
    if not text.strip().isdigit() or not low <= int(text) <= high:
        fail(f"bad {what} {text!r} (accepted: integer {low}..{high})")
    return int(text)


def plain_help_type(param: Any) -> None:
    """Help shows what a value is (PORTS, FILE, RATE), not a Python type tag (`<str>`,
    `<list[str]>`), and nothing for a flag. typer has no setting for this, and arguments
    ignore `metavar` there, so the one method the help table asks is replaced per parameter.
    An argument's name column already says what it is."""
    flag = getattr(param, "is_flag", False) or param.param_type_name == "argument"
    shown = None if flag else (
        param.metavar or str(param.name or "").upper())
    param.display_type_rich = lambda ctx: shown
