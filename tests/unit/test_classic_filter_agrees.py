"""af-packet's classic socket filter against the C parser and classifier on the shared corpus,
without root: the classic program runs in libpcap's interpreter, so this half of
tests/bpf/test_filters_agree.py runs in every CI job."""

from __future__ import annotations

import pytest

from pyscan.native import afpacket_reply_filter
from tests.corpus.replies import agreement
from tests.corpus.replies.frames import SOURCE_PORTS, corpus


def test_classic_filter_differs_from_c_only_as_documented() -> None:
    classic = agreement.ClassicFilter()
    problems, used = [], set()
    for name, frame in corpus().items():
        frame_problems, frame_used = agreement.disagreements(
            frame, agreement.judge(frame, None, classic))
        problems += [f"{name}: {p}" for p in frame_problems]
        used |= frame_used
    assert not problems, "\n".join(problems)
    documented = {f"cbpf:{e.name}" for e in agreement.EXCEPTIONS if e.filter == "cbpf"}
    assert used == documented, f"exceptions no corpus frame needs: {documented - used}"


def test_classic_filter_takes_exactly_the_scan_port_range() -> None:
    classic = agreement.ClassicFilter()
    frames = corpus()
    assert classic.accepts(frames["syn_ack_lowest_port"])
    assert classic.accepts(frames["syn_ack_highest_port"])
    assert not classic.accepts(frames["syn_ack_port_below"])
    assert not classic.accepts(frames["syn_ack_port_above"])


def test_program_is_whole_instructions_and_refuses_bad_ranges() -> None:
    code = afpacket_reply_filter(SOURCE_PORTS)
    assert len(code) % 8 == 0 and len(code) // 8 >= 10
    assert code[-8:-6] == (0x06).to_bytes(2, "little")  # BPF_RET | BPF_K: the reject
    with pytest.raises(ValueError, match="port range"):
        afpacket_reply_filter(range(0))
