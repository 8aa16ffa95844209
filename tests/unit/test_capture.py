"""--pcap's capture ring (capture.c) and its place in the engine's RX path: every reply with
a valid cookie is kept, duplicates too; nothing else is; a full ring drops and counts."""

from __future__ import annotations

import io

import pytest
from scapy.layers.inet import IP, TCP
from scapy.utils import rdpcap

from pyscan.native import CAPTURE_SNAPLEN, Capture, cookie
from pyscan.output.pcap import PcapWriter
from tests.unit.test_engine import KEY, SOURCE_IP, make_engine, reply


def test_ring_keeps_order_lengths_and_counts_what_it_drops() -> None:
    with Capture(3) as capture:  # rounded up to 4 slots
        for index in range(6):
            capture.push(bytes([index]) * (100 + index), timestamp_ns=index * 1_000_000_000)
        frames = capture.drain(16)
        assert [frame.timestamp for frame in frames] == [0.0, 1.0, 2.0, 3.0]
        assert [frame.length for frame in frames] == [100, 101, 102, 103]
        assert frames[2].data == bytes([2]) * 102
        assert capture.dropped == 2
        capture.push(bytes(1000), timestamp_ns=0)
        (long,) = capture.drain()
        assert (len(long.data), long.length) == (CAPTURE_SNAPLEN, 1000)


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="capture slots"):
        Capture(0)


def test_engine_captures_valid_replies_only() -> None:
    engine = make_engine()
    with Capture(64) as capture:
        engine.set_capture(capture)
        valid_open = reply("198.19.0.5", 80)
        valid_closed = reply("198.19.0.6", 22, flags="RA")
        good = (cookie(KEY, SOURCE_IP, "198.19.0.7", 40003, 443) + 1) & 0xFFFFFFFF
        forged = reply("198.19.0.7", 443, ack=good ^ 1)
        assert engine.ingest(valid_open) == "open"
        assert engine.ingest(forged) == "invalid-cookie"
        assert engine.ingest(valid_closed) == "closed"
        assert engine.ingest(valid_open) == "duplicate"
        frames = capture.drain()
        assert [frame.data for frame in frames] == [valid_open, valid_closed, valid_open]
        engine.set_capture(None)
        engine.ingest(reply("198.19.0.8", 80))
        assert capture.drain() == []
        engine.close()


def test_captured_frames_make_a_pcap_scapy_reads() -> None:
    engine = make_engine()
    with Capture(8) as capture:
        engine.set_capture(capture)
        engine.ingest(reply("198.19.0.5", 80))
        stream = io.BytesIO()
        writer = PcapWriter(stream)
        for frame in capture.drain():
            writer.write_frame(frame.timestamp, frame.data, frame.length)
        writer.close()
        engine.close()
    stream.seek(0)
    (packet,) = rdpcap(stream)
    assert packet[IP].src == "198.19.0.5" and packet[TCP].sport == 80
    assert packet[TCP].flags == "SA"
