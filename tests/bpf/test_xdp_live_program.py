"""The xdp-live TX program on frames the engine would write (BPF_PROG_TEST_RUN without the
live flag, so nothing is transmitted): each run turns the template into the next slot's frame,
byte for byte, whatever the slot's length, and redirects it; bad slots are dropped and counted.
"""

from __future__ import annotations

import os

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

pytestmark = [
    pytest.mark.bpf,
    pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF programs needs root"),
]

native = pytest.importorskip("pyscan.native")
xdp_live = pytest.importorskip("pyscan.native.xdp_live")

XDP_DROP, XDP_REDIRECT = 1, 4


def probe(i: int) -> bytes:
    return native.build_syn("02:00:00:00:00:01", "02:00:00:00:00:02", "198.18.0.1",
                            f"198.19.{i // 250}.{i % 250 + 1}", 40000 + i, 80 + i,
                            seq=0x1000 * i + 7, ip_id=i)


@pytest.fixture
def live() -> xdp_live.XdpLive:
    with xdp_live.XdpLive(ifindex=1, runners=1, frame_len=native.SYN_FRAME_LEN) as opened:
        yield opened


def test_each_run_sends_the_next_slot_byte_for_byte(live: xdp_live.XdpLive) -> None:
    frames = [probe(i) for i in range(300)]
    results = live.test_fill(frames)
    assert [action for action, _ in results] == [XDP_REDIRECT] * len(frames)
    assert [out for _, out in results] == frames
    parsed = Ether(results[299][1])
    assert parsed[IP].dst == "198.19.1.50" and parsed[TCP].dport == 379
    assert parsed[TCP].flags == "S"


def test_a_slot_longer_or_shorter_than_the_template_changes_the_frame_length(
        live: xdp_live.XdpLive) -> None:
    padded = probe(1) + bytes(range(40))           # 98 bytes: the tail grows
    short = probe(2)[:54]                           # 54 bytes: the tail shrinks
    results = live.test_fill([padded, short, probe(3)])
    assert [action for action, _ in results] == [XDP_REDIRECT] * 3
    assert [out for _, out in results] == [padded, short, probe(3)]


def test_an_unsendable_slot_is_dropped_and_counted_never_redirected(
        live: xdp_live.XdpLive) -> None:
    results = live.test_fill([b"\x00" * 10, probe(4)])
    assert results[0][0] == XDP_DROP
    assert results[1] == (XDP_REDIRECT, probe(4))
    assert live.counters()["rejected"] == 1


def test_the_kernel_runs_it_in_live_frames_mode() -> None:
    usable, reason = xdp_live.xdplive_probe()
    assert usable, reason
