"""The three reply filters agree on the shared corpus (tests/corpus/replies): the C parser and
classifier, the XDP filter (BPF_PROG_TEST_RUN) and af-packet's classic socket filter (libpcap's
interpreter). A frame one accepts and the C side does not report, or the reverse, fails,
unless an exception documented in docs/internals.md (tests/corpus/replies/agreement.py)
covers it; every documented exception must also be seen on the corpus, so none goes stale."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.corpus.replies import agreement
from tests.corpus.replies.frames import corpus

pytestmark = [
    pytest.mark.bpf,
    pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF programs needs root"),
]


@pytest.fixture(scope="module")
def filters() -> Iterator[tuple[agreement.ReplyFilter, agreement.ClassicFilter]]:
    with agreement.open_xdp_filter() as xdp:
        yield xdp, agreement.ClassicFilter()


def test_every_corpus_frame_gets_the_same_verdict_or_a_documented_exception(
        filters: tuple[agreement.ReplyFilter, agreement.ClassicFilter]) -> None:
    problems, used = [], set()
    for name, frame in corpus().items():
        verdicts = agreement.judge(frame, *filters)
        frame_problems, frame_used = agreement.disagreements(frame, verdicts)
        problems += [f"{name}: {p}" for p in frame_problems]
        used |= frame_used
    assert not problems, "\n".join(problems)
    documented = {f"{e.filter}:{e.name}" for e in agreement.EXCEPTIONS}
    assert used == documented, f"exceptions no corpus frame needs: {documented - used}"


def test_reported_replies_pass_every_filter(
        filters: tuple[agreement.ReplyFilter, agreement.ClassicFilter]) -> None:
    # the plain replies a scan is made of: all three say yes
    for name in ("syn_ack_open", "rst_ack_closed", "syn_ack_with_options", "syn_ack_padding_to_60",
                 "rst_ack_ethernet_padding", "syn_ack_lowest_port", "syn_ack_highest_port"):
        v = agreement.judge(corpus()[name], *filters)
        assert (v.c in agreement.REPORTED, v.xdp, v.cbpf) == (True, True, True), name


def test_flags_the_classifier_ignores_are_rejected_by_both_filters(
        filters: tuple[agreement.ReplyFilter, agreement.ClassicFilter]) -> None:
    for name in ("syn_only", "ack_only", "rst_without_ack", "syn_ack_fin", "syn_ack_rst",
                 "syn_rst_no_ack", "fin_ack"):
        v = agreement.judge(corpus()[name], *filters)
        assert (v.c, v.xdp, v.cbpf) == ("ignored-flags", False, False), name


def test_lengths_the_classifier_calls_malformed_are_not_matched_by_xdp(
        filters: tuple[agreement.ReplyFilter, agreement.ClassicFilter]) -> None:
    for name in ("tcp_doff_4", "tcp_doff_past_packet", "ip_total_length_short_of_tcp",
                 "ip_total_length_past_frame", "ip_ihl_4", "ip_version_6_in_ipv4_ethertype"):
        v = agreement.judge(corpus()[name], *filters)
        assert (v.c, v.xdp) == ("malformed", False), name


def test_unreachables_quoting_our_syn_pass_both_filters_forged_ones_not_xdp(
        filters: tuple[agreement.ReplyFilter, agreement.ClassicFilter]) -> None:
    for name in ("syn_unreachable_host", "syn_unreachable_admin_prohibited_long_quote"):
        v = agreement.judge(corpus()[name], *filters)
        assert (v.c, v.xdp, v.cbpf) == ("closed", True, True), name  # ingest: closed-side
    for name, c in (("syn_unreachable_bad_cookie", "invalid-cookie"),
                    ("syn_unreachable_quote_cut_in_tcp", "not-ours"),
                    ("syn_unreachable_quote_cut_in_ip", "not-ours"),
                    ("syn_unreachable_quoted_source_not_scanner", "not-ours"),
                    ("syn_unreachable_quoted_port_outside_range", "not-ours"),
                    ("syn_time_exceeded", "not-ours"),
                    ("icmp_port_unreachable", "not-ours")):  # quotes UDP: not a TCP scan's
        v = agreement.judge(corpus()[name], *filters)
        assert (v.c, v.xdp) == (c, False), name
