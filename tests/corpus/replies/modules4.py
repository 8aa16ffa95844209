"""IPv4 reply frames of the icmp-echo and udp modules, for the scan of frames.py (key,
scanner 198.18.0.1, source ports 40000-40063) probing with all three IPv4 modules: TCP port 1
(tcp-syn), ICMP echo (port entry 0), UDP 53 with a DNS payload and UDP 7 without one - the
port entries of frames6.py, so fuzz/ingest_fuzz.c uses one table for both families. Each
frame with the C side's ingest outcome (tests/unit/test_fuzz_corpus.py checks them). Cookies
come from siphashc, not from pyscan."""

from __future__ import annotations

from ipaddress import IPv4Address

from scapy.layers.dns import DNS
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Dot1Q, Ether

from pyscan.probes.udp_payloads import BUILTIN, payload_records
from tests.corpus.replies.frames import (
    GATEWAY_MAC,
    OTHER_HOST,
    SCANNER,
    SCANNER_MAC,
    SOURCE_PORTS,
    TARGET,
    reference_cookie,
    with_total_length,
)

ENGINE_PORTS = [1, 0, 53, 7]
ENGINE_PROBES = ["tcp-syn", "icmp-echo", "udp", "udp"]
UDP_PAYLOADS = {53: BUILTIN["dns"]}


def engine_probe_args() -> bytes:
    return payload_records(UDP_PAYLOADS)


def _eth() -> Ether:
    return Ether(src=GATEWAY_MAC, dst=SCANNER_MAC)


def echo_reply(delta: int = 0, src: IPv4Address = TARGET, vlan: bool = False) -> bytes:
    value = (reference_cookie(SCANNER, src, 0, 0) + delta) & 0xFFFFFFFF
    layer2 = _eth() / Dot1Q(vlan=5) if vlan else _eth()
    return bytes(layer2 / IP(src=str(src), dst=str(SCANNER), ttl=57)
                 / ICMP(type=0, id=value >> 16, seq=value & 0xFFFF) / b"pyscan")


def our_echo_request(delta: int = 0) -> bytes:
    value = (reference_cookie(SCANNER, TARGET, 0, 0) + delta) & 0xFFFFFFFF
    return bytes(IP(src=str(SCANNER), dst=str(TARGET), ttl=64)
                 / ICMP(type=8, id=value >> 16, seq=value & 0xFFFF))


def udp_source_port(value: int) -> int:
    """The udp module's source port from its cookie (udp_payloads.h)."""
    return SOURCE_PORTS.start + ((value * len(SOURCE_PORTS)) >> 32)


def udp_reply(sport: int = 7, payload: bytes = b"echo", dport_delta: int = 0) -> bytes:
    value = reference_cookie(SCANNER, TARGET, 0, sport)
    dport = SOURCE_PORTS.start + (udp_source_port(value) - SOURCE_PORTS.start + dport_delta) \
        % len(SOURCE_PORTS)
    return bytes(_eth() / IP(src=str(TARGET), dst=str(SCANNER), ttl=60)
                 / UDP(sport=sport, dport=dport) / payload)


def dns_answer(delta: int = 0) -> bytes:
    value = reference_cookie(SCANNER, TARGET, 0, 53)
    return udp_reply(53, bytes(DNS(id=(value + delta) & 0xFFFF, qr=1)))


def our_datagram(dport: int = 7, id_delta: int = 0) -> bytes:
    """Our UDP probe's IPv4 and UDP headers as an ICMP error quotes them: the IP ID holds the
    cookie's low 16 bits."""
    value = reference_cookie(SCANNER, TARGET, 0, dport)
    return bytes(IP(src=str(SCANNER), dst=str(TARGET), id=(value + id_delta) & 0xFFFF)
                 / UDP(sport=udp_source_port(value), dport=dport))[:28]


def unreachable(quote: bytes, code: int = 1) -> bytes:
    return bytes(_eth() / IP(src=str(OTHER_HOST), dst=str(SCANNER), ttl=62)
                 / ICMP(type=3, code=code) / quote)


def outcomes() -> dict[str, tuple[bytes, str]]:
    """Each frame and what ingest says of it in the all-modules IPv4 scan."""
    echo = echo_reply()
    udp = udp_reply()
    udp_bad_sum = bytearray(udp)
    udp_bad_sum[-1] ^= 0x40
    return {
        "echo_reply": (echo, "open"),
        "echo_reply_bad_cookie": (echo_reply(1), "invalid-cookie"),
        "echo_reply_truncated": (echo[:14 + 20 + 6], "malformed"),
        "echo_reply_vlan": (echo_reply(vlan=True), "open"),
        "echo_request_to_us": (bytes(_eth() / IP(src=str(TARGET), dst=str(SCANNER))
                                     / ICMP(type=8, id=1, seq=2)), "not-ours"),
        "echo_unreachable": (unreachable(our_echo_request()), "closed"),
        "echo_unreachable_forged": (unreachable(our_echo_request(1)), "invalid-cookie"),
        "echo_unreachable_cut_quote": (unreachable(our_echo_request()[:24]), "not-ours"),
        "udp_reply": (udp, "open"),
        "udp_dns_answer": (dns_answer(), "open"),
        "udp_dns_answer_wrong_id": (dns_answer(1), "invalid-cookie"),
        "udp_reply_wrong_source_port": (udp_reply(dport_delta=1), "invalid-cookie"),
        "udp_reply_from_unprobed_port": (udp_reply(sport=9), "not-ours"),
        "udp_bad_checksum": (bytes(udp_bad_sum), "bad-checksum"),
        "udp_truncated": (udp[:14 + 20 + 6], "malformed"),
        # the XDP udp match once skipped this check (found by the differential fuzzer)
        "udp_ip_total_length_past_frame": (with_total_length(udp, len(udp) - 14 + 4),
                                           "malformed"),
        "udp_port_unreachable": (unreachable(our_datagram(), code=3), "closed"),
        "udp_admin_unreachable": (unreachable(our_datagram(53), code=13), "closed"),
        "udp_unreachable_forged_id": (unreachable(our_datagram(id_delta=1), code=3),
                                      "invalid-cookie"),
        "udp_unreachable_unprobed_port": (unreachable(our_datagram(9), code=3), "not-ours"),
    }
