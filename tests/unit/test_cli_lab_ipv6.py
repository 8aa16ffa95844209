"""`pyscan lab up --echo-count6 N --unreachable6 N` parsing (no root: the lab is never built,
its `up` is replaced by one that records the Lab the command made)."""

from __future__ import annotations

from ipaddress import IPv6Network

import pytest
from typer.testing import CliRunner

from pyscan.cli import app
from pyscan.lab import Lab, LabInputError

runner = CliRunner()


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[Lab]:
    import pyscan.privileges

    made: list[Lab] = []

    def up(self: Lab) -> Lab:
        made.append(self)
        return self

    monkeypatch.setattr(pyscan.privileges, "require_lab_privileges", lambda: None)
    monkeypatch.setattr(Lab, "up", up)
    return made


def lines_of(output: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in output.splitlines() if ": " in line)


def test_echo_count6_and_unreachable6_reach_the_lab_and_its_status(built: list[Lab]) -> None:
    result = runner.invoke(app, ["lab", "up", "--name", "never6", "--subnet6", "2001:2::/124",
                                 "--ports", "80,443", "--seed", "9", "--open-count6", "10",
                                 "--echo-count6", "5", "--unreachable6", "7"])
    assert result.exit_code == 0, result.output
    (lab,) = built
    echo, unreachable = lab.echo_truth6(), lab.unreachable_truth6()
    assert len(echo) == 5 and all(ip in IPv6Network("2001:2::/124") for ip in echo)
    assert len(unreachable) == 7 and not set(unreachable) & lab.truth6()
    shown = lines_of(result.stdout)
    assert (shown["echo_hosts6"], shown["unreachable_pairs6"], shown["open_pairs6"]) == (
        "5", "7", "10")
    # The same seed draws the same hosts: a lab rebuilt from its command is the same lab.
    assert Lab.draw_echo_hosts6("2001:2::/124", 5, 9) == frozenset(echo)
    assert Lab.draw_echo_hosts6("2001:2::/124", 5, 10) != frozenset(echo)


def test_without_ipv6_options_every_address_echoes_and_none_is_unreachable(
        built: list[Lab]) -> None:
    result = runner.invoke(app, ["lab", "up", "--name", "never6", "--subnet6", "2001:2::/124"])
    assert result.exit_code == 0, result.output
    shown = lines_of(result.stdout)
    assert (shown["echo_hosts6"], shown["unreachable_pairs6"]) == ("all", "0")
    assert len(built[0].echo_truth6()) == 16


@pytest.mark.parametrize(("args", "named"), [
    (["--echo-count6", "17", "--subnet6", "2001:2::/124"], "echo host count 17"),
    (["--echo-count6", "-1"], "--echo-count6 '-1'"),
    (["--unreachable6", "x"], "--unreachable6 'x'"),
    (["--unreachable6", "100", "--subnet6", "2001:2::/124", "--ports", "80"],
     "unreachable_count6 100 is out of range"),
    (["--unreachable6", "2", "--no-ipv6"], "--unreachable6 and --no-ipv6"),
    (["--echo-count6", "2", "--no-ipv6"], "--echo-count6 and --no-ipv6"),
])
def test_bad_ipv6_lab_options_exit_2_with_one_line(built: list[Lab], args: list[str],
                                                   named: str) -> None:
    result = runner.invoke(app, ["lab", "up", "--name", "never6", *args])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0]
    assert built == []                      # refused before anything is built


def test_unreachable_pairs6_are_checked() -> None:
    from ipaddress import IPv6Address

    with pytest.raises(LabInputError, match="outside the lab"):
        Lab(name="never", subnet6="2001:2::/124",
            unreachable_pairs6={(IPv6Address("2001:2::1:1"), 80)})
    pair = (IPv6Address("2001:2::3"), 80)
    with pytest.raises(LabInputError, match="must not be open pairs too"):
        Lab(name="never", subnet6="2001:2::/124", ports=(80,), open_pairs6={pair},
            unreachable_pairs6={pair})
    with pytest.raises(LabInputError, match="not both"):
        Lab(name="never", unreachable_pairs6={pair}, unreachable_count6=1)
    lab = Lab(name="never", subnet6="2001:2::/124", ports=(80,), unreachable_pairs6={pair})
    assert lab.unreachable_truth6() == {pair: 0} and pair not in lab.truth6()
    assert lab._settings()["unreachable6"] == ["[2001:2::3]:80"]
