"""Reply checksums on a real path: the lab's replies carry computed checksums (its target veth
has tx checksum offload off), and with the offload back on, af-packet still reports every open
pair because the kernel tells it (TP_STATUS_CSUMNOTREADY) that the TCP checksum was never
filled in - a frame built on this host, not a corrupted one."""

from __future__ import annotations

from collections.abc import Callable

import pyscan
from pyscan import netlink
from pyscan.drivers import DRIVERS
from pyscan.lab import Lab

SUBNET = "198.19.0.0/24"
PORTS = (22, 80)


def _scan(lab: Lab, driver: str) -> tuple[set, pyscan.Summary]:
    config = pyscan.ScanConfig.parse([SUBNET], ports=",".join(map(str, PORTS)), rate=20_000,
                                     driver=driver, wait=1, netns=lab.scan_netns, seed=3)
    with pyscan.scan(config) as run:
        found = {(r.ip, r.port) for r in run if r.status == "open"}
        summary = run.summary
    assert summary is not None
    return found, summary


def test_af_packet_trusts_checksums_the_kernel_left_to_offload(
        lab_factory: Callable[..., Lab]) -> None:
    ok, reason = DRIVERS["af-packet"].available()
    assert ok, reason
    lab = lab_factory(subnet=SUBNET, ports=PORTS, open_count=40, seed=5)
    found, summary = _scan(lab, "af-packet")
    assert found == lab.truth()
    # SYN-ACKs now leave the target with a partial checksum (the veth default)
    netlink.set_tx_checksum_offload(lab.target_interface, True, lab.target_netns)
    found, summary = _scan(lab, "af-packet")
    assert found == lab.truth()
    assert summary.open == 40
