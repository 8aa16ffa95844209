"""zmap's output side against what zmap 2.1.1 itself wrote in the lab (tests/data/zmap-2.1.1,
see its README): field names and values, csv/json layout, the default output, -f, the
--output-filter grammar, and the metadata keys."""

from __future__ import annotations

import csv
import io
import json
import time
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from pyscan.output.zmap import (
    ZMAP_MODULES,
    FilterError,
    ZmapFieldError,
    ZmapRunInfo,
    available_fields,
    parse_filter,
    parse_output_fields,
    zmap_default_writer,
    zmap_metadata,
    zmap_record,
)
from pyscan.scanner import Result, Summary

DATA = Path(__file__).resolve().parent.parent / "data" / "zmap-2.1.1"


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> None:
    """zmap's timestamp-str is local time; the reference files were written in UTC."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


def zmap_rows() -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((DATA / "zmap.csv").read_text())))


def as_result(row: dict[str, str]) -> Result:
    return Result(IPv4Address(row["saddr"]), int(row["sport"]),
                  "open" if row["success"] == "1" else "closed", int(row["ttl"]),
                  int(row["timestamp-ts"]) + int(row["timestamp-us"]) / 1e6,
                  window=int(row["window"]))


def render(module: str, results: list[Result], **options: object) -> str:
    stream = io.StringIO()
    writer = ZMAP_MODULES[module](stream, started=0.0, ports=(80,), **options)  # type: ignore[arg-type]
    for result in results:
        writer.write(result)
    writer.close()
    return stream.getvalue()


def test_every_field_pyscan_has_matches_zmaps_value() -> None:
    rows = zmap_rows()
    # zmap 2.1.1 wrote the reference file: it has no zmap 4 tcpopt_*/rtt columns
    fields = tuple(name for name in available_fields() if name in rows[0])
    assert {"saddr", "saddr-raw", "ttl", "sport", "classification", "success", "repeat",
            "timestamp-str", "timestamp-ts", "timestamp-us", "window"} <= set(fields)
    ours = list(csv.DictReader(io.StringIO(
        render("csv", [as_result(row) for row in rows], fields=fields))))
    assert len(ours) == len(rows) == 8
    for mine, theirs in zip(ours, rows, strict=True):
        assert mine == {name: theirs[name] for name in fields}


def test_star_header_is_zmaps_order_for_the_fields_pyscan_has() -> None:
    zmap_header = (DATA / "zmap.csv").read_text().splitlines()[0].split(",")
    # zmap 2.1.1's order, then zmap 4's TCP option fields and rtt in zmap 4's order
    zmap4_tail = ["tcpopt_mss", "tcpopt_wscale", "tcpopt_sack_perm", "tcpopt_ts_val",
                  "tcpopt_ts_ecr", "rtt"]
    assert list(parse_output_fields("*")) == [
        name for name in [*zmap_header, *zmap4_tail] if name in available_fields()]


def test_json_lines_are_json_c_objects_with_zmaps_values() -> None:
    lines = (DATA / "zmap.json").read_text().splitlines()
    theirs = [json.loads(line) for line in lines]
    results = [Result(IPv4Address(item["saddr"]), item["sport"],
                      "open" if item["success"] else "closed", item["ttl"],
                      item["timestamp-ts"] + item["timestamp-us"] / 1e6,
                      window=item["window"]) for item in theirs]
    fields = tuple(name for name in available_fields() if name in theirs[0])
    ours = render("json", results, fields=fields).splitlines()
    for line, zmap_object in zip(ours, theirs, strict=True):
        assert line.startswith('{ "saddr": "') and line.endswith(" }")
        assert json.loads(line) == {name: zmap_object[name] for name in fields}


def test_default_output_is_zmaps() -> None:
    results = [as_result(row) for row in zmap_rows()]
    stream = io.StringIO()
    writer = zmap_default_writer(stream, started=0.0, ports=(80,))
    for result in results:
        writer.write(result)
    writer.close()
    assert stream.getvalue() == (DATA / "zmap.default").read_text()


def test_default_output_adds_the_port_for_several_ports_without_header() -> None:
    stream = io.StringIO()
    writer = zmap_default_writer(stream, started=0.0, ports=(22, 80))
    writer.write(Result(IPv4Address("198.19.0.1"), 22, "open", 64, 0.0))
    writer.write(Result(IPv4Address("198.19.0.2"), 80, "closed", 64, 0.0))
    writer.close()
    assert stream.getvalue() == "198.19.0.1,22\n"


def test_filter_and_selection_give_zmaps_rows() -> None:
    zmap_lines = (DATA / "zmap.filtered").read_text().splitlines()
    ours = render("csv", [as_result(row) for row in zmap_rows()],
                  fields=parse_output_fields("saddr,sport,classification"),
                  output_filter=parse_filter("success = 0 && ttl > 10")).splitlines()
    assert ours[0] == zmap_lines[0] == "saddr,sport,classification"
    assert sorted(ours[1:]) == sorted(zmap_lines[1:])


def test_single_field_has_no_header_and_comma_strings_are_quoted() -> None:
    result = Result(IPv4Address("198.19.0.1"), 80, "open", 64, 0.0)
    assert render("csv", [result], fields=("saddr",)) == "198.19.0.1\n"


def test_underscore_spellings_of_zmap_4_are_accepted() -> None:
    fields = parse_output_fields("saddr, timestamp_ts saddr_raw")
    assert fields == ("saddr", "timestamp_ts", "saddr_raw")
    record = zmap_record(Result(IPv4Address("198.19.0.1"), 80, "open", 64, 5.5), fields)
    assert record == {"saddr": "198.19.0.1", "timestamp_ts": 5, "saddr_raw": 16782278}


@pytest.mark.parametrize(("text", "message"), [
    ("nosuch", "unknown zmap output field 'nosuch'"),
    ("saddr,ipid", "'ipid' is not supported yet"),
    ("seqnum", "'seqnum' is not supported yet"),
    (",", "bad output field list"),
])
def test_bad_fields_are_refused_by_name(text: str, message: str) -> None:
    with pytest.raises(ZmapFieldError, match=message):
        parse_output_fields(text)


RECORDS = [
    {"success": 1, "repeat": 0, "ttl": 64, "sport": 80, "classification": "synack"},
    {"success": 0, "repeat": 0, "ttl": 64, "sport": 80, "classification": "rst"},
    {"success": 1, "repeat": 0, "ttl": 5, "sport": 443, "classification": "synack"},
    {"success": 0, "repeat": 0, "ttl": 250, "sport": 22, "classification": "rst"},
]


@pytest.mark.parametrize(("text", "expected"), [
    ("success = 1 && repeat = 0", lambda r: r["success"] == 1 and r["repeat"] == 0),
    ("success = 1 || ttl > 100 && sport = 22",
     lambda r: r["success"] == 1 or (r["ttl"] > 100 and r["sport"] == 22)),
    ("(success = 1 || ttl > 100) && sport = 22",
     lambda r: (r["success"] == 1 or r["ttl"] > 100) and r["sport"] == 22),
    ("classification != rst", lambda r: r["classification"] != "rst"),
    ("ttl >= 64 && ttl <= 64", lambda r: r["ttl"] == 64),
    ("sport < 80 || sport != 443 && success=0",
     lambda r: r["sport"] < 80 or (r["sport"] != 443 and r["success"] == 0)),
])
def test_filter_evaluates_like_zmap(text: str, expected) -> None:  # type: ignore[no-untyped-def]
    output_filter = parse_filter(text)
    assert [output_filter.matches(record) for record in RECORDS] == \
        [expected(record) for record in RECORDS]


@pytest.mark.parametrize(("text", "message"), [
    ("nosuch = 1", "Field 'nosuch' does not exist"),
    ("success = synack", "Field 'success' is not of type 'string'"),
    ("classification = 1", "Field 'classification' is not of type 'int'"),
    ("classification > rst", "compares only with = or !="),
    ("success = 1 &&", "ends too early"),
    ("(success = 1", "not closed"),
    ("success = 1 repeat = 0", "unexpected 'repeat'"),
    ("success == 1", "expected a number or a word"),
    ("ipid > 0", "'ipid' is not supported yet"),
    ("", "empty output filter"),
    ("saddr = 1.2.3.4", "unexpected"),
])
def test_bad_filters_are_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(FilterError, match=message):
        parse_filter(text)


def test_filter_lists_the_fields_it_reads() -> None:
    assert parse_filter("success = 1 && (ttl > 3 || success = 0)").fields == ("success", "ttl")


def summary(**overrides: object) -> Summary:
    values: dict[str, object] = dict(
        targets=8, ports=1, probes=8, sent=8, tx_errors=0, duration=1.0, send_duration=0.1,
        replies=8, valid=8, invalid_cookies=0, open=1, closed=7, duplicates=0,
        driver_drops=0, driver="af-packet", driver_description="", seed=7, shard=(1, 1),
        interrupted=False)
    values.update(overrides)
    return Summary(**values)  # type: ignore[arg-type]


def test_metadata_uses_zmaps_keys_and_types() -> None:
    zmap_meta = json.loads((DATA / "zmap.meta").read_text())
    run = ZmapRunInfo(targets=("198.19.0.0/29",), ports=(80,), source_ports=(61000, 61255),
                      rate=1000, cooldown=1, seed=7, seed_given=False, shard=(1, 1), senders=1,
                      send_start=1e9, send_end=1e9 + 1, recv_start=1e9, recv_end=1e9 + 2,
                      output_module="csv", output_filename="out.csv", filter_unsuccessful=True,
                      interface="lab-s", source_ip="198.18.0.1", gateway_mac="7E:73:EE:1A:86:E0")
    ours = zmap_metadata(run, summary())
    json.dumps(ours)
    pyscan_only = {"target_ports", "duplicates"}
    assert set(ours) - pyscan_only <= set(zmap_meta)
    for key in set(ours) - pyscan_only:
        assert type(ours[key]) is type(zmap_meta[key]), key
    assert ours["hitrate"] == zmap_meta["hitrate"] == 12.5
    assert ours["success_unique"] == 1 and ours["failure_total"] == 7
    assert ours["shard_num"] == 0 and ours["total_shards"] == 1
    assert ours["gateway_mac"] == "7e:73:ee:1a:86:e0"
    assert ours["send_start_time"] == "2001-09-09T01:46:40+0000"


def test_reply_window_options_and_rtt_fill_zmaps_fields() -> None:
    result = Result(IPv4Address("198.19.0.1"), 80, "open", 64, 5.5, window=64240, mss=1460,
                    wscale=7, sack_permitted=True, ts_val=11, ts_ecr=22, rtt=0.000345)
    names = ("window", "tcpopt_mss", "tcpopt_wscale", "tcpopt_sack_perm", "tcpopt_ts_val",
             "tcpopt_ts_ecr", "rtt")
    assert zmap_record(result, parse_output_fields(",".join(names))) == {
        "window": 64240, "tcpopt_mss": 1460, "tcpopt_wscale": 7, "tcpopt_sack_perm": 1,
        "tcpopt_ts_val": 11, "tcpopt_ts_ecr": 22, "rtt": 345}
    bare = Result(IPv4Address("198.19.0.1"), 80, "closed", 64, 5.5)
    assert set(zmap_record(bare, names[1:]).values()) == {None}
