"""The null driver: frames are generated into memory and counted, nothing is sent.

Used for dry runs and the generation benchmark. No RX ring (there is nothing to receive),
so no route, firewall or privilege either (``sends=False`` in DESCRIPTOR).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyscan.drivers.base import (
    DriverDescriptor,
    DriverError,
    DriverOption,
    DriverRequest,
    RingSession,
    close_rings,
    native_built,
    require_tx_threads,
)

if TYPE_CHECKING:
    from pyscan.native import Ring

__all__ = ["DESCRIPTOR", "NullDriver"]

# The C side's bound (NULL_MAX_SLOTS in pyscan/native); tests/unit/test_drivers_registry.py
# checks they agree, so the descriptor needs no native import.
MAX_SLOTS = 1 << 16


class NullDriver:
    name = "null"

    def available(self) -> tuple[bool, str]:
        built, reason = native_built()  # the compiled extension is all it needs
        return (True, "generates frames in memory, sends nothing") if built else (False, reason)

    def open(self, request: DriverRequest) -> RingSession:
        from pyscan.native import open_null_tx

        options = DESCRIPTOR.parse_options(request.options, strict=False)
        slots, capture = int(options["slots"]), int(options["capture"])
        require_tx_threads(request)
        rings: list[Ring] = []
        try:
            for _ in range(request.tx_threads):
                rings.append(open_null_tx(slots, capture))
        except (OSError, ValueError) as error:
            close_rings(rings)
            raise DriverError(f"null ring: {error}") from None
        return RingSession(rings, None, f"null: {request.tx_threads} in-memory TX ring(s) of "
                                        f"{slots} slots, nothing sent")


DESCRIPTOR = DriverDescriptor(
    name=NullDriver.name,
    summary="generates every probe in memory and sends nothing (--dry-run)",
    factory=NullDriver,
    options=(
        DriverOption("slots", "int", "frames per TX ring", 1024, 1, MAX_SLOTS),
        DriverOption("capture", "int", "frames to record per TX ring for inspection", 0, 0,
                     1 << 20),
    ),
    sends=False,
)
