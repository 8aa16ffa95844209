"""Drivers: one module each behind the ``Driver`` protocol (base.py), in one literal dict.

Importing this package needs neither root nor the compiled extension: drivers import the
native layer only when opened or probed.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyscan.drivers.af_packet import AfPacketDriver
from pyscan.drivers.af_xdp import AfXdpDriver
from pyscan.drivers.base import Driver, DriverError, DriverRequest, DriverSession, RingSession
from pyscan.drivers.null import NullDriver
from pyscan.drivers.pfring_zc import PfringZcDriver
from pyscan.drivers.xdp_live import XdpLiveDriver

__all__ = ["DRIVERS", "Driver", "DriverError", "DriverRequest", "DriverSession", "RingSession",
           "available_with", "get_driver"]

DRIVERS: dict[str, Driver] = {
    "af-packet": AfPacketDriver(),
    "af-xdp": AfXdpDriver(),
    "null": NullDriver(),
    "pfring-zc": PfringZcDriver(),
    "xdp-live": XdpLiveDriver(),
}


def get_driver(name: str) -> Driver:
    """The driver called ``name``; ValueError naming the accepted names otherwise."""
    try:
        return DRIVERS[name]
    except (KeyError, TypeError):
        raise ValueError(f"driver {name!r} is unknown: accepted {', '.join(sorted(DRIVERS))}") \
            from None


def available_with(driver: Driver, options: Mapping[str, str]) -> tuple[bool, str]:
    """Whether ``driver`` can run with these driver options (never raises).

    A driver whose availability depends on its options (pfring-zc: ``-O lib=PATH``) answers
    ``available_for(options)``; the others answer ``available()``.
    """
    available_for = getattr(driver, "available_for", None)
    return available_for(options) if available_for else driver.available()
