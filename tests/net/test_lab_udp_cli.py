"""`pyscan lab up --udp-ports --udp-open-count --udp-open-count6` end to end: the lab built
through the command line shows its UDP settings in `lab status`, prints the `-p U:...` scan
commands, and a UDP scan with exactly those commands (af-packet, IPv4 and IPv6) finds exactly
the lab's UDP truth: its drawn pairs open, every other pair closed by a port unreachable.
`lab down` removes it (the cli_lab fixture removes it anyway, pass or fail)."""

from __future__ import annotations

import json
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Any

from pyscan import netlink
from pyscan.lab import Lab
from tests.net.helpers import require_driver, run_cli

SUBNET = "198.19.0.0/26"
SUBNET6 = "2001:2::/122"
UDP_PORTS = (53, 123)


def _printed(stdout: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in stdout.splitlines() if ": " in line)


def _scan(command: str, tmp_path: Any, name: str) -> list[dict[str, Any]]:
    """Run the printed command (its words after `pyscan`) on af-packet, every result kept."""
    words = command.split()
    assert words[0] == "pyscan"
    out = tmp_path / f"{name}.ndjson"
    done = run_cli(*words[1:], "--driver", "af-packet", "--rate", "20000", "--wait", "1",
                   "--show", "closed", "--format", "ndjson", "-o", str(out))
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


def _by_status(records: list[dict[str, Any]]) -> dict[str, set[tuple[Any, int]]]:
    found: dict[str, set[tuple[Any, int]]] = {}
    for record in records:
        assert record["proto"] == "udp"
        key = (ip_address(record["ip"]), record["port"])
        assert key not in found.get("open", set()) | found.get("closed", set()), key  # once
        found.setdefault(record["status"], set()).add(key)
    return found


def test_cli_lab_udp_options_scan_to_exactly_the_udp_truth(cli_lab: str, tmp_path: Any) -> None:
    require_driver("af-packet")
    up = run_cli("lab", "up", "--name", cli_lab, "--subnet", SUBNET, "--subnet6", SUBNET6,
                 "--ports", "80", "--udp-ports", ",".join(map(str, UDP_PORTS)),
                 "--udp-open-count", "40", "--udp-open-count6", "30", "--seed", "8")
    assert up.returncode == 0, up.stderr
    printed = _printed(up.stdout)
    status = run_cli("lab", "status", "--name", cli_lab, timeout=60)
    assert status.returncode == 0, status.stderr
    shown = _printed(status.stdout)
    assert (shown["udp_ports"], shown["udp_open_pairs"], shown["udp_open_pairs6"]) == (
        "[53, 123]", "40", "30")
    assert printed["UDP"].strip() == shown["udp_scan_command"] == (
        f"pyscan --netns {cli_lab}-scan {SUBNET} -p U:53,U:123")
    assert printed["UDP over IPv6"].strip() == shown["udp_scan_command6"]

    lab = Lab.load(cli_lab)   # what a later process sees: the same drawn pairs
    assert len(lab.udp_truth()) == 40 and len(lab.udp_truth6()) == 30
    every = {(a, p) for a in IPv4Network(SUBNET) for p in UDP_PORTS}
    every6 = {(a, p) for a in IPv6Network(SUBNET6) for p in UDP_PORTS}
    assert lab.udp_truth() < every and lab.udp_truth6() < every6

    found = _by_status(_scan(shown["udp_scan_command"], tmp_path, "udp4"))
    assert found["open"] == lab.udp_truth()
    assert found["closed"] == every - lab.udp_truth()
    found6 = _by_status(_scan(shown["udp_scan_command6"], tmp_path, "udp6"))
    assert found6["open"] == lab.udp_truth6()
    assert found6["closed"] == every6 - lab.udp_truth6()

    down = run_cli("lab", "down", "--name", cli_lab, timeout=60)
    assert down.returncode == 0, down.stderr
    assert not netlink.netns_exists(lab.scan_netns)
    assert not netlink.netns_exists(lab.target_netns)
    assert not lab.state_path.exists()
