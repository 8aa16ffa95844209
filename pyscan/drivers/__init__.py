"""Drivers: one module each behind the ``Driver`` protocol (base.py), one registry row each.

Each driver module declares one ``DriverDescriptor`` (base.py) named DESCRIPTOR: its name,
capabilities, ``-O`` options, engine hints, place in the automatic order and fallback
policy. REGISTRY below lists them; everything else - config validation, privileges, the
scanner's choice and fallback, the CLI help, ``pyscan drivers`` - is derived from it.
Adding a driver is its C file(s), its module here, and one row in REGISTRY.

Importing this package needs neither root nor the compiled extension: drivers import the
native layer only when opened or probed.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyscan.drivers import af_packet, af_xdp, null, pfring_zc, xdp_live
from pyscan.drivers.base import (
    Driver,
    DriverDescriptor,
    DriverError,
    DriverOption,
    DriverOptionError,
    DriverRequest,
    DriverSession,
    RingSession,
)

__all__ = ["DESCRIPTORS", "DRIVERS", "REGISTRY", "Driver", "DriverDescriptor", "DriverError",
           "DriverOption", "DriverOptionError", "DriverRequest", "DriverSession", "RingSession",
           "automatic_order", "available_with", "describe_drivers", "descriptor", "get_driver",
           "names", "names_help", "options_help"]

# The registry: one row per driver. Order here is the order of `pyscan drivers` and of the
# names in the help; the automatic order is each descriptor's automatic_rank.
REGISTRY: tuple[DriverDescriptor, ...] = (
    af_packet.DESCRIPTOR,
    af_xdp.DESCRIPTOR,
    null.DESCRIPTOR,
    pfring_zc.DESCRIPTOR,
    xdp_live.DESCRIPTOR,
)

DESCRIPTORS: dict[str, DriverDescriptor] = {row.name: row for row in REGISTRY}
# The implementations, built once. Tests swap one for a fake with monkeypatch.setitem; the
# descriptor (the policy) stays.
DRIVERS: dict[str, Driver] = {row.name: row.factory() for row in REGISTRY}


def names() -> tuple[str, ...]:
    """Every driver name, in registry order."""
    return tuple(DESCRIPTORS)


def descriptor(name: str) -> DriverDescriptor:
    """The descriptor of ``name``; KeyError for an unknown name (config validates first)."""
    return DESCRIPTORS[name]


def get_driver(name: str) -> Driver:
    """The driver called ``name``; ValueError naming the accepted names otherwise."""
    try:
        return DRIVERS[name]
    except (KeyError, TypeError):
        raise ValueError(f"driver {name!r} is unknown: accepted {', '.join(sorted(DRIVERS))}") \
            from None


def automatic_order() -> tuple[DriverDescriptor, ...]:
    """The drivers an automatic choice tries, best first."""
    ranked = [row for row in DESCRIPTORS.values() if row.automatic_rank is not None]
    return tuple(sorted(ranked, key=lambda row: row.automatic_rank or 0))


def names_help() -> str:
    """The --driver help text: every name and what an automatic choice does."""
    order = " > ".join(row.name for row in automatic_order())
    return (f"Driver: {' | '.join(names())} (default: automatic, the first that can run here "
            f"of {order}).")


def options_help() -> str:
    """The -O help text: each driver's option keys (details: DriverDescriptor.help_text)."""
    per_driver = "; ".join(f"{row.name}: {', '.join(o.name for o in row.options)}"
                           for row in DESCRIPTORS.values() if row.options)
    return f"Driver setting key=value (repeatable); keys per driver: {per_driver}."


def describe_drivers(options: Mapping[str, str] | None = None) -> list[tuple[str, bool, str]]:
    """(name, available, reason) per driver, in registry order: `pyscan drivers`."""
    return [(name, *available_with(driver, options or {})) for name, driver in DRIVERS.items()]


def available_with(driver: Driver, options: Mapping[str, str]) -> tuple[bool, str]:
    """Whether ``driver`` can run with these driver options (never raises).

    A driver whose availability depends on its options (pfring-zc: ``-O lib=PATH``) answers
    ``available_for(options)``; the others answer ``available()``.
    """
    available_for = getattr(driver, "available_for", None)
    return available_for(options) if available_for else driver.available()
