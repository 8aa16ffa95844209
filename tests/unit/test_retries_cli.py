"""--retries / -P / --retry-delay, --max-runtime / --max-results and --tcp-options on the
command line and in ScanConfig: spellings, bad input (exit 2, one line), and dry runs on the
null driver whose summaries count probes and frames separately."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from pyscan import ScanConfig, scan
from pyscan.cli import app, rewrite_argv
from pyscan.config import ConfigError, parse_max_runtime, parse_probes, parse_retries

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def last_json(result) -> dict:
    return json.loads(result.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize(("args", "passes"), [
    ([], 1),
    (["--retries", "2"], 3),
    (["-P", "3"], 3),
    (["--probes", "4"], 4),
    (["--retries", "1", "--probes", "2"], 2),
])
def test_dry_run_sends_probes_times_passes_frames(args: list[str], passes: int) -> None:
    result = invoke("198.19.0.0/28", "-p", "22,80", "--dry-run", "--json-summary",
                    "--retry-delay", "0.01", "--rate", "max", *args)
    assert result.exit_code == 0, result.output
    summary = last_json(result)
    assert summary["probes"] == 32
    assert summary["passes"] == passes
    assert summary["sent"] == summary["frames"] == 32 * passes
    assert summary["ended_by"] == "completed"


def test_human_summary_shows_probes_and_frames() -> None:
    result = invoke("198.19.0.0/30", "-p", "80", "--dry-run", "--retries", "2",
                    "--retry-delay", "0")
    assert result.exit_code == 0, result.output
    assert "4 probes x 3 = 12 frames" in result.stderr  # start line
    assert "sent       12 of 12 frames = 4 probes x 3 (retries 2)" in result.stderr


@pytest.mark.parametrize(("args", "named"), [
    (["--retries", "16"], "'16'"),
    (["--retries", "-1"], "-1"),
    (["--probes", "0"], "'0'"),
    (["--retries", "1", "-P", "3"], "contradict"),
    (["--retry-delay", "soon"], "soon"),
    (["--retry-delay", "-2"], "-2"),
    (["--max-runtime", "0"], "max runtime '0'"),
    (["-t", "x"], "max runtime 'x'"),
    (["--max-results", "0"], "max results '0'"),
    (["-N", "1.5"], "1.5"),
    (["--tcp-options", "solaris"], "solaris"),
    (["--probe-args=osx"], "osx"),
])
def test_bad_values_are_one_line_exit_2(args: list[str], named: str) -> None:
    result = invoke("198.19.0.0/30", "-p", "80", "--dry-run", *args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pyscan: error: ")
    assert named in lines[0] and "accepted" in lines[0]


def test_zmap_probe_args_spelling() -> None:
    assert rewrite_argv(["--probe-args=smallest-probes"]) == ["--tcp-options=smallest-probes"]
    result = invoke("198.19.0.0/30", "-p", "80", "--dry-run", "--probe-args", "bsd", "-q")
    assert result.exit_code == 0, result.output


def test_parsers() -> None:
    assert parse_retries(" 3 ") == 3
    assert parse_probes("1") == 0
    assert parse_max_runtime("2.5s") == 2.5
    with pytest.raises(ConfigError):
        parse_probes("17")


def test_config_checks_typed_values() -> None:
    with pytest.raises(ConfigError, match="retry count"):
        ScanConfig.parse(["198.19.0.0/30"], ports="80", retries=99)
    with pytest.raises(ConfigError, match="max results"):
        ScanConfig.parse(["198.19.0.0/30"], ports="80", max_results=0)
    config = ScanConfig.parse(["198.19.0.0/30"], ports="80", retries="2", retry_delay="0.5",
                              max_runtime="3", max_results="7", tcp_options="linux")
    assert (config.retries, config.passes, config.retry_delay) == (2, 3, 0.5)
    assert (config.max_runtime, config.max_results, config.tcp_options) == (3.0, 7, "linux")
    assert config.frame_count == 4 * 3


def test_max_runtime_ends_a_dry_run_early_and_says_so() -> None:
    """A /16 at 2 kpps would take half a minute; the limit ends sending (not an interrupt)."""
    config = ScanConfig.parse(["198.19.0.0/16"], ports="80", driver="null", rate=2000,
                              max_runtime=0.3, wait=0)
    with scan(config) as run:
        assert list(run) == []
    summary = run.summary
    assert summary is not None
    assert summary.ended_by == "max-runtime"
    assert not summary.interrupted
    assert 0 < summary.sent < summary.frames


def test_max_runtime_cli_exit_code_is_success() -> None:
    result = invoke("198.19.0.0/16", "-p", "80", "--dry-run", "--rate", "2000", "-t", "0.2",
                    "--json-summary")
    assert result.exit_code == 0, result.output
    assert last_json(result)["ended_by"] == "max-runtime"
    human = invoke("198.19.0.0/16", "-p", "80", "--dry-run", "--rate", "2000", "-t", "0.2")
    assert "stopped by --max-runtime" in human.stderr


@pytest.mark.parametrize("value", ["100%", "-1%", "lots", "150"])
def test_lab_loss_out_of_range_is_exit_2_before_anything_is_built(value: str) -> None:
    result = invoke("lab", "up", "--name", "never", "--loss", value)
    assert result.exit_code == 2, result.output
    assert f"bad --loss {value!r}" in result.stderr and "accepted" in result.stderr


def test_lab_refuses_a_loss_it_cannot_make() -> None:
    from pyscan.lab import Lab, LabError

    with pytest.raises(LabError, match="loss 100"):
        Lab(name="never", loss=100)
    assert Lab(name="never", loss=12.5)._settings()["loss"] == 12.5


def test_max_runtime_holds_in_every_shard() -> None:
    """Each shard's process keeps its own clock: every shard of a long scan stops early and
    says so, and the shards never send the same pair."""
    sent = 0
    for index in (1, 2):
        config = ScanConfig.parse(["198.19.0.0/16"], ports="80", driver="null", rate=2000,
                                  max_runtime=0.2, wait=0, shard=f"{index}/2", retries=1,
                                  retry_delay=0.05, seed=3)
        with scan(config) as run:
            list(run)
        summary = run.summary
        assert summary is not None and summary.ended_by == "max-runtime"
        assert summary.frames == 32768 * 2 and 0 < summary.sent < summary.frames
        sent += summary.sent
    assert sent < 65536 * 2
