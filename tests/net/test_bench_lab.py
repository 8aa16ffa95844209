"""`pyscan bench --lab`: every frame a driver reports as sent arrives at the lab's sink, exactly
(the sink's XDP counter, and veth's per-queue counters, against the driver's own counter)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from pyscan import netlink
from pyscan.bench_command import BenchOptions, default_lab_name, run_bench
from pyscan.cli import app

DRIVER_NAMES = ("af-packet", "af-xdp")


def _require(driver: str) -> None:
    from pyscan.drivers import DRIVERS

    if driver not in DRIVERS:
        pytest.skip(f"driver {driver} is not in this build")
    ok, reason = DRIVERS[driver].available()
    if not ok:
        pytest.skip(f"driver {driver} unavailable: {reason}")


@pytest.mark.parametrize("driver", DRIVER_NAMES)
def test_cli_bench_lab_sent_equals_sink_received(driver: str) -> None:
    _require(driver)
    result = CliRunner().invoke(
        app, ["bench", "--driver", driver, "--lab", "--duration", "1", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["sent"] > 1000  # a second on veth is far more than this
    assert report["sink_received"] == report["sent"]
    assert sum(report["sink_queues"].values()) == report["sent"]
    assert report["driver_drops"] == 0
    assert report["link_speed_mbps"] is None and report["line_rate_fraction"] is None
    assert report["wire_bps"] == pytest.approx(report["pps"] * 84 * 8)
    assert not netlink.list_netns(default_lab_name() + "-")


def test_two_tx_threads_each_send_and_sink_total_is_exact(unique_name) -> None:
    _require("af-packet")
    report = run_bench(BenchOptions(driver="af-packet", lab=True, duration=1.0, tx_threads=2,
                                    lab_name=unique_name("b")))
    assert len(report.queues) == 2
    assert all(q.sent > 0 and q.ns_per_packet is not None for q in report.queues)
    assert sum(q.sent for q in report.queues) == report.sent
    assert report.sink_received == report.sent
    assert report.sink_queues is not None and sum(report.sink_queues.values()) == report.sent


def test_bench_with_a_rate_sends_at_about_that_rate_and_exactly_what_it_counts(
        unique_name) -> None:
    _require("af-packet")
    report = run_bench(BenchOptions(driver="af-packet", lab=True, duration=1.0, rate=5000,
                                    lab_name=unique_name("r")))
    # not a timing assertion: the rate limiter cannot send more than the rate allows
    # (plus its first batch), whatever the machine's speed
    assert 0 < report.sent <= 5000 * report.wall_s + 64
    assert report.sink_received == report.sent


def test_pfring_zc_bench_over_the_standin_library(tmp_path, unique_name) -> None:
    """What docs/pfring.md tells a ZC user to run, here against the test suite's stand-in:
    the library path given as a driver option reaches the availability check and the ring."""
    from tests.pfring_standin.build import build_standin

    library = build_standin(tmp_path)
    report = run_bench(BenchOptions(driver="pfring-zc", lab=True, duration=1.0,
                                    lab_name=unique_name("z"),
                                    driver_options={"lib": str(library)}))
    assert report.sent > 1000
    assert report.sink_received == report.sent
    assert report.driver_drops == 0


@pytest.mark.parametrize(("driver", "probe"), [("af-packet", "icmp-echo"), ("af-xdp", "udp"),
                                               ("af-xdp", "tcp-syn6"),
                                               ("af-packet", "icmp-echo6")])
def test_icmp_echo_and_udp_bench_rows_reach_the_sink_exactly(driver: str, probe: str,
                                                             unique_name) -> None:
    """The bench's ICMP echo and UDP rows (bench/run.py probes section): the probe's frames,
    every one counted by the sink; ICMP echo's short target set is sent by engine after
    engine for the whole duration."""
    from pyscan.bench_command import bench_probe, wire_bytes

    _require(driver)
    frame_len = bench_probe(probe).frame_len
    report = run_bench(BenchOptions(driver=driver, lab=True, duration=1.0, probe=probe,
                                    size=wire_bytes(frame_len) - 20,
                                    lab_name=unique_name("p")))
    assert report.frame_len == frame_len
    assert report.sent > 1000
    assert report.sink_received == report.sent
    assert report.driver_drops == 0


@pytest.mark.parametrize("probe", ["icmp-echo", "udp", "tcp-syn6"])
def test_bench_probe_rows_put_frames_of_the_probes_length_on_the_sink(probe: str,
                                                                      tmp_path) -> None:
    """The probes section's pair, measured as make bench does: pyscan's frames and the bare
    loop's (same protocol and length) are the length bench_probe says, by the sink's own
    byte counter, and every frame each one counted arrived."""
    from bench.contenders import compile_bare_loops, run_bare, run_pyscan
    from bench.sinklab import SinkLab
    from pyscan.bench_command import bench_probe

    _require("af-packet")
    frame_len = bench_probe(probe).frame_len
    with SinkLab(tmp_path, queues=1, tag="tbp") as lab:
        mine = run_pyscan(lab, "af-packet", 0.5, 1, probe=probe)
        bare = run_bare(lab, compile_bare_loops(tmp_path)["bare_tpacket"], 0.5, frame_len, 1,
                        probe=probe)
    for run in (mine, bare):
        assert not run.error, run.error
        assert run.probe == probe
        assert run.frame_len == frame_len
        assert run.self_sent == run.sink_frames > 1000
    assert not netlink.list_netns(lab.scan_ns) and not netlink.list_netns(lab.target_ns)
