"""--max-targets against the lab's truth (root, throwaway labs): the scan probes exactly the
first N pairs of its order (what -sL prints with the same seed), across shards too."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

import pyscan
from pyscan import netlink
from pyscan.lab import Lab

SUBNET = "198.19.0.0/22"
PORTS = "80,443"
CAP = 700
# pfring-zc over the stand-in libpfring, at a rate its receive path keeps up with
RATES = {"pfring-zc": 2_000}


@pytest.fixture(scope="module")
def standin_options(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    from tests.pfring_standin.build import build_standin

    return {"pfring-zc": {"lib": str(build_standin(tmp_path_factory.mktemp("standin")))}}


def _config(lab: Lab, driver: str, **settings: object) -> pyscan.ScanConfig:
    return pyscan.ScanConfig.parse([SUBNET], ports=PORTS, rate=RATES.get(driver, 50_000),
                                   driver=driver, wait=1,
                                   netns=lab.scan_netns, seed=13, max_targets=str(CAP),
                                   **settings)  # type: ignore[arg-type]


@pytest.mark.parametrize("driver", ["af-packet", "af-xdp", "pfring-zc"])
def test_capped_scan_probes_exactly_the_first_pairs(
        lab_factory: Callable[..., Lab], driver: str,
        standin_options: dict[str, dict[str, str]]) -> None:
    from pyscan.drivers import DRIVERS

    options = standin_options.get(driver, {})
    if not options:
        available, reason = DRIVERS[driver].available()
        assert available, f"{driver} must run on this machine: {reason}"
    lab = lab_factory(subnet=SUBNET, ports=(80, 443))  # every pair answers: replies = probes
    found: set[tuple[object, int]] = set()
    for shard in ("1/2", "2/2"):
        config = _config(lab, driver, show_closed=True, shard=shard, driver_options=options)
        expected_part = set(pyscan.list_targets(config))
        with pyscan.scan(config) as run:
            part = {(result.ip, result.port) for result in run}
        assert run.summary is not None and run.summary.limit == "max-targets"
        assert part == expected_part
        assert not part & found
        found |= part
    whole = set(pyscan.list_targets(_config(lab, driver)))
    assert len(found) == len(whole) == CAP
    assert found == whole


def test_sink_counts_exactly_the_cap(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory(subnet=SUBNET, ports=(80, 443), sink=True)
    lab.sink_reset()
    config = _config(lab, "af-packet", gateway_mac=netlink.link_mac(lab.target_interface,
                                                                  lab.target_netns))
    with pyscan.scan(config) as run:
        list(run)
    assert run.summary is not None and run.summary.sent == CAP
    deadline = time.monotonic() + 5.0
    while lab.sink_count()["syns"] < CAP and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    assert lab.sink_count()["syns"] == CAP
