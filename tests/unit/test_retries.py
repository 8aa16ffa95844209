"""Retries on the null driver: every pair gets exactly retries + 1 probes across lanes and
shards, two probes of one pair are at least the retry delay apart (submission timestamps of
the null ring), every probe of a pair is the same frame (same source port and cookie), and
the schedule is a function of each lane's one position counter (seek == walk)."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from itertools import pairwise

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from pyscan.native import (
    ENGINE_MAX_RETRIES,
    Engine,
    close_ring,
    null_captured_timed,
    open_null_tx,
    ring_stats,
)

KEY = bytes(range(16))


def make_engine(ranges=(("198.19.0.0", "198.19.0.255"),), ports=(22, 80, 443), **kw) -> Engine:
    args = dict(cookie_key=KEY, seed=3, source_ip="198.18.0.1", source_mac="02:00:00:00:00:01",
                gateway_mac="02:00:00:00:00:02", ranges=list(ranges), ports=list(ports),
                source_ports=range(40000, 40064))
    args.update(kw)
    return Engine(**args)


def run_lanes(engine: Engine, capture: int) -> list:
    rings = [open_null_tx(slots=64, capture_frames=capture) for _ in range(engine.tx_threads)]
    threads = [threading.Thread(target=engine.run_tx, args=(i, ring))
               for i, ring in enumerate(rings)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive()
    return rings


def probes_by_pair(rings: list) -> dict[tuple[str, int], list[tuple[int, bytes]]]:
    """(destination, port) -> [(submission ns, frame)] over all rings."""
    seen: dict[tuple[str, int], list[tuple[int, bytes]]] = defaultdict(list)
    for ring in rings:
        for frame, submitted in null_captured_timed(ring):
            packet = Ether(frame)
            seen[(packet[IP].dst, packet[TCP].dport)].append((submitted, frame))
    return seen


@pytest.mark.parametrize(("retries", "tx_threads", "shards", "rate", "delay"), [
    (1, 1, 1, 20_000, 0.05),
    (2, 2, 1, 30_000, 0.05),
    (3, 3, 2, 0, 0.04),          # unlimited rate: the clock check alone keeps the delay
    (2, 1, 3, 5_000, 0.02),      # tiny blocks at a low rate
])
def test_every_pair_gets_retries_plus_one_probes_at_least_the_delay_apart(
        retries: int, tx_threads: int, shards: int, rate: float, delay: float) -> None:
    ranges = [("198.19.0.0", "198.19.1.43")]
    ports = [22, 80, 443]
    pairs = 300 * 3
    seen: dict[tuple[str, int], list[tuple[int, bytes]]] = defaultdict(list)
    frames_total = 0
    for shard in range(shards):
        engine = make_engine(ranges, ports, retries=retries, retry_delay=delay, rate=rate,
                             tx_threads=tx_threads, shard=(shard, shards))
        rings = run_lanes(engine, capture=pairs * (retries + 1))
        stats = engine.stats()
        assert stats["passes"] == retries + 1
        assert stats["total_frames"] == stats["total_targets"] * (retries + 1)
        assert stats["sent"] == stats["generated"] == stats["total_frames"]
        assert sum(ring_stats(r)["tx_frames"] for r in rings) == stats["total_frames"]
        frames_total += stats["total_frames"]
        for pair, probes in probes_by_pair(rings).items():
            assert pair not in seen, "a pair was sent by two shards"
            seen[pair] = probes
        engine.close()
        for ring in rings:
            close_ring(ring)

    assert frames_total == pairs * (retries + 1)
    assert len(seen) == pairs
    delay_ns = round(delay * 1e9)
    for probes in seen.values():
        assert len(probes) == retries + 1
        assert len({frame for _, frame in probes}) == 1  # same source port, cookie, IP ID
        times = sorted(t for t, _ in probes)
        assert min(b - a for a, b in pairwise(times)) >= delay_ns


def test_without_retries_the_order_is_unchanged() -> None:
    engine = make_engine(tx_threads=2)
    for lane in range(2):
        total = engine.thread_total(lane)
        assert engine.schedule(lane, 0, total + 5) == [(k, 0) for k in range(total)]
    engine.close()


@pytest.mark.parametrize(("retries", "rate", "tx_threads"), [(1, 900, 1), (3, 2000, 2),
                                                             (15, 10_000, 1)])
def test_schedule_covers_each_pair_once_per_pass_in_pass_order(
        retries: int, rate: float, tx_threads: int) -> None:
    engine = make_engine(ranges=[("198.19.0.0", "198.19.3.255")], retries=retries, rate=rate,
                         retry_delay=1.0, tx_threads=tx_threads)
    for lane in range(tx_threads):
        total = engine.thread_total(lane)
        order = engine.schedule(lane, 0, total * (retries + 1) + 10)
        assert len(order) == total * (retries + 1)
        assert Counter(k for k, _ in order) == Counter({k: retries + 1 for k in range(total)})
        last_pass: dict[int, int] = {}
        last_position: dict[int, int] = {}
        gaps = []
        for position, (k, probe_pass) in enumerate(order):
            assert probe_pass == last_pass.get(k, -1) + 1
            if k in last_position:
                gaps.append(position - last_position[k])
            last_pass[k], last_position[k] = probe_pass, position
        # Blocks hold rate x delay / passes frames of the lane, so in the steady state a
        # pair's passes are about rate x delay frames apart: never back to back.
        assert min(gaps) > 1
        # One counter is the whole state: seeking to any position gives the same suffix.
        for position in (1, 7, len(order) // 3, len(order) // 2 + 11, len(order) - 1):
            assert engine.schedule(lane, position, len(order)) == order[position:]
        assert engine.schedule(lane, len(order), 5) == []
    engine.close()


def test_retry_settings_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError, match="retries"):
        make_engine(retries=ENGINE_MAX_RETRIES + 1)
    with pytest.raises(ValueError, match="retry delay"):
        make_engine(retries=1, retry_delay=-1)


@pytest.mark.parametrize("position", [0, 1, 333, 700, 1199])
def test_a_lane_resumed_from_its_position_sends_the_rest_of_its_schedule(position: int) -> None:
    """One counter is a lane's whole state: a fresh engine moved to `position` sends exactly
    the frames the full run sends from there, and still keeps every pair's retries at least
    the delay apart from the probes it sends itself."""
    settings = dict(ranges=[("198.19.0.0", "198.19.1.143")], ports=[80], retries=2,
                    retry_delay=0.02, rate=40_000, seed=11)
    full = make_engine(**settings)
    (ring,) = run_lanes(full, capture=1200)
    whole = [frame for frame, _ in null_captured_timed(ring)]
    assert len(whole) == 400 * 3
    full.close()
    close_ring(ring)

    resumed = make_engine(**settings)
    resumed.seek(0, position)
    (ring,) = run_lanes(resumed, capture=1200)
    rest = null_captured_timed(ring)
    assert [frame for frame, _ in rest] == whole[position:]
    assert resumed.stats()["thread_generated_0"] == 1200
    times: dict[bytes, list[int]] = defaultdict(list)
    for frame, submitted in rest:
        times[frame].append(submitted)
    for stamps in times.values():
        assert all(b - a >= 20_000_000 for a, b in pairwise(sorted(stamps)))
    resumed.close()
    close_ring(ring)


def test_seek_past_the_end_is_refused() -> None:
    engine = make_engine(retries=1)
    with pytest.raises(ValueError, match="position 1537"):
        engine.seek(0, 256 * 3 * 2 + 1)
    engine.seek(0, 256 * 3 * 2)  # the end itself: nothing left to send
    engine.close()
