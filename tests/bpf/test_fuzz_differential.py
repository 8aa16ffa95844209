"""The differential fuzzer's checks (fuzz/filters_differential.py) on its unmutated seeds, for
each of its scans (tcp-syn; every IPv4 module; every IPv6 module): no undocumented
disagreement, and every exception the module scans document is needed by some seed, so none
goes stale; without the exceptions the IPv6 seeds do disagree (the check can fail)."""

from __future__ import annotations

import dataclasses
import os

import pytest

pytestmark = [
    pytest.mark.bpf,
    pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF programs needs root"),
]

fd = pytest.importorskip("fuzz.filters_differential")
from tests.corpus.replies import agreement  # noqa: E402


@pytest.fixture(scope="module")
def used() -> set[str]:
    names: set[str] = set()
    try:
        for scan_name, frame in fd.SEEDS:
            scan = fd.BY_NAME[scan_name]
            xdp, classic = fd._open_filters(scan)
            verdicts = agreement.Verdicts(
                scan.c_outcome(frame), agreement.xdp_accepts(xdp, frame),
                classic.accepts(frame) if classic is not None else None,
                agreement.traits(frame))
            problems, why = agreement.disagreements(frame, verdicts, scan.exceptions)
            assert not problems, f"{scan_name}: {problems[0]}"
            names |= {f"{scan_name}/{name}" for name in why}
    finally:
        fd.close()
    return names


def test_every_module_exception_is_needed_by_a_seed(used: set[str]) -> None:
    for scan in fd.SCANS[1:]:
        classic = {"xdp"} | ({"cbpf"} if scan.classic is not None else set())
        documented = {f"{scan.name}/{e.filter}:{e.name}" for e in scan.exceptions
                      if e.filter in classic}
        # IPv4: no IPv6 destination rule; IPv6: no IPv4 options
        unused = documented - used
        expected_unused = ({"ipv4-modules/xdp:destination"} if scan.name == "ipv4-modules" else
                           {"ipv6-modules/xdp:ip-options", "ipv6-modules/xdp:quote-ip-options"})
        assert unused == expected_unused, scan.name


def test_without_exceptions_the_ipv6_seeds_disagree() -> None:
    scan = fd.BY_NAME["ipv6-modules"]
    bare = dataclasses.replace(scan, exceptions=())
    failures = 0
    try:
        for scan_name, frame in fd.SEEDS:
            if scan_name == scan.name:
                xdp, classic = fd._open_filters(bare)
                verdicts = agreement.Verdicts(bare.c_outcome(frame),
                                              agreement.xdp_accepts(xdp, frame),
                                              classic.accepts(frame) if classic else None,
                                              agreement.traits(frame))
                failures += bool(agreement.disagreements(frame, verdicts, ())[0])
    finally:
        fd.close()
    assert failures > 0
