"""The public way to write pyscan's files from the API: open_writer / write_results, "-" as
standard output, masscan's --append-output, every format by one name."""

from __future__ import annotations

import json
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from pyscan.output import (
    FORMATS,
    MASSCAN_FORMATS,
    WRITERS,
    ZMAP_MODULES,
    open_writer,
    write_results,
)
from pyscan.scanner import Result

RESULTS = [Result(IPv4Address("198.19.0.1"), 80, "open", 64, 1_700_000_000.0),
           Result(IPv4Address("198.19.0.2"), 22, "open", 64, 1_700_000_001.0)]


def test_every_writer_has_one_unique_name() -> None:
    # + 1: masscan's console lines, which no -o letter names
    assert len(WRITERS) == len(FORMATS) + len(MASSCAN_FORMATS) + len(ZMAP_MODULES) + 1
    for name, writer_class in WRITERS.items():
        assert writer_class.name == name and writer_class.description


def test_dash_means_standard_output(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert write_results(RESULTS, "-", "masscan-list") == 2
    assert capsys.readouterr().out.splitlines()[1] == "open tcp 80 198.19.0.1 1700000000"
    assert not (tmp_path / "-").exists()


def test_write_results_to_a_file_in_any_format(tmp_path: Path) -> None:
    path = tmp_path / "scan.json"
    assert write_results(RESULTS, path, "masscan-json") == 2
    assert [item["ip"] for item in json.loads(path.read_text())] == ["198.19.0.1", "198.19.0.2"]
    write_results(RESULTS, tmp_path / "z.csv", "zmap-csv", fields=("saddr", "sport"))
    assert (tmp_path / "z.csv").read_text() == "saddr,sport\n198.19.0.1,80\n198.19.0.2,22\n"


def test_append_adds_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "scan.txt"
    write_results(RESULTS[:1], path, "masscan-list")
    write_results(RESULTS[1:], path, "masscan-list", append=True)
    lines = path.read_text().splitlines()
    assert [line.split()[3] for line in lines if not line.startswith("#")] == \
        ["198.19.0.1", "198.19.0.2"]


def test_writer_is_a_context_manager_and_closes_its_file(tmp_path: Path) -> None:
    with open_writer(tmp_path / "a.ndjson", "masscan-ndjson") as writer:
        writer.write(RESULTS[0])
    assert writer.stream.closed
    assert json.loads((tmp_path / "a.ndjson").read_text())["data"]["status"] == "open"


def test_unknown_format_names_the_accepted_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown output format 'xml'.*masscan-xml"):
        open_writer(None, "xml")
