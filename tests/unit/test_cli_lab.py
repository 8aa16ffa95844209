"""`pyscan lab up` options that draw parts of the lab, their refusals and the state they
leave: `--echo-count6 N --unreachable6 N`, and the UDP responders `--udp-ports P
--udp-open-count N --udp-open-count6 N`. No root: the lab is never built, its `up` is
replaced by one that records the Lab the command made, and state files go to a temporary
directory."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Network
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pyscan.cli import app
from pyscan.lab import Lab, LabInputError

runner = CliRunner()
SUBNET = "198.19.0.0/28"
SUBNET6 = "2001:2::/124"


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Lab]:
    import pyscan.privileges

    made: list[Lab] = []

    def up(self: Lab) -> Lab:
        made.append(self)
        return self

    monkeypatch.setattr(pyscan.privileges, "require_lab_privileges", lambda: None)
    monkeypatch.setattr(Lab, "up", up)
    monkeypatch.setattr("pyscan.lab.LAB_STATE_DIR", tmp_path)
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
    (["--udp-ports", "x"], "bad --udp-ports 'x'"),
    (["--udp-ports", "T:53"], "bad --udp-ports 'T:53': TCP ports go in --ports"),
    (["--udp-ports", "70000"], "bad --udp-ports '70000'"),
    (["--udp-ports", "0"], "lab UDP ports [0] must be within 1-65535"),
    (["--udp-open-count", "3"], "--udp-open-count needs --udp-ports"),
    (["--udp-open-count6", "3"], "--udp-open-count6 needs --udp-ports"),
    (["--udp-ports", "53", "--udp-open-count", "-1"], "--udp-open-count '-1'"),
    (["--udp-ports", "53", "--udp-open-count6", "x"], "--udp-open-count6 'x'"),
    (["--udp-ports", "53", "--udp-open-count", "17", "--subnet", SUBNET],
     "udp_open_count 17 is out of range"),
    (["--udp-ports", "53", "--udp-open-count6", "17", "--subnet6", SUBNET6],
     "udp_open_count6 17 is out of range"),
    (["--udp-ports", "53", "--udp-open-count6", "1", "--no-ipv6"],
     "--udp-open-count6 and --no-ipv6"),
])
def test_bad_lab_options_exit_2_with_one_line(built: list[Lab], args: list[str],
                                              named: str) -> None:
    result = runner.invoke(app, ["lab", "up", "--name", "never6", *args])
    assert result.exit_code == 2, result.output
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


# --- UDP responders: --udp-ports, --udp-open-count, --udp-open-count6 ---


def lab_up(*args: str) -> list[str]:
    return ["lab", "up", "--name", "neverudp", "--subnet", SUBNET, "--subnet6", SUBNET6, *args]


def test_udp_open_counts_draw_both_families_and_show_in_status(built: list[Lab]) -> None:
    result = runner.invoke(app, lab_up("--udp-ports", "53,U:123", "--udp-open-count", "5",
                                       "--udp-open-count6", "4", "--seed", "3"))
    assert result.exit_code == 0, result.output
    (lab,) = built
    udp, udp6 = lab.udp_truth(), lab.udp_truth6()
    assert len(udp) == 5 and all(ip in IPv4Network(SUBNET) and port in (53, 123)
                                 for ip, port in udp)
    assert len(udp6) == 4 and all(ip in IPv6Network(SUBNET6) and port in (53, 123)
                                  for ip, port in udp6)
    shown = lines_of(result.stdout)
    assert (shown["udp_ports"], shown["udp_open_pairs"], shown["udp_open_pairs6"]) == (
        "[53, 123]", "5", "4")
    command = f"pyscan --netns neverudp-scan {SUBNET} -p U:53,U:123"
    command6 = f"pyscan --netns neverudp-scan {SUBNET6} -p U:53,U:123"
    assert shown["udp_scan_command"] == command
    assert shown["udp_scan_command6"] == command6
    assert f"UDP:           {command}" in result.stdout.splitlines()
    assert f"UDP over IPv6: {command6}" in result.stdout.splitlines()
    # The same seed draws the same pairs; another seed others.
    again = Lab(name="neverudp", subnet=SUBNET, subnet6=SUBNET6, udp_ports=(53, 123),
                udp_open_count=5, udp_open_count6=4, seed=3)
    other = Lab(name="neverudp", subnet=SUBNET, subnet6=SUBNET6, udp_ports=(53, 123),
                udp_open_count=5, udp_open_count6=4, seed=4)
    assert (again.udp_truth(), again.udp_truth6()) == (udp, udp6)
    assert (other.udp_truth(), other.udp_truth6()) != (udp, udp6)
    # Persisted like every other setting: a later process (status, down) gets the same lab.
    lab._save(state="up")
    loaded = Lab.load("neverudp")
    assert (loaded.udp_truth(), loaded.udp_truth6(), loaded.udp_ports) == (udp, udp6, (53, 123))
    assert loaded._settings() == lab._settings()
    assert loaded.udp_scan_command6() == command6


def test_udp_ports_alone_answer_on_every_ipv4_address(built: list[Lab]) -> None:
    result = runner.invoke(app, lab_up("--udp-ports", "161"))
    assert result.exit_code == 0, result.output
    (lab,) = built
    assert lab.udp_truth() == {(address, 161) for address in IPv4Network(SUBNET)}
    assert lab.udp_truth6() == set()
    shown = lines_of(result.stdout)
    assert (shown["udp_open_pairs"], shown["udp_open_pairs6"]) == ("16", "0")
    assert shown["udp_scan_command6"] == "None"
    assert not any(line.startswith("UDP over IPv6") for line in result.stdout.splitlines())


def test_without_udp_options_there_is_no_udp(built: list[Lab]) -> None:
    result = runner.invoke(app, lab_up())
    assert result.exit_code == 0, result.output
    shown = lines_of(result.stdout)
    assert (shown["udp_ports"], shown["udp_open_pairs"], shown["udp_scan_command"]) == (
        "[]", "0", "None")
    assert built[0].udp_truth() == set()


def test_lab_refuses_udp_pairs_and_a_count_together() -> None:
    pair = (IPv4Address("198.19.0.1"), 53)
    with pytest.raises(LabInputError, match="not both"):
        Lab(name="never", subnet=SUBNET, udp_ports=(53,), udp_open={pair}, udp_open_count=1)
    with pytest.raises(LabInputError, match="needs UDP ports"):
        Lab(name="never", subnet=SUBNET, udp_open_count=1)
    with pytest.raises(LabInputError, match="without IPv6"):
        Lab(name="never", ipv6=False, udp_ports=(53,), udp_open_count6=1)
    assert Lab(name="never", subnet=SUBNET, udp_ports=(53,), udp_open_count=0).udp_truth() == set()
