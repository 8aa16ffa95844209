"""Help texts, exit codes of the lab's bad input and -q's silence (issue 11's "Help, docs,
exit codes"), through typer's CliRunner."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pyscan.cli import app
from pyscan.errors import EXIT_BAD_INPUT, EXIT_CODES, EXIT_TERMINATED, exit_code

runner = CliRunner()
DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
# typer's default type tags: <str>, <bool>, <list[str]>, <int>, ...
TYPE_TAG = re.compile(r"<(str|bool|int|float|list\[[a-z]+\])>")


def test_top_help_points_to_the_scan_options() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "pyscan scan --help" in text
    for option in ("--rate", "--driver", "-oL"):
        assert option in text
    assert not TYPE_TAG.search(result.stdout)


def test_scan_help_shows_p_and_no_python_types() -> None:
    result = runner.invoke(app, ["scan", "--help"])
    assert result.exit_code == 0
    assert not TYPE_TAG.search(result.stdout), TYPE_TAG.search(result.stdout)
    ports_row = next(line for line in result.stdout.splitlines() if "--ports" in line)
    assert "PORTS" in ports_row
    # -p is needed unless --ping / --probe icmp-echo scan addresses only (a missing -p is
    # refused by the command, test_cli.py), so click does not mark it required.
    text = " ".join(result.stdout.split())
    assert "Not needed with --ping or --probe icmp-echo" in text.replace("│ ", "")
    assert "--output" in result.stdout and "FILE" in result.stdout


def test_scan_help_lists_the_masscan_spellings() -> None:
    from pyscan.cli.argv import _ALIASES, _MASSCAN_OUTPUT_FLAGS

    text = " ".join(runner.invoke(app, ["scan", "--help"]).stdout.split())
    for spelling in [*_ALIASES, *(f for f in _MASSCAN_OUTPUT_FLAGS if f != "-oC"), "-p-"]:
        assert spelling in text, spelling


def test_missing_ports_is_one_line_exit_2() -> None:
    result = runner.invoke(app, ["198.19.0.1", "--dry-run"])
    assert result.exit_code == EXIT_BAD_INPUT
    assert result.stderr.splitlines() == [
        "pyscan: error: no ports given (accepted: -p 80 | -p 22,80,443 | -p 1-1024 | -p- "
        "| -p U:53, or --ping)"]


@pytest.mark.parametrize(("args", "named"), [
    (["--name", "Upper"], "'Upper'"),
    (["--name", "x" * 20], "'" + "x" * 20 + "'"),
    (["--subnet", "10.0.0.0/24"], "10.0.0.0/24"),
    (["--subnet", "198.19.0.0/33"], "198.19.0.0/33"),
    (["--ports", "80", "--open-count", "5", "--subnet", "198.19.0.0/30"], "open_count 5"),
    (["--subnet6", "2001:db8::/120"], "2001:db8::/120"),
    (["--subnet6", "2001:2::/64"], "2001:2::/64"),
    (["--ports", "80", "--open-count6", "9", "--subnet6", "2001:2::/126"], "open_count6 9"),
    (["--no-ipv6", "--subnet6", "2001:2::/120"], "--no-ipv6"),
])
def test_lab_up_bad_input_exits_2_before_the_privilege_check(monkeypatch, args: list[str],
                                                            named: str) -> None:
    import pyscan.privileges

    # Without any capability: bad input must still be reported as bad input (2), not 77.
    monkeypatch.setattr(pyscan.privileges, "effective_capabilities", lambda *a: 0)
    result = runner.invoke(app, ["lab", "up", *args])
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pyscan: error: "), lines
    assert named in lines[0]


def test_lab_errors_in_the_exit_code_table() -> None:
    from pyscan.lab import LabError, LabInputError

    assert exit_code(LabInputError("bad name")) == EXIT_BAD_INPUT
    assert exit_code(LabError("veth creation failed")) == 1
    assert issubclass(LabInputError, ValueError)   # a ConfigError: `except ValueError` works


def _interrupted_dry_run(*extra: str):
    import os
    import signal
    import threading

    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with tempfile.TemporaryDirectory() as pause_dir:  # where the stop saves its state
            return runner.invoke(app, ["198.18.0.0/16", "-p", "80", "--dry-run", "--rate",
                                       "1000", "--wait", "0", "--pause-file",
                                       f"{pause_dir}/paused.json", *extra])
    finally:
        timer.join()


def test_ctrl_c_message_without_q() -> None:
    result = _interrupted_dry_run()
    assert result.exit_code == 130, result.output
    assert "pyscan: stopping; waiting for late replies" in result.stderr


def test_q_silences_the_ctrl_c_message() -> None:
    result = _interrupted_dry_run("-q")
    assert result.exit_code == 130, result.output
    assert result.stderr == ""
    assert result.stdout == "#masscan\n# end\n"   # the output is still completed


def test_docs_list_bench_and_every_exit_code() -> None:
    text = DOCS.read_text()
    assert re.search(r"^pyscan bench ", text, re.MULTILINE)
    table = text[text.index("## Exit codes"):]
    for code in {*EXIT_CODES.values(), EXIT_TERMINATED}:
        assert re.search(rf"^\| {code} \|", table, re.MULTILINE), code
