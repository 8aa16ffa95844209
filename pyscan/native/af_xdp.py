"""The af-xdp driver (drv_af_xdp.h): the XDP reply filter (pyscan/bpf/reply_filter.bpf.o,
loaded by bpf_object.c) and the AF_XDP socket set of one interface.

Rings handed out by AfXdp belong to it: AfXdp.close() detaches the filter, closes the sockets
and then closes the rings; nobody else needs to.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from pathlib import Path
from typing import NoReturn

from pyscan.native._lib import AfXdpPtr, CData, ReplyFilterPtr, RingPtr, c_text, ffi, is_null, lib
from pyscan.native._values import check_int, ipv4_be, ipv6, mac
from pyscan.native.handles import CHandle
from pyscan.native.rings import Ring

REPLY_FILTER_OBJECT = str(Path(__file__).resolve().parent.parent / "bpf" / "reply_filter.bpf.o")
# the counter array's indexes are reply_filter.h's, so the names cannot drift from C's order
REPLY_FILTER_COUNTERS = tuple(name for _, name in sorted({
    lib.PYSCAN_RF_SEEN: "seen", lib.PYSCAN_RF_MATCHED: "matched",
    lib.PYSCAN_RF_PASSED: "passed", lib.PYSCAN_RF_UNQUEUED: "unqueued",
    lib.PYSCAN_RF_ARP_REPLIED: "arp_replied", lib.PYSCAN_RF_ARP_CONFLICT: "arp_conflict"}.items()))
if len(REPLY_FILTER_COUNTERS) != lib.PYSCAN_RF_NCOUNTERS:
    raise ImportError("reply_filter.h has a counter pyscan.native.af_xdp does not name")
XDP_BIND_MODES = {"auto": lib.PYSCAN_AFXDP_BIND_AUTO, "zerocopy": lib.PYSCAN_AFXDP_BIND_ZEROCOPY,
                  "copy": lib.PYSCAN_AFXDP_BIND_COPY}
XDP_ATTACH_MODES = {"auto": lib.PYSCAN_AFXDP_ATTACH_AUTO,
                    "native": lib.PYSCAN_AFXDP_ATTACH_NATIVE,
                    "generic": lib.PYSCAN_AFXDP_ATTACH_GENERIC}
XDP_ACTIONS = {0: "XDP_ABORTED", 1: "XDP_DROP", 2: "XDP_PASS", 3: "XDP_TX", 4: "XDP_REDIRECT"}
_ERROR_BUFFER = 320


class AfXdpError(OSError):
    """Opening the AF_XDP driver or loading its filter failed; .strerror is the one-line
    reason (str() adds the errno in front, as for any OSError)."""


ScannerIp = str | int | ipaddress.IPv4Address | ipaddress.IPv6Address | None
# (address the host does not own, the MAC to answer with): the filter answers its ARP requests,
# or for an IPv6 address its neighbour solicitations (ndp_reply.h)
ArpAnswer = tuple[str | ipaddress.IPv4Address | ipaddress.IPv6Address, str | bytes]


def _ip_be(address: ScannerIp) -> int:
    """An IPv4 address (or None = any) as the u32 whose memory holds it in network order.
    An IPv6 scanner address is 0 too: the IPv6 matches do not compare the destination,
    which their cookie covers (probe_tcp_syn6.h)."""
    if address is None or isinstance(address, ipaddress.IPv6Address):
        return 0
    return int.from_bytes(ipaddress.IPv4Address(address).packed, "little")


def _arp_fields(arp_answer: ArpAnswer | None) -> tuple[int, bytes, bytes | None]:
    """(arp_ip_be, arp_mac, ndp_ip): an IPv4 address fills the first, an IPv6 one the
    last (16 bytes; None = no neighbour discovery answered)."""
    if arp_answer is None:
        return 0, bytes(6), None
    address, our_mac = arp_answer
    answer_mac = mac("MAC to answer ARP with", our_mac)
    if isinstance(address, ipaddress.IPv6Address) or ":" in str(address):
        return 0, answer_mac, ipv6("neighbour discovery address", address).packed
    return ipv4_be("ARP address", address), answer_mac, None


def _raise_from(err: CData, fallback: str) -> NoReturn:
    errno_value = ffi.errno or 0
    raise AfXdpError(errno_value, c_text(err) or fallback)


def probe_mask(probe: int | Iterable[int]) -> int:
    """The filter's probe mask (reply_filter.h) for one probe id or the scan's set of ids;
    the loader refuses ids that have no XDP match."""
    ids = [probe] if isinstance(probe, int) else list(probe)
    mask = 0
    for probe_id in ids:
        mask |= 1 << check_int("probe id", probe_id, 0, 31)
    return mask


class ReplyFilter(CHandle[ReplyFilterPtr]):
    """The XDP reply filter loaded and verified with a key, not attached anywhere."""

    _kind = "reply filter"

    def __init__(self, key: bytes, scanner_ip: ScannerIp = None, ports: range = range(0, 65536),
                 queue_slots: int = 1, object_path: str = REPLY_FILTER_OBJECT,
                 probe: int | Iterable[int] = 0, arp_answer: ArpAnswer | None = None,
                 arp_redirect: bool = False) -> None:
        if len(key) != 16:
            raise ValueError(f"cookie key must be 16 bytes, got {len(key)}")
        if not ports or ports.step != 1 or ports.start < 0 or ports.stop > 65536:
            raise ValueError(f"port range {ports!r} invalid; use a non-empty range within 0-65535")
        arp_ip_be, arp_mac, ndp_ip = _arp_fields(arp_answer)
        handle = lib.pyscan_replyfilter__load(object_path.encode(), key, _ip_be(scanner_ip),
                                              ports.start, ports.stop - 1, queue_slots,
                                              probe_mask(probe), arp_ip_be, arp_mac,
                                              int(arp_redirect),
                                              ffi.NULL if ndp_ip is None else ndp_ip)
        if is_null(handle):
            # bpf_object.c's convention: errno, and the reason in pyscan_bpf__error()
            _raise_from(lib.pyscan_bpf__error(), "reply filter failed to load")
        self._handle = ReplyFilterPtr(handle)

    @property
    def prog_id(self) -> int:
        return int(lib.pyscan_replyfilter__prog_id(self._live()))

    def test_run(self, frame: bytes) -> str:
        """Runs the program once on frame (BPF_PROG_TEST_RUN); returns the XDP action name."""
        action = ffi.new("uint32_t *")
        rc = lib.pyscan_replyfilter__test_run(self._live(), frame, len(frame), action)
        if rc < 0:
            raise AfXdpError(-rc, f"BPF_PROG_TEST_RUN failed: {os.strerror(-rc)}")
        return XDP_ACTIONS.get(int(action[0]), str(int(action[0])))

    def test_run_frame(self, frame: bytes) -> tuple[str, bytes]:
        """Like test_run, plus the frame as the program left it (XDP_TX sends that)."""
        action, out_len = ffi.new("uint32_t *"), ffi.new("uint32_t *")
        out = ffi.new("uint8_t[]", max(len(frame), 64) + 256)
        rc = lib.pyscan_replyfilter__test_run_out(self._live(), frame, len(frame), out, len(out),
                                                  out_len, action)
        if rc < 0:
            raise AfXdpError(-rc, f"BPF_PROG_TEST_RUN failed: {os.strerror(-rc)}")
        name = XDP_ACTIONS.get(int(action[0]), str(int(action[0])))
        return name, bytes(ffi.buffer(out, int(out_len[0])))

    def counters(self) -> dict[str, int]:
        out = ffi.new("uint64_t[]", len(REPLY_FILTER_COUNTERS))
        lib.pyscan_replyfilter__counters(self._live(), out, len(REPLY_FILTER_COUNTERS))
        return {name: int(out[i]) for i, name in enumerate(REPLY_FILTER_COUNTERS)}

    @staticmethod
    def _destroy(handle: ReplyFilterPtr) -> None:
        lib.pyscan_replyfilter__close(handle)


def afxdp_probe() -> tuple[bool, str]:
    """Whether this kernel and these privileges allow AF_XDP sockets, and why not."""
    err = ffi.new("char[]", _ERROR_BUFFER)
    if lib.pyscan_afxdp__probe(err, _ERROR_BUFFER) == 0:
        return True, "AF_XDP sockets available"
    return False, c_text(err)


class AfXdp(CHandle[AfXdpPtr]):
    """AF_XDP sockets on queues 0..queue_count-1 of one interface plus the attached filter."""

    _kind = "af-xdp socket set"

    def __init__(self, interface: str, *, key: bytes, queue_count: int, tx_queues: int,
                 want_rx: bool = True, bind_mode: str = "auto", attach_mode: str = "auto",
                 ring_size: int = 2048, frame_size: int = 2048, scanner_ip: ScannerIp = None,
                 ports: range = range(0, 65536), rx_queues: int | None = None,
                 rx_ring_size: int = 0, object_path: str = REPLY_FILTER_OBJECT,
                 probe: int | Iterable[int] = 0, arp_answer: ArpAnswer | None = None,
                 arp_redirect: bool = False) -> None:
        if bind_mode not in XDP_BIND_MODES:
            raise ValueError(f"xdp mode {bind_mode!r} unknown; use one of "
                             f"{', '.join(XDP_BIND_MODES)}")
        if attach_mode not in XDP_ATTACH_MODES:
            raise ValueError(f"xdp attach {attach_mode!r} unknown; use one of "
                             f"{', '.join(XDP_ATTACH_MODES)}")
        if len(key) != 16:
            raise ValueError(f"cookie key must be 16 bytes, got {len(key)}")
        name = interface.encode()
        if not 0 < len(name) < 16:
            raise ValueError(f"interface name {interface!r} invalid; use 1 to 15 bytes")
        if not ports or ports.step != 1 or ports.start < 0 or ports.stop > 65536:
            raise ValueError(f"port range {ports!r} invalid; use a non-empty range within 0-65535")
        cfg = ffi.new("struct pyscan_afxdp_config *")
        cfg.ifname = name
        cfg.queue_count = queue_count
        cfg.tx_queues = tx_queues
        cfg.want_rx = int(want_rx)
        cfg.bind_mode = XDP_BIND_MODES[bind_mode]
        cfg.attach_mode = XDP_ATTACH_MODES[attach_mode]
        cfg.ring_size = ring_size
        cfg.frame_size = frame_size
        cfg.scanner_ip_be = _ip_be(scanner_ip)
        cfg.port_lo = ports.start
        cfg.port_hi = ports.stop - 1
        cfg.rx_queues = queue_count if rx_queues is None else rx_queues
        cfg.key = key
        cfg.rx_ring_size = rx_ring_size  # 0: ring_size
        cfg.probe_mask = probe_mask(probe)
        cfg.arp_ip_be, cfg.arp_mac, ndp_ip = _arp_fields(arp_answer)
        cfg.ndp_ip = ndp_ip or bytes(16)
        cfg.arp_redirect = int(arp_redirect)
        err = ffi.new("char[]", _ERROR_BUFFER)
        handle = lib.pyscan_afxdp__open(cfg, object_path.encode(), err, _ERROR_BUFFER)
        if is_null(handle):
            _raise_from(err, f"af-xdp failed to open {interface}")
        self._handle = AfXdpPtr(handle)
        self._final_counters: dict[str, int] = {}
        self.tx_rings = [Ring(RingPtr(lib.pyscan_afxdp__tx_ring(handle, i)), f"af-xdp TX ring {i}")
                         for i in range(tx_queues)]
        rx = lib.pyscan_afxdp__rx_ring(handle)
        self.rx_ring = None if is_null(rx) else Ring(RingPtr(rx), "af-xdp RX ring")

    def info(self) -> dict[str, object]:
        out = ffi.new("struct pyscan_afxdp_info *")
        lib.pyscan_afxdp__info(self._live(), out)
        warnings = c_text(out.warnings)
        return {
            "zerocopy": bool(out.zerocopy), "generic_attach": bool(out.generic_attach),
            "queue_count": int(out.queue_count), "tx_queues": int(out.tx_queues),
            "ring_size": int(out.ring_size), "frame_size": int(out.frame_size),
            "prog_id": int(out.prog_id), "rx_queues": int(out.rx_queues),
            "rx_ring_size": int(out.rx_ring_size),
            "warnings": [w for w in warnings.split("; ") if w],
        }

    @staticmethod
    def warnings(info: dict[str, object]) -> list[str]:
        """The fallbacks ``info()`` reported, as a typed list."""
        found = info.get("warnings", [])
        return [str(w) for w in found] if isinstance(found, list) else []

    def filter_counters(self) -> dict[str, int]:
        """The filter's seen/matched/passed/unqueued; after close(), the values it ended
        with."""
        if self._handle is None:
            return dict(self._final_counters)
        out = ffi.new("uint64_t[]", len(REPLY_FILTER_COUNTERS))
        lib.pyscan_afxdp__filter_counters(self._handle, out, len(REPLY_FILTER_COUNTERS))
        return {name: int(out[i]) for i, name in enumerate(REPLY_FILTER_COUNTERS)}

    def close(self) -> None:
        """Detaches the filter, closes the sockets, destroys the rings. Idempotent."""
        if self._handle is None:
            return
        self._final_counters = self.filter_counters()
        rings = [*self.tx_rings, *([self.rx_ring] if self.rx_ring is not None else [])]
        self.tx_rings, self.rx_ring = [], None
        super().close()
        for ring in rings:
            ring.close()

    @staticmethod
    def _destroy(handle: AfXdpPtr) -> None:
        lib.pyscan_afxdp__close(handle)
