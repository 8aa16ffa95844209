"""IPv6 reply frames for one fixed IPv6 scan (scanner 2001:2::1, source ports 40000-40063,
modules tcp-syn6, icmp-echo6 and udp6 on UDP ports 53 (DNS payload) and 7), each with what
the three reply filters must say of it:
the C side's ingest outcome, whether the XDP filter redirects it, whether af-packet's IPv6
classic filter copies it. Cookies come from siphashc (an independent SipHash), not from
pyscan. Where a kernel filter differs from C the row names the documented exception
(docs/internals.md, "Reply acceptance rules"; the IPv6 rows in docs/_drafts/v6core.md)."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv6Address

import siphashc
from scapy.layers.dns import DNS
from scapy.layers.inet import IP, TCP, UDP
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

from pyscan.probes.udp_payloads import BUILTIN, payload_records

KEY = bytes.fromhex("8f0c2a11d35e49b07c66f1a2b9e04d13")
SCANNER = IPv6Address("2001:2::1")
TARGET = IPv6Address("2001:2:0:7::9")
SOURCE_PORTS = range(40000, 40064)
SCANNER_MAC = "02:00:00:00:00:01"
GATEWAY_MAC = "02:00:00:00:00:02"


# The scan's port entries as the C side builds them (engine ports / port_probes / probe_args).
ENGINE_PORTS = [1, 0, 53, 7]
ENGINE_PROBES = ["tcp-syn6", "icmp-echo6", "udp6", "udp6"]
UDP_PAYLOADS = {53: BUILTIN["dns"]}


def engine_probe_args() -> bytes:
    return payload_records(UDP_PAYLOADS)


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


def udp_source_port(value: int) -> int:
    """udp6's source port from its cookie (probe_udp6.c, pyscan_udp__source_port)."""
    return SOURCE_PORTS.start + ((value * len(SOURCE_PORTS)) >> 32)


def udp_reply(sport: int = 7, payload: bytes = b"echo", dport_delta: int = 0,
              dst: IPv6Address = SCANNER, src: IPv6Address = TARGET) -> bytes:
    """A datagram from src:sport to the source port udp6 chose for (dst, src, sport)."""
    value = ref_cookie(dst, src, 0, sport)
    dport = SOURCE_PORTS.start + (udp_source_port(value) - SOURCE_PORTS.start + dport_delta) \
        % len(SOURCE_PORTS)
    return bytes(_eth() / IPv6(src=str(src), dst=str(dst), hlim=60) /
                 UDP(sport=sport, dport=dport) / payload)


def dns_answer(delta: int = 0) -> bytes:
    value = ref_cookie(SCANNER, TARGET, 0, 53)
    return udp_reply(53, bytes(DNS(id=(value + delta) & 0xFFFF, qr=1)))


def our_datagram(dport: int = 7, label_delta: int = 0) -> bytes:
    """Our UDP probe's IPv6 and UDP headers as an ICMPv6 error quotes them: the flow label
    holds the cookie's low 20 bits (probe_udp6.c)."""
    value = ref_cookie(SCANNER, TARGET, 0, dport)
    return bytes(IPv6(src=str(SCANNER), dst=str(TARGET), fl=(value + label_delta) & 0xFFFFF) /
                 UDP(sport=udp_source_port(value), dport=dport))


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
    udp = udp_reply()
    udp_bad_sum = bytearray(udp)
    udp_bad_sum[-1] ^= 0x40
    udp_zero_sum = bytearray(udp)
    udp_zero_sum[14 + 40 + 6:14 + 40 + 8] = b"\0\0"
    return {
        "udp_reply": Row(udp, "open", True, True),
        "udp_dns_answer": Row(dns_answer(), "open", True, True),
        "udp_dns_answer_wrong_id": Row(dns_answer(1), "invalid-cookie", True, True,
                                       "xdp, cbpf: DNS id (the payload table is C's)"),
        "udp_reply_wrong_source_port": Row(udp_reply(dport_delta=1), "invalid-cookie", False,
                                           True, "cbpf: cookie"),
        "udp_reply_port_outside_range": Row(
            bytes(_eth() / IPv6(src=str(TARGET), dst=str(SCANNER)) / UDP(sport=7, dport=40064)),
            "not-ours", False, False),
        "udp_reply_from_unprobed_port": Row(udp_reply(sport=9), "not-ours", True, True,
                                            "xdp, cbpf: port not probed (the table is C's)"),
        "udp_bad_checksum": Row(bytes(udp_bad_sum), "bad-checksum", True, True,
                                "xdp, cbpf: checksum"),
        "udp_zero_checksum": Row(bytes(udp_zero_sum), "bad-checksum", True, True,
                                 "xdp, cbpf: checksum (zero is refused over IPv6)"),
        "udp_to_another_address": Row(
            udp_reply(dst=IPv6Address("2001:2::99")), "not-ours", True, True,
            "xdp, cbpf: destination (the cookie covers it)"),
        # cut inside the UDP header but past its destination port (fixed offsets, as above)
        "udp_truncated": Row(udp[:14 + 40 + 6], "malformed", False, True,
                             "cbpf: header-fields"),
        "udp_port_unreachable": Row(unreachable(our_datagram(), code=4), "closed", True, True),
        "udp_admin_unreachable": Row(unreachable(our_datagram(53), code=1), "closed", True,
                                     True),
        "udp_unreachable_forged_label": Row(unreachable(our_datagram(label_delta=1), code=4),
                                            "invalid-cookie", False, True, "cbpf: cookie"),
        "udp_unreachable_cut_quote": Row(unreachable(our_datagram()[:40 + 6], code=4),
                                         "not-ours", False, True,
                                         "cbpf: the quote is not read"),
        "udp_unreachable_unprobed_port": Row(unreachable(our_datagram(9), code=4), "not-ours",
                                             True, True,
                                             "xdp, cbpf: port not probed (the table is C's)"),
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
