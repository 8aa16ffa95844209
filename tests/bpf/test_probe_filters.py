"""The XDP matches of icmp-echo (probe_icmp_echo4.h), udp (probe_udp4.h) and tcp-syn's ICMP
errors (probe_tcp_syn4.h) on crafted frames (BPF_PROG_TEST_RUN), with cookies from an
independent SipHash (siphashc); the probe mask enables each module's branch, and a disabled
module's replies pass."""

from __future__ import annotations

import os
from collections.abc import Iterator
from ipaddress import IPv4Address

import pytest
import siphashc
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether

pytestmark = [
    pytest.mark.bpf,
    pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF programs needs root"),
]

native = pytest.importorskip("pyscan.native")
from pyscan.probes import PROBES  # noqa: E402  (after the skip: needs the extension)

SCANNER = IPv4Address("198.18.0.1")
TARGET = IPv4Address("198.19.7.9")
SOURCE_PORTS = range(40000, 40064)
KEY = bytes.fromhex("8f0c2a11d35e49b07c66f1a2b9e04d13")
MATCHED = {"seen": 1, "matched": 1, "passed": 0, "unqueued": 1,
           "arp_replied": 0, "arp_conflict": 0}  # empty XSKMAP
PASSED = {"seen": 1, "matched": 0, "passed": 1, "unqueued": 0, "arp_replied": 0,
          "arp_conflict": 0}
ECHO, UDP_ID, SYN = PROBES["icmp-echo"].id, PROBES["udp"].id, PROBES["tcp-syn"].id


def ref_cookie(saddr: IPv4Address, daddr: IPv4Address, sport: int, dport: int) -> int:
    message = saddr.packed + daddr.packed + sport.to_bytes(2, "big") + dport.to_bytes(2, "big")
    return siphashc.siphash(KEY, message) & 0xFFFFFFFF


def udp_source_port(target: IPv4Address, port: int) -> tuple[int, int]:
    value = ref_cookie(SCANNER, target, 0, port)
    return SOURCE_PORTS.start + ((value * len(SOURCE_PORTS)) >> 32), value


def frame(layer: object, src: IPv4Address = TARGET) -> bytes:
    return bytes(Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01")
                 / IP(src=str(src), dst=str(SCANNER)) / layer)


def echo_reply(target: IPv4Address = TARGET, delta: int = 0) -> bytes:
    value = (ref_cookie(SCANNER, target, 0, 0) + delta) & 0xFFFFFFFF
    return frame(ICMP(type=0, id=value >> 16, seq=value & 0xFFFF), src=target)


def echo_unreachable(delta: int = 0) -> bytes:
    value = (ref_cookie(SCANNER, TARGET, 0, 0) + delta) & 0xFFFFFFFF
    quote = bytes(IP(src=str(SCANNER), dst=str(TARGET))
                  / ICMP(type=8, id=value >> 16, seq=value & 0xFFFF))
    return frame(ICMP(type=3, code=1) / quote, src=IPv4Address("198.18.0.2"))


def udp_reply(port: int = 53, shift: int = 0) -> bytes:
    sport, _ = udp_source_port(TARGET, port)
    dport = SOURCE_PORTS.start + (sport - SOURCE_PORTS.start + shift) % len(SOURCE_PORTS)
    return frame(UDP(sport=port, dport=dport) / b"answer")


def port_unreachable(ip_id_delta: int = 0) -> bytes:
    sport, value = udp_source_port(TARGET, 161)
    quote = bytes(IP(src=str(SCANNER), dst=str(TARGET), id=(value + ip_id_delta) & 0xFFFF)
                  / UDP(sport=sport, dport=161))[:28]
    return frame(ICMP(type=3, code=3) / quote)


@pytest.fixture
def loaded(request: pytest.FixtureRequest) -> Iterator[native.ReplyFilter]:
    with native.ReplyFilter(KEY, scanner_ip=SCANNER, ports=SOURCE_PORTS,
                            probe=request.param) as reply_filter:
        yield reply_filter


def run(reply_filter: native.ReplyFilter, data: bytes) -> dict[str, int]:
    before = reply_filter.counters()
    assert reply_filter.test_run(data) == "XDP_PASS"
    after = reply_filter.counters()
    return {name: after[name] - before[name] for name in after}


@pytest.mark.parametrize("loaded", [(ECHO,), (SYN, ECHO, UDP_ID)], indirect=True)
def test_echo_replies_and_unreachables_with_the_cookie_match(loaded: native.ReplyFilter
                                                             ) -> None:
    assert run(loaded, echo_reply()) == MATCHED
    assert run(loaded, echo_unreachable()) == MATCHED
    assert run(loaded, echo_reply(delta=1)) == PASSED
    assert run(loaded, echo_reply(target=IPv4Address("198.19.7.10"), delta=5)) == PASSED
    assert run(loaded, echo_unreachable(delta=1)) == PASSED
    assert run(loaded, frame(ICMP(type=8))) == PASSED  # a request to us is not a reply


@pytest.mark.parametrize("loaded", [(UDP_ID,), (SYN, ECHO, UDP_ID)], indirect=True)
def test_udp_replies_to_the_cookies_port_and_quoted_probes_match(loaded: native.ReplyFilter
                                                                 ) -> None:
    assert run(loaded, udp_reply()) == MATCHED
    assert run(loaded, udp_reply(port=123)) == MATCHED
    assert run(loaded, udp_reply(shift=1)) == PASSED
    assert run(loaded, port_unreachable()) == MATCHED
    assert run(loaded, port_unreachable(ip_id_delta=1)) == PASSED


@pytest.mark.parametrize("loaded", [(SYN,)], indirect=True)
def test_a_disabled_module_passes_its_replies(loaded: native.ReplyFilter) -> None:
    for data in (echo_reply(), echo_unreachable(), udp_reply(), port_unreachable()):
        assert run(loaded, data) == PASSED


@pytest.mark.parametrize("loaded", [(ECHO, UDP_ID)], indirect=True)
def test_tcp_passes_when_tcp_syn_is_not_in_the_scan(loaded: native.ReplyFilter) -> None:
    ack = ref_cookie(SCANNER, TARGET, 40007, 443) + 1
    assert run(loaded, frame(TCP(sport=443, dport=40007, flags="SA", ack=ack))) == PASSED


def syn_unreachable(code: int = 1, seq_delta: int = 0, sport: int = 40007) -> bytes:
    """A router's host unreachable (or another code) quoting the scan's SYN to TARGET:443."""
    seq = (ref_cookie(SCANNER, TARGET, sport, 443) + seq_delta) & 0xFFFFFFFF
    quote = bytes(IP(src=str(SCANNER), dst=str(TARGET)) / TCP(sport=sport, dport=443,
                                                                  flags="S", seq=seq))[:28]
    return frame(ICMP(type=3, code=code) / quote, src=IPv4Address("198.18.0.77"))


@pytest.mark.parametrize("loaded", [(SYN,), (SYN, ECHO, UDP_ID)], indirect=True)
def test_unreachables_quoting_a_syn_match_on_the_quoted_cookie(loaded: native.ReplyFilter
                                                                ) -> None:
    for code in (0, 1, 3, 10, 13):
        assert run(loaded, syn_unreachable(code)) == MATCHED, code
    assert run(loaded, syn_unreachable(seq_delta=1)) == PASSED
    assert run(loaded, syn_unreachable(sport=SOURCE_PORTS.stop)) == PASSED


@pytest.mark.parametrize("loaded", [(ECHO, UDP_ID)], indirect=True)
def test_syn_unreachables_pass_when_tcp_syn_is_not_in_the_scan(loaded: native.ReplyFilter
                                                                ) -> None:
    assert run(loaded, syn_unreachable()) == PASSED
