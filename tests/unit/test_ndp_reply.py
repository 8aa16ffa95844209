"""The neighbour advertisement for an unowned IPv6 --source-ip (pyscan/bpf/ndp_reply.h, built
through arp_responder.c): which solicitations are answered and what the answer says, checked
by scapy (its checksum included); the gateway-priming solicitation; af-packet's IPv6 classic
filter letting solicitations through only for such a scan, run by libpcap's interpreter; the
solicited-node group; the classification's IPv6 subnet rules. No root: nothing is sent."""

from __future__ import annotations

import ctypes
import ctypes.util
from ipaddress import IPv6Address, IPv6Network

import pytest
from scapy.layers.inet6 import (
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
    in6_chksum,
)
from scapy.layers.l2 import Ether

from pyscan.native import (
    NDP_REPLY_LEN,
    afpacket_reply_filter6,
    build_ndp_reply,
    build_ndp_solicit,
)
from pyscan.netlink import solicited_node_group
from pyscan.netlink.source import _unusable_in

BORROWED = "2001:2:0:ffff::77"
OUR_MAC = "02:00:00:00:00:aa"
ASKER_MAC = "02:00:00:00:00:02"
ASKER_IP = "2001:2:0:ffff::2"
GROUP = "ff02::1:ff00:77"


def solicitation(*, tgt: str = BORROWED, src: str = ASKER_IP, hwsrc: str = ASKER_MAC,
                 dst: str = GROUP, hlim: int = 255, option: bool = True,
                 code: int = 0) -> bytes:
    frame = (Ether(src=hwsrc, dst="33:33:ff:00:00:77") / IPv6(src=src, dst=dst, hlim=hlim)
             / ICMPv6ND_NS(tgt=tgt, code=code))
    if option:
        frame = frame / ICMPv6NDOptSrcLLAddr(lladdr=hwsrc)
    return bytes(frame)


def checksum_ok(frame: Ether, layer: type) -> bool:
    """scapy's own ICMPv6 checksum of the message against the one in the frame."""
    message = bytes(frame[layer])
    ip = frame[IPv6]
    stored = int.from_bytes(message[2:4], "big")
    zeroed = message[:2] + b"\0\0" + message[4:]
    return in6_chksum(58, ip, zeroed) == stored


def test_a_solicitation_for_the_address_gets_a_solicited_override_advertisement() -> None:
    answer = build_ndp_reply(solicitation(), BORROWED, OUR_MAC)
    assert answer is not None and len(answer) == NDP_REPLY_LEN == 86
    frame = Ether(answer)
    assert (frame.dst, frame.src, frame.type) == (ASKER_MAC, OUR_MAC, 0x86DD)
    ip = frame[IPv6]
    assert (ip.src, ip.dst, ip.hlim, ip.plen, ip.nh, ip.tc, ip.fl) == \
        (BORROWED, ASKER_IP, 255, 32, 58, 0, 0)
    na = frame[ICMPv6ND_NA]
    assert (na.type, na.code, na.R, na.S, na.O, na.tgt) == (136, 0, 0, 1, 1, BORROWED)
    assert frame[ICMPv6NDOptDstLLAddr].lladdr == OUR_MAC
    assert checksum_ok(frame, ICMPv6ND_NA)


def test_a_unicast_refresh_is_answered_to_its_source() -> None:
    """Neighbour unreachability detection: unicast to A, from the asker's own address."""
    answer = build_ndp_reply(solicitation(dst=BORROWED, src="2001:2:0:ffff::9"), BORROWED,
                             OUR_MAC)
    assert answer is not None
    frame = Ether(answer)
    assert frame[IPv6].dst == "2001:2:0:ffff::9" and checksum_ok(frame, ICMPv6ND_NA)


def test_extra_options_are_not_echoed() -> None:
    padded = solicitation() + bytes(ICMPv6NDOptSrcLLAddr(lladdr="02:00:00:00:00:55"))
    grown = bytearray(padded)
    grown[18:20] = (40).to_bytes(2, "big")   # payload length covers both options
    answer = build_ndp_reply(bytes(grown), BORROWED, OUR_MAC)
    assert answer is not None
    frame = Ether(answer)
    assert frame[IPv6].plen == 32 and checksum_ok(frame, ICMPv6ND_NA)


@pytest.mark.parametrize("frame", [
    # duplicate address detection for A: another host wants it - never fought over
    solicitation(src="::", option=False),
    solicitation(src="::"),
    # for another address
    solicitation(tgt="2001:2:0:ffff::78"),
    # our own solicitation looped back, by MAC or by source address
    solicitation(hwsrc=OUR_MAC),
    solicitation(src=BORROWED),
    # not neighbour discovery any more after a router: hop limit below 255
    solicitation(hlim=254),
    solicitation(code=1),
    # no source link-layer address option: nothing to rewrite into ours
    solicitation(option=False),
    # an advertisement, an echo request
    bytes(Ether(src=ASKER_MAC, dst=OUR_MAC) / IPv6(src=ASKER_IP, dst=BORROWED, hlim=255)
          / ICMPv6ND_NA(tgt=BORROWED) / ICMPv6NDOptDstLLAddr(lladdr=ASKER_MAC)),
], ids=["dad", "dad-with-option", "other-target", "own-mac", "own-address", "hop-limit",
        "code", "no-option", "advertisement"])
def test_everything_else_is_left_alone(frame: bytes) -> None:
    assert build_ndp_reply(frame, BORROWED, OUR_MAC) is None


def test_a_short_frame_is_left_alone() -> None:
    assert build_ndp_reply(solicitation()[:85], BORROWED, OUR_MAC) is None


def test_the_priming_solicitation_asks_the_gateway_from_the_borrowed_address() -> None:
    frame = Ether(build_ndp_solicit(BORROWED, OUR_MAC, ASKER_IP))
    assert (frame.dst, frame.src) == ("33:33:ff:00:00:02", OUR_MAC)
    ip = frame[IPv6]
    assert (ip.src, ip.dst, ip.hlim, ip.plen) == (BORROWED, "ff02::1:ff00:2", 255, 32)
    ns = frame[ICMPv6ND_NS]
    assert (ns.type, ns.code, ns.tgt) == (135, 0, ASKER_IP)
    assert frame[ICMPv6NDOptSrcLLAddr].lladdr == OUR_MAC
    assert checksum_ok(frame, ICMPv6ND_NS)
    # and what we send is exactly what we would answer, if we were the gateway
    assert build_ndp_reply(bytes(frame), ASKER_IP, ASKER_MAC) is not None


class Classic:
    def __init__(self, protocols: tuple[str, ...]) -> None:
        name = ctypes.util.find_library("pcap")
        if name is None:
            pytest.skip("libpcap is not installed (Debian: apt-get install libpcap0.8)")
        self._pcap = ctypes.CDLL(name)
        self._pcap.bpf_filter.restype = ctypes.c_uint
        self._pcap.bpf_filter.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint,
                                          ctypes.c_uint]
        code = afpacket_reply_filter6(range(40000, 40010), protocols)
        self._code = ctypes.create_string_buffer(code, len(code))

    def accepts(self, frame: bytes) -> bool:
        return self._pcap.bpf_filter(self._code, frame, len(frame), len(frame)) != 0


def test_the_classic_filter_passes_solicitations_only_for_an_unowned_source() -> None:
    asked = solicitation()
    advertised = bytes(Ether(src=ASKER_MAC, dst=OUR_MAC) / IPv6(src=ASKER_IP, dst=BORROWED,
                                                                 hlim=255)
                       / ICMPv6ND_NA(tgt=BORROWED) / ICMPv6NDOptDstLLAddr(lladdr=ASKER_MAC))
    assert not Classic(("tcp6",)).accepts(asked)
    assert not Classic(("tcp6", "icmp6", "udp6")).accepts(asked)
    assert Classic(("tcp6", "ndp6")).accepts(asked)
    assert Classic(("icmp6", "ndp6")).accepts(asked)
    assert not Classic(("tcp6", "ndp6")).accepts(advertised)


def test_the_solicited_node_group_keeps_the_last_24_bits() -> None:
    assert solicited_node_group(IPv6Address(BORROWED)) == IPv6Address(GROUP)
    assert solicited_node_group(IPv6Address("2001:2::abcd:ef12:3456")) == \
        IPv6Address("ff02::1:ff12:3456")


def test_the_subnet_router_anycast_and_the_gateway_are_not_borrowed() -> None:
    prefix = IPv6Network("2001:2:0:ffff::/64")
    gateway = IPv6Address(ASKER_IP)
    assert _unusable_in(prefix, gateway) == {prefix.network_address, gateway}
    assert _unusable_in(IPv6Network("2001:2::/127"), None) == set()
