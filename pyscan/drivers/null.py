"""The null driver: frames are generated into memory and counted, nothing is sent.

Used for dry runs and the generation benchmark. No RX ring (there is nothing to receive).
Options: ``slots`` (frames per TX ring, default 1024), ``capture`` (frames to record per TX
ring for inspection, default 0).
"""

from __future__ import annotations

from pyscan.drivers.base import DriverError, DriverRequest, RingSession, option_int


class NullDriver:
    name = "null"

    def available(self) -> tuple[bool, str]:
        try:
            import pyscan.native  # noqa: F401 - the compiled extension is all it needs
        except ImportError as error:
            return False, f"the native extension is not built ({error})"
        return True, "generates frames in memory, sends nothing"

    def open(self, request: DriverRequest) -> RingSession:
        from pyscan.native import NULL_MAX_SLOTS, close_ring, open_null_tx

        slots = option_int(request.options, "slots", 1024, 1, NULL_MAX_SLOTS)
        capture = option_int(request.options, "capture", 0, 0, 1 << 20)
        if request.tx_threads < 1:
            raise DriverError(f"tx_threads {request.tx_threads} is invalid: accepted 1 or more")
        rings: list[object] = []
        try:
            for _ in range(request.tx_threads):
                rings.append(open_null_tx(slots, capture))
        except (OSError, ValueError) as error:
            for ring in rings:
                close_ring(ring)
            raise DriverError(f"null ring: {error}") from None
        return RingSession(rings, None, f"null: {request.tx_threads} in-memory TX ring(s) of "
                                        f"{slots} slots, nothing sent")
