"""What every command of the CLI shares: the exit codes and the one way to fail.

The exit-code table lives here and nowhere else in the CLI (docs/cli.md prints it); when
``pyscan.errors`` maps each public error to its code, this is the one place to wire it.
"""

from __future__ import annotations

from typing import NoReturn

import typer

from pyscan.privileges import EXIT_NO_PERMISSION

__all__ = [
    "DRIVER_HELP",
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_NO_PERMISSION",
    "fail",
    "parse_count",
]

EXIT_FAILED = 1           # the scan failed at run time (route, driver, firewall)
EXIT_BAD_INPUT = 2        # bad input: nothing was created
# EXIT_NO_PERMISSION (77): a missing capability, defined next to the capability checks.
EXIT_INTERRUPTED = 130    # Ctrl-C, after flushing output and printing the summary

# The driver names as the --driver help shows them; the one place to derive from the
# driver registry once it exists.
DRIVER_HELP = "af-packet | af-xdp | pfring-zc | null"


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """One `pyscan: error:` line on stderr, then exit with ``code``."""
    typer.echo(f"pyscan: error: {message}", err=True)
    raise typer.Exit(code)


def parse_count(text: str, what: str, low: int, high: int) -> int:
    """An integer option in ``low..high``; anything else fails with exit 2."""
    if not text.strip().isdigit() or not low <= int(text) <= high:
        fail(f"bad {what} {text!r} (accepted: integer {low}..{high})")
    return int(text)
