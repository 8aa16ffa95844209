"""The xdp-live TX rings (pyscan/native/drv_xdp_live.c, pyscan/bpf/xdp_live.bpf.c).

``XdpLive`` loads the program, attaches its two tracepoint programs and hands out one TX Ring
per runner. The C object is reference-counted by its rings, so ``close()`` and the rings'
``close()`` may come in any order; ``XdpLive.close()`` closes its rings too. Rings are opened
for the calling thread's network namespace (the redirect target is an ifindex there).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NewType

from pyscan.native._lib import CData, RingPtr, c_text, ffi, is_null, lib
from pyscan.native.handles import CHandle
from pyscan.native.rings import Ring

__all__ = ["XDP_LIVE_COUNTERS", "XDP_LIVE_MAX_RUNNERS", "XDP_LIVE_OBJECT", "XDP_LIVE_SLOT_DATA",
           "XdpLive", "XdpLiveError", "xdplive_probe"]

XdpLivePtr = NewType("XdpLivePtr", CData)  # struct pyscan_xdplive *

XDP_LIVE_OBJECT = str(Path(__file__).resolve().parent.parent / "bpf" / "xdp_live.bpf.o")
XDP_LIVE_SLOT_DATA = int(lib.PYSCAN_XL_SLOT_DATA)
XDP_LIVE_MAX_RUNNERS = int(lib.PYSCAN_XL_MAX_RUNNERS)
XDP_LIVE_COUNTERS = ("runs", "device_taken", "device_refused", "redirect_errors", "resent",
                     "unaccounted", "rejected", "last_error", "anchored")
_ERROR_BUFFER = 320


class XdpLiveError(OSError):
    """Loading or running the xdp-live program failed; .strerror is the one-line reason."""


def _failed(err: CData, fallback: str) -> XdpLiveError:
    return XdpLiveError(ffi.errno or 5, c_text(err) or fallback)


def xdplive_probe(object_path: str = XDP_LIVE_OBJECT) -> tuple[bool, str]:
    """Whether this kernel and these privileges run the xdp-live program in live-frames mode
    (a real BPF_PROG_RUN that sends nothing), and why not."""
    if not os.path.exists(object_path):
        return False, f"the xdp-live program {object_path} is not built (make build)"
    err = ffi.new("char[]", _ERROR_BUFFER)
    if lib.pyscan_xdplive__probe(object_path.encode(), err, _ERROR_BUFFER) == 0:
        return True, "live-frames BPF_PROG_RUN with XDP_REDIRECT available"
    return False, c_text(err)


class XdpLive(CHandle[XdpLivePtr]):
    """The xdp-live program loaded for one egress ifindex, with ``runners`` TX rings."""

    _kind = "xdp-live"

    def __init__(self, ifindex: int, runners: int, *, frame_len: int, batch_size: int = 0,
                 pin: bool = True, object_path: str = XDP_LIVE_OBJECT) -> None:
        if not 1 <= runners <= XDP_LIVE_MAX_RUNNERS:
            raise ValueError(f"runners {runners} invalid: accepted 1..{XDP_LIVE_MAX_RUNNERS}")
        if not 14 <= frame_len <= XDP_LIVE_SLOT_DATA:
            raise ValueError(f"frame length {frame_len} invalid: accepted 14.."
                             f"{XDP_LIVE_SLOT_DATA}")
        if not 0 <= batch_size <= 256:
            raise ValueError(f"batch size {batch_size} invalid: accepted 0 (kernel default) "
                             "to 256")
        cfg = ffi.new("struct pyscan_xdplive_config *")
        cfg.ifindex = ifindex
        cfg.runners = runners
        cfg.frame_len = frame_len
        cfg.batch_size = batch_size
        cfg.pin = int(pin)
        cfg.anchor = 1  # without it every BPF_PROG_RUN waits for two RCU grace periods
        err = ffi.new("char[]", _ERROR_BUFFER)
        handle = lib.pyscan_xdplive__open(cfg, object_path.encode(), err, _ERROR_BUFFER)
        if is_null(handle):
            raise _failed(err, "xdp-live failed to open")
        self._handle = XdpLivePtr(handle)
        self._final: dict[str, int] = dict.fromkeys(XDP_LIVE_COUNTERS, 0)
        self.tx_rings = [Ring(RingPtr(lib.pyscan_xdplive__tx_ring(handle, i)),
                              f"xdp-live TX ring {i}") for i in range(runners)]

    def counters(self) -> dict[str, int]:
        """Driver counters summed over the runners; after close(), the values it ended with."""
        if self._handle is None:
            return dict(self._final)
        out = ffi.new("struct pyscan_xdplive_counters *")
        lib.pyscan_xdplive__counters(self._handle, out)
        return {name: int(getattr(out, name)) for name in XDP_LIVE_COUNTERS}

    def attach_egress(self) -> None:
        """Attach the program to the egress device (native XDP, passes every received frame):
        NIC drivers that set up XDP transmit queues only for an attached program need one."""
        err = ffi.new("char[]", _ERROR_BUFFER)
        if lib.pyscan_xdplive__attach_egress(self._live(), err, _ERROR_BUFFER) < 0:
            raise _failed(err, "attaching the xdp-live program failed")

    def test_fill(self, frames: list[bytes]) -> list[tuple[int, bytes]]:
        """Runs the program once per frame without the live flag (nothing is sent): the
        frame placed in slot i, the program's (action, output frame) for each."""
        handle = self._live()
        n = len(frames)
        lens = ffi.new("uint32_t[]", [len(f) for f in frames] or [0])
        cap = XDP_LIVE_SLOT_DATA * max(n, 1)
        out = ffi.new("uint8_t[]", cap)
        out_lens, actions = ffi.new("uint32_t[]", max(n, 1)), ffi.new("uint32_t[]", max(n, 1))
        rc = lib.pyscan_xdplive__test_fill(handle, b"".join(frames), lens, n, out, cap,
                                           out_lens, actions)
        if rc < 0:
            raise XdpLiveError(-rc, f"BPF_PROG_RUN failed: {os.strerror(-rc)}")
        data, offset, result = ffi.buffer(out, cap), 0, []
        for i in range(n):
            result.append((int(actions[i]), bytes(data[offset:offset + out_lens[i]])))
            offset += out_lens[i]
        return result

    def close(self) -> None:
        """Closes the rings and releases the program, maps and links. Idempotent."""
        if self._handle is None:
            return
        self._final = self.counters()
        rings, self.tx_rings = self.tx_rings, []
        super().close()
        for ring in rings:
            ring.close()

    @staticmethod
    def _destroy(handle: XdpLivePtr) -> None:
        lib.pyscan_xdplive__close(handle)
