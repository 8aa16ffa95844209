"""The XDP reply filter on IPv6 frames (probe_tcp_syn6.h, probe_icmp_echo6.h; BPF_PROG_TEST_RUN)
against the C side on the IPv6 corpus (tests/corpus/replies/frames6.py): it redirects what C
reports except the documented differences, and passes neighbour discovery to the kernel."""

from __future__ import annotations

import os

import pytest

pytestmark = [
    pytest.mark.bpf,
    pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF programs needs root"),
]

native = pytest.importorskip("pyscan.native")
from pyscan.probes import PROBES  # noqa: E402
from tests.corpus.replies import frames6  # noqa: E402
from tests.unit.test_ipv6_classic_filter import c_outcome  # noqa: E402

SYN6, ECHO6, UDP6 = PROBES["tcp-syn6"].id, PROBES["icmp-echo6"].id, PROBES["udp6"].id


@pytest.fixture(scope="module")
def reply_filter():
    with native.ReplyFilter(frames6.KEY, ports=frames6.SOURCE_PORTS,
                            probe=(SYN6, ECHO6, UDP6)) as loaded:
        yield loaded


def matches(reply_filter, frame: bytes) -> bool:
    before = reply_filter.counters()
    reply_filter.test_run(frame)
    after = reply_filter.counters()
    assert after["seen"] == before["seen"] + 1
    return after["matched"] == before["matched"] + 1


@pytest.mark.parametrize("name", sorted(frames6.rows()))
def test_xdp_on_each_ipv6_frame(reply_filter, name: str) -> None:
    row = frames6.rows()[name]
    assert matches(reply_filter, row.frame) == row.xdp
    reported = c_outcome(row.frame) in ("open", "closed")
    if row.xdp != reported:
        assert "xdp" in row.exception, f"{name}: undocumented difference"


def test_neighbour_discovery_is_passed_to_the_kernel(reply_filter) -> None:
    rows = frames6.rows()
    for name in ("neighbour_solicitation", "neighbour_advertisement"):
        assert reply_filter.test_run(rows[name].frame) == "XDP_PASS"
        assert not matches(reply_filter, rows[name].frame)


def test_disabled_ipv6_modules_pass_their_replies() -> None:
    rows = frames6.rows()
    with native.ReplyFilter(frames6.KEY, ports=frames6.SOURCE_PORTS, probe=SYN6) as only_tcp:
        assert matches(only_tcp, rows["syn_ack"].frame)
        assert matches(only_tcp, rows["syn_unreachable"].frame)
        assert not matches(only_tcp, rows["echo_reply"].frame)
        assert not matches(only_tcp, rows["unreachable_quoting_echo"].frame)
    with native.ReplyFilter(frames6.KEY, ports=frames6.SOURCE_PORTS, probe=ECHO6) as only_echo:
        assert matches(only_echo, rows["echo_reply"].frame)
        assert not matches(only_echo, rows["syn_ack"].frame)
        assert not matches(only_echo, rows["syn_unreachable"].frame)
    with native.ReplyFilter(frames6.KEY, ports=frames6.SOURCE_PORTS, probe=UDP6) as only_udp:
        assert matches(only_udp, rows["udp_reply"].frame)
        assert matches(only_udp, rows["udp_port_unreachable"].frame)
        assert not matches(only_udp, rows["syn_ack"].frame)
        assert not matches(only_udp, rows["syn_unreachable"].frame)
        assert not matches(only_udp, rows["unreachable_quoting_echo"].frame)
    with native.ReplyFilter(frames6.KEY, ports=frames6.SOURCE_PORTS, probe=SYN6) as only_tcp:
        assert not matches(only_tcp, rows["udp_reply"].frame)
        assert not matches(only_tcp, rows["udp_port_unreachable"].frame)
    with native.ReplyFilter(frames6.KEY, ports=frames6.SOURCE_PORTS,
                            probe=PROBES["tcp-syn"].id) as ipv4_scan:
        assert not matches(ipv4_scan, rows["syn_ack"].frame)
