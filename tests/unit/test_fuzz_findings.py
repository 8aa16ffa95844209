"""What the text-parser fuzzers (fuzz/text_parsers.py) found, kept as plain regression tests:
each input once ended in a traceback or a wrong value instead of a one-line error."""

from __future__ import annotations

import pytest

from pyscan.config import ConfigError, parse_ports, parse_rate, parse_source_ports
from pyscan.drivers import pfring_zc
from pyscan.targets import TargetError, parse_target_spec


@pytest.mark.parametrize("text", ["²", "80-²", "\u0661\u0662"])
def test_ports_refuse_digits_int_cannot_read(text: str) -> None:
    with pytest.raises(ConfigError, match="bad port"):
        parse_ports(text)


def test_source_ports_refuse_digits_int_cannot_read() -> None:
    with pytest.raises(ConfigError, match="bad source port"):
        parse_source_ports("4²")


def test_target_prefix_refuses_digits_int_cannot_read() -> None:
    with pytest.raises(TargetError, match="bad prefix length"):
        parse_target_spec("198.19.0.0/²")


def test_rate_too_large_for_a_float_is_refused_not_unlimited() -> None:
    with pytest.raises(ConfigError, match="too large"):
        parse_rate("9" * 400)


def test_pfring_checks_survive_proc_files_that_are_not_utf8(tmp_path) -> None:
    (tmp_path / "meminfo").write_bytes(b"\x80HugePages_Total: 4\xff\n")
    env = pfring_zc.Environment(proc=tmp_path, licences=tmp_path / "none")
    problem = pfring_zc.check_hugepages(env)
    assert problem is not None and problem.startswith("no hugepages")
