"""masscan spellings write masscan 1.3.2's bytes: the records masscan itself wrote in the lab
(tests/data/masscan-1.3.2, see its README) are fed to pyscan's writers, and the files must be
equal byte for byte, except the wall-clock times masscan stamps at open and close."""

from __future__ import annotations

import calendar
import io
import json
import re
import time
from ipaddress import IPv4Address
from pathlib import Path
from xml.etree import ElementTree

import pytest

from pyscan.output.masscan import MASSCAN_FORMATS, masscan_reason, service_name
from pyscan.scanner import Result

DATA = Path(__file__).resolve().parent.parent / "data" / "masscan-1.3.2"
PORTS = (22, 80)


def render(letter: str, results: list[Result], started: float = 0.0) -> str:
    stream = io.StringIO()
    writer = MASSCAN_FORMATS[letter](stream, started=started, ports=PORTS)
    for result in results:
        writer.write(result)
    writer.close()
    writer.close()  # idempotent: one trailer
    return stream.getvalue()


def reference(name: str) -> str:
    return (DATA / name).read_bytes().decode()


def from_ndjson(text: str) -> list[Result]:
    results = []
    for line in text.splitlines():
        record = json.loads(line)
        results.append(Result(IPv4Address(record["ip"]), record["port"],
                              record["data"]["status"], record["data"]["ttl"],
                              float(record["timestamp"])))
    return results


def test_od_is_masscans_bytes() -> None:
    masscan = reference("masscan.oD")
    assert render("D", from_ndjson(masscan)) == masscan


def test_od_nests_status_under_data_with_string_timestamps() -> None:
    line = render("D", [Result(IPv4Address("198.19.0.9"), 443, "closed", 61, 1.9e9 + 0.7)])
    record = json.loads(line)
    assert record == {"ip": "198.19.0.9", "timestamp": "1900000000", "port": 443,
                      "proto": "tcp", "rec_type": "status",
                      "data": {"status": "closed", "reason": "rst-ack", "ttl": 61}}


def test_ol_is_masscans_bytes() -> None:
    masscan = reference("masscan.oL")
    results = []
    for line in masscan.splitlines():
        if line.startswith("#"):
            continue
        status, _proto, port, ip, stamp = line.split()
        results.append(Result(IPv4Address(ip), int(port), status, 64, float(stamp)))  # type: ignore[arg-type]
    assert len(results) == 16
    assert render("L", results) == masscan


def test_oj_is_masscans_bytes() -> None:
    masscan = reference("masscan.oJ")
    results = [Result(IPv4Address(item["ip"]), port["port"], port["status"], port["ttl"],
                      float(item["timestamp"]))
               for item in json.loads(masscan) for port in item["ports"]]
    assert render("J", results) == masscan


def test_empty_scan_oj_is_valid_json_where_masscans_is_not() -> None:
    with pytest.raises(json.JSONDecodeError):
        json.loads(reference("empty.oJ"))
    assert json.loads(render("J", [])) == []


def test_empty_scan_ol_is_empty_like_masscans() -> None:
    assert reference("empty.oL") == ""
    assert render("L", []) == ""
    assert render("G", []) == ""
    assert render("D", []) == ""


def test_og_is_masscans_bytes_apart_from_the_close_time() -> None:
    masscan = reference("masscan.oG")
    lines = masscan.splitlines(keepends=True)
    initiated = re.match(r"# Masscan 1\.3\.2 scan initiated (.+)\n", lines[0])
    assert initiated is not None
    started = calendar.timegm(time.strptime(initiated.group(1), "%a %b %d %H:%M:%S %Y"))
    results = []
    for line in lines[2:-1]:
        match = re.match(r"Timestamp: (\d+)\tHost: (\S+) \(\)\tPorts: (\d+)/(\w+)/tcp//", line)
        assert match is not None, line
        stamp, ip, port, status = match.groups()
        results.append(Result(IPv4Address(ip), int(port), status, 64, float(stamp)))  # type: ignore[arg-type]
    ours = render("G", results, started=started).splitlines(keepends=True)
    assert ours[:-1] == lines[:-1]
    assert re.fullmatch(r"# Masscan done at \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\n", ours[-1])


def test_og_service_names_come_from_the_system() -> None:
    assert service_name(22) == "ssh"
    assert service_name(80) == "http"
    assert service_name(1) in ("tcpmux", "unknown")
    assert service_name(65000) == "unknown"


def test_ox_is_masscans_bytes_plus_host_status() -> None:
    masscan = reference("masscan.oX")
    root = ElementTree.fromstring(masscan)
    results = []
    for host in root.iter("host"):
        state = host.find("ports/port/state")
        assert state is not None
        address = host.find("address")
        port = host.find("ports/port")
        assert address is not None and port is not None
        results.append(Result(IPv4Address(address.get("addr")), int(port.get("portid", "0")),
                              state.get("state"), int(state.get("reason_ttl", "0")),  # type: ignore[arg-type]
                              float(host.get("endtime", "0"))))
    started = float(root.get("start", "0"))
    ours = render("X", results, started=started)
    masscan_lines = masscan.split("\r\n")
    our_lines = ours.split("\r\n")
    # Header and host lines: masscan's, with nmap's <status> added to each host.
    without_status = [re.sub(r"<status [^>]*/>", "", line) for line in our_lines]
    host_count = len(results)
    assert without_status[:4 + host_count] == masscan_lines[:4 + host_count]
    assert all('<status state="up"' in line for line in our_lines[4:4 + host_count])
    # runstats: same elements; nmap's counting (every host that answered is up).
    ours_root = ElementTree.fromstring(ours)
    finished = ours_root.find("runstats/finished")
    hosts = ours_root.find("runstats/hosts")
    assert finished is not None and hosts is not None
    assert set(finished.attrib) == {"time", "timestr", "elapsed"}
    assert hosts.attrib == {"up": "16", "down": "0", "total": "16"}
    assert ours.endswith("</runstats>\r\n</nmaprun>\r\n")


def test_empty_scan_ox_is_a_complete_document() -> None:
    assert reference("empty.oX") == ""
    root = ElementTree.fromstring(render("X", [], started=1_700_000_000))
    assert root.tag == "nmaprun"
    assert root.find("host") is None
    hosts = root.find("runstats/hosts")
    assert hosts is not None and hosts.get("total") == "0"


def test_reason_follows_the_reply_flags() -> None:
    open_result = Result(IPv4Address("198.19.0.1"), 80, "open", 64, 0.0)
    closed_result = Result(IPv4Address("198.19.0.1"), 81, "closed", 64, 0.0)
    assert masscan_reason(open_result) == "syn-ack"
    assert masscan_reason(closed_result) == "rst-ack"


def test_new_result_fields_flow_through() -> None:
    """A Result with a protocol and TCP flags (fields the C record may grow) is written with
    them; an IPv6 address gets addrtype ipv6."""
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Wider:
        ip: object
        port: int
        status: str
        ttl: int
        timestamp: float
        protocol: str = "tcp"
        tcp_flags: int = 0x14

    from ipaddress import IPv6Address

    result = Wider(IPv6Address("2001:2::1"), 80, "closed", 60, 5.0, tcp_flags=0x04)
    xml = render("X", [result])  # type: ignore[list-item]
    assert 'addrtype="ipv6"' in xml and 'reason="rst"' in xml
    assert json.loads(render("D", [result]))["data"]["reason"] == "rst"  # type: ignore[list-item]
