"""The driver contract (docs/internals.md): a ``Driver`` opens a ``DriverSession`` of rings
for one scan; the native engine runs on those rings.

Drivers answer ``available()`` without raising, so ``import pyscan`` and ``pyscan drivers``
work on a machine without root, libxdp or libpfring. ``open()`` raises ``DriverError`` with
a one-line reason; a session releases everything in ``close()``, on every path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any, Protocol, runtime_checkable

__all__ = ["Driver", "DriverError", "DriverRequest", "DriverSession", "RingSession",
           "option_int"]


class DriverError(Exception):
    """A driver could not open or run its rings; the message is one line."""


@dataclass(frozen=True)
class DriverRequest:
    interface: str
    ifindex: int
    tx_threads: int
    want_rx: bool
    source_ip: IPv4Address
    source_ports: range
    cookie_key: bytes
    options: Mapping[str, str] = field(default_factory=dict)  # driver-specific


@runtime_checkable
class DriverSession(Protocol):
    """Rings of one scan; a context manager whose ``close()`` is idempotent."""

    tx_rings: Sequence[Any]      # one pyscan_ring cdata per TX thread
    rx_ring: Any | None
    description: str             # one line: mode chosen and why

    def stats(self) -> dict[str, int]: ...

    def close(self) -> None: ...

    def __enter__(self) -> DriverSession: ...

    def __exit__(self, *exc: object) -> None: ...


@runtime_checkable
class Driver(Protocol):
    name: str

    def available(self) -> tuple[bool, str]: ...

    def open(self, request: DriverRequest) -> DriverSession: ...


def option_int(options: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """A driver option as an integer in [low, high]; DriverError naming it otherwise."""
    raw = options.get(name)
    if raw is None:
        return default
    try:
        value = int(str(raw), 0)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise DriverError(f"driver option {name}={raw!r} is invalid: accepted integers "
                          f"{low}..{high}")
    return value


class RingSession:
    """A session over native rings: sums their stats, releases them once.

    Subclasses (or drivers) hand over rings already opened; ``close()`` destroys them, so it
    must run only after the engine's threads using them have returned.
    """

    def __init__(self, tx_rings: Sequence[Any], rx_ring: Any | None, description: str) -> None:
        self.tx_rings: list[Any] = list(tx_rings)
        self.rx_ring: Any | None = rx_ring
        self.description = description
        self._closed = False

    def stats(self) -> dict[str, int]:
        from pyscan.native import RING_STATS_FIELDS, ring_stats

        total = dict.fromkeys(RING_STATS_FIELDS, 0)
        if self._closed:
            return total
        for ring in [*self.tx_rings, *([self.rx_ring] if self.rx_ring is not None else [])]:
            for name, value in ring_stats(ring).items():
                total[name] += value
        return total

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        from pyscan.native import close_ring

        for ring in [*self.tx_rings, *([self.rx_ring] if self.rx_ring is not None else [])]:
            close_ring(ring)
        self.tx_rings = []
        self.rx_ring = None

    def __enter__(self) -> RingSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
