"""IPv6 results in every output format, read back by the tools users point at them: jq,
DuckDB, Python's csv, python-libnmap and xmllint, grep-style splitting, tshark and scapy.

masscan prints IPv6 with its own formatter (src/util-ipaddress.c: lowercase, no leading
zeros, one `::`); pyscan prints Python's RFC 5952 text, the same for every address a
reader compares, and parsed back to the same address either way."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
from ipaddress import IPv6Address, ip_address
from pathlib import Path

import pytest

from pyscan.output import FORMATS, WRITERS
from pyscan.output.masscan import MASSCAN_FORMATS
from pyscan.output.pcap import PcapWriter
from pyscan.output.zmap import ZMAP_MODULES, parse_output_fields
from pyscan.scanner import Result
from tests.unit.test_output_readers import jq, tool
from tests.unit.test_output_readers import write as write_results

RESULTS = [
    Result(IPv6Address("2001:2::1"), 80, "open", 64, 1_700_000_000.25),
    Result(IPv6Address("2001:2::ff"), 443, "closed", 63, 1_700_000_001.75),
    Result(IPv6Address("2001:2:0:1:0:0:0:9"), 22, "open", 255, 1_700_000_002.0),
]
TEXTS = [str(result.ip) for result in RESULTS]   # '2001:2::1', '2001:2::ff', '2001:2:0:1::9'
OPEN = [TEXTS[0], TEXTS[2]]


def write(path: Path, writer_class, **options) -> Path:  # type: ignore[no-untyped-def]
    return write_results(path, writer_class, RESULTS, **options)


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_every_writer_prints_each_ipv6_address_once_per_record(tmp_path: Path,
                                                               name: str) -> None:
    options = {"fields": parse_output_fields("saddr,sport")} if name.startswith("zmap") else {}
    text = write(tmp_path / "out", WRITERS[name], **options).read_text()
    for address in TEXTS:
        assert len(re.findall(rf"(?<![0-9a-f:]){re.escape(address)}(?![0-9a-f:])", text)) == 1


def test_masscan_ol_and_og_split_back_to_addresses(tmp_path: Path) -> None:
    listed = write(tmp_path / "scan.list", MASSCAN_FORMATS["L"]).read_text().splitlines()
    records = [line.split() for line in listed if not line.startswith("#")]
    assert [(ip_address(fields[3]), int(fields[2])) for fields in records] == [
        (result.ip, result.port) for result in RESULTS]
    grepable = write(tmp_path / "scan.grep", MASSCAN_FORMATS["G"]).read_text()
    hosts = re.findall(r"Host: (\S+) \(\)\tPorts: (\d+)/(\w+)/", grepable)
    assert [(ip_address(h), int(p), s) for h, p, s in hosts] == [
        (r.ip, r.port, r.status) for r in RESULTS]


def test_jq_and_duckdb_read_masscan_od_and_oj_ipv6(tmp_path: Path) -> None:
    ndjson = write(tmp_path / "scan.ndjson", MASSCAN_FORMATS["D"])
    assert jq('select(.data.status=="open") | .ip', ndjson, "-r") == OPEN
    array = write(tmp_path / "scan.json", MASSCAN_FORMATS["J"])
    assert jq('.[] | select(.ports[0].status=="open") | .ip', array, "-r") == OPEN
    duckdb = pytest.importorskip("duckdb")
    rows = duckdb.sql(f"SELECT ip, port FROM read_json_auto('{ndjson}') "
                      "WHERE data.status = 'open' ORDER BY port").fetchall()
    assert [(ip_address(ip), port) for ip, port in rows] == [(RESULTS[2].ip, 22),
                                                             (RESULTS[0].ip, 80)]


def test_python_libnmap_and_xmllint_read_masscan_ox_ipv6(tmp_path: Path) -> None:
    path = write(tmp_path / "scan.xml", MASSCAN_FORMATS["X"])
    done = subprocess.run([tool("xmllint"), "--noout", str(path)], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    parser = pytest.importorskip("libnmap.parser")
    report = parser.NmapParser.parse_fromfile(str(path))
    # nmap's addrtype="ipv6" (masscan 1.3.2 writes "ipv4" for every address): libnmap files
    # the address under ipv6.
    assert [host.ipv6 for host in report.hosts] == TEXTS
    assert [host.address for host in report.hosts] == TEXTS
    assert [host.get_open_ports() for host in report.hosts] == [[(80, "tcp")], [],
                                                                [(22, "tcp")]]


def test_zmap_csv_and_json_saddr_ipv6(tmp_path: Path) -> None:
    path = write(tmp_path / "zmap.csv", ZMAP_MODULES["csv"],
                 fields=parse_output_fields("saddr,saddr-raw,sport,success"))
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert [row["saddr"] for row in rows if row["success"] == "1"] == OPEN
    # saddr-raw is zmap's 32-bit integer form: an IPv6 address has none (empty, not wrong).
    assert {row["saddr-raw"] for row in rows} == {""}
    duckdb = pytest.importorskip("duckdb")
    assert duckdb.sql(f"SELECT count(*) FROM read_csv_auto('{path}') "
                      "WHERE saddr LIKE '2001:2:%'").fetchall() == [(3,)]
    json_path = write(tmp_path / "zmap.json", ZMAP_MODULES["json"],
                      fields=parse_output_fields("saddr,sport,success"))
    assert jq("select(.success==1) | .saddr", json_path, "-r") == OPEN


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_pyscan_formats_read_back_to_the_same_addresses(tmp_path: Path, name: str) -> None:
    text = write(tmp_path / "out", FORMATS[name]).read_text()
    if name == "ndjson":
        found = [json.loads(line)["ip"] for line in text.splitlines()]
    elif name == "json":
        found = [record["ip"] for record in json.loads(text)]
    elif name == "csv":
        found = [row["saddr"] for row in csv.DictReader(io.StringIO(text))]
    elif name == "grepable":
        found = re.findall(r"Host: (\S+) \(\)", text)
    else:
        found = [line.split()[3] for line in text.splitlines() if not line.startswith("#")]
    assert [ip_address(address) for address in found] == [result.ip for result in RESULTS]


def test_result_to_dict_carries_ipv6_text() -> None:
    assert RESULTS[2].to_dict()["ip"] == "2001:2:0:1::9"


def test_pcap_carries_ipv6_frames_for_scapy_and_tshark(tmp_path: Path) -> None:
    from scapy.layers.inet import TCP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether

    frame = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
                  / IPv6(src="2001:2::1", dst="2001:2:0:ffff::1", hlim=64)
                  / TCP(sport=80, dport=61000, flags="SA", seq=1, ack=7))
    path = tmp_path / "replies.pcap"
    with PcapWriter(open(path, "wb"), owns_stream=True) as writer:
        writer.write_frame(1_700_000_000.5, frame)
    from scapy.utils import rdpcap

    assert [bytes(packet) for packet in rdpcap(str(path))] == [frame]
    done = subprocess.run([tool("tshark"), "-r", str(path), "-T", "fields", "-e", "ipv6.src",
                           "-e", "tcp.srcport"], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["2001:2::1", "80"]
