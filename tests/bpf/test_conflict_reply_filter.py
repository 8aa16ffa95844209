"""The XDP reply filter's conflict counter for an unowned --source-ip (BPF_PROG_TEST_RUN):
another host claiming the address - a gratuitous ARP or any ARP with it as sender from another
MAC; IPv6: duplicate address detection for it, an advertisement for it, a solicitation from it -
bumps PYSCAN_RF_ARP_CONFLICT and is still passed to the kernel untouched (an extra count: the
frame is in `passed` too), while an ordinary request for the address is answered and is no
conflict. The rule is the RX-thread responder's (pyscan_arp__claims / pyscan_ndp__claims): for
every frame here both count the same."""

from __future__ import annotations

import os

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6NDOptSrcLLAddr, IPv6
from scapy.layers.l2 import ARP, Ether

pytestmark = [
    pytest.mark.bpf,
    pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF programs needs root"),
]

native = pytest.importorskip("pyscan.native")
from pyscan.probes import PROBES  # noqa: E402

BORROWED = "198.18.0.77"
BORROWED6 = "2001:2:0:ffff::77"
OUR_MAC = "02:00:00:00:00:aa"
OTHER_MAC = "02:00:00:00:00:02"
KEY = bytes.fromhex("8f0c2a11d35e49b07c66f1a2b9e04d13")
PORTS = range(40000, 40064)
SYN6 = PROBES["tcp-syn6"].id
LOOPBACK = 1  # the responder only sends answers; none of the frames it is given is one


def arp(*, op: int = 1, psrc: str = "198.18.0.2", pdst: str = BORROWED,
        hwsrc: str = OTHER_MAC) -> bytes:
    return bytes(Ether(src=hwsrc, dst="ff:ff:ff:ff:ff:ff")
                 / ARP(op=op, hwsrc=hwsrc, psrc=psrc, pdst=pdst))


def ndp(message: object, *, src: str, hwsrc: str = OTHER_MAC, option: bool = False) -> bytes:
    frame = (Ether(src=hwsrc, dst="33:33:ff:00:00:77")
             / IPv6(src=src, dst="ff02::1:ff00:77", hlim=255) / message)
    if option:
        frame = frame / ICMPv6NDOptSrcLLAddr(lladdr=hwsrc)
    return bytes(frame)


CLAIMS4 = {
    "gratuitous-request": arp(psrc=BORROWED),
    "gratuitous-reply": arp(op=2, psrc=BORROWED),
    "request-from-the-address": arp(psrc=BORROWED, pdst="198.18.0.2"),
}
NOT_CLAIMS4 = {
    "own-gratuitous": arp(psrc=BORROWED, hwsrc=OUR_MAC),
    "other-sender": arp(psrc="198.18.0.3", pdst="198.18.0.2"),
    "ip-to-the-address": bytes(Ether(src=OTHER_MAC) / IP(src="198.18.0.2", dst=BORROWED)
                               / TCP(dport=80)),
    "truncated": arp(psrc=BORROWED)[:30],
}
CLAIMS6 = {
    "dad": ndp(ICMPv6ND_NS(tgt=BORROWED6), src="::"),
    "advertisement": ndp(ICMPv6ND_NA(tgt=BORROWED6), src="2001:2:0:ffff::2"),
    "solicitation-from-the-address": ndp(ICMPv6ND_NS(tgt="2001:2:0:ffff::2"), src=BORROWED6,
                                         option=True),
}
NOT_CLAIMS6 = {
    "own-dad": ndp(ICMPv6ND_NS(tgt=BORROWED6), src="::", hwsrc=OUR_MAC),
    "dad-for-another": ndp(ICMPv6ND_NS(tgt="2001:2:0:ffff::78"), src="::"),
    "advertisement-for-another": ndp(ICMPv6ND_NA(tgt="2001:2:0:ffff::78"),
                                     src="2001:2:0:ffff::2"),
    "truncated": ndp(ICMPv6ND_NS(tgt=BORROWED6), src="::")[:70],
}


def arp_filter() -> native.ReplyFilter:
    return native.ReplyFilter(KEY, scanner_ip=BORROWED, ports=PORTS,
                              arp_answer=(BORROWED, OUR_MAC))


def ndp_filter() -> native.ReplyFilter:
    return native.ReplyFilter(KEY, ports=PORTS, probe=SYN6, arp_answer=(BORROWED6, OUR_MAC))


def responder_conflicts(address: str, frame: bytes) -> int:
    responder = native.ArpResponder(LOOPBACK, address, OUR_MAC)
    try:
        assert not responder.handle(frame)  # not answered: nothing is sent
        return responder.stats()["conflicts"]
    finally:
        responder.close()


def check_frame(loaded: native.ReplyFilter, address: str, frame: bytes, claims: bool) -> None:
    action, out = loaded.test_run_frame(frame)
    assert (action, out) == ("XDP_PASS", frame)
    counters = loaded.counters()
    assert counters["arp_conflict"] == int(claims)
    assert counters["passed"] == 1 and counters["arp_replied"] == 0
    assert counters["seen"] == counters["matched"] + counters["passed"] + counters["arp_replied"]
    assert responder_conflicts(address, frame) == int(claims)


@pytest.mark.parametrize(("frame", "claims"),
                         [*((f, True) for f in CLAIMS4.values()),
                          *((f, False) for f in NOT_CLAIMS4.values())],
                         ids=[*CLAIMS4, *NOT_CLAIMS4])
def test_an_arp_claiming_the_address_is_counted_and_passed(frame: bytes, claims: bool) -> None:
    with arp_filter() as loaded:
        check_frame(loaded, BORROWED, frame, claims)


@pytest.mark.parametrize(("frame", "claims"),
                         [*((f, True) for f in CLAIMS6.values()),
                          *((f, False) for f in NOT_CLAIMS6.values())],
                         ids=[*CLAIMS6, *NOT_CLAIMS6])
def test_neighbour_discovery_claiming_the_address_is_counted_and_passed(
        frame: bytes, claims: bool) -> None:
    with ndp_filter() as loaded:
        check_frame(loaded, BORROWED6, frame, claims)


def test_an_ordinary_request_is_answered_and_is_no_conflict() -> None:
    with arp_filter() as loaded:
        action, _ = loaded.test_run_frame(arp())
        assert action == "XDP_TX"
        assert loaded.counters()["arp_replied"] == 1
        assert loaded.counters()["arp_conflict"] == 0
    with ndp_filter() as loaded:
        action, _ = loaded.test_run_frame(
            ndp(ICMPv6ND_NS(tgt=BORROWED6), src="2001:2:0:ffff::2", option=True))
        assert action == "XDP_TX"
        assert loaded.counters()["arp_replied"] == 1
        assert loaded.counters()["arp_conflict"] == 0


@pytest.mark.parametrize("frame", [CLAIMS4["gratuitous-request"], CLAIMS6["dad"]],
                         ids=["gratuitous", "dad"])
def test_an_owned_address_filter_counts_no_conflict(frame: bytes) -> None:
    with native.ReplyFilter(KEY, scanner_ip=BORROWED, ports=PORTS) as loaded:
        assert loaded.test_run_frame(frame) == ("XDP_PASS", frame)
        assert loaded.counters()["arp_conflict"] == 0
