"""The ARP answer for an unowned --source-ip (pyscan/bpf/arp_reply.h, built through
arp_responder.c): which frames are answered and what the answer says, checked by scapy; and
af-packet's classic filter prefix that lets those requests reach the RX thread, run by
libpcap's interpreter. No root: nothing is sent."""

from __future__ import annotations

import ctypes
import ctypes.util

import pytest
from scapy.layers.l2 import ARP, Dot1Q, Ether

from pyscan.native import (
    ARP_REPLY_LEN,
    afpacket_arp_prefix,
    afpacket_reply_filter,
    build_arp_reply,
    build_arp_request,
)

BORROWED = "198.18.0.77"
OUR_MAC = "02:00:00:00:00:aa"
ASKER_MAC = "02:00:00:00:00:02"
ASKER_IP = "198.18.0.2"


def request(*, pdst: str = BORROWED, psrc: str = ASKER_IP, hwsrc: str = ASKER_MAC,
            op: int = 1, eth_dst: str = "ff:ff:ff:ff:ff:ff", **arp: object) -> bytes:
    return bytes(Ether(src=hwsrc, dst=eth_dst)
                 / ARP(op=op, hwsrc=hwsrc, psrc=psrc, pdst=pdst, **arp))


def test_a_request_for_the_address_gets_our_mac_back_to_the_asker() -> None:
    answer = build_arp_reply(request(), BORROWED, OUR_MAC)
    assert answer is not None and len(answer) == ARP_REPLY_LEN == 60
    frame = Ether(answer)
    assert (frame.dst, frame.src, frame.type) == (ASKER_MAC, OUR_MAC, 0x0806)
    arp = frame[ARP]
    assert (arp.hwtype, arp.ptype, arp.hwlen, arp.plen, arp.op) == (1, 0x0800, 6, 4, 2)
    assert (arp.hwsrc, arp.psrc, arp.hwdst, arp.pdst) == (OUR_MAC, BORROWED, ASKER_MAC,
                                                           ASKER_IP)
    assert answer[42:] == bytes(18)          # padding is zeros, never the request's bytes


def test_a_unicast_refresh_and_a_probe_from_0_0_0_0_are_answered() -> None:
    refresh = build_arp_reply(request(eth_dst=OUR_MAC), BORROWED, OUR_MAC)
    assert refresh is not None and Ether(refresh)[ARP].pdst == ASKER_IP
    # RFC 5227 probe: the asker checks whether the address is free; it is ours while we scan
    probe = build_arp_reply(request(psrc="0.0.0.0"), BORROWED, OUR_MAC)
    assert probe is not None and Ether(probe)[ARP].pdst == "0.0.0.0"


def test_a_padded_request_is_answered_like_a_bare_one() -> None:
    padded = request() + bytes(18)
    assert build_arp_reply(padded, BORROWED, OUR_MAC) == build_arp_reply(request(), BORROWED,
                                                                         OUR_MAC)


@pytest.mark.parametrize("frame", [
    request(pdst="198.18.0.1"),                                  # another address
    request(op=2),                                               # a reply, not a request
    request(psrc=BORROWED),                                      # gratuitous: someone claims it
    request(hwsrc=OUR_MAC),                                      # our own request, looped back
    request(hwtype=6),                                           # not Ethernet
    request(ptype=0x86DD),                                       # not IPv4
    request()[:41],                                              # truncated
    bytes(Ether(src=ASKER_MAC, dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=5)
          / ARP(op=1, hwsrc=ASKER_MAC, psrc=ASKER_IP, pdst=BORROWED)),  # tagged: not ours
    b"",
], ids=["other-address", "reply", "gratuitous", "own-mac", "htype", "ptype", "truncated",
        "vlan", "empty"])
def test_everything_else_is_left_alone(frame: bytes) -> None:
    assert build_arp_reply(frame, BORROWED, OUR_MAC) is None


def test_the_priming_request_asks_the_gateway_from_the_borrowed_address() -> None:
    frame = Ether(build_arp_request(BORROWED, OUR_MAC, ASKER_IP))
    assert (frame.dst, frame.src) == ("ff:ff:ff:ff:ff:ff", OUR_MAC)
    arp = frame[ARP]
    assert (arp.op, arp.hwsrc, arp.psrc, arp.hwdst, arp.pdst) == (
        1, OUR_MAC, BORROWED, "00:00:00:00:00:00", ASKER_IP)
    assert len(bytes(frame)) == 60


class _Classic:
    """libpcap's bpf_filter() over af-packet's ARP prefix in front of its reply program."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("pcap")
        if name is None:
            pytest.skip("libpcap is not installed")
        self._pcap = ctypes.CDLL(name)
        self._pcap.bpf_filter.restype = ctypes.c_uint
        self._pcap.bpf_filter.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint,
                                          ctypes.c_uint]
        code = afpacket_arp_prefix(BORROWED) + afpacket_reply_filter(range(40000, 40064))
        self._code = ctypes.create_string_buffer(code, len(code))

    def accepts(self, frame: bytes) -> bool:
        return self._pcap.bpf_filter(self._code, frame, len(frame), len(frame)) != 0


def test_the_classic_prefix_passes_requests_for_the_address_only() -> None:
    from scapy.layers.inet import IP, TCP

    classic = _Classic()
    assert classic.accepts(request())
    assert classic.accepts(request(eth_dst=OUR_MAC))
    assert not classic.accepts(request(pdst="198.18.0.1"))
    assert not classic.accepts(request(op=2))
    # a frame that is not ARP still goes through the reply program behind the prefix
    syn_ack = bytes(Ether() / IP(src="198.19.0.9", dst=BORROWED)
                    / TCP(sport=80, dport=40001, flags="SA"))
    assert classic.accepts(syn_ack)
    assert not classic.accepts(bytes(Ether() / IP(src="198.19.0.9", dst=BORROWED)
                                     / TCP(sport=80, dport=39999, flags="SA")))


def test_the_summary_has_an_arp_line_only_for_an_unowned_source() -> None:
    import json

    from pyscan.scanner import Summary
    from pyscan.status import render_summary, summary_json

    base = dict(targets=8, ports=1, probes=8, sent=8, tx_errors=0, duration=1.0,
                send_duration=0.1, replies=8, valid=8, invalid_cookies=0, open=1, closed=7,
                duplicates=0, driver_drops=0, driver="af-packet", driver_description="",
                seed=7, shard=(1, 1), interrupted=False)
    owned = Summary(**base)  # type: ignore[arg-type]
    assert "  arp " not in render_summary(owned)
    assert json.loads(summary_json(owned))["arp_replies"] is None
    unowned = Summary(**base, arp_replies=3)  # type: ignore[arg-type]
    assert "  arp        3 requests for the source address answered" in render_summary(unowned)
    assert "warning" not in render_summary(unowned)
    claimed = Summary(**base, arp_replies=3, arp_conflicts=2)  # type: ignore[arg-type]
    assert "warning: 2 ARP frames from another host claiming it" in render_summary(claimed)
    assert json.loads(summary_json(claimed))["arp_conflicts"] == 2


def test_the_summary_line_of_an_ipv6_scan_is_labelled_ndp() -> None:
    import json

    from pyscan.scanner import Summary
    from pyscan.status import render_summary, summary_json

    base = dict(targets=8, ports=1, probes=8, sent=8, tx_errors=0, duration=1.0,
                send_duration=0.1, replies=8, valid=8, invalid_cookies=0, open=1, closed=7,
                duplicates=0, driver_drops=0, driver="af-xdp", driver_description="",
                seed=7, shard=(1, 1), interrupted=False)
    ipv6 = render_summary(Summary(**base, arp_replies=3, family=6))  # type: ignore[arg-type]
    assert "  ndp        3 neighbour solicitations for the source address answered" in ipv6
    assert "  arp " not in ipv6 and "warning" not in ipv6
    claimed = Summary(**base, arp_replies=3, arp_conflicts=2, family=6)  # type: ignore[arg-type]
    assert ("warning: 2 neighbour discovery frames from another host claiming it"
            in render_summary(claimed))
    assert json.loads(summary_json(claimed))["family"] == 6
    ipv4 = render_summary(Summary(**base, arp_replies=3, family=4))  # type: ignore[arg-type]
    assert "  arp        3 requests" in ipv4 and "ndp" not in ipv4
