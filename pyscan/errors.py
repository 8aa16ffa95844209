"""pyscan's public exceptions under one root, and the one table that maps them to exit codes.

Every error pyscan raises on purpose is a `pyscan.Error`, so a library caller can catch them
all in one clause and the CLI turns any of them into its exit code with `exit_code(error)`.
Each subclass keeps the built-in base it had before the root existed (ConfigError is still a
ValueError, PrivilegeError a PermissionError), so existing `except ValueError` code still
catches them.

This module imports nothing from pyscan: every other module may import it.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from types import MappingProxyType

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_CODES",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_NO_PERMISSION",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "ConfigError",
    "DriverError",
    "DriverOptionError",
    "Error",
    "NotSupportedYet",
    "PrivilegeError",
    "RunFinishedError",
    "ScanError",
    "exit_code",
]

EXIT_OK = 0
EXIT_FAILED = 1          # a run-time failure: route, driver, firewall, engine
EXIT_BAD_INPUT = 2       # fix the command line
# sysexits.h EX_NOPERM: distinct from bad input, so scripts can tell "fix your command" from
# "run me with more privilege".
EXIT_NO_PERMISSION = 77
EXIT_INTERRUPTED = 128 + signal.SIGINT    # 130, the shell's convention for a signal
EXIT_TERMINATED = 128 + signal.SIGTERM    # 143


class Error(Exception):
    """The root of every error pyscan raises on purpose; the message is one line."""


class ConfigError(Error, ValueError):
    """Bad user input. The message is one line naming the value and what is accepted."""


class NotSupportedYet(ConfigError):
    """An option pyscan will have and does not yet (retries, banners, ...): bad input for
    now, and the message starts with the option's name."""

    def __init__(self, option: str, why: str) -> None:
        super().__init__(f"{option} is not supported yet: {why}")
        self.option = option


class ScanError(Error, RuntimeError):
    """A scan could not start or broke down (route, driver, firewall, engine)."""


class RunFinishedError(Error, RuntimeError):
    """A finished ScanRun was iterated again: its results were all delivered already."""


class PrivilegeError(Error, PermissionError):
    """The process lacks a capability the scan needs; the message says which and why."""


class DriverError(Error):
    """A driver could not open or run its rings; the message is one line."""


class DriverOptionError(DriverError, ConfigError):
    """A ``-O key=value`` the driver does not accept: bad input, caught as either parent."""


# The one table. Looked up along the exception's MRO, so the most specific class listed wins
# (DriverOptionError is a DriverError, but bad input). Modules that cannot import this one
# without a cycle (netlink, firewall) derive from Error and land on its row.
EXIT_CODES: Mapping[type[BaseException], int] = MappingProxyType({
    DriverOptionError: EXIT_BAD_INPUT,
    ConfigError: EXIT_BAD_INPUT,
    PrivilegeError: EXIT_NO_PERMISSION,
    ScanError: EXIT_FAILED,
    DriverError: EXIT_FAILED,
    Error: EXIT_FAILED,
    KeyboardInterrupt: EXIT_INTERRUPTED,
})


def exit_code(error: BaseException) -> int:
    """The exit code for ``error``: its nearest class in EXIT_CODES; EXIT_FAILED otherwise."""
    for cls in type(error).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return EXIT_FAILED
