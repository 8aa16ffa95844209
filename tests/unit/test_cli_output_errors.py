"""The CLI when its output fails or it is told to stop: one line, the right exit code, no
traceback, output well formed. No root: dry runs (null driver) and the target listing.

ENOSPC in the middle of a scan with real results is the net tier's (tests/net/
test_output_errors.py, a 64 KiB tmpfs); here /dev/full fails the first flush the same way.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PYSCAN = [sys.executable, "-m", "pyscan"]


def _no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr
    assert "Exception ignored" not in stderr, stderr


def test_a_full_disk_names_the_file_prints_the_summary_and_exits_1() -> None:
    done = subprocess.run([*PYSCAN, "--dry-run", "198.19.0.0/24", "-p", "80", "-oJ", "/dev/full",
                           "--json-summary", "--seed", "1"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    _no_traceback(done.stderr)
    errors = [line for line in done.stderr.splitlines() if line.startswith("pyscan: error:")]
    assert len(errors) == 1
    assert "'/dev/full'" in errors[0] and "No space left on device" in errors[0]
    summary = json.loads(done.stderr.strip().splitlines()[-1])
    assert summary["sent"] == 256


def test_a_closed_pipe_ends_the_target_listing_quietly() -> None:
    # `pyscan -sL 198.18.0.0/15 -p 1-1000 | head -1`
    process = subprocess.Popen([*PYSCAN, "--list-targets", "198.18.0.0/15", "-p", "1-1000"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()
    try:
        stderr = process.communicate(timeout=60)[1].decode()
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert process.returncode == 1
    assert first.strip()
    _no_traceback(stderr)
    assert stderr.splitlines() == [
        "pyscan: error: standard output was closed by the reader (broken pipe); listing "
        "stopped"]


def test_sigterm_stops_a_scan_with_well_formed_output_and_exit_143(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    process = subprocess.Popen([*PYSCAN, "--dry-run", "198.18.0.0/15", "-p", "1-1000",
                                "--rate", "200k", "-oJ", str(out), "--json-summary"],
                               stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    assert process.stderr is not None
    start = process.stderr.readline()  # printed just before the scan (and its handlers) start
    assert start.startswith("pyscan: scanning"), start
    time.sleep(1.0)  # sending by now (the whole scan would take minutes)
    os.kill(process.pid, signal.SIGTERM)
    try:
        stderr = start + process.communicate(timeout=60)[1]
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert process.returncode == 128 + signal.SIGTERM, stderr
    _no_traceback(stderr)
    assert json.loads(out.read_text()) == []
    summary = json.loads(stderr.strip().splitlines()[-1])
    assert summary["interrupted"] is True
    assert 0 < summary["sent"] < summary["probes"]
