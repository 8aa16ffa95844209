"""The bench's arithmetic and parsing on inputs whose answers are known by hand."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pyscan.bench import (
    BenchReport,
    QueueFigures,
    line_rate_fraction,
    line_rate_pps,
    link_speed_mbps,
    ns_per_packet,
    parse_ethtool_queue_counters,
    ratio,
    summarize,
    wire_bits_per_second,
    wire_bytes,
)


@pytest.mark.parametrize(
    ("frame_len", "expected"),
    [
        (54, 84),     # short SYN: padded to the 64-byte minimum, + 20 preamble/SFD/IFG
        (60, 84),     # 60 + 4 FCS = 64 exactly
        (61, 85),     # one byte over the minimum
        (1514, 1538),  # full-size frame: 1518 with FCS + 20
    ],
)
def test_wire_bytes_counts_fcs_minimum_and_overhead(frame_len: int, expected: int) -> None:
    assert wire_bytes(frame_len) == expected


def test_wire_bytes_rejects_empty_frame() -> None:
    with pytest.raises(ValueError, match="frame length 0"):
        wire_bytes(0)


def test_ten_gig_line_rate_for_minimum_frames_is_14_88_mpps() -> None:
    assert line_rate_pps(10_000, 60) == pytest.approx(14_880_952.38, rel=1e-9)
    assert line_rate_pps(1_000, 1514) == pytest.approx(81_274.38, rel=1e-6)


def test_wire_bit_rate_of_line_rate_is_the_link_speed() -> None:
    pps = line_rate_pps(25_000, 60)
    assert wire_bits_per_second(pps, 60) == pytest.approx(25e9)
    assert wire_bits_per_second(1_000_000, 54) == 672e6  # 84 bytes * 8 bits * 1 M


def test_line_rate_fraction_known_and_unknown_speed() -> None:
    assert line_rate_fraction(7_440_476.19, 60, 10_000) == pytest.approx(0.5, rel=1e-6)
    assert line_rate_fraction(1e6, 60, None) is None
    assert line_rate_fraction(1e6, 60, 0) is None


def test_ratio_and_ns_per_packet_handle_missing_values() -> None:
    assert ratio(450.0, 500.0) == pytest.approx(0.9)
    assert ratio(None, 5.0) is None
    assert ratio(5.0, 0.0) is None
    assert ns_per_packet(2_000_000_000, 1_000_000) == 2000.0
    assert ns_per_packet(5, 0) is None


def test_summarize_median_and_spread() -> None:
    spread = summarize([3.0, 1.0, 2.0, 10.0])
    assert spread.median == 2.5
    assert (spread.low, spread.high, spread.runs) == (1.0, 10.0, 4)
    assert spread.relative == pytest.approx(9.0 / 2.5)
    assert summarize([4.0]).relative == 0.0
    with pytest.raises(ValueError):
        summarize([])


ETHTOOL_VETH = """\
NIC statistics:
     peer_ifindex: 6
     rx_queue_0_xdp_packets: 1162759
     rx_queue_0_xdp_bytes: 69765540
     rx_queue_0_drops: 0
     rx_queue_0_xdp_drops: 1162759
     rx_queue_1_xdp_packets: 2
     rx_queue_1_xdp_bytes: 152
     tx_queue_0_xdp_xmit: 7
"""


def test_parse_ethtool_queue_counters_reads_only_xdp_packets_per_queue() -> None:
    assert parse_ethtool_queue_counters(ETHTOOL_VETH) == {0: 1162759, 1: 2}
    assert parse_ethtool_queue_counters("NIC statistics:\n     peer_ifindex: 6\n") == {}


def test_link_speed_reads_sysfs_and_treats_veth_as_unknown(tmp_path: Path) -> None:
    for name, text in (("eth0", "10000\n"), ("veth0", "-1\n"), ("odd", "n/a\n")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "speed").write_text(text)
    assert link_speed_mbps("eth0", tmp_path) == 10000
    assert link_speed_mbps("veth0", tmp_path) is None
    assert link_speed_mbps("odd", tmp_path) is None
    assert link_speed_mbps("missing", tmp_path) is None


def test_report_round_trips_through_json() -> None:
    report = BenchReport(
        driver="null", interface="-", description="no I/O", tx_threads=1, frame_len=60,
        requested_rate=None, wall_s=1.0, sent=10, driver_drops=0, driver_retries=0, pps=10.0,
        wire_bps=wire_bits_per_second(10.0, 60), link_speed_mbps=None,
        line_rate_fraction=None, cpu_ns=1000, ns_per_packet=100.0,
        queues=[QueueFigures(queue=0, sent=10, cpu_ns=1000, pps=10.0, ns_per_packet=100.0)],
    )
    import json

    again = BenchReport.from_mapping(json.loads(report.to_json()))
    assert again == report
    assert math.isclose(again.wire_bps, 6720.0)
