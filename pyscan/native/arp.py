"""The RX-thread ARP responder (arp_responder.h): answers "who-has A" for a scan source
address the host does not own, for drivers whose received frames reach the engine's RX
thread. af-xdp answers in its XDP filter instead (``AfXdp(arp_answer=...)``). An IPv6 address
gets the same responder for neighbour discovery (ndp_reply.h): solicitations are answered."""

from __future__ import annotations

import ipaddress
import os
from typing import NewType

from pyscan.native._lib import CData, c_text, ffi, is_null, lib
from pyscan.native._values import ipv4_be, ipv6, mac
from pyscan.native.handles import CHandle

__all__ = ["ARP_REPLY_LEN", "NDP_REPLY_LEN", "ArpResponder", "announce_arp", "announce_ndp",
           "build_arp_reply", "build_arp_request", "build_ndp_reply", "build_ndp_solicit"]

ARP_REPLY_LEN = int(lib.PYSCAN_ARP_REPLY_LEN)
NDP_REPLY_LEN = int(lib.PYSCAN_NDP_REPLY_LEN)
ArpResponderPtr = NewType("ArpResponderPtr", CData)  # pyscan_arp_responder *
_ERROR_BUFFER = 200


def build_arp_reply(request: bytes, address: str | ipaddress.IPv4Address,
                    our_mac: str | bytes) -> bytes | None:
    """The reply the responder (and the XDP filter) sends for ``request``, or None when the
    frame is not an ARP request to answer for ``address``."""
    out = ffi.new("uint8_t[]", ARP_REPLY_LEN)
    n = lib.pyscan_arp__build_reply(bytes(request), len(request),
                                    ipv4_be("ARP address", address), mac("MAC", our_mac),
                                    out, ARP_REPLY_LEN)
    return bytes(ffi.buffer(out, n)) if n else None


def build_arp_request(address: str | ipaddress.IPv4Address, our_mac: str | bytes,
                      target: str | ipaddress.IPv4Address) -> bytes:
    """The broadcast "who-has target, tell address" that ``announce_arp`` sends."""
    out = ffi.new("uint8_t[]", ARP_REPLY_LEN)
    n = lib.pyscan_arp__build_request(ipv4_be("ARP address", address), mac("MAC", our_mac),
                                      ipv4_be("ARP target", target), out, ARP_REPLY_LEN)
    return bytes(ffi.buffer(out, n))


def announce_arp(ifindex: int, address: str | ipaddress.IPv4Address, our_mac: str | bytes,
                 next_hop: str | ipaddress.IPv4Address) -> None:
    """Ask ``next_hop`` for its MAC from ``address``, once: it learns ours on the way
    (arp_responder.h, pyscan_arp__announce). OSError when the frame cannot be sent."""
    rc = lib.pyscan_arp__announce(ifindex, ipv4_be("ARP address", address),
                                  mac("MAC", our_mac), ipv4_be("next hop", next_hop))
    if rc < 0:
        raise OSError(-rc, f"cannot send an ARP request to {next_hop}: {os.strerror(-rc)}")


def _ip6(what: str, address: object) -> bytes:
    return ipv6(what, address).packed


def build_ndp_reply(request: bytes, address: str | ipaddress.IPv6Address,
                    our_mac: str | bytes) -> bytes | None:
    """The advertisement the responder (and the XDP filter) sends for ``request``, or None
    when the frame is not a neighbour solicitation to answer for ``address``."""
    out = ffi.new("uint8_t[]", NDP_REPLY_LEN)
    n = lib.pyscan_ndp__build_reply(bytes(request), len(request), _ip6("NDP address", address),
                                    mac("MAC", our_mac), out, NDP_REPLY_LEN)
    return bytes(ffi.buffer(out, n)) if n else None


def build_ndp_solicit(address: str | ipaddress.IPv6Address, our_mac: str | bytes,
                      target: str | ipaddress.IPv6Address) -> bytes:
    """The solicitation "who has target, I am address at our_mac" that ``announce_ndp``
    sends to target's solicited-node group."""
    out = ffi.new("uint8_t[]", NDP_REPLY_LEN)
    n = lib.pyscan_ndp__build_solicit(_ip6("NDP address", address), mac("MAC", our_mac),
                                      _ip6("NDP target", target), out, NDP_REPLY_LEN)
    return bytes(ffi.buffer(out, n))


def announce_ndp(ifindex: int, address: str | ipaddress.IPv6Address, our_mac: str | bytes,
                 next_hop: str | ipaddress.IPv6Address) -> None:
    """Solicit ``next_hop`` once from ``address``: it learns our MAC from the solicitation's
    link-layer address option (pyscan_ndp__announce). OSError when it cannot be sent."""
    rc = lib.pyscan_ndp__announce(ifindex, _ip6("NDP address", address), mac("MAC", our_mac),
                                  _ip6("next hop", next_hop))
    if rc < 0:
        raise OSError(-rc, f"cannot send a neighbour solicitation to {next_hop}: "
                           f"{os.strerror(-rc)}")


class ArpResponder(CHandle[ArpResponderPtr]):
    """Answers ARP requests for ``address`` with ``our_mac`` on interface ``ifindex`` of the
    calling thread's namespace. Give it to ``Engine.set_arp_responder`` before the RX thread
    starts; close it after the engine."""

    _kind = "ARP responder"

    def __init__(self, ifindex: int,
                 address: str | ipaddress.IPv4Address | ipaddress.IPv6Address,
                 our_mac: str | bytes) -> None:
        err = ffi.new("char[]", _ERROR_BUFFER)
        if isinstance(address, ipaddress.IPv6Address) or ":" in str(address):
            # the IPv6 twin: neighbour solicitations answered, claims counted as conflicts
            handle = lib.pyscan_ndp_responder__open(ifindex, _ip6("NDP address", address),
                                                    mac("MAC", our_mac), err, _ERROR_BUFFER)
        else:
            handle = lib.pyscan_arp_responder__open(ifindex, ipv4_be("ARP address", address),
                                                    mac("MAC", our_mac), err, _ERROR_BUFFER)
        if is_null(handle):
            raise OSError(ffi.errno, c_text(err) or "ARP responder failed to open")
        self._handle = ArpResponderPtr(handle)
        self._final: dict[str, int] = {}

    @property
    def ptr(self) -> CData:
        return self._live()

    def handle(self, frame: bytes) -> bool:
        """What the RX thread does with a frame (tests; never while run_rx runs)."""
        return bool(lib.pyscan_arp_responder__handle(self._live(), bytes(frame), len(frame)))

    def stats(self) -> dict[str, int]:
        """answered / send_errors / conflicts; after close(), the values it ended with."""
        if self._handle is None:
            return dict(self._final)
        out = ffi.new("struct pyscan_arp_responder_stats *")
        lib.pyscan_arp_responder__stats(self._handle, out)
        return {"answered": int(out.answered), "send_errors": int(out.send_errors),
                "conflicts": int(out.conflicts)}

    def close(self) -> None:
        if self._handle is not None:
            self._final = self.stats()
        super().close()

    @staticmethod
    def _destroy(handle: ArpResponderPtr) -> None:
        lib.pyscan_arp_responder__close(handle)
