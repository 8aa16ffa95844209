"""pyscan.text.ascii_digits: the digit check every parser uses before int()."""

from __future__ import annotations

import pytest

from pyscan.text import ascii_digits


@pytest.mark.parametrize("text, expected", [
    ("0", True), ("65535", True), ("", False), ("²", False), ("1²", False), ("٣", False),
    (" 1", False), ("-1", False), ("1.0", False),
])
def test_only_ascii_digits_pass(text: str, expected: bool) -> None:
    assert ascii_digits(text) is expected


def test_a_superscript_in_proc_meminfo_is_skipped_not_a_crash(tmp_path: object) -> None:
    # The pfring /proc fuzzer's reproducer: "HugePages_Total: ²" made int() raise.
    from pathlib import Path

    from pyscan.drivers import pfring_zc

    proc = Path(str(tmp_path)) / "proc"
    proc.mkdir()
    (proc / "meminfo").write_text("HugePages_Total: ²\nHugePages_Free: 4\n")
    env = pfring_zc.Environment(proc=proc)
    assert pfring_zc._meminfo(env) == {"HugePages_Free": 4}
