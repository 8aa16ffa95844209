"""IPv6 reply frames for one fixed IPv6 scan (scanner 2001:2::1, source ports 40000-40063,
modules tcp-syn6 and icmp-echo6), each with what the three reply filters must say of it:
the C side's ingest outcome, whether the XDP filter redirects it, whether af-packet's IPv6
classic filter copies it. Cookies come from siphashc (an independent SipHash), not from
pyscan. Where a kernel filter differs from C the row names the documented exception
(docs/internals.md, "Reply acceptance rules"; the IPv6 rows in docs/_drafts/v6core.md)."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv6Address

import siphashc
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    IPv6,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
)
from scapy.layers.l2 import Dot1Q, Ether

KEY = bytes.fromhex("8f0c2a11d35e49b07c66f1a2b9e04d13")
SCANNER = IPv6Address("2001:2::1")
TARGET = IPv6Address("2001:2:0:7::9")
SOURCE_PORTS = range(40000, 40064)
SCANNER_MAC = "02:00:00:00:00:01"
GATEWAY_MAC = "02:00:00:00:00:02"


def ref_cookie(saddr: IPv6Address, daddr: IPv6Address, sport: int, dport: int) -> int:
    message = saddr.packed + daddr.packed + sport.to_bytes(2, "big") + dport.to_bytes(2, "big")
    return siphashc.siphash(KEY, message) & 0xFFFFFFFF


@dataclass(frozen=True)
class Row:
    frame: bytes
    c: str            # the engine's ingest outcome
    xdp: bool         # the XDP filter redirects it
    cbpf: bool        # af-packet's IPv6 socket filter copies it
    exception: str = ""  # why a kernel filter differs from C, when it does


def _eth() -> Ether:
    return Ether(src=GATEWAY_MAC, dst=SCANNER_MAC)


def tcp_reply(flags: str = "SA", sport: int = 443, dport: int = 40007, delta: int = 1,
              dst: IPv6Address = SCANNER, src: IPv6Address = TARGET) -> TCP:
    ack = (ref_cookie(dst, src, dport, sport) + delta) & 0xFFFFFFFF
    return TCP(sport=sport, dport=dport, flags=flags, seq=77, ack=ack)


def echo_reply(delta: int = 0) -> ICMPv6EchoReply:
    value = (ref_cookie(SCANNER, TARGET, 0, 0) + delta) & 0xFFFFFFFF
    return ICMPv6EchoReply(id=value >> 16, seq=value & 0xFFFF)


def our_echo_request(target: IPv6Address = TARGET) -> bytes:
    value = ref_cookie(SCANNER, target, 0, 0)
    return bytes(IPv6(src=str(SCANNER), dst=str(target)) /
                 ICMPv6EchoRequest(id=value >> 16, seq=value & 0xFFFF))


def our_syn(target: IPv6Address = TARGET, sport: int = 40007, dport: int = 443,
            delta: int = 0) -> bytes:
    """The IPv6 header and the first TCP bytes of our SYN, as an ICMPv6 error quotes it."""
    seq = (ref_cookie(SCANNER, target, sport, dport) + delta) & 0xFFFFFFFF
    return bytes(IPv6(src=str(SCANNER), dst=str(target)) /
                 TCP(sport=sport, dport=dport, flags="S", seq=seq))


def unreachable(quote: bytes, code: int = 1) -> bytes:
    return bytes(_eth() / IPv6(src="2001:2::fe", dst=str(SCANNER)) /
                 ICMPv6DestUnreach(code=code) / quote)


# The C side's target set in the corpus scan (the quoted destination of an unreachable must
# be a target; the XDP filter does not know the set).
TARGET_RANGE = ("2001:2:0:7::", "2001:2:0:7::ffff")


def rows() -> dict[str, Row]:
    ip6 = IPv6(src=str(TARGET), dst=str(SCANNER), hlim=60)
    synack = bytes(_eth() / ip6 / tcp_reply())
    bad_sum = bytearray(synack)
    bad_sum[-1] ^= 0x40
    other = IPv6Address("2001:2::99")
    quote_forged = bytearray(our_echo_request())
    quote_forged[-1] ^= 1
    return {
        "syn_ack": Row(synack, "open", True, True),
        "rst_ack": Row(bytes(_eth() / ip6 / tcp_reply("RA")), "closed", True, True),
        "syn_ack_lowest_port": Row(bytes(_eth() / ip6 / tcp_reply(dport=40000)),
                                   "open", True, True),
        "syn_ack_highest_port": Row(bytes(_eth() / ip6 / tcp_reply(dport=40063)),
                                    "open", True, True),
        "syn_ack_bad_cookie": Row(bytes(_eth() / ip6 / tcp_reply(delta=2)),
                                  "invalid-cookie", False, True, "cbpf: cookie"),
        "syn_ack_port_below": Row(bytes(_eth() / ip6 / tcp_reply(dport=39999)),
                                  "not-ours", False, False),
        "syn_ack_port_above": Row(bytes(_eth() / ip6 / tcp_reply(dport=40064)),
                                  "not-ours", False, False),
        "ack_only": Row(bytes(_eth() / ip6 / tcp_reply("A")), "ignored-flags", False, False),
        "syn_ack_fin": Row(bytes(_eth() / ip6 / tcp_reply("SAF")), "ignored-flags", False,
                           False),
        "hop_by_hop": Row(bytes(_eth() / ip6 / IPv6ExtHdrHopByHop() / tcp_reply()),
                          "not-ours", False, False),
        "fragment": Row(bytes(_eth() / ip6 / IPv6ExtHdrFragment(m=0) / tcp_reply()),
                        "malformed", False, False),
        # cut inside the TCP header but past its flags: classic BPF reads fixed offsets and
        # does not compare the payload length with the frame
        "truncated": Row(synack[:14 + 40 + 16], "malformed", False, True,
                         "cbpf: header-fields"),
        "truncated_before_flags": Row(synack[:14 + 40 + 12], "malformed", False, False),
        "bad_checksum": Row(bytes(bad_sum), "bad-checksum", True, True,
                            "xdp, cbpf: checksum"),
        "vlan": Row(bytes(_eth() / Dot1Q(vlan=5) / ip6 / tcp_reply()), "open", False, False,
                    "xdp, cbpf: vlan"),
        "to_another_address": Row(
            bytes(_eth() / IPv6(src=str(TARGET), dst=str(other)) / tcp_reply(dst=other)),
            "not-ours", True, True, "xdp, cbpf: destination (the cookie covers it)"),
        "echo_reply": Row(bytes(_eth() / ip6 / echo_reply()), "open", True, True),
        "echo_reply_bad_cookie": Row(bytes(_eth() / ip6 / echo_reply(1)), "invalid-cookie",
                                     False, True, "cbpf: cookie"),
        "unreachable_quoting_echo": Row(
            bytes(_eth() / IPv6(src="2001:2::fe", dst=str(SCANNER)) /
                  ICMPv6DestUnreach(code=1) / our_echo_request()),
            "closed", True, True),
        "unreachable_forged_quote": Row(
            bytes(_eth() / IPv6(src="2001:2::fe", dst=str(SCANNER)) /
                  ICMPv6DestUnreach(code=1) / bytes(quote_forged)),
            "invalid-cookie", False, True, "cbpf: cookie"),
        "syn_unreachable": Row(unreachable(our_syn(), code=4), "closed", True, True),
        "syn_unreachable_cut_quote": Row(unreachable(our_syn()[:40 + 6]), "not-ours", False,
                                         True, "cbpf: the quote is not read"),
        "syn_unreachable_bad_cookie": Row(unreachable(our_syn(delta=1)), "invalid-cookie",
                                          False, True, "cbpf: cookie"),
        "syn_unreachable_port_outside_range": Row(unreachable(our_syn(sport=39999)),
                                                  "not-ours", False, True,
                                                  "cbpf: quoted port not checked"),
        "syn_unreachable_outside_target_set": Row(
            unreachable(our_syn(target=IPv6Address("2001:2:0:8::1"))), "not-ours", True, True,
            "xdp, cbpf: quoted destination outside the target set"),
        "echo_request_to_us": Row(bytes(_eth() / ip6 / ICMPv6EchoRequest(id=1, seq=2)),
                                  "not-ours", False, False),
        "neighbour_solicitation": Row(
            bytes(Ether(src=GATEWAY_MAC, dst="33:33:ff:00:00:01") /
                  IPv6(src=str(TARGET), dst="ff02::1:ff00:1", hlim=255) /
                  ICMPv6ND_NS(tgt=str(SCANNER))),
            "not-ours", False, False),
        "neighbour_advertisement": Row(
            bytes(_eth() / IPv6(src=str(TARGET), dst=str(SCANNER), hlim=255) /
                  ICMPv6ND_NA(tgt=str(TARGET), S=1)),
            "not-ours", False, False),
        "ipv4_syn_ack": Row(bytes(_eth() / IP(src="198.19.0.9", dst="198.18.0.1") /
                                  TCP(sport=443, dport=40007, flags="SA")),
                            "not-ours", False, False),
    }
