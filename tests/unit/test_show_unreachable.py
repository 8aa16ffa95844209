"""Which statuses a scan reports (--show closed / unreachable and their masscan spellings),
the status line and summary counting unreachables, and the lab's unreachable pairs as
settings (drawn, checked, kept out of the open truth) - all without root or a network."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from typer.testing import CliRunner

from pyscan.cli import app
from pyscan.cli.masscan import echo_lines, parse_masscan
from pyscan.config import ScanConfig
from pyscan.lab import Lab, LabInputError
from pyscan.scanner import ScanStatus, shown_statuses
from pyscan.status import format_status


def config(**settings: object) -> ScanConfig:
    return ScanConfig.parse(["198.19.0.0/30"], ports="80", **settings)  # type: ignore[arg-type]


def test_shown_statuses_follow_the_switches() -> None:
    assert shown_statuses(config()) == {"open", "up"}
    assert shown_statuses(config(show_unreachable=True)) == {"open", "up", "unreachable"}
    # --show closed shows every negative answer, as it did before unreachable had a switch
    assert shown_statuses(config(show_closed=True)) == {"open", "up", "closed", "unreachable"}


def test_masscan_show_lists_set_both_switches_and_echo_them_back() -> None:
    plan = parse_masscan(["198.19.0.1", "-p80", "--show", "closed,unreachable"])
    assert (plan.scan["show_closed"], plan.scan["show_unreachable"]) == (True, True)
    assert "show = open,closed,unreachable" in echo_lines(plan)
    plan = parse_masscan(["198.19.0.1", "-p80", "--show", "unreachable"])
    assert (plan.scan["show_closed"], plan.scan.get("show_unreachable")) == (False, True)
    assert ScanConfig.parse(plan.targets, **plan.scan).show_unreachable


def test_status_line_names_unreachables_only_when_there_are_some() -> None:
    status = ScanStatus(phase="waiting", elapsed=1.0, sent=10, total=10, rate=0.0, found=2,
                        closed=5, drops=0, wait_left=1.0)
    assert "unreachable" not in format_status(status)
    status = ScanStatus(phase="waiting", elapsed=1.0, sent=10, total=10, rate=0.0, found=2,
                        closed=5, drops=0, wait_left=1.0, unreachable=3)
    assert "closed 5  unreachable 3" in format_status(status)


def test_lab_draws_unreachable_pairs_outside_the_open_set_with_every_code() -> None:
    lab = Lab(name="never", subnet="198.19.0.0/28", ports=(80, 443), open_count=10,
              unreachable_count=8, seed=4)
    truth = lab.unreachable_truth()
    assert len(truth) == 8 and not set(truth) & lab.truth()
    assert sorted(truth.values()) == [0, 0, 1, 1, 10, 10, 13, 13]
    again = Lab(name="never", subnet="198.19.0.0/28", ports=(80, 443), open_count=10,
                unreachable_count=8, seed=4)
    assert again.unreachable_truth() == truth  # the seed fixes the draw
    # the open draw is the same with or without unreachables
    assert Lab(name="never", subnet="198.19.0.0/28", ports=(80, 443), open_count=10,
               seed=4).truth() == lab.truth()
    assert lab._settings()["unreachable"] == sorted(f"{ip}:{port}" for ip, port in truth)


def test_open_everything_lab_leaves_unreachable_pairs_out_of_its_truth() -> None:
    pair = (IPv4Address("198.19.0.3"), 80)
    lab = Lab(name="never", subnet="198.19.0.0/30", ports=(80,), unreachable_pairs={pair})
    assert lab.truth() == {(IPv4Address(f"198.19.0.{i}"), 80) for i in (0, 1, 2)}
    assert lab.unreachable_truth() == {pair: 0}
    assert lab.open_count() == 3


@pytest.mark.parametrize(("settings", "named"), [
    ({"unreachable_count": 7}, "unreachable_count 7 is out of range (accepted: 0 to 6"),
    ({"unreachable_count": -1}, "unreachable_count -1"),
    ({"unreachable_pairs": {(IPv4Address("198.19.0.9"), 80)}}, "198.19.0.9:80 is outside"),
    ({"unreachable_pairs": {(IPv4Address("198.19.0.1"), 80)}}, "must not be open pairs"),
    ({"unreachable_pairs": set(), "unreachable_count": 1}, "not both"),
])
def test_lab_refuses_bad_unreachable_settings(settings: dict[str, object], named: str) -> None:
    with pytest.raises(LabInputError, match=named.replace("(", r"\(").replace(")", r"\)")):
        Lab(name="never", subnet="198.19.0.0/30", ports=(80, 443),
            open_pairs={(IPv4Address("198.19.0.1"), 80), (IPv4Address("198.19.0.2"), 80)},
            **settings)  # type: ignore[arg-type]


def test_lab_up_refuses_too_many_unreachable_pairs_before_building_anything() -> None:
    result = CliRunner().invoke(app, ["lab", "up", "--name", "never", "--subnet",
                                      "198.19.0.0/30", "--ports", "80", "--unreachable", "9"])
    assert result.exit_code == 2
    assert "unreachable_count 9 is out of range (accepted: 0 to 4" in result.output
