"""The pause file (pyscan.resume): its round trip, its atomic write, what a running scan may
save (ProgressTracker), and the CLI around it on the null driver: a stop saves exact lane
positions, a resume sends exactly the rest, contradicting options are refused by name."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pyscan.config import ConfigError, ScanConfig
from pyscan.resume import (
    PauseState,
    Progress,
    ProgressTracker,
    ResumePoint,
    config_from_dict,
    config_to_dict,
    load_state,
    save_state,
)

PYSCAN = [sys.executable, "-m", "pyscan"]
KEY = bytes(range(16))


def rich_config() -> ScanConfig:
    return ScanConfig.parse(
        ["198.18.0.0/24", "198.18.2.0/30"], ports="80,443,U:53", ping=True, rate="max",
        source_ports="50000-50010", udp_payloads=["53:dns"], excludes=["198.18.0.7"],
        retries=2, retry_delay="0.5", max_runtime="30", max_results="9", seed="7",
        shard="1/2", wait="3", tx_threads=2, ttl=99, tcp_options="linux",
        driver_options=["xdp_mode=copy"], driver="af-xdp", netns="somewhere",
        gateway_mac="02:00:00:00:00:09", source_ip="198.18.0.200")


def state(config: ScanConfig | None = None) -> PauseState:
    progress = Progress(cookie_key=KEY, positions=(5, 7), reported=3, send_seconds=1.5,
                        sent=12, finished=False, exact=True)
    return PauseState(config=config or rich_config(), progress=progress, tx_threads=2,
                      outputs=({"path": "/tmp/x.json", "format": "json", "options": {}},),
                      reason="interrupted")


def test_every_config_field_survives_the_round_trip() -> None:
    config = rich_config()
    again = config_from_dict(json.loads(json.dumps(config_to_dict(config))))
    assert again == config
    differing = [name for name in config.__dataclass_fields__
                 if getattr(again, name) != getattr(config, name)]
    assert differing == []


def test_an_ipv6_config_survives_the_round_trip_with_its_family() -> None:
    config = ScanConfig.parse(["2001:2::/117", "2001:2:0:1::/126"], ports="80,443",
                              excludes=["2001:2::7"], source_ip="2001:2:0:ffff::1",
                              gateway_ip="2001:2:0:ffff::2")
    assert config.targets.family == 6
    data = json.loads(json.dumps(config_to_dict(config)))
    assert data["targets"]["family"] == 6 and data["source_ip"] == "2001:2:0:ffff::1"
    assert config_from_dict(data) == config


def test_the_state_survives_the_file(tmp_path: Path) -> None:
    path = tmp_path / "paused.json"
    save_state(path, state())
    loaded = load_state(path)
    assert loaded.config == rich_config()
    assert loaded.progress.positions == (5, 7) and loaded.progress.cookie_key == KEY
    assert (loaded.progress.reported, loaded.progress.sent) == (3, 12)
    assert loaded.progress.send_seconds == 1.5 and loaded.progress.exact is True
    assert loaded.outputs[0]["format"] == "json" and loaded.reason == "interrupted"
    assert json.loads(path.read_text())["seed"] == 7


def test_the_write_is_atomic_and_leaves_no_temporary(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "paused.json"
    save_state(path, state())
    before = path.read_bytes()

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        save_state(path, state(ScanConfig.parse(["198.18.9.0/24"], ports="22")))
    assert path.read_bytes() == before  # the old state, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["paused.json"]


@pytest.mark.parametrize(("text", "complaint"), [
    ("{", "not JSON"),
    ('{"kind": "something"}', "not a pyscan pause file"),
    ('{"kind": "pyscan-paused-scan", "version": 99}', "format version 99"),
    ('{"kind": "pyscan-paused-scan", "version": 1}', "damaged"),
])
def test_a_bad_file_is_refused_with_one_line(tmp_path: Path, text: str,
                                            complaint: str) -> None:
    path = tmp_path / "paused.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=complaint):
        load_state(path)


def test_positions_must_match_the_lanes(tmp_path: Path) -> None:
    data = state().to_dict()
    data["positions"] = [1, 2, 3]
    (tmp_path / "p.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="position per TX thread"):
        load_state(tmp_path / "p.json")


def test_the_tracker_saves_only_positions_older_than_the_wait() -> None:
    tracker = ProgressTracker(KEY, wait=2.0, tx_threads=2, checkpoint_every=1.0, now=0.0)
    for second in range(1, 6):
        tracker.sample(float(second), (second * 100, second * 10), second * 110, float(second))
    # At 5 s, a sample is safe once 2 s + the margin old: the one of 2 s.
    progress = tracker.progress(5.0, reported=4)
    assert progress.positions == (200, 20) and progress.sent == 220
    assert progress.exact is False and progress.reported == 4
    # Sending stopped and the wait ran out: the newest sample is exact.
    assert tracker.progress(5.0, reported=4, exact=True).positions == (500, 50)
    assert tracker.checkpoint_due(5.0)
    tracker.checkpointed(5.0)
    assert not tracker.checkpoint_due(5.5)


def test_the_tracker_starts_from_the_resume_point_and_adds_its_counters() -> None:
    start = ResumePoint(KEY, (40, 50), reported=7, send_seconds=3.0, sent=90)
    tracker = ProgressTracker(KEY, wait=1.0, tx_threads=2, start=start, now=0.0)
    assert tracker.progress(0.1, reported=7).positions == (40, 50)  # nothing newer is safe
    tracker.sample(0.2, (60, 70), 40, 0.2)
    progress = tracker.progress(5.0, reported=9)
    assert progress.positions == (60, 70)
    assert progress.sent == 130 and progress.send_seconds == pytest.approx(3.2)
    with pytest.raises(ValueError, match="TX lanes"):
        ProgressTracker(KEY, wait=1.0, tx_threads=3, start=start)


def _dry_run(tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    process = subprocess.Popen([*PYSCAN, "--dry-run", "198.18.0.0/18", "-p", "80,443",
                                "--rate", "20000", "--json-summary", "-oJ", "out.json",
                                "--tx-threads", "2", *extra],
                               stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    assert process.stderr is not None
    assert process.stderr.readline().startswith("pyscan: scanning")
    return process


def _summary(stderr: str) -> dict[str, object]:
    return json.loads(stderr.strip().splitlines()[-1])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stopped_dry_run_resumes_and_sends_each_probe_once(tmp_path: Path,
                                                             signum: int) -> None:
    first = _dry_run(tmp_path)
    import time

    time.sleep(0.8)
    first.send_signal(signum)
    _, stderr = first.communicate(timeout=60)
    assert first.returncode == 128 + signum, stderr
    saved = json.loads((tmp_path / "paused.json").read_text())
    assert saved["exact"] is True and len(saved["positions"]) == 2
    sent_before = _summary(stderr)["sent"]
    assert sum(saved["positions"]) == sent_before == saved["counters"]["sent"]
    done = subprocess.run([*PYSCAN, "--resume", "paused.json", "--rate", "100k",
                           "--json-summary"], capture_output=True, text=True, cwd=tmp_path,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    summary = _summary(done.stderr)
    assert sent_before + summary["sent"] == summary["probes"] == 32768
    assert json.loads((tmp_path / "out.json").read_text()) == []  # one well-formed array
    assert not (tmp_path / "paused.json").exists()


def test_contradicting_options_are_refused_by_name(tmp_path: Path) -> None:
    save_state(tmp_path / "paused.json", state(ScanConfig.parse(["198.18.0.0/24"],
                                                                ports="80", driver="null")))
    done = subprocess.run([*PYSCAN, "--resume", "paused.json", "-p", "22", "--seed", "5",
                           "-oL", "other.txt"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60, check=False)
    assert done.returncode == 2
    line = done.stderr.strip()
    assert len(line.splitlines()) == 1
    for name in ("--ports '22'", "--seed '5'", "--output 'other.txt'", "--format"):
        assert name in line, line
    assert (tmp_path / "paused.json").exists()  # nothing was started, nothing removed


def test_a_missing_pause_file_is_bad_input(tmp_path: Path) -> None:
    done = subprocess.run([*PYSCAN, "--resume", "nothing.json"], capture_output=True,
                          text=True, cwd=tmp_path, timeout=60, check=False)
    assert done.returncode == 2
    assert "pause file 'nothing.json' does not exist" in done.stderr


def test_a_format_that_cannot_be_continued_is_refused(tmp_path: Path) -> None:
    config = ScanConfig.parse(["198.18.0.0/24"], ports="80", driver="null")
    paused = PauseState(config=config, progress=state().progress, tx_threads=2,
                        outputs=({"path": str(tmp_path / "x.csv"), "format": "zmap-csv",
                                  "options": {}},))
    save_state(tmp_path / "paused.json", paused)
    (tmp_path / "x.csv").write_text("saddr\n")
    done = subprocess.run([*PYSCAN, "--resume", "paused.json"], capture_output=True,
                          text=True, cwd=tmp_path, timeout=60, check=False)
    assert done.returncode == 2
    assert "'zmap-csv' cannot be continued" in done.stderr


def _paused_at_limit(tmp_path: Path, **limits: str) -> None:
    config = ScanConfig.parse(["198.18.0.0/22"], ports="80", driver="null", tx_threads=1,
                              **limits)
    progress = Progress(cookie_key=KEY, positions=(100,), reported=2, send_seconds=4.0,
                        sent=100, finished=False, exact=True)
    out = tmp_path / "out.ndjson"
    out.write_text('{"ip":"198.18.0.1","port":80,"proto":"tcp"}\n'
                   '{"ip":"198.18.0.2","port":80,"proto":"tcp"}\n')
    save_state(tmp_path / "paused.json", PauseState(
        config=config, progress=progress, tx_threads=1,
        outputs=({"path": str(out), "format": "ndjson", "options": {}},)))


@pytest.mark.parametrize(("limits", "ended_by"), [
    ({"max_results": "2"}, "max-results"),    # the file holds 2 results already
    ({"max_runtime": "3"}, "max-runtime"),    # 4 s of sending were spent before
])
def test_a_limit_counts_across_the_resume(tmp_path: Path, limits: dict[str, str],
                                          ended_by: str) -> None:
    _paused_at_limit(tmp_path, **limits)
    done = subprocess.run([*PYSCAN, "--resume", "paused.json", "--json-summary"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    summary = _summary(done.stderr)
    assert summary["ended_by"] == ended_by and summary["sent"] == 0
    assert not (tmp_path / "paused.json").exists()  # ended as asked: nothing to resume
    assert len((tmp_path / "out.ndjson").read_text().splitlines()) == 2


def test_without_a_limit_the_same_state_sends_the_rest(tmp_path: Path) -> None:
    _paused_at_limit(tmp_path, max_results="3")
    done = subprocess.run([*PYSCAN, "--resume", "paused.json", "--json-summary"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert _summary(done.stderr)["sent"] == 1024 - 100


def test_masscan_writes_paused_conf_and_resumes_from_it(tmp_path: Path) -> None:
    import time

    first = subprocess.Popen([*PYSCAN, "masscan", "--offline", "198.18.0.0/18", "-p80,443",
                              "--rate", "20000", "-oJ", "out.json"],
                             stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    assert first.stderr is not None
    assert first.stderr.readline().startswith("pyscan: scanning")
    time.sleep(0.8)
    first.send_signal(signal.SIGINT)
    _, stderr = first.communicate(timeout=60)
    assert first.returncode == 130, stderr
    assert "go on with pyscan masscan --resume paused.conf" in stderr
    saved = load_state(tmp_path / "paused.conf")
    assert saved.config.ttl == 255 and saved.outputs[0]["format"] == "masscan-json"
    done = subprocess.run([*PYSCAN, "masscan", "--resume", "paused.conf", "--rate", "100000"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert f"{sum(saved.progress.positions)} of 32768 frames sent before" in done.stderr
    assert not (tmp_path / "paused.conf").exists()
    assert json.loads((tmp_path / "out.json").read_text() or "[]") == []
