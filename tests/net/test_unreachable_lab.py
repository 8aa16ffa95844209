"""ICMP destination unreachables quoting TCP SYNs against the lab's truth, on af-packet, af-xdp,
xdp-live and pfring-zc (through its stand-in libpfring.so): chosen pairs answer SYN with nft's
`reject with icmp type ...` (codes 0, 1, 10 and 13), the target namespace has no ICMP rate
limit, so the truth is exact.

With --show unreachable the unreachable results are exactly the lab's unreachable pairs, each
with its code; the open results are still exactly the open set; nothing is reported twice.
Without it they are counted in the summary but not reported.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import pyscan
from pyscan.lab import Lab
from tests.net.helpers import assert_unreachable_scan, require_driver, run_cli, scan_lab
from tests.pfring_standin.build import build_standin

SUBNET = "198.19.4.0/24"
PORTS = (22, 80, 443)
DRIVERS_UNDER_TEST = ["af-packet", "af-xdp", "xdp-live", "pfring-zc"]


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_standin(tmp_path_factory.mktemp("pfring-standin-unreach"))


def _lab(lab_factory: Callable[..., Lab], seed: int) -> Lab:
    return lab_factory(subnet=SUBNET, ports=PORTS, open_count=60, unreachable_count=90,
                       seed=seed)


def _scan(lab: Lab, driver: str, standin: Path, **settings: Any
          ) -> tuple[list[pyscan.Result], pyscan.Summary]:
    if driver != "pfring-zc":   # the stand-in library is always there
        require_driver(driver)
    options = [f"lib={standin}"] if driver == "pfring-zc" else []
    return scan_lab(lab, SUBNET, driver, ports=",".join(map(str, PORTS)), wait=1.0, seed=13,
                    driver_options=options, **settings)


@pytest.mark.parametrize("driver", DRIVERS_UNDER_TEST)
def test_show_unreachable_reports_exactly_the_labs_unreachable_pairs(
        lab_factory: Callable[..., Lab], standin: Path, driver: str) -> None:
    lab = _lab(lab_factory, seed=31)
    truth = lab.unreachable_truth()
    assert set(truth.values()) == {0, 1, 10, 13}  # every code nft answers with is tested
    results, summary = _scan(lab, driver, standin, show_unreachable=True)
    assert_unreachable_scan(results, summary, lab.truth(), truth, icmp_type=3,
                            pairs=256 * len(PORTS))


@pytest.mark.parametrize("driver", ["af-packet", "af-xdp"])
def test_without_show_unreachable_they_are_counted_not_reported(
        lab_factory: Callable[..., Lab], standin: Path, driver: str) -> None:
    lab = _lab(lab_factory, seed=32)
    results, summary = _scan(lab, driver, standin)
    assert {(r.ip, r.port) for r in results} == lab.truth()
    assert {r.status for r in results} == {"open"}
    assert summary.unreachable == len(lab.unreachable_truth())


def test_cli_show_closed_unreachable_list_in_ndjson(lab_factory: Callable[..., Lab]) -> None:
    """The masscan spelling `--show closed,unreachable` through the command line: every pair
    once, with its status; the summary line counts the unreachables."""
    lab = _lab(lab_factory, seed=33)
    done = run_cli("--netns", lab.scan_netns, SUBNET, "-p", ",".join(map(str, PORTS)),
                   "--driver", "af-packet", "--rate", "20000", "--wait", "1",
                   "--show", "closed,unreachable", "--format", "ndjson", "--seed", "5")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    by_status = Counter(record["status"] for record in records)
    truth = lab.unreachable_truth()
    assert by_status == {"open": len(lab.truth()), "unreachable": len(truth),
                         "closed": 256 * len(PORTS) - len(lab.truth()) - len(truth)}
    assert {(record["ip"], record["port"]): record["icmp_code"] for record in records
            if record["status"] == "unreachable"} == {
        (str(ip), port): code for (ip, port), code in truth.items()}
    assert f"{len(truth)} unreachable" in done.stderr
