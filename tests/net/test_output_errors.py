"""Output that fails in the middle of a real scan: a full file system under -o, and a reader
that closes the pipe (`pyscan ... | head -1`). One line, exit 1, no traceback, nothing left
behind; the full disk also gets the summary.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pyscan.lab import Lab

SUBNET = "198.19.0.0/16"
PORTS = (22, 80, 443, 8080)
OPEN = 3000  # ~100 bytes of ndjson each: far more than the 64 KiB file system holds


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs on a directory of this test, unmounted whatever happens."""
    mount = tmp_path / "full"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "pyscan-test", str(mount)],
                   check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def _scan(lab: Lab, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pyscan", "--netns", lab.scan_netns, SUBNET,
            "-p", ",".join(map(str, PORTS)), "--rate", "100k", "--wait", "1", "--seed", "9",
            *extra]


def test_a_full_file_system_ends_the_scan_with_one_line_and_the_summary(
        lab_factory: Callable[..., Lab], small_tmpfs: Path, tmp_path: Path) -> None:
    lab = lab_factory(subnet=SUBNET, ports=PORTS, open_count=OPEN, seed=21)
    out = small_tmpfs / "results.ndjson"
    done = subprocess.run(_scan(lab, "-oD", str(out), "--json-summary"), capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)  # its pause file goes there
    assert (tmp_path / "paused.json").exists()  # the scan can go on once there is room
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("pyscan: error:")]
    assert errors == [f"pyscan: error: cannot write {str(out)!r}: No space left on device "
                      "(the results so far are in it)"]
    summary = json.loads(done.stderr.strip().splitlines()[-1])
    assert summary["sent"] > 0
    # What did fit is whole lines of the truth (a partial last line at most).
    lines = out.read_text().split("\n")
    records = [json.loads(line) for line in lines[:-1]]
    assert 0 < len(records) < OPEN
    truth = {(str(ip), port) for ip, port in lab.truth()}
    assert {(r["ip"], r["port"]) for r in records} <= truth


@pytest.mark.parametrize("quiet", [True, False])
def test_a_closed_pipe_ends_the_scan_quietly(lab_factory: Callable[..., Lab],
                                             quiet: bool) -> None:
    lab = lab_factory(subnet=SUBNET, ports=PORTS, open_count=OPEN, seed=22)
    process = subprocess.Popen(_scan(lab, *(["-q"] if quiet else [])), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()  # `| head -1`
    process.stdout.close()
    try:
        stderr = process.communicate(timeout=120)[1]
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"the scan went on after its reader left: {process.communicate()[1]}")
    assert process.returncode == 1, stderr
    assert first.strip()
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    lines = stderr.splitlines()
    errors = [line for line in lines if line.startswith("pyscan: error:")]
    assert errors == ["pyscan: error: standard output was closed by the reader (broken pipe); "
                      "scan stopped"]
    assert not any(line.startswith("pyscan: done") for line in lines)  # no summary
    if quiet:
        assert lines == errors
