"""Every output format, parsed back with an independent reader (json, csv, plain split)."""

from __future__ import annotations

import csv
import io
import json
from ipaddress import IPv4Address

import pytest

from pyscan.config import ConfigError, ScanConfig
from pyscan.output import FORMAT_NAMES, FORMATS, OutputSpec, open_writer
from pyscan.scanner import Result

RESULTS = [
    Result(IPv4Address("198.19.0.1"), 80, "open", 64, 1_700_000_000.25),
    Result(IPv4Address("198.19.3.200"), 443, "closed", 63, 1_700_000_001.75),
    Result(IPv4Address("198.18.0.9"), 22, "open", 255, 1_700_000_002.0),
]


def render(name: str, results: list[Result]) -> str:
    stream = io.StringIO()
    writer = FORMATS[name](stream, started=1_700_000_000.0, ports=(22, 80, 81, 82, 443))
    for result in results:
        writer.write(result)
    writer.close()
    writer.close()  # idempotent: no second trailer
    return stream.getvalue()


def test_registry_names_match_the_writers() -> None:
    assert FORMAT_NAMES == ("list", "ndjson", "json", "csv", "grepable")
    for name, writer_class in FORMATS.items():
        assert writer_class.name == name
        assert writer_class.description


def test_scan_config_carries_no_output_settings() -> None:
    fields = ScanConfig.__dataclass_fields__
    assert not [name for name in fields if name.startswith("output")]


def test_output_spec_refuses_an_unknown_format() -> None:
    with pytest.raises(ConfigError, match=r"'xml'.*accepted: list, ndjson, json, csv, grepable"):
        OutputSpec.parse("out.xml", "xml")


def test_output_spec_checks_the_path_without_creating_it(tmp_path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        OutputSpec.parse(tmp_path, "list").check_writable()
    with pytest.raises(ConfigError, match="does not exist"):
        OutputSpec.parse(tmp_path / "none" / "out.txt").check_writable()
    fine = OutputSpec.parse(tmp_path / "out.txt", "csv")
    fine.check_writable()
    assert not (tmp_path / "out.txt").exists()


def test_output_spec_opens_its_file_in_its_format(tmp_path) -> None:
    spec = OutputSpec.parse(str(tmp_path / "out.ndjson"), "ndjson")
    writer = spec.open(started=1_700_000_000.0, ports=(80,))
    writer.write(RESULTS[0])
    writer.close()
    record = json.loads((tmp_path / "out.ndjson").read_text())
    assert record["ip"] == str(RESULTS[0].ip) and record["port"] == RESULTS[0].port


def test_list_format_is_masscan_ol() -> None:
    lines = render("list", RESULTS).splitlines()
    assert lines[0] == "#masscan"
    assert lines[-1] == "# end"
    assert lines[1:-1] == [
        "open tcp 80 198.19.0.1 1700000000",
        "closed tcp 443 198.19.3.200 1700000001",
        "open tcp 22 198.18.0.9 1700000002",
    ]


@pytest.mark.parametrize("count", [0, 1, 3])
def test_json_is_valid_for_any_count(count: int) -> None:
    document = json.loads(render("json", RESULTS[:count]))
    assert isinstance(document, list)
    assert len(document) == count
    for element, result in zip(document, RESULTS, strict=False):
        assert element["ip"] == str(result.ip)
        assert element["timestamp"] == int(result.timestamp)
        (port,) = element["ports"]
        assert port == {
            "port": result.port, "proto": "tcp", "status": result.status,
            "reason": "syn-ack" if result.status == "open" else "rst", "ttl": result.ttl,
            "window": None, "tcpopt_mss": None, "tcpopt_wscale": None,
            "tcpopt_sack_perm": None, "tcpopt_ts_val": None, "tcpopt_ts_ecr": None,
            "rtt_us": None,
        }


def test_ndjson_one_flat_object_per_line() -> None:
    lines = render("ndjson", RESULTS).splitlines()
    assert len(lines) == 3
    records = [json.loads(line) for line in lines]
    assert records[1] == {
        "ip": "198.19.3.200", "timestamp": 1700000001, "port": 443, "proto": "tcp",
        "status": "closed", "reason": "rst", "ttl": 63, "window": None, "tcpopt_mss": None,
        "tcpopt_wscale": None, "tcpopt_sack_perm": None, "tcpopt_ts_val": None,
        "tcpopt_ts_ecr": None, "rtt_us": None,
    }
    assert render("ndjson", []) == ""


def test_csv_has_header_and_rows() -> None:
    rows = list(csv.DictReader(io.StringIO(render("csv", RESULTS))))
    assert [row["saddr"] for row in rows] == ["198.19.0.1", "198.19.3.200", "198.18.0.9"]
    assert rows[0]["sport"] == "80"
    assert rows[0]["classification"] == "synack"
    assert rows[1]["classification"] == "rst"
    assert [row["success"] for row in rows] == ["1", "0", "1"]
    assert float(rows[1]["timestamp"]) == pytest.approx(1_700_000_001.75)
    assert render("csv", []).splitlines() == [
        "saddr,sport,classification,success,ttl,timestamp,window,tcpopt_mss,tcpopt_wscale,"
        "tcpopt_sack_perm,tcpopt_ts_val,tcpopt_ts_ecr,rtt_us,icmp_type,icmp_code"]


TCP_UNREACHABLE = Result(IPv4Address("198.19.0.4"), 8080, "unreachable", 62, 1_700_000_003.0,
                         icmp_type=3, icmp_code=13)


def test_tcp_unreachable_carries_icmp_type_and_code_in_json_formats_and_csv() -> None:
    [record] = [json.loads(line) for line in render("ndjson", [TCP_UNREACHABLE]).splitlines()]
    assert (record["status"], record["proto"], record["reason"], record["icmp_type"],
            record["icmp_code"], record["window"]) == ("unreachable", "tcp", "unreach", 3, 13,
                                                       None)
    [whole] = json.loads(render("json", [TCP_UNREACHABLE]))[0]["ports"]
    assert (whole["status"], whole["icmp_type"], whole["icmp_code"]) == ("unreachable", 3, 13)
    [row, opened] = csv.DictReader(io.StringIO(render("csv", [TCP_UNREACHABLE, RESULTS[0]])))
    # zmap's tcp_synscan calls an ICMP error "icmp"
    assert (row["classification"], row["success"], row["icmp_type"], row["icmp_code"]) == (
        "icmp", "0", "3", "13")
    assert (opened["classification"], opened["icmp_type"], opened["icmp_code"]) == (
        "synack", "", "")
    assert TCP_UNREACHABLE.to_dict()["icmp_code"] == 13


def test_grepable() -> None:
    lines = render("grepable", RESULTS).splitlines()
    assert lines[0].startswith("# pyscan scan initiated ")
    assert lines[1] == "# Ports scanned: TCP(5;22-22,80-82,443-443) UDP(0;) SCTP(0;) PROTOCOLS(0;)"
    assert lines[2] == "Timestamp: 1700000000\tHost: 198.19.0.1 ()\tPorts: 80/open/tcp////"
    assert lines[-1].startswith("# pyscan done at ")


def test_writers_stream_each_record_before_close() -> None:
    stream = io.StringIO()
    writer = FORMATS["ndjson"](stream, started=0.0)
    writer.write(RESULTS[0])
    assert json.loads(stream.getvalue())["port"] == 80


def test_open_writer_owns_and_closes_its_file(tmp_path) -> None:
    path = tmp_path / "out.json"
    writer = open_writer(path, "json", started=0.0)
    writer.write(RESULTS[0])
    writer.close()
    assert writer.stream.closed
    assert json.loads(path.read_text())[0]["ip"] == "198.19.0.1"


def test_open_writer_leaves_a_given_stream_open() -> None:
    stream = io.StringIO()
    writer = open_writer(None, "list", started=0.0, stream=stream)
    writer.close()
    assert not stream.closed
    assert stream.getvalue() == "#masscan\n# end\n"


def test_open_writer_bad_path_names_it(tmp_path) -> None:
    with pytest.raises(OSError, match="no-such-dir"):
        open_writer(tmp_path / "no-such-dir" / "x", "list", started=0.0)


def test_reply_details_reach_ndjson_json_and_csv() -> None:
    from dataclasses import replace

    detailed = replace(RESULTS[0], window=64240, mss=1460, wscale=7, sack_permitted=True,
                       ts_val=11, ts_ecr=22, rtt=0.000345)
    expected = {"window": 64240, "tcpopt_mss": 1460, "tcpopt_wscale": 7,
                "tcpopt_sack_perm": True, "tcpopt_ts_val": 11, "tcpopt_ts_ecr": 22,
                "rtt_us": 345}
    record = json.loads(render("ndjson", [detailed]))
    assert {key: record[key] for key in expected} == expected
    (port,) = json.loads(render("json", [detailed]))[0]["ports"]
    assert {key: port[key] for key in expected} == expected
    (row,) = csv.DictReader(io.StringIO(render("csv", [detailed])))
    assert {key: row[key] for key in expected} == {
        key: str(int(value)) for key, value in expected.items()}
    # masscan's shapes stay as they were
    assert "64240" not in render("list", [detailed]) + render("grepable", [detailed])
