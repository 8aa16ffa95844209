"""ICMPv6 destination unreachables quoting TCP SYNs against the lab's IPv6 truth (issue 10 with
issue 12), on af-packet, af-xdp and xdp-live: chosen IPv6 pairs answer SYN with nft's
`reject with icmpv6 type ...` (codes 0, 1, 3 and 4), the target has no ICMPv6 rate limit, so
the truth is exact. With --show unreachable the unreachable results are exactly
`unreachable_truth6()`, type 1 with each pair's code; the open results are exactly truth6();
nothing is reported twice. Then `pyscan lab up --echo-count6 --unreachable6` from the command
line: shown by `lab status`, and the lab it builds answers as its status says."""

from __future__ import annotations

import json
from collections.abc import Callable
from ipaddress import IPv6Network

import pytest

import pyscan
from pyscan.lab import Lab
from tests.net.helpers import assert_unreachable_scan, require_driver, run_cli, scan_lab

SUBNET6 = "2001:2::/120"
PORTS = (22, 80, 443)
DRIVERS_UNDER_TEST = ["af-packet", "af-xdp", "xdp-live"]


def _scan(lab: Lab, driver: str, targets: str = SUBNET6, ports: str = "22,80,443",
          **settings: object) -> tuple[list[pyscan.Result], pyscan.Summary]:
    require_driver(driver)
    return scan_lab(lab, targets, driver, ports=ports, wait=1.0, seed=17, **settings)


@pytest.mark.parametrize("driver", DRIVERS_UNDER_TEST)
def test_show_unreachable_reports_exactly_the_labs_ipv6_unreachable_pairs(
        lab_factory: Callable[..., Lab], driver: str) -> None:
    lab = lab_factory(subnet="198.19.0.0/28", ports=PORTS, subnet6=SUBNET6, open_count6=70,
                      unreachable_count6=90, seed=51)
    truth = lab.unreachable_truth6()
    assert set(truth.values()) == {0, 1, 3, 4}    # every code nft answers with is tested
    assert not set(truth) & lab.truth6()

    results, summary = _scan(lab, driver, show_unreachable=True)
    assert_unreachable_scan(results, summary, lab.truth6(), truth, icmp_type=1,
                            pairs=256 * len(PORTS))


def test_every_pair_open_but_the_unreachable_ones(lab_factory: Callable[..., Lab]) -> None:
    """Without an IPv6 open set every pair answers SYN-ACK (the listener), except the
    unreachable pairs: their rule runs before the listener ever sees the SYN."""
    lab = lab_factory(subnet="198.19.0.0/28", ports=PORTS, subnet6=SUBNET6,
                      unreachable_count6=25, seed=52)
    results, summary = _scan(lab, "af-packet", show_unreachable=True)
    assert {(r.ip, r.port) for r in results if r.status == "open"} == lab.truth6()
    assert len(lab.truth6()) == 256 * len(PORTS) - 25
    assert {(r.ip, r.port): r.icmp_code for r in results if r.status == "unreachable"} == \
        lab.unreachable_truth6()
    assert summary.closed == 0


def test_cli_lab_up_echo_count6_and_unreachable6(cli_lab: str) -> None:
    up = run_cli("lab", "up", "--name", cli_lab, "--subnet", "198.19.0.0/28", "--subnet6",
                 "2001:2::/124", "--ports", "80", "--seed", "4", "--echo-count6", "5",
                 "--unreachable6", "6")
    assert up.returncode == 0, up.stderr
    status = run_cli("lab", "status", "--name", cli_lab, timeout=60)
    assert status.returncode == 0, status.stderr
    lines = dict(line.split(": ", 1) for line in status.stdout.splitlines() if ": " in line)
    assert (lines["echo_hosts6"], lines["unreachable_pairs6"]) == ("5", "6")
    assert lines["open_pairs6"] == str(16 - 6)

    lab = Lab.load(cli_lab)
    assert len(lab.echo_truth6()) == 5 and len(lab.unreachable_truth6()) == 6
    echo, _ = _scan(lab, "af-packet", targets="2001:2::/124", ports="", probe="icmp-echo")
    assert {r.ip for r in echo if r.status == "up"} == lab.echo_truth6()
    syn, _ = _scan(lab, "af-packet", targets="2001:2::/124", ports="80",
                   show_unreachable=True)
    assert {(r.ip, r.port): r.icmp_code for r in syn if r.status == "unreachable"} == \
        lab.unreachable_truth6()
    assert {(r.ip, r.port) for r in syn if r.status == "open"} == lab.truth6()
    assert all(IPv6Network("2001:2::/124").__contains__(r.ip) for r in syn)
    json.dumps(lab.status())   # the status of a loaded lab stays plain data
