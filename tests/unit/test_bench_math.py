"""The bench's arithmetic and parsing on inputs whose answers are known by hand."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pyscan.bench_command import (
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


# --- the bench suite's parsing and arithmetic (bench/) ----------------------------------------

from ipaddress import IPv4Address  # noqa: E402

from bench.accuracy import (  # noqa: E402
    parse_masscan_list,
    parse_ndjson_open,
    parse_zmap_addresses,
    score,
)
from bench.contenders import (  # noqa: E402
    check_lab_targets,
    masscan_echo_ranges,
    parse_bare_output,
)
from bench.report import group_rates, target_checks, tx_table  # noqa: E402
from bench.sinklab import SinkSamples, SinkSnapshot  # noqa: E402
from pyscan.bench_command import BenchError  # noqa: E402


def test_steady_rate_excludes_start_up_and_tail() -> None:
    # idle 0-1 s, 1000 frames/s from 1 s to 5 s (one odd sample at the edges), idle after
    samples = SinkSamples(
        times=[0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 5.5, 6.0],
        totals=[0, 0, 0, 400, 1000, 2000, 3000, 4000, 4000, 4000],
    )
    # inside: totals strictly between 0 and 4000 -> samples at 1.5 .. 4.0 s
    assert samples.steady_rate() == pytest.approx((3000 - 400) / (4.0 - 1.5))


def test_steady_rate_needs_two_samples_while_sending() -> None:
    assert SinkSamples(times=[0, 1, 2, 3], totals=[0, 0, 10, 10]).steady_rate() is None
    assert SinkSamples(times=[0, 1], totals=[0, 5]).steady_rate() is None


def test_sink_snapshot_difference_and_mean_frame_length() -> None:
    before = SinkSnapshot({0: 100, 1: 7}, {0: 4600, 1: 322})
    after = SinkSnapshot({0: 1100, 1: 7}, {0: 4600 + 46_000, 1: 322})
    delta = after.since(before)
    assert delta.frames == {0: 1000, 1: 0}
    assert delta.total_frames == 1000
    assert delta.mean_frame_len == 60  # veth counts 46 bytes past the 14-byte Ethernet header
    assert SinkSnapshot({}, {}).mean_frame_len is None


def test_parse_bare_output_takes_the_json_line() -> None:
    text = 'warning: something\n{"loop": "bare_tpacket", "sent": 5, "wall_ns": 10, "cpu_ns": 3}\n'
    assert parse_bare_output(text)["sent"] == 5
    with pytest.raises(BenchError, match="no report"):
        parse_bare_output("segfault\n")
    with pytest.raises(BenchError, match="lacks"):
        parse_bare_output('{"loop": "x"}')


MASSCAN_ECHO = """\
rate =  100000.00
adapter = pb1s
router-mac = 02:00:00:00:00:02
# TARGET SELECTION (IP, PORTS, EXCLUDES)
ports = 22,80
range = 198.19.0.0/16
range = 198.18.0.4-198.18.0.7
"""


def test_masscan_echo_ranges_and_the_lab_range_check() -> None:
    ranges = masscan_echo_ranges(MASSCAN_ECHO)
    assert ranges == ["198.19.0.0/16", "198.18.0.4-198.18.0.7"]
    check_lab_targets(ranges)
    with pytest.raises(BenchError, match=r"refusing to scan 10\.0\.0\.0/8"):
        check_lab_targets(["198.19.0.0/16", "10.0.0.0/8"])
    with pytest.raises(BenchError, match="outside the lab range"):
        check_lab_targets(["198.19.255.0-198.20.0.5"])
    with pytest.raises(BenchError):
        check_lab_targets(["198.16.0.0/12"])  # contains the lab range but is larger


def test_accuracy_score_counts_recall_false_positives_and_duplicates() -> None:
    a, b, c, d = (IPv4Address(f"198.19.0.{i}") for i in range(1, 5))
    truth = {(a, 80), (b, 80), (c, 443), (d, 22)}
    found = [(a, 80), (a, 80), (a, 80), (b, 80), (c, 80)]
    assert score(found, truth) == {
        "truth": 4, "found": 3, "recall": 0.5, "false_positives": 1, "duplicates": 2,
    }
    assert score([], set())["recall"] == 1.0


ROOT_DATA = Path(__file__).resolve().parents[1] / "data"


def test_scanner_output_parsers() -> None:
    masscan = ("#masscan\nopen tcp 8080 198.19.3.4 1717000000\n"
               "closed tcp 80 198.19.3.5 1717000000\nopen tcp 22 198.19.0.77 1717000001\n"
               "# end\n")
    assert parse_masscan_list(masscan) == [(IPv4Address("198.19.3.4"), 8080),
                                           (IPv4Address("198.19.0.77"), 22)]
    recorded = ROOT_DATA / "masscan-1.3.2" / "masscan.oL"   # masscan 1.3.2's own file
    assert parse_masscan_list(recorded.read_text()) == [
        (IPv4Address(line.split()[3]), int(line.split()[2]))
        for line in recorded.read_text().splitlines() if line.startswith("open tcp ")]
    assert parse_zmap_addresses("saddr\n198.19.0.9\n\n198.19.0.9\n", 443) == [
        (IPv4Address("198.19.0.9"), 443), (IPv4Address("198.19.0.9"), 443)]
    ndjson = ('{"ip":"198.19.1.1","port":22,"status":"open"}\n'
              '{"ip":"198.19.1.2","port":22,"status":"closed"}\n')
    assert parse_ndjson_open(ndjson) == [(IPv4Address("198.19.1.1"), 22)]


def _run(name: str, threads: int, pps: float | None, **extra: object) -> dict[str, object]:
    return {"contender": name, "threads": threads, "sink_pps": pps, "frame_len": 60, **extra}


def test_group_rates_medians_per_contender_and_skips_failures() -> None:
    runs = [_run("bare_afxdp", 1, 900e3), _run("bare_afxdp", 1, 1000e3),
            _run("bare_afxdp", 1, 1100e3), _run("af-xdp", 1, 870e3),
            _run("af-xdp", 1, None), _run("af-xdp", 1, 5.0, error="crashed")]
    rates = group_rates(runs)
    assert rates[("bare_afxdp", 1)].median == 1000e3
    assert rates[("af-xdp", 1)].runs == 1
    table = "\n".join(tx_table(runs))
    assert "| af-xdp | 1 | 60 | 870.0 kpps | 870.0 kpps - 870.0 kpps (0%) | 0.585 |" in table
    assert "0.87x" in table  # af-xdp / bare AF_XDP


def test_target_checks_state_met_and_not_met() -> None:
    results = {"tx": [_run("bare_tpacket", 1, 1000.0), _run("af-packet", 1, 950.0),
                      _run("bare_afxdp", 1, 1000.0), _run("af-xdp", 1, 800.0),
                      _run("masscan", 1, 400.0)]}
    lines = "\n".join(target_checks(results))
    assert "| af-packet >= 90 % of bare_tpacket, 1 thread(s) | 95.0% | met |" in lines
    assert "| af-xdp >= 90 % of bare_afxdp, 1 thread(s) | 80.0% | NOT met |" in lines
    assert "| af-xdp >= 2x masscan (1 thread each) | 2.00x | met |" in lines
    assert "| af-xdp >= 2x zmap (1 thread each) | not measured | - |" in lines


def test_generation_table_ratio_to_the_bare_generator_and_scaling() -> None:
    runs = [
        {"contender": "null", "threads": 1, "self_pps": 25e6, "self_sent": 50_000_000,
         "cpu_ns": 2_000_000_000},
        {"contender": "null", "threads": 2, "self_pps": 45e6, "self_sent": 90_000_000,
         "cpu_ns": 4_000_000_000},
        {"contender": "bare_gen", "threads": 1, "self_pps": 50e6, "self_sent": 100_000_000,
         "cpu_ns": 2_000_000_000},
    ]
    from bench.report import generation_table

    lines = generation_table(runs)
    assert lines[2].startswith("| null | 1 | 25.000 Mpps |")
    assert "| 40.0 | 25.0 M/s | 0.50x | 1.00x |" in lines[2]   # 2e9 ns / 5e7 frames
    assert lines[3].endswith("| 44.4 | 22.5 M/s | - | 1.80x |")
    assert lines[4].startswith("| bare_gen | 1 | 50.000 Mpps |")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"duration": "x"}, "--duration 'x' is not a number"),
        ({"duration": "0"}, "--duration 0 is invalid"),
        ({"tx_threads": "65"}, "--tx-threads 65 is invalid: accepted 1..64"),
        ({"size": "128"}, "--size 128 is not supported"),
        ({"rate": "fast"}, "bad rate 'fast'"),
        ({"driver": "af-packet"}, "driver af-packet needs --interface IFACE"),
        ({"driver": "af-packet", "lab": True, "interface": "eth0"}, "give --lab or --interface"),
    ],
)
def test_bench_options_reject_bad_input_naming_the_value(changes: dict[str, object],
                                                         message: str) -> None:
    from pyscan.bench_command import BenchInputError, options_from_text

    arguments: dict[str, object] = {
        "driver": "null", "interface": None, "duration": "1", "tx_threads": "1", "size": "64",
        "rate": None, "lab": False, "source_ip": None, "gateway_mac": None,
        "driver_options": [], **changes}
    with pytest.raises(BenchInputError, match=message):
        options_from_text(**arguments)  # type: ignore[arg-type]


def test_bench_options_from_text_accepts_masscan_style_rates() -> None:
    from pyscan.bench_command import options_from_text

    options = options_from_text("null", None, "2.5", "2", "64", "250k", False, None, None, [])
    assert (options.duration, options.tx_threads, options.rate) == (2.5, 2, 250_000.0)
    assert options_from_text("null", None, "1", "1", "64", "max", False, None, None,
                             []).rate is None
