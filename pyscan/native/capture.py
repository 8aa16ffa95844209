"""The --pcap capture ring (capture.h): the RX thread copies every reply with a valid cookie
into it, Python drains the frames and writes them to a pcap file. Lossy on purpose (a full
ring drops and counts, it never slows the RX thread); results never depend on it."""

from __future__ import annotations

from typing import NamedTuple, NewType

from pyscan.native._lib import CData, ffi, is_null, lib
from pyscan.native._values import check_int as _check_int
from pyscan.native.handles import CHandle

__all__ = ["CAPTURE_SNAPLEN", "Capture", "CapturedFrame"]

CAPTURE_SNAPLEN = int(lib.PYSCAN_CAPTURE_SNAPLEN)
CAPTURE_MAX_SLOTS = int(lib.PYSCAN_CAPTURE_MAX_SLOTS)
CapturePtr = NewType("CapturePtr", CData)  # pyscan_capture *


class CapturedFrame(NamedTuple):
    timestamp: float  # seconds since the epoch, when the RX thread parsed it
    data: bytes       # the first CAPTURE_SNAPLEN bytes at most
    length: int       # the frame's length on the wire


class Capture(CHandle[CapturePtr]):
    """A ring of ``slots`` frames (rounded up to a power of two). Give it to
    ``Engine.set_capture`` before the RX thread starts; close it after the engine."""

    _kind = "capture ring"

    def __init__(self, slots: int = 4096) -> None:
        _check_int("capture slots", slots, 1, CAPTURE_MAX_SLOTS)
        handle = lib.pyscan_capture__create(slots)
        if is_null(handle):
            raise MemoryError(f"cannot allocate a capture ring of {slots} frames")
        self._handle = CapturePtr(handle)
        self._buf = ffi.new("struct pyscan_capture_frame[]", 256)

    @property
    def ptr(self) -> CData:
        return self._live()

    def push(self, frame: bytes, timestamp_ns: int) -> None:
        """What the RX thread does for each valid reply (tests; never while run_rx runs)."""
        lib.pyscan_capture__push(self._live(), bytes(frame), len(frame), timestamp_ns)

    def drain(self, max: int = 256) -> list[CapturedFrame]:
        """Up to ``max`` frames, oldest first (one consumer thread at a time)."""
        _check_int("max", max, 1, 2**31)
        if len(self._buf) < max:
            self._buf = ffi.new("struct pyscan_capture_frame[]", max)
        buf = self._buf
        n = lib.pyscan_capture__drain(self._live(), buf, max)
        return [CapturedFrame(int(buf[i].timestamp_ns) / 1e9,
                              bytes(ffi.buffer(buf[i].data, int(buf[i].caplen))),
                              int(buf[i].len)) for i in range(n)]

    @property
    def dropped(self) -> int:
        """Frames lost because the ring was full."""
        return int(lib.pyscan_capture__dropped(self._live()))

    def _destroy(self, handle: CapturePtr) -> None:
        lib.pyscan_capture__destroy(handle)
