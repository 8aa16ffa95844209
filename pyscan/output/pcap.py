"""A classic libpcap file (the format tcpdump, tshark, Wireshark and scapy read): a 24-byte
global header, then a 16-byte record header and the frame bytes per packet.

Microsecond timestamps (magic 0xa1b2c3d4), Ethernet link type: what `tcpdump -w` writes by
default, so every reader takes it. Twenty lines of `struct` need no library.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

__all__ = ["LINKTYPE_ETHERNET", "PcapWriter"]

LINKTYPE_ETHERNET = 1
_MAGIC_MICROSECONDS = 0xA1B2C3D4
_GLOBAL_HEADER = struct.Struct("<IHHiIII")
_RECORD_HEADER = struct.Struct("<IIII")


class PcapWriter:
    """Frames to a pcap stream. `close()` flushes, and closes the stream if it owns it."""

    def __init__(self, stream: BinaryIO, *, snaplen: int = 65535,
                 linktype: int = LINKTYPE_ETHERNET, owns_stream: bool = False) -> None:
        self.stream = stream
        self.snaplen = snaplen
        self.owns_stream = owns_stream
        self.frames = 0
        self._closed = False
        stream.write(_GLOBAL_HEADER.pack(_MAGIC_MICROSECONDS, 2, 4, 0, 0, snaplen, linktype))

    def write_frame(self, timestamp: float, frame: bytes, length: int | None = None) -> None:
        """One frame received at `timestamp` (seconds since the epoch); `length` is its
        length on the wire when `frame` holds only its first bytes."""
        seconds, micros = divmod(round(timestamp * 1_000_000), 1_000_000)
        captured = frame[:self.snaplen]
        original = len(frame) if length is None else max(length, len(captured))
        self.stream.write(_RECORD_HEADER.pack(seconds, micros, len(captured), original))
        self.stream.write(captured)
        self.frames += 1

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.stream.flush()
        finally:
            if self.owns_stream:
                self.stream.close()

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
