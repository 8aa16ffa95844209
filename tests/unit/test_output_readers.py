"""The tools masscan and zmap users point at their files read pyscan's files: jq, DuckDB,
pandas, Python's csv module, python-libnmap and xmllint, tshark and scapy for --pcap."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from pyscan.output.masscan import MASSCAN_FORMATS
from pyscan.output.pcap import PcapWriter
from pyscan.output.zmap import ZMAP_MODULES, parse_output_fields
from pyscan.scanner import Result

RESULTS = [
    Result(IPv4Address("198.19.0.1"), 80, "open", 64, 1_700_000_000.25),
    Result(IPv4Address("198.19.3.200"), 443, "closed", 63, 1_700_000_001.75),
    Result(IPv4Address("198.18.0.9"), 22, "open", 255, 1_700_000_002.0),
]
OPEN_IPS = ["198.19.0.1", "198.18.0.9"]


def write(path: Path, writer_class, results: list[Result] = RESULTS, **options) -> Path:  # type: ignore[no-untyped-def]
    with open(path, "w", encoding="utf-8", newline="") as stream:
        writer = writer_class(stream, started=1_700_000_000.0, ports=(22, 80, 443), **options)
        for result in results:
            writer.write(result)
        writer.close()
    return path


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (make test installs it)")
    return path


def jq(expression: str, path: Path, *flags: str) -> list[str]:
    done = subprocess.run([tool("jq"), *flags, expression, str(path)], capture_output=True,
                          text=True, check=True)
    return done.stdout.split()


# --- masscan -oD ---------------------------------------------------------------------------


def test_jq_pipelines_for_masscan_od_find_the_open_ports(tmp_path: Path) -> None:
    path = write(tmp_path / "scan.ndjson", MASSCAN_FORMATS["D"])
    assert jq('select(.data.status=="open") | .ip', path, "-r") == OPEN_IPS
    assert jq('select(.rec_type=="status") | .port', path) == ["80", "443", "22"]


def test_duckdb_reads_masscan_od_nested_status(tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    path = write(tmp_path / "scan.ndjson", MASSCAN_FORMATS["D"])
    rows = duckdb.sql(f"SELECT ip, port, data.reason FROM read_json_auto('{path}') "
                      "WHERE data.status = 'open' ORDER BY port").fetchall()
    assert rows == [("198.18.0.9", 22, "syn-ack"), ("198.19.0.1", 80, "syn-ack")]


def test_pandas_reads_masscan_od(tmp_path: Path) -> None:
    pandas = pytest.importorskip("pandas")
    path = write(tmp_path / "scan.ndjson", MASSCAN_FORMATS["D"])
    frame = pandas.json_normalize([json.loads(line) for line in path.read_text().splitlines()])
    assert list(frame.loc[frame["data.status"] == "open", "ip"]) == OPEN_IPS
    assert list(frame["data.reason"]) == ["syn-ack", "rst-ack", "syn-ack"]
    lines = pandas.read_json(path, lines=True, dtype=False)
    assert list(lines["timestamp"]) == ["1700000000", "1700000001", "1700000002"]


# --- masscan -oJ ---------------------------------------------------------------------------


def test_jq_and_duckdb_read_masscan_oj(tmp_path: Path) -> None:
    path = write(tmp_path / "scan.json", MASSCAN_FORMATS["J"])
    assert jq('.[] | select(.ports[0].status=="open") | .ip', path, "-r") == OPEN_IPS
    duckdb = pytest.importorskip("duckdb")
    rows = duckdb.sql(f"SELECT ip, ports[1].port FROM read_json_auto('{path}') "
                      "ORDER BY ip").fetchall()
    assert rows == [("198.18.0.9", 22), ("198.19.0.1", 80), ("198.19.3.200", 443)]


def test_empty_masscan_oj_is_an_empty_array_for_jq(tmp_path: Path) -> None:
    path = write(tmp_path / "empty.json", MASSCAN_FORMATS["J"], [])
    assert jq("length", path) == ["0"]


# --- masscan -oX ---------------------------------------------------------------------------


@pytest.mark.parametrize("results", [RESULTS, []], ids=["three", "empty"])
def test_xmllint_accepts_masscan_ox(tmp_path: Path, results: list[Result]) -> None:
    path = write(tmp_path / "scan.xml", MASSCAN_FORMATS["X"], results)
    done = subprocess.run([tool("xmllint"), "--noout", str(path)], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr


def test_python_libnmap_parses_masscan_ox_completely(tmp_path: Path) -> None:
    parser = pytest.importorskip("libnmap.parser")
    path = write(tmp_path / "scan.xml", MASSCAN_FORMATS["X"])
    report = parser.NmapParser.parse_fromfile(str(path))
    assert report.hosts_total == 3
    assert [host.address for host in report.hosts] == [str(r.ip) for r in RESULTS]
    assert all(host.is_up() for host in report.hosts)
    states = [(host.address, service.port, service.protocol, service.state, service.reason)
              for host in report.hosts for service in host.services]
    assert states == [("198.19.0.1", 80, "tcp", "open", "syn-ack"),
                      ("198.19.3.200", 443, "tcp", "closed", "rst-ack"),
                      ("198.18.0.9", 22, "tcp", "open", "syn-ack")]
    assert [host.get_open_ports() for host in report.hosts] == [[(80, "tcp")], [],
                                                                [(22, "tcp")]]
    empty = parser.NmapParser.parse_fromfile(
        str(write(tmp_path / "empty.xml", MASSCAN_FORMATS["X"], [])))
    assert empty.hosts == []


# --- zmap csv / json -----------------------------------------------------------------------


def test_csv_module_pandas_and_duckdb_read_zmap_csv(tmp_path: Path) -> None:
    path = write(tmp_path / "zmap.csv", ZMAP_MODULES["csv"],
                 fields=parse_output_fields("saddr,sport,classification,success,timestamp-str"))
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert [row["saddr"] for row in rows if row["success"] == "1"] == OPEN_IPS
    pandas = pytest.importorskip("pandas")
    frame = pandas.read_csv(path)
    assert list(frame.columns) == ["saddr", "sport", "classification", "success",
                                   "timestamp-str"]
    assert list(frame.loc[frame["classification"] == "synack", "sport"]) == [80, 22]
    duckdb = pytest.importorskip("duckdb")
    total = duckdb.sql(f"SELECT sum(success) FROM read_csv_auto('{path}')").fetchall()
    assert total == [(2,)]


def test_jq_and_pandas_read_zmap_json(tmp_path: Path) -> None:
    path = write(tmp_path / "zmap.json", ZMAP_MODULES["json"],
                 fields=parse_output_fields("*"))
    assert jq("select(.success==1) | .saddr", path, "-r") == OPEN_IPS
    pandas = pytest.importorskip("pandas")
    frame = pandas.read_json(path, lines=True)
    assert list(frame["ttl"]) == [64, 63, 255]
    assert list(frame["timestamp-us"]) == [250000, 750000, 0]


# --- pcap ----------------------------------------------------------------------------------


def _reply_frames() -> list[tuple[float, bytes]]:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    frames = []
    for index, (flags, port) in enumerate((("SA", 80), ("RA", 443))):
        packet = (Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
                  / IP(src="198.19.0.1", dst="198.18.0.1", ttl=64)
                  / TCP(sport=port, dport=61000, flags=flags, seq=1000 + index, ack=7))
        frames.append((1_700_000_000.5 + index, bytes(packet)))
    return frames


def test_pcap_reads_back_in_scapy_and_tshark(tmp_path: Path) -> None:
    path = tmp_path / "replies.pcap"
    frames = _reply_frames()
    with PcapWriter(open(path, "wb"), owns_stream=True) as writer:
        for timestamp, frame in frames:
            writer.write_frame(timestamp, frame)
    from scapy.utils import rdpcap

    packets = rdpcap(str(path))
    assert [bytes(packet) for packet in packets] == [frame for _, frame in frames]
    assert [float(packet.time) for packet in packets] == [stamp for stamp, _ in frames]
    done = subprocess.run([tool("tshark"), "-r", str(path), "-T", "fields", "-e", "ip.src",
                           "-e", "tcp.srcport", "-e", "tcp.flags.reset"],
                          capture_output=True, text=True, check=True)
    assert [line.split("\t") for line in done.stdout.splitlines()] == [
        ["198.19.0.1", "80", "0"], ["198.19.0.1", "443", "1"]]
