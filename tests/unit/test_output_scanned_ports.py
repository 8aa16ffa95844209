"""The headers that say what was scanned (-oG's `# Ports scanned:`, -oX's `<scaninfo>`, the
clean grepable format's) name the UDP ports and the echo as well as the TCP ports, through
open_writer and OutputSpec as the command line opens them."""

from __future__ import annotations

import io
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from pyscan.config import ScanConfig
from pyscan.output import OutputSpec, open_writer
from pyscan.scanner import Result

UDP_OPEN = Result(IPv4Address("198.19.0.2"), 53, "open", 63, 1_700_000_001.0, protocol="udp",
                  payload=b"\x12\x34")


def header(name: str, **scanned: object) -> list[str]:
    stream = io.StringIO()
    with open_writer(None, name, stream=stream, started=1_700_000_000.0,
                     **scanned) as writer:  # type: ignore[arg-type]
        writer.write(UDP_OPEN)
    return stream.getvalue().splitlines()


@pytest.mark.parametrize(("scanned", "line"), [
    # masscan 1.3.2's own line for -p22,80 (tests/data/masscan-1.3.2/masscan.oG)
    ({"ports": (22, 80)}, "TCP(2;22-22,80-80) UDP(0;) SCTP(0;) PROTOCOLS(0;)"),
    # -pU:53: masscan writes the UDP entry as 65536 + port (its issue #132 shows this line)
    ({"udp_ports": (53,)}, "TCP(0;) UDP(1;65589-65589) SCTP(0;) PROTOCOLS(0;)"),
    # a range followed by any entry of the one list gets a comma, even across groups
    ({"ports": (80,), "udp_ports": (53, 123)},
     "TCP(1;80-80,) UDP(2;65589-65589,65659-65659) SCTP(0;) PROTOCOLS(0;)"),
    # --ping is an entry no group writes, but it still puts a comma after the last range
    ({"ports": (80, 81), "udp_ports": (53,), "ping": True},
     "TCP(2;80-81,) UDP(1;65589-65589,) SCTP(0;) PROTOCOLS(0;)"),
    ({"ping": True}, "TCP(0;) UDP(0;) SCTP(0;) PROTOCOLS(0;)"),
    # TCP 65535 and UDP 0 are adjacent entries: one range, clamped into each group
    ({"ports": (65535,), "udp_ports": (0,)},
     "TCP(1;65535-65535) UDP(1;65536-65536) SCTP(0;) PROTOCOLS(0;)"),
])
def test_masscan_og_header_is_grepable_out_opens(scanned: dict[str, object], line: str
                                                 ) -> None:
    assert header("masscan-grepable", **scanned)[1] == f"# Ports scanned: {line}"


def test_clean_grepable_header_names_udp_ports_as_numbers() -> None:
    assert header("grepable", ports=(443, 80, 81), udp_ports=(123, 53, 54))[1] == (
        "# Ports scanned: TCP(3;80-81,443-443) UDP(3;53-54,123-123) SCTP(0;) PROTOCOLS(0;)")


@pytest.mark.parametrize(("scanned", "infos"), [
    ({"ports": (80,)}, [("syn", "tcp")]),
    ({}, [("syn", "tcp")]),                       # nothing known: masscan's line
    ({"udp_ports": (53,)}, [("udp", "udp")]),
    ({"ports": (80,), "udp_ports": (53,), "ping": True}, [("syn", "tcp"), ("udp", "udp")]),
])
def test_masscan_ox_scaninfo_names_the_scanned_protocols(
        scanned: dict[str, object], infos: list[tuple[str, str]]) -> None:
    from xml.etree import ElementTree

    text = "\n".join(header("masscan-xml", **scanned))
    root = ElementTree.fromstring(text)
    assert [(e.get("type"), e.get("protocol")) for e in root.findall("scaninfo")] == infos


def test_python_libnmap_reads_a_udp_scan_as_one() -> None:
    parser = pytest.importorskip("libnmap.parser")
    report = parser.NmapParser.parse_fromstring(
        "\n".join(header("masscan-xml", udp_ports=(53,))))
    assert report.scan_type == "udp"
    assert [(s.protocol, s.port) for h in report.hosts for s in h.services] == [("udp", 53)]


def test_output_spec_passes_what_the_config_scans(tmp_path: Path) -> None:
    """What the command line does (cli/session.py, cli/cluster.py): the config's TCP and UDP
    ports and --ping reach the writer."""
    config = ScanConfig.parse(["198.19.0.0/30"], ports="80,U:53,U:161", ping=True)
    spec = OutputSpec.parse(tmp_path / "scan.gnmap", "masscan-grepable")
    with spec.open(started=0.0, ports=config.ports, udp_ports=config.udp_ports,
                   ping=config.ping) as writer:
        assert (writer.ports, writer.udp_ports, writer.ping) == ((80,), (53, 161), True)
        writer.write(UDP_OPEN)
    assert (tmp_path / "scan.gnmap").read_text().splitlines()[1] == (
        "# Ports scanned: TCP(1;80-80,) UDP(2;65589-65589,65697-65697,) SCTP(0;) "
        "PROTOCOLS(0;)")


def test_every_writer_takes_what_was_scanned() -> None:
    from pyscan.output import WRITERS
    from pyscan.output.zmap import zmap_default_writer

    for name in WRITERS:
        with open_writer(None, name, stream=io.StringIO(), started=0.0, ports=(80,),
                         udp_ports=(53,), ping=True) as writer:
            assert (writer.ports, writer.udp_ports, writer.ping) == ((80,), (53,), True), name
    writer = zmap_default_writer(io.StringIO(), started=0.0, ports=(80,), udp_ports=(53,),
                                 ping=True)
    assert (writer.ports, writer.udp_ports, writer.ping) == ((80,), (53,), True)
