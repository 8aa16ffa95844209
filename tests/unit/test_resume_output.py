"""Continuing an output file after a stop (pyscan.output.append): every appendable format,
cut at every byte of its last record or after its trailer, is repaired, read back and
continued into exactly the file one uninterrupted run writes."""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from xml.etree import ElementTree

import pytest

from pyscan.config import ConfigError
from pyscan.output import open_writer
from pyscan.output.append import APPENDABLE, prepare_append
from pyscan.scanner import Result

RESULTS = [Result(IPv4Address(f"198.18.0.{i}"), 80 + i, "open", 64, 1_700_000_000 + i,
                  window=64240) for i in range(1, 6)]
STARTED = 1_700_000_000.0


def write(path: Path, format: str, results: list[Result], *, continued: int | None = None,
          append: bool = False) -> None:
    with open_writer(path, format, started=STARTED, ports=(80,), append=append,
                     continued=continued) as writer:
        for result in results:
            writer.write(result)


def records(path: Path, format: str) -> list[tuple[str, int]]:
    """(address, port) of every record, through the format's ordinary reader."""
    text = path.read_text()
    if format in ("json", "masscan-json"):
        return [(e["ip"], e["ports"][0]["port"]) for e in json.loads(text)]
    if format in ("ndjson", "masscan-ndjson"):
        return [(e["ip"], e["port"]) for e in map(json.loads, text.splitlines())]
    if format in ("list", "masscan-list"):
        lines = text.splitlines()
        assert lines[0] == "#masscan" and lines[-1] == "# end"
        return [(line.split()[3], int(line.split()[2])) for line in lines[1:-1]]
    if format == "masscan-xml":
        root = ElementTree.fromstring(text)
        assert int(root.find("runstats/hosts").get("total")) == len(root.findall("host"))
        return [(h.find("address").get("addr"), int(h.find("ports/port").get("portid")))
                for h in root.findall("host")]
    if format == "csv":
        lines = text.splitlines()
        assert lines[0].startswith("saddr,") and sum(1 for x in lines if x.startswith("saddr"))
        return [(x.split(",")[0], int(x.split(",")[1])) for x in lines[1:]]
    lines = text.splitlines()
    assert lines[-1].startswith(("# pyscan done", "# Masscan done"))
    return [(x.split("Host: ")[1].split(" ")[0], int(x.split("Ports: ")[1].split("/")[0]))
            for x in lines if x.startswith("Timestamp:")]


def expected(results: list[Result]) -> list[tuple[str, int]]:
    return [(str(r.ip), r.port) for r in results]


@pytest.mark.parametrize("format", APPENDABLE)
def test_a_complete_file_is_continued_without_a_second_header(tmp_path: Path,
                                                               format: str) -> None:
    path = tmp_path / "out"
    write(path, format, RESULTS[:3])
    state = prepare_append(path, format)
    assert state is not None and state.records == 3
    assert [(str(IPv4Address(ip)), port) for ip, port, _ in state.known] == expected(RESULTS[:3])
    write(path, format, RESULTS[3:], continued=state.records, append=True)
    assert records(path, format) == expected(RESULTS)


@pytest.mark.parametrize("format", APPENDABLE)
def test_a_file_cut_anywhere_in_its_last_record_keeps_the_complete_ones(tmp_path: Path,
                                                                        format: str) -> None:
    whole = tmp_path / "whole"
    write(whole, format, RESULTS[:3])
    data = whole.read_bytes()
    before = tmp_path / "before"
    write(before, format, RESULTS[:2])
    # Every cut from the end of two records' text to the full file (trailer included).
    two = len(before.read_bytes()) - _trailer_length(before, format)
    for cut in range(two, len(data) + 1):
        path = tmp_path / f"cut{cut}"
        path.write_bytes(data[:cut])
        state = prepare_append(path, format)
        assert state is not None
        kept = state.records
        assert kept in (2, 3), (cut, kept)
        write(path, format, RESULTS[kept:], continued=kept, append=True)
        assert records(path, format) == expected(RESULTS), (cut, path.read_text())


def _trailer_length(path: Path, format: str) -> int:
    text = path.read_bytes()
    if format in ("list", "masscan-list"):
        return len(b"# end\n")
    if format == "json":
        return len(b"\n]\n")
    if format == "masscan-json":
        return len(b"]\n")
    if format in ("grepable", "masscan-grepable"):
        return len(text) - text.rfind(b"# ")
    if format == "masscan-xml":
        return len(text) - text.rfind(b"<runstats>")
    return 0


def test_an_empty_or_missing_file_starts_fresh(tmp_path: Path) -> None:
    assert prepare_append(tmp_path / "missing", "json") is None
    (tmp_path / "empty").write_text("")
    assert prepare_append(tmp_path / "empty", "json") is None


def test_a_header_only_json_file_gets_its_first_element(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    path.write_text("[\n")  # killed before the first result
    state = prepare_append(path, "json")
    assert state is not None and state.records == 0 and state.has_header
    write(path, "json", RESULTS[:1], continued=0, append=True)
    assert records(path, "json") == expected(RESULTS[:1])


def test_formats_that_cannot_be_continued_are_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="zmap-csv"):
        prepare_append(tmp_path / "x.csv", "zmap-csv")


def test_a_foreign_file_is_refused_not_cut(tmp_path: Path) -> None:
    path = tmp_path / "out.ndjson"
    path.write_text('{"ip":"198.18.0.1","port":80,"proto":"tcp"}\nhello\n'
                    '{"ip":"198.18.0.2","port":80,"proto":"tcp"}\n')
    with pytest.raises(ConfigError, match="line 2"):
        prepare_append(path, "ndjson")
    assert path.read_text().count("\n") == 3


RESULTS6 = [Result(IPv6Address(f"2001:2::{i:x}"), 80 + i, "open", 64, 1_700_000_000 + i,
                   window=64240) for i in (1, 2, 0x3ff, 0xabc, 0xffff)]


@pytest.mark.parametrize("format", APPENDABLE)
def test_ipv6_records_are_read_back_as_128_bit_addresses_and_continued(tmp_path: Path,
                                                                        format: str) -> None:
    path = tmp_path / "out"
    write(path, format, RESULTS6[:3])
    state = prepare_append(path, format)
    assert state is not None and state.records == 3
    assert [(IPv6Address(ip), port, proto) for ip, port, proto in state.known] == \
        [(r.ip, r.port, 6) for r in RESULTS6[:3]]
    write(path, format, RESULTS6[3:], continued=state.records, append=True)
    assert records(path, format) == expected(RESULTS6)
