"""The shared reply corpus: frames that every reply filter of pyscan judges - the C parser and
classifier (engine ingest), the XDP filter (BPF_PROG_TEST_RUN) and af-packet's classic BPF
socket filter - for one fixed scan (KEY, SCANNER, SOURCE_PORTS).

Frames are built with scapy from their description below; the same bytes are stored as
``<name>.bin`` next to this file, the seed corpus of the C fuzzers (fuzz/). Regenerate them
after changing a frame with ``python -m tests.corpus.replies.frames --write``;
tests/unit/test_reply_corpus.py fails while the stored files and this list differ.

Each frame's traits (VLAN tags, IP options, checksums, cookie, destination) are not declared
here but read back from the bytes by :func:`traits`, independently of the code under test.
"""

from __future__ import annotations

import argparse
import struct
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

import siphashc
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_RR
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.packet import Packet, Raw
from scapy.utils import checksum

HERE = Path(__file__).resolve().parent
KEY = bytes.fromhex("8f0c2a11d35e49b07c66f1a2b9e04d13")
SCANNER = IPv4Address("198.18.0.1")
TARGET = IPv4Address("198.19.7.9")
OTHER_HOST = IPv4Address("198.18.0.77")
SOURCE_PORTS = range(40000, 40064)
SCANNER_MAC = "02:00:00:00:00:01"
GATEWAY_MAC = "02:00:00:00:00:02"


def reference_cookie(saddr: IPv4Address, daddr: IPv4Address, sport: int, dport: int) -> int:
    """Low 32 bits of SipHash-2-4 of the probe's tuple under KEY (siphashc, not pyscan)."""
    message = saddr.packed + daddr.packed + sport.to_bytes(2, "big") + dport.to_bytes(2, "big")
    return siphashc.siphash(KEY, message) & 0xFFFFFFFF


def tcp_reply(flags: str = "SA", *, src: IPv4Address = TARGET, dst: IPv4Address = SCANNER,
              sport: int = 443, dport: int = 40007, ack: int | None = None,
              ip: dict[str, object] | None = None, tcp: dict[str, object] | None = None,
              l2: Packet | None = None, payload: bytes = b"") -> Packet:
    """A TCP reply from the target acknowledging the probe's cookie unless ``ack`` says."""
    if ack is None:
        ack = (reference_cookie(dst, src, dport, sport) + 1) & 0xFFFFFFFF
    layer2 = l2 if l2 is not None else Ether(src=GATEWAY_MAC, dst=SCANNER_MAC)
    packet = (layer2 / IP(src=str(src), dst=str(dst), **{"ttl": 61, **(ip or {})})
              / TCP(sport=sport, dport=dport, flags=flags, seq=12345, ack=ack, window=64240,
                    **(tcp or {})))
    return packet / Raw(payload) if payload else packet


def syn_unreachable(code: int = 1, *, quoted_src: IPv4Address = SCANNER,
                    dst: IPv4Address = SCANNER, sport: int = 40007, dport: int = 443,
                    seq: int | None = None, quote_bytes: int = 28, icmp_type: int = 3,
                    quoted_ip: dict[str, object] | None = None) -> Packet:
    """An ICMP error from a router about the scanner's SYN to TARGET, quoting its first
    ``quote_bytes`` bytes (28: the IPv4 header and 8 TCP bytes, what RFC 792 asks; longer
    like Linux), with the probe's cookie as the quoted sequence number unless ``seq`` says."""
    if seq is None:
        seq = reference_cookie(quoted_src, TARGET, sport, dport)
    syn = bytes(IP(src=str(quoted_src), dst=str(TARGET), ttl=64, **(quoted_ip or {}))
                / TCP(sport=sport, dport=dport, flags="S", seq=seq, window=1024))
    return (Ether(src=GATEWAY_MAC, dst=SCANNER_MAC)
            / IP(src=str(OTHER_HOST), dst=str(dst), ttl=62)
            / ICMP(type=icmp_type, code=code) / Raw(syn[:quote_bytes]))


def patched(frame: bytes, offset: int, value: bytes) -> bytes:
    return frame[:offset] + value + frame[offset + len(value):]


def bad_ip_checksum(frame: bytes) -> bytes:
    old = int.from_bytes(frame[24:26], "big")
    return patched(frame, 24, ((old ^ 0x0101) or 1).to_bytes(2, "big"))


def bad_tcp_checksum(frame: bytes, tcp_offset: int = 34) -> bytes:
    at = tcp_offset + 16
    old = int.from_bytes(frame[at:at + 2], "big")
    return patched(frame, at, ((old ^ 0x8001) or 1).to_bytes(2, "big"))


def with_total_length(frame: bytes, total: int) -> bytes:
    """The IPv4 total length set to ``total``, the header checksum redone to match."""
    frame = patched(frame, 16, total.to_bytes(2, "big"))
    frame = patched(frame, 24, b"\0\0")
    return patched(frame, 24, checksum(frame[14:34]).to_bytes(2, "big"))


def _frames() -> dict[str, Callable[[], bytes]]:
    syn_ack = bytes(tcp_reply())
    return {
        # what a scan reports
        "syn_ack_open": lambda: syn_ack,
        "rst_ack_closed": lambda: bytes(tcp_reply("RA", sport=22)),
        "syn_ack_lowest_port": lambda: bytes(tcp_reply(dport=SOURCE_PORTS[0])),
        "syn_ack_highest_port": lambda: bytes(tcp_reply(dport=SOURCE_PORTS[-1])),
        "syn_ack_with_options": lambda: bytes(tcp_reply(tcp={"options": [
            ("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 2)), ("NOP", None),
            ("WScale", 7)]})),
        "syn_ack_with_data": lambda: bytes(tcp_reply(payload=b"hello")),
        "rst_ack_ethernet_padding": lambda: bytes(tcp_reply("RA")) + b"\xa5" * 6,
        "syn_ack_padding_to_60": lambda: syn_ack + b"\x00" * 6,
        "syn_ack_ttl_1_psh": lambda: bytes(tcp_reply("SAP", ip={"ttl": 1})),
        "rst_ack_with_urg": lambda: bytes(tcp_reply("RAU")),
        "syn_ack_df": lambda: bytes(tcp_reply(ip={"flags": "DF"})),
        # documented exceptions (docs: acceptance rules)
        "syn_ack_vlan": lambda: bytes(tcp_reply(l2=Ether(src=GATEWAY_MAC, dst=SCANNER_MAC)
                                                / Dot1Q(vlan=5))),
        "rst_ack_qinq": lambda: bytes(tcp_reply("RA", l2=Ether(src=GATEWAY_MAC,
                                                               dst=SCANNER_MAC)
                                                / Dot1AD(vlan=7) / Dot1Q(vlan=5))),
        "syn_ack_three_vlan_tags": lambda: bytes(tcp_reply(l2=Ether(src=GATEWAY_MAC,
                                                                    dst=SCANNER_MAC)
                                                           / Dot1AD(vlan=7) / Dot1Q(vlan=5)
                                                           / Dot1Q(vlan=6))),
        "syn_ack_ip_options": lambda: bytes(tcp_reply(ip={"options": [IPOption_RR()]})),
        "syn_ack_bad_ip_checksum": lambda: bad_ip_checksum(syn_ack),
        "syn_ack_bad_tcp_checksum": lambda: bad_tcp_checksum(syn_ack),
        "rst_ack_bad_tcp_checksum": lambda: bad_tcp_checksum(bytes(tcp_reply("RA"))),
        "syn_ack_zero_tcp_checksum": lambda: patched(syn_ack, 50, b"\0\0"),
        "syn_ack_bad_cookie": lambda: bytes(tcp_reply(ack=0x12345678)),
        "rst_ack_bad_cookie": lambda: bytes(tcp_reply("RA", ack=1)),
        "syn_ack_cookie_not_plus_one": lambda: bytes(tcp_reply(
            ack=reference_cookie(SCANNER, TARGET, 40007, 443))),
        "syn_ack_to_other_host": lambda: bytes(tcp_reply(dst=OTHER_HOST)),
        "rst_ack_to_other_host": lambda: bytes(tcp_reply("RA", dst=OTHER_HOST)),
        # flags a scan does not report
        "syn_only": lambda: bytes(tcp_reply("S")),
        "ack_only": lambda: bytes(tcp_reply("A")),
        "rst_without_ack": lambda: bytes(tcp_reply("R")),
        "syn_ack_fin": lambda: bytes(tcp_reply("SAF")),
        "syn_ack_rst": lambda: bytes(tcp_reply("SAR")),
        "syn_rst_no_ack": lambda: bytes(tcp_reply("SR")),
        "fin_ack": lambda: bytes(tcp_reply("FA")),
        "rst_ack_fin": lambda: bytes(tcp_reply("RAF")),
        # outside the scan's source ports
        "syn_ack_port_below": lambda: bytes(tcp_reply(dport=SOURCE_PORTS[0] - 1)),
        "syn_ack_port_above": lambda: bytes(tcp_reply(dport=SOURCE_PORTS[-1] + 1)),
        # malformed IPv4 / TCP
        "fragment_more_fragments": lambda: bytes(tcp_reply(ip={"flags": "MF"})),
        "fragment_offset": lambda: bytes(tcp_reply(ip={"frag": 100})),
        "tcp_doff_4": lambda: bytes(tcp_reply(tcp={"dataofs": 4})),
        "tcp_doff_past_packet": lambda: bytes(tcp_reply(tcp={"dataofs": 15})),
        "ip_total_length_short_of_tcp": lambda: with_total_length(syn_ack + b"\0" * 6, 30),
        "ip_total_length_past_frame": lambda: with_total_length(syn_ack, 60),
        "ip_ihl_4": lambda: bytes(tcp_reply(ip={"ihl": 4})),
        "ip_version_6_in_ipv4_ethertype": lambda: patched(syn_ack, 14, b"\x65"),
        "truncated_in_tcp_header": lambda: syn_ack[:44],
        "truncated_in_ip_header": lambda: syn_ack[:30],
        "truncated_in_vlan_tag": lambda: bytes(tcp_reply(l2=Ether(src=GATEWAY_MAC,
                                                                  dst=SCANNER_MAC)
                                                         / Dot1Q(vlan=5)))[:16],
        "ethernet_header_only": lambda: syn_ack[:14],
        "runt_13_bytes": lambda: syn_ack[:13],
        "empty": lambda: b"",
        # other protocols
        "arp_request": lambda: bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=GATEWAY_MAC)
                                     / ARP(psrc="198.18.0.2", pdst=str(SCANNER))),
        "ipv6_tcp": lambda: bytes(Ether(src=GATEWAY_MAC, dst=SCANNER_MAC)
                                  / IPv6(src="2001:2::2", dst="2001:2::1")
                                  / TCP(sport=443, dport=40007, flags="SA")),
        "udp_to_source_port": lambda: bytes(Ether(src=GATEWAY_MAC, dst=SCANNER_MAC)
                                            / IP(src=str(TARGET), dst=str(SCANNER))
                                            / UDP(sport=53, dport=40007) / Raw(b"x" * 12)),
        "icmp_port_unreachable": lambda: bytes(Ether(src=GATEWAY_MAC, dst=SCANNER_MAC)
                                               / IP(src=str(TARGET), dst=str(SCANNER))
                                               / ICMP(type=3, code=3)
                                               / IP(src=str(SCANNER), dst=str(TARGET))
                                               / UDP(sport=40007, dport=53)),
        # ICMP destination unreachables quoting a SYN (tcp-syn: status unreachable)
        "syn_unreachable_host": lambda: bytes(syn_unreachable(1)),
        "syn_unreachable_admin_prohibited_long_quote": lambda: bytes(
            syn_unreachable(13, quote_bytes=40)),
        "syn_unreachable_bad_cookie": lambda: bytes(syn_unreachable(
            seq=reference_cookie(SCANNER, TARGET, 40007, 443) ^ 1)),
        "syn_unreachable_quote_cut_in_tcp": lambda: bytes(syn_unreachable(quote_bytes=24)),
        "syn_unreachable_quote_cut_in_ip": lambda: bytes(syn_unreachable(quote_bytes=16)),
        "syn_unreachable_quoted_source_not_scanner": lambda: bytes(syn_unreachable(
            quoted_src=OTHER_HOST)),
        "syn_unreachable_quoted_port_outside_range": lambda: bytes(syn_unreachable(
            sport=SOURCE_PORTS[-1] + 1)),
        "syn_unreachable_to_other_host": lambda: bytes(syn_unreachable(dst=OTHER_HOST)),
        "syn_unreachable_bad_icmp_checksum": lambda: patched(
            bytes(syn_unreachable(1)), 36, b"\x12\x34"),
        "syn_unreachable_quote_ip_options": lambda: bytes(syn_unreachable(
            10, quote_bytes=32, quoted_ip={"options": [IPOption_RR()]})),
        "syn_time_exceeded": lambda: bytes(syn_unreachable(0, icmp_type=11)),
        "icmp_echo_reply": lambda: bytes(Ether(src=GATEWAY_MAC, dst=SCANNER_MAC)
                                         / IP(src=str(TARGET), dst=str(SCANNER))
                                         / ICMP(type=0)),
    }


FRAME_BUILDERS = _frames()


def corpus() -> dict[str, bytes]:
    """Every frame of the corpus by name, built now."""
    return {name: build() for name, build in FRAME_BUILDERS.items()}


def stored() -> dict[str, bytes]:
    """The frames as stored in the repository (the C fuzzers' seed)."""
    return {p.stem: p.read_bytes() for p in sorted(HERE.glob("*.bin"))}


@dataclass(frozen=True)
class Traits:
    """What a frame is, read from its bytes with the standard library alone."""

    vlan_tags: int = 0           # 802.1Q / 802.1ad tags before the IPv4 header
    ip_options: bool = False     # IHL > 5
    ip_checksum_ok: bool = True
    tcp_checksum_ok: bool = True
    cookie_ok: bool = False      # ack == SipHash cookie of the reversed tuple + 1
    to_scanner: bool = False     # destination is SCANNER


def fold(total: int) -> int:
    """A one's complement sum folded to 16 bits (RFC 1071)."""
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def word_sum(data: bytes) -> int:
    """The unfolded sum of data's big-endian 16-bit words, an odd last byte padded with 0."""
    if len(data) % 2:
        data += b"\0"
    return sum(struct.unpack(f"!{len(data) // 2}H", data))


def traits(frame: bytes) -> Traits | None:
    """The traits of an IPv4 TCP frame whose headers are all present, else None."""
    at, tags = 14, 0
    if len(frame) < 14:
        return None
    ethertype = int.from_bytes(frame[12:14], "big")
    while ethertype in (0x8100, 0x88A8) and len(frame) >= at + 4:
        ethertype = int.from_bytes(frame[at + 2:at + 4], "big")
        at, tags = at + 4, tags + 1
    if ethertype != 0x0800 or len(frame) < at + 20:
        return None
    ip = frame[at:]
    ihl, total = (ip[0] & 15) * 4, int.from_bytes(ip[2:4], "big")
    if ip[0] >> 4 != 4 or ip[9] != 6 or ihl < 20 or total < ihl + 20 or total > len(ip):
        return None
    src, dst = IPv4Address(ip[12:16]), IPv4Address(ip[16:20])
    tcp = ip[ihl:total]
    sport, dport = int.from_bytes(tcp[0:2], "big"), int.from_bytes(tcp[2:4], "big")
    ack = int.from_bytes(tcp[8:12], "big")
    pseudo = ip[12:20] + bytes([0, 6]) + len(tcp).to_bytes(2, "big")
    return Traits(
        vlan_tags=tags,
        ip_options=ihl > 20,
        ip_checksum_ok=fold(word_sum(ip[:ihl])) == 0xFFFF,
        tcp_checksum_ok=fold(word_sum(pseudo + tcp)) == 0xFFFF,
        cookie_ok=ack == (reference_cookie(dst, src, dport, sport) + 1) & 0xFFFFFFFF,
        to_scanner=dst == SCANNER,
    )


def write() -> list[Path]:
    """Store every frame as <name>.bin and remove stored frames no longer in the list."""
    frames = corpus()
    for old in HERE.glob("*.bin"):
        if old.stem not in frames:
            old.unlink()
    paths = []
    for name, frame in frames.items():
        path = HERE / f"{name}.bin"
        path.write_bytes(frame)
        paths.append(path)
    return paths


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="store the frames as .bin files")
    if parser.parse_args().write:
        print(f"wrote {len(write())} frames to {HERE}")
