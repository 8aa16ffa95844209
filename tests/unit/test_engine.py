"""The engine (engine.c) on the null driver: exact TX accounting, RX validation, results.

No root, no network: TX frames are captured by the null ring and parsed with scapy; replies
are built with scapy and fed through Engine.ingest or a null RX ring. Cookies of the probes
are checked against siphashc, an independent SipHash implementation.
"""

from __future__ import annotations

import ipaddress
import itertools
import threading
import time

import pytest
import siphashc
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.utils import checksum

from pyscan.drivers import DRIVERS, DriverError, DriverRequest, get_driver
from pyscan.native import (
    ENGINE_STATS_FIELDS,
    Engine,
    close_ring,
    cookie,
    null_captured,
    null_inject,
    open_null_rx,
    open_null_tx,
    ring_stats,
)

KEY = bytes(range(16))
SOURCE_IP = "198.18.0.1"
SOURCE_MAC = "02:00:00:00:00:01"
GATEWAY_MAC = "02:00:00:00:00:02"
SOURCE_PORTS = range(40000, 40016)


def make_engine(ranges=(("198.19.0.0", "198.19.0.255"),), ports=(22, 80, 443), **kw) -> Engine:
    args = dict(cookie_key=KEY, seed=7, source_ip=SOURCE_IP, source_mac=SOURCE_MAC,
                gateway_mac=GATEWAY_MAC, ranges=list(ranges), ports=list(ports),
                source_ports=SOURCE_PORTS)
    args.update(kw)
    return Engine(**args)


def all_targets(ranges, ports) -> set[tuple[str, int]]:
    ips = [str(ipaddress.IPv4Address(i)) for first, last in ranges
           for i in range(int(ipaddress.IPv4Address(first)), int(ipaddress.IPv4Address(last)) + 1)]
    return {(ip, port) for ip in ips for port in ports}


def run_threads(engine: Engine, rings: list[object]) -> None:
    threads = [threading.Thread(target=engine.run_tx, args=(i, ring))
               for i, ring in enumerate(rings)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive()


def captured_targets(rings: list[object]) -> list[tuple[str, int]]:
    out = []
    for ring in rings:
        for frame in null_captured(ring):
            pkt = Ether(frame)
            out.append((pkt[IP].dst, pkt[TCP].dport))
    return out


# ---- TX exactness -----------------------------------------------------------------------

@pytest.mark.parametrize("tx_threads", [1, 2, 3, 4])
def test_every_target_is_sent_exactly_once(tx_threads: int) -> None:
    ranges = [("198.19.0.0", "198.19.0.99"), ("198.19.1.7", "198.19.1.9")]
    ports = [22, 80, 443, 8080, 5]
    total = 103 * 5
    engine = make_engine(ranges, ports, tx_threads=tx_threads, batch_size=7)
    rings = [open_null_tx(slots=16, capture_frames=total) for _ in range(tx_threads)]
    run_threads(engine, rings)
    stats = engine.stats()
    assert stats["total_targets"] == stats["generated"] == stats["sent"] == total
    assert stats["tx_threads_done"] == tx_threads
    assert stats["tx_errors"] == 0
    assert sum(ring_stats(r)["tx_frames"] for r in rings) == total
    for i in range(tx_threads):
        assert stats[f"thread_sent_{i}"] == engine.thread_total(i)
    sent = captured_targets(rings)
    assert len(sent) == total
    assert set(sent) == all_targets(ranges, ports)
    engine.close()
    for ring in rings:
        close_ring(ring)


@pytest.mark.parametrize(("shards", "tx_threads"), [(2, 1), (3, 2), (5, 3)])
def test_shards_are_disjoint_and_their_union_is_complete(shards: int, tx_threads: int) -> None:
    ranges = [("198.19.2.0", "198.19.2.200")]
    ports = [1, 2, 3]
    seen: list[tuple[str, int]] = []
    totals = 0
    for shard in range(shards):
        engine = make_engine(ranges, ports, shard=(shard, shards), tx_threads=tx_threads)
        rings = [open_null_tx(capture_frames=1000) for _ in range(tx_threads)]
        run_threads(engine, rings)
        stats = engine.stats()
        assert stats["sent"] == stats["total_targets"]
        totals += stats["total_targets"]
        seen += captured_targets(rings)
        engine.close()
    assert totals == 201 * 3
    assert len(seen) == len(set(seen)) == 201 * 3
    assert set(seen) == all_targets(ranges, ports)


def test_probe_frames_are_valid_syns_with_the_siphash_cookie() -> None:
    engine = make_engine(ttl=55, mss=1400, window=2048)
    ring = open_null_tx(capture_frames=768)
    engine.run_tx(0, ring)
    frames = null_captured(ring)
    assert len(frames) == 768
    sports = set()
    for frame in frames[:200]:
        pkt = Ether(frame)
        ip, tcp = pkt[IP], pkt[TCP]
        assert pkt.src == SOURCE_MAC and pkt.dst == GATEWAY_MAC
        assert ip.src == SOURCE_IP and ip.ttl == 55
        assert tcp.flags == "S" and tcp.window == 2048 and ("MSS", 1400) in tcp.options
        assert tcp.sport in SOURCE_PORTS
        sports.add(tcp.sport)
        # checksums as scapy computes them from scratch
        rebuilt = Ether(bytes(pkt))
        del rebuilt[IP].chksum
        del rebuilt[TCP].chksum
        rebuilt = Ether(bytes(rebuilt))
        assert ip.chksum == rebuilt[IP].chksum and tcp.chksum == rebuilt[TCP].chksum
        message = (ipaddress.IPv4Address(ip.src).packed + ipaddress.IPv4Address(ip.dst).packed
                   + tcp.sport.to_bytes(2, "big") + tcp.dport.to_bytes(2, "big"))
        assert tcp.seq == siphashc.siphash(KEY, message) & 0xFFFFFFFF
    assert len(sports) > 8  # spread over the 16-port range, not a constant
    engine.close()
    close_ring(ring)


def test_a_single_source_port_is_always_used() -> None:
    engine = make_engine(source_ports=range(50000, 50001))
    ring = open_null_tx(capture_frames=768)
    engine.run_tx(0, ring)
    assert {Ether(f)[TCP].sport for f in null_captured(ring)} == {50000}
    engine.close()


def test_stop_tx_stops_part_way_and_accounts_for_what_was_sent() -> None:
    # 2^16 x 4 probes at 20 kpps would take 13 s; stop after the first ones are out.
    engine = make_engine([("198.18.128.0", "198.18.255.255")], [1, 2, 3, 4], rate=20000.0,
                         tx_threads=2)
    rings = [open_null_tx(capture_frames=1 << 18) for _ in range(2)]
    threads = [threading.Thread(target=engine.run_tx, args=(i, r)) for i, r in enumerate(rings)]
    for t in threads:
        t.start()
    for _ in range(1000):
        if engine.stats()["sent"] > 100:
            break
        time.sleep(0.01)
    engine.stop_tx()
    for t in threads:
        t.join(timeout=10)
        assert not t.is_alive()
    stats = engine.stats()
    assert stats["tx_stopped"] == 1
    assert 0 < stats["sent"] == stats["generated"] < stats["total_targets"]
    sent = captured_targets(rings)
    assert len(sent) == len(set(sent)) == stats["sent"]
    assert stats["tx_threads_done"] == 2
    engine.close()


def test_a_thread_index_cannot_run_twice_at_once() -> None:
    engine = make_engine(rate=1000.0)
    ring, other = open_null_tx(), open_null_tx()
    thread = threading.Thread(target=engine.run_tx, args=(0, ring))
    thread.start()
    try:
        for _ in range(1000):
            if engine.stats()["sent"]:
                break
            time.sleep(0.01)
        with pytest.raises(OSError, match="Device or resource busy"):
            engine.run_tx(0, other)
    finally:
        engine.stop_tx()
        thread.join(timeout=10)
    assert ring_stats(other)["tx_frames"] == 0
    engine.close()


def test_bad_configuration_names_the_value() -> None:
    with pytest.raises(ValueError, match="tx_threads 0"):
        make_engine(tx_threads=0)
    with pytest.raises(ValueError, match=r"shard \(3, 3\)"):
        make_engine(shard=(3, 3))
    with pytest.raises(ValueError, match="no target ports"):
        make_engine(ports=[])
    with pytest.raises(ValueError, match="target set is invalid"):
        make_engine(ranges=[("198.19.0.9", "198.19.0.1")])
    with pytest.raises(ValueError, match="rate -1"):
        make_engine(rate=-1)


# ---- RX ---------------------------------------------------------------------------------

def reply(target: str, port: int, our_port: int = 40003, flags: str = "SA", ack: int | None = None,
          ttl: int = 61, ip_options=None, frag: int = 0, dst: str = SOURCE_IP, vlan: bool = False,
          ) -> bytes:
    if ack is None:
        ack = (cookie(KEY, dst, target, our_port, port) + 1) & 0xFFFFFFFF
    l2 = Ether(src=GATEWAY_MAC, dst=SOURCE_MAC)
    if vlan:
        l2 = l2 / Dot1Q(vlan=5)
    ip = IP(src=target, dst=dst, ttl=ttl, frag=frag)
    if ip_options is not None:
        ip.options = ip_options
    return bytes(l2 / ip / TCP(sport=port, dport=our_port, flags=flags, seq=12345, ack=ack))


def test_valid_syn_ack_and_rst_become_results() -> None:
    engine = make_engine()
    assert engine.ingest(reply("198.19.0.5", 80)) == "open"
    assert engine.ingest(reply("198.19.0.6", 22, flags="RA", ttl=33)) == "closed"
    results = sorted(engine.drain(), key=lambda r: r.port)
    assert [(str(r.ip), r.port, r.status) for r in results] == [
        ("198.19.0.6", 22, "closed"), ("198.19.0.5", 80, "open")]
    assert results[0].ttl == 33 and results[1].ttl == 61
    assert abs(results[0].timestamp - time.time()) < 60
    stats = engine.stats()
    assert (stats["rx_open"], stats["rx_closed"], stats["rx_ours"]) == (1, 1, 2)


def test_wrong_cookie_is_counted_invalid_and_not_reported() -> None:
    engine = make_engine()
    good = (cookie(KEY, SOURCE_IP, "198.19.0.5", 40003, 80) + 1) & 0xFFFFFFFF
    assert engine.ingest(reply("198.19.0.5", 80, ack=good ^ 1)) == "invalid-cookie"
    # The cookie covers our port: the right ack for another source port fails too.
    assert engine.ingest(reply("198.19.0.5", 80, our_port=40004, ack=good)) == "invalid-cookie"
    # An RST that echoes seq instead of seq + 1 does not prove anything either.
    assert engine.ingest(reply("198.19.0.5", 80, flags="RA", ack=good - 1)) == "invalid-cookie"
    assert engine.drain() == []
    assert engine.stats()["rx_invalid_cookie"] == 3


def test_duplicates_are_counted_and_reported_once() -> None:
    engine = make_engine()
    assert engine.ingest(reply("198.19.0.5", 80)) == "open"
    assert engine.ingest(reply("198.19.0.5", 80)) == "duplicate"
    assert engine.ingest(reply("198.19.0.5", 80, flags="RA")) == "duplicate"
    assert engine.ingest(reply("198.19.0.5", 80, our_port=40007)) == "duplicate"
    assert engine.ingest(reply("198.19.0.5", 81)) == "open"
    assert len(engine.drain()) == 2
    assert engine.stats()["rx_duplicates"] == 3


def test_dedup_is_exact_over_many_replies() -> None:
    engine = make_engine()
    template = bytearray(reply("198.19.0.0", 1))

    def fast_reply(ip: str, port: int) -> bytes:
        # scapy is too slow for 20000 frames: patch source, port and ack into one frame,
        # then both checksums (the engine verifies them).
        frame = bytearray(template)
        frame[26:30] = ipaddress.IPv4Address(ip).packed
        frame[34:36] = port.to_bytes(2, "big")
        ack = (cookie(KEY, SOURCE_IP, ip, 40003, port) + 1) & 0xFFFFFFFF
        frame[42:46] = ack.to_bytes(4, "big")
        frame[24:26] = frame[50:52] = b"\0\0"
        frame[24:26] = checksum(bytes(frame[14:34])).to_bytes(2, "big")
        pseudo = bytes(frame[26:34]) + bytes([0, 6]) + (len(frame) - 34).to_bytes(2, "big")
        frame[50:52] = checksum(pseudo + bytes(frame[34:])).to_bytes(2, "big")
        return bytes(frame)

    targets = [(f"198.19.{i // 250}.{i % 250}", 1000 + i % 7) for i in range(20000)]
    for ip, port in targets:
        assert engine.ingest(fast_reply(ip, port)) == "open"
    for ip, port in targets[::97]:
        assert engine.ingest(fast_reply(ip, port)) == "duplicate"
    got = []
    while batch := engine.drain(4096):
        got += batch
    assert sorted((str(r.ip), r.port) for r in got) == sorted(targets)


def test_ip_options_and_vlan_tags_are_parsed() -> None:
    engine = make_engine()
    assert engine.ingest(reply("198.19.0.7", 80, ip_options=[b"\x01\x01\x01\x00"])) == "open"
    assert engine.ingest(reply("198.19.0.8", 80, vlan=True)) == "open"
    assert {str(r.ip) for r in engine.drain()} == {"198.19.0.7", "198.19.0.8"}


def test_what_is_not_a_reply_is_sorted_out() -> None:
    engine = make_engine()
    good = reply("198.19.0.5", 80)
    assert engine.ingest(good[:14 + 20 + 10]) == "malformed"          # truncated TCP
    assert engine.ingest(good[:10]) == "malformed"                    # not even Ethernet
    assert engine.ingest(reply("198.19.0.5", 80, frag=1)) == "malformed"  # fragment
    mf = bytearray(good)
    mf[14 + 6] |= 0x20                                                # more-fragments flag
    assert engine.ingest(bytes(mf)) == "malformed"
    udp = bytes(Ether() / IP(src="198.19.0.5", dst=SOURCE_IP) / UDP(sport=80, dport=40003))
    assert engine.ingest(udp) == "not-ours"
    assert engine.ingest(reply("198.19.0.5", 80, dst="198.18.0.2")) == "not-ours"
    assert engine.ingest(reply("198.19.0.5", 80, our_port=39999)) == "not-ours"
    assert engine.ingest(reply("198.19.0.5", 80, our_port=40016)) == "not-ours"
    assert engine.ingest(reply("198.19.0.5", 80, flags="A")) == "ignored-flags"
    assert engine.ingest(reply("198.19.0.5", 80, flags="R")) == "ignored-flags"
    assert engine.ingest(bytes(Ether(type=0x86DD) / (b"\x00" * 50))) == "malformed"  # IPv6 v0
    assert engine.ingest(bytes(Ether() / IPv6(src="2001:2::5", dst="2001:2::1") /
                               TCP(flags="SA"))) == "not-ours"  # IPv6 to an IPv4 scan
    assert engine.drain() == []
    assert engine.ingest(good) == "open"  # none of the above poisoned the dedup set
    stats = engine.stats()
    assert stats["rx_frames"] == 13
    assert (stats["rx_malformed"], stats["rx_not_ours"], stats["rx_ignored_flags"]) == (5, 5, 2)


def test_results_never_get_lost_when_the_ring_is_full() -> None:
    engine = make_engine(max_results=4)
    for i in range(10):
        assert engine.ingest(reply(f"198.19.0.{i}", 80)) == "open"
    assert engine.stats()["results_pending"] == 10
    got = engine.drain(3) + engine.drain(100)
    assert sorted(str(r.ip) for r in got) == [f"198.19.0.{i}" for i in range(10)]
    assert engine.stats()["results_pending"] == 0


def test_rx_thread_waits_on_a_full_results_ring_then_delivers_everything() -> None:
    engine = make_engine(max_results=2)
    rx = open_null_rx(64)
    for i in range(10):
        assert null_inject(rx, reply(f"198.19.0.{i}", 443))
    thread = threading.Thread(target=engine.run_rx, args=(rx,))
    thread.start()
    try:
        for _ in range(500):
            if engine.stats()["results_full_waits"] > 0:
                break
            time.sleep(0.01)
        assert engine.stats()["results_full_waits"] > 0
        got = []
        for _ in range(500):
            got += engine.drain()
            if len(got) == 10:
                break
            time.sleep(0.01)
    finally:
        engine.stop_rx()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert sorted(str(r.ip) for r in got) == [f"198.19.0.{i}" for i in range(10)]
    assert engine.stats()["rx_frames"] == ring_stats(rx)["rx_frames"] == 10


def test_rx_thread_processes_injected_frames_and_stops_promptly() -> None:
    engine = make_engine()
    rx = open_null_rx(256)
    thread = threading.Thread(target=engine.run_rx, args=(rx,))
    thread.start()
    try:
        frames = [reply(f"198.19.3.{i}", 80) for i in range(50)] + [reply("198.19.3.1", 80)]
        frames += [reply("198.19.3.2", 80, ack=1), reply("198.19.4.1", 22, flags="RA")]
        for frame in frames:
            assert null_inject(rx, frame)
        for _ in range(500):
            if engine.stats()["rx_frames"] == len(frames):
                break
            time.sleep(0.01)
    finally:
        engine.stop_rx()
        thread.join(timeout=5)
    assert not thread.is_alive()
    stats = engine.stats()
    assert (stats["rx_open"], stats["rx_closed"]) == (50, 1)
    assert (stats["rx_duplicates"], stats["rx_invalid_cookie"]) == (1, 1)
    got = engine.drain()
    assert len(got) == 51 and len({(r.ip, r.port) for r in got}) == 51


def test_frames_queued_when_rx_stops_are_all_read() -> None:
    """Stopping RX reads what is already in the ring to the end: a big AF_XDP or TPACKET ring
    can hold tens of thousands of replies after a short wait, and none may go uncounted."""
    engine = make_engine()
    queued = 6000  # more than any fixed number of bursts the loop might allow itself
    rx = open_null_rx(8192)
    for i in range(queued):
        assert null_inject(rx, reply(f"198.19.{i // 250}.{i % 250}", 80))
    engine.stop_rx()
    engine.run_rx(rx)  # already stopped: returns once the ring is empty
    assert engine.stats()["rx_frames"] == ring_stats(rx)["rx_frames"] == queued
    assert len(engine.drain(queued + 1)) == queued


def test_stats_have_every_documented_field() -> None:
    engine = make_engine(tx_threads=3)
    stats = engine.stats()
    assert set(ENGINE_STATS_FIELDS) <= set(stats)
    assert {f"thread_sent_{i}" for i in range(3)} <= set(stats)
    assert stats["total_targets"] == 768 and stats["sent"] == 0
    engine.close()
    engine.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        engine.stats()


# ---- drivers registry and the null driver ------------------------------------------------

def test_registry_names_and_unknown_driver_message() -> None:
    assert {"af-packet", "null"} <= set(DRIVERS)
    assert get_driver("null").name == "null"
    with pytest.raises(ValueError, match=r"driver 'nope' is unknown: accepted .*af-packet.*null"):
        get_driver("nope")
    for driver in DRIVERS.values():
        ok, reason = driver.available()
        assert isinstance(ok, bool) and reason


def test_null_driver_session_runs_a_dry_scan() -> None:
    request = DriverRequest(interface="none", ifindex=0, tx_threads=2, want_rx=True,
                            source_ip=ipaddress.IPv4Address(SOURCE_IP), source_ports=SOURCE_PORTS,
                            cookie_key=KEY, options={"slots": "64"})
    engine = make_engine(tx_threads=2)
    with get_driver("null").open(request) as session:
        assert len(session.tx_rings) == 2 and session.rx_ring is None
        assert "null" in session.description
        run_threads(engine, session.tx_rings)
        assert session.stats()["tx_frames"] == engine.stats()["sent"] == 768
    assert session.tx_rings == []
    session.close()  # idempotent
    with pytest.raises(DriverError, match="slots='0'"):
        get_driver("null").open(DriverRequest(
            interface="none", ifindex=0, tx_threads=1, want_rx=False,
            source_ip=ipaddress.IPv4Address(SOURCE_IP), source_ports=SOURCE_PORTS,
            cookie_key=KEY, options={"slots": "0"}))


def test_permuted_order_differs_between_seeds_but_covers_the_same_set() -> None:
    orders = []
    for seed in (1, 2):
        engine = make_engine(seed=seed)
        ring = open_null_tx(capture_frames=768)
        engine.run_tx(0, ring)
        orders.append(captured_targets([ring]))
    assert orders[0] != orders[1]
    assert set(orders[0]) == set(orders[1])
    # consecutive probes should mostly hit different hosts (masscan's order)
    same_host = sum(a[0] == b[0] for a, b in itertools.pairwise(orders[0]))
    assert same_host < len(orders[0]) // 4
