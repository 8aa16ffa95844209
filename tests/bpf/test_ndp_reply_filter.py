"""The XDP reply filter's neighbour-discovery answer for an unowned IPv6 --source-ip
(BPF_PROG_TEST_RUN): a solicitation for the address comes back rewritten into the solicited
advertisement with XDP_TX (XDP_REDIRECT in veth mode), everything else - duplicate address
detection for the address included - passes to the kernel untouched, and a filter of an owned
address, or of an IPv4 one, answers no solicitation. The answer must equal the RX-thread
responder's byte for byte (one rewrite, ndp_reply.h)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from scapy.layers.inet import TCP
from scapy.layers.inet6 import (
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
    in6_chksum,
)
from scapy.layers.l2 import Ether

pytestmark = [
    pytest.mark.bpf,
    pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF programs needs root"),
]

native = pytest.importorskip("pyscan.native")
from pyscan.probes import PROBES  # noqa: E402

BORROWED = "2001:2:0:ffff::77"
ASKER_IP = "2001:2:0:ffff::2"
OUR_MAC = "02:00:00:00:00:aa"
ASKER_MAC = "02:00:00:00:00:02"
KEY = bytes.fromhex("8f0c2a11d35e49b07c66f1a2b9e04d13")
PORTS = range(40000, 40064)
SYN6 = PROBES["tcp-syn6"].id


def solicitation(*, tgt: str = BORROWED, src: str = ASKER_IP, hwsrc: str = ASKER_MAC,
                 hlim: int = 255, option: bool = True) -> bytes:
    frame = (Ether(src=hwsrc, dst="33:33:ff:00:00:77")
             / IPv6(src=src, dst="ff02::1:ff00:77", hlim=hlim) / ICMPv6ND_NS(tgt=tgt))
    if option:
        frame = frame / ICMPv6NDOptSrcLLAddr(lladdr=hwsrc)
    return bytes(frame)


@pytest.fixture
def ndp_filter() -> Iterator[native.ReplyFilter]:
    with native.ReplyFilter(KEY, ports=PORTS, probe=SYN6,
                            arp_answer=(BORROWED, OUR_MAC)) as loaded:
        yield loaded


def test_a_solicitation_for_the_address_is_sent_back_as_its_advertisement(ndp_filter) -> None:
    action, out = ndp_filter.test_run_frame(solicitation())
    assert action == "XDP_TX"
    frame = Ether(out)
    assert (frame.dst, frame.src) == (ASKER_MAC, OUR_MAC)
    assert (frame[IPv6].src, frame[IPv6].dst, frame[IPv6].hlim) == (BORROWED, ASKER_IP, 255)
    na = frame[ICMPv6ND_NA]
    assert (na.S, na.O, na.R, na.tgt) == (1, 1, 0, BORROWED)
    assert frame[ICMPv6NDOptDstLLAddr].lladdr == OUR_MAC
    message = bytes(na)
    assert in6_chksum(58, frame[IPv6], message[:2] + b"\0\0" + message[4:]) == na.cksum
    # the same rewrite as the RX thread's responder
    assert native.build_ndp_reply(solicitation(), BORROWED, OUR_MAC) == out
    counters = ndp_filter.counters()
    assert counters["arp_replied"] == 1 and counters["passed"] == 0
    assert counters["seen"] == counters["matched"] + counters["passed"] + counters["arp_replied"]


@pytest.mark.parametrize("frame", [
    solicitation(tgt="2001:2:0:ffff::78"),
    solicitation(src="::", option=False),
    solicitation(hwsrc=OUR_MAC),
    solicitation(hlim=64),
    solicitation(option=False),
    solicitation()[:70],
    bytes(Ether(src=ASKER_MAC, dst=OUR_MAC) / IPv6(src=ASKER_IP, dst=BORROWED, hlim=255)
          / ICMPv6ND_NA(tgt=BORROWED) / ICMPv6NDOptDstLLAddr(lladdr=ASKER_MAC)),
    bytes(Ether(src=ASKER_MAC) / IPv6(src=ASKER_IP, dst=BORROWED) / TCP(dport=80)),
], ids=["other-target", "dad", "own-mac", "hop-limit", "no-option", "truncated",
        "advertisement", "ip-to-the-address"])
def test_everything_else_passes_untouched(ndp_filter, frame: bytes) -> None:
    action, out = ndp_filter.test_run_frame(frame)
    assert action == "XDP_PASS"
    assert out == frame
    assert ndp_filter.counters()["arp_replied"] == 0


def test_veth_mode_redirects_the_answer_to_the_receiving_device() -> None:
    with native.ReplyFilter(KEY, ports=PORTS, probe=SYN6, arp_answer=(BORROWED, OUR_MAC),
                            arp_redirect=True) as loaded:
        action, out = loaded.test_run_frame(solicitation())
        assert action == "XDP_REDIRECT"
        assert Ether(out)[ICMPv6ND_NA].tgt == BORROWED
        assert loaded.counters()["arp_replied"] == 1


@pytest.mark.parametrize("arp_answer", [None, ("198.18.0.77", OUR_MAC)], ids=["owned", "ipv4"])
def test_a_filter_without_an_ipv6_address_answers_no_solicitation(arp_answer) -> None:
    with native.ReplyFilter(KEY, ports=PORTS, probe=SYN6, arp_answer=arp_answer) as loaded:
        action, out = loaded.test_run_frame(solicitation())
        assert (action, out) == ("XDP_PASS", solicitation())
        assert loaded.counters()["arp_replied"] == 0
