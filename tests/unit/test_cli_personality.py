"""`pyscan masscan ...` and `pyscan zmap ...` through the real entry point (typer's
CliRunner, no root): arguments reach the tools' grammars untouched, information commands,
errors as one line with exit 2 and nothing created, and a dry-run scan with their files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pyscan.cli import app

runner = CliRunner()


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


def test_help_lists_the_personalities() -> None:
    result = invoke("--help")
    assert "masscan" in result.output and "zmap" in result.output


def test_masscan_echo_sees_masscans_grammar() -> None:
    echo = invoke("masscan", "--echo", "198.19.0.0/24", "-p80,443", "-sS", "-Pn", "-n", "-T4",
                  "--max-rate", "2000", "-oX", "out.xml")
    assert echo.exit_code == 0, echo.output
    lines = echo.stdout.splitlines()
    assert {"rate = 2000", "ports = 80,443", "range = 198.19.0.0/24",
            "output-format = xml", "output-filename = out.xml"} <= set(lines)


def test_zmap_information_commands() -> None:
    fields = invoke("zmap", "--list-output-fields")
    assert fields.exit_code == 0
    assert fields.stdout.splitlines()[0].split()[0] == "saddr"
    assert invoke("zmap", "--list-output-modules").stdout.split() == ["csv", "json"]
    assert invoke("zmap", "--list-probe-modules").stdout.split() == ["tcp_synscan"]
    assert "masscan 1.3.2" in invoke("masscan", "--version").stdout


@pytest.mark.parametrize(("args", "line"), [
    (["masscan", "198.19.0.1", "-p80", "--banners"], "--banners is not supported yet: "),
    (["masscan", "198.19.0.1", "-pU:53"], "-p U:53 is not supported yet: "),
    (["masscan", "198.19.0.1", "-p80", "--bogus"], "unknown masscan option --bogus"),
    (["zmap", "-p", "80", "198.19.0.1", "-P", "0"], "bad probe count '0'"),
    (["zmap", "-p", "80", "198.19.0.1", "--output-filter", "x = 1"], "Field 'x' does not"),
    (["zmap", "-p", "80", "198.19.0.1", "-O", "csv", "-f", "ipid"], "'ipid' is not"),
    (["zmap", "198.19.0.1"], "no port given"),
])
def test_errors_are_one_line_exit_2_and_create_nothing(args: list[str], line: str,
                                                       tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke(*args, "-o" if args[0] == "zmap" else "-oL", "out")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pyscan: error: ") and line in lines[0]
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_masscan_offline_writes_masscans_files(tmp_path: Path) -> None:
    xml, ndjson = tmp_path / "out.xml", tmp_path / "out.ndjson"
    result = invoke("masscan", "198.19.0.0/30", "-p80", "--offline", "-oX", str(xml))
    assert result.exit_code == 0, result.output
    assert xml.read_bytes().startswith(b'<?xml version="1.0"?>\r\n<!-- masscan v1.0 scan')
    result = invoke("masscan", "198.19.0.0/30", "-p80", "--offline", "-oD", str(ndjson))
    assert result.exit_code == 0 and ndjson.read_text() == ""


def test_zmap_dryrun_metadata_on_stdout() -> None:
    result = invoke("zmap", "-p", "80", "198.19.0.0/30", "-d", "-q", "-m", "-", "-e", "3")
    assert result.exit_code == 0, result.output
    metadata = json.loads(result.stdout)
    assert metadata["total_sent"] == 4 and metadata["seed"] == 3 and metadata["dryrun"] == 1
    assert metadata["output_module"] == "csv" and metadata["filter_unsuccessful"] == 1


def test_the_unit_suite_cannot_send_from_the_host_namespace() -> None:
    """tests/unit/conftest.py's guard, checked without risking a packet: a config that is
    not a dry run is refused before any route is resolved."""
    from types import SimpleNamespace

    import pyscan.scanner

    with pytest.raises(AssertionError, match="tried to send packets"):
        pyscan.scanner._resolve_path(SimpleNamespace(is_dry_run=False))  # type: ignore[arg-type]


def test_masscan_iflist_names_this_namespaces_interfaces() -> None:
    result = invoke("masscan", "--iflist")
    assert result.exit_code == 0, result.output
    names = [line.split()[1] for line in result.stdout.splitlines()]
    assert "lo" in names
