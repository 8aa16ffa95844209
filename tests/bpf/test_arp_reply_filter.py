"""The XDP reply filter's ARP answer for an unowned --source-ip (BPF_PROG_TEST_RUN): a request
for the address comes back rewritten into the reply with XDP_TX (XDP_REDIRECT in veth mode),
everything else passes to the kernel untouched, and an owned-address filter answers nothing.
The answer must equal the RX-thread responder's byte for byte (one rewrite, arp_reply.h)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import ARP, Ether

pytestmark = [
    pytest.mark.bpf,
    pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF programs needs root"),
]

native = pytest.importorskip("pyscan.native")

BORROWED = "198.18.0.77"
OUR_MAC = "02:00:00:00:00:aa"
ASKER_MAC = "02:00:00:00:00:02"
KEY = bytes.fromhex("8f0c2a11d35e49b07c66f1a2b9e04d13")
PORTS = range(40000, 40064)


def request(*, pdst: str = BORROWED, psrc: str = "198.18.0.2", hwsrc: str = ASKER_MAC,
            op: int = 1) -> bytes:
    return bytes(Ether(src=hwsrc, dst="ff:ff:ff:ff:ff:ff")
                 / ARP(op=op, hwsrc=hwsrc, psrc=psrc, pdst=pdst))


@pytest.fixture
def arp_filter() -> Iterator[native.ReplyFilter]:
    with native.ReplyFilter(KEY, scanner_ip=BORROWED, ports=PORTS,
                            arp_answer=(BORROWED, OUR_MAC)) as loaded:
        yield loaded


def test_a_request_for_the_address_is_sent_back_as_its_reply(arp_filter) -> None:
    action, out = arp_filter.test_run_frame(request())
    assert action == "XDP_TX"
    frame = Ether(out)
    assert (frame.dst, frame.src) == (ASKER_MAC, OUR_MAC)
    arp = frame[ARP]
    assert (arp.op, arp.hwsrc, arp.psrc, arp.hwdst, arp.pdst) == (
        2, OUR_MAC, BORROWED, ASKER_MAC, "198.18.0.2")
    # the same rewrite as the RX thread's responder (which pads to 60 bytes)
    assert native.build_arp_reply(request(), BORROWED, OUR_MAC)[:len(out)] == out
    counters = arp_filter.counters()
    assert counters["arp_replied"] == 1 and counters["passed"] == 0
    assert counters["seen"] == counters["matched"] + counters["passed"] + counters["arp_replied"]


@pytest.mark.parametrize("frame", [
    request(pdst="198.18.0.1"),
    request(op=2),
    request(psrc=BORROWED),
    request(hwsrc=OUR_MAC),
    request()[:30],
    bytes(Ether(src=ASKER_MAC) / IP(src="198.18.0.2", dst=BORROWED) / TCP(dport=80)),
], ids=["other-address", "reply", "gratuitous", "own-mac", "truncated", "ip-to-the-address"])
def test_everything_else_passes_untouched(arp_filter, frame: bytes) -> None:
    action, out = arp_filter.test_run_frame(frame)
    assert action == "XDP_PASS"
    assert out == frame
    assert arp_filter.counters()["arp_replied"] == 0


def test_veth_mode_redirects_the_answer_to_the_receiving_device() -> None:
    with native.ReplyFilter(KEY, scanner_ip=BORROWED, ports=PORTS,
                            arp_answer=(BORROWED, OUR_MAC), arp_redirect=True) as loaded:
        action, out = loaded.test_run_frame(request())
        assert action == "XDP_REDIRECT"
        assert Ether(out)[ARP].op == 2
        assert loaded.counters()["arp_replied"] == 1


def test_an_owned_address_filter_answers_no_arp() -> None:
    with native.ReplyFilter(KEY, scanner_ip=BORROWED, ports=PORTS) as loaded:
        action, out = loaded.test_run_frame(request())
        assert (action, out) == ("XDP_PASS", request())
        assert loaded.counters()["arp_replied"] == 0
