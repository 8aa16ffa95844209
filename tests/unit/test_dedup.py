"""The RX thread's reported-set (dedup.c, CRoaring per port): exact and memory-bounded.

Replies are raw Ethernet/IPv4/TCP frames with valid checksums and cookies, built here with
struct (scapy would take minutes for the tens of thousands of frames the bound needs), fed
through Engine.ingest or the null driver's RX ring with the RX thread running.
"""

from __future__ import annotations

import random
import struct
import threading
import time

from pyscan.native import Engine, cookie, null_inject, open_null_rx

KEY = bytes(range(16))
SOURCE_IP = 0xC6120001  # 198.18.0.1
OUR_PORT = 40003
SYN_ACK, RST_ACK = 0x12, 0x14
MALLOC_HEADER = 16
TABLE_PAGE = 4096  # of the port -> bitmap pointer table: 512 ports per page


def table_bytes(ports: tuple[int, ...]) -> int:
    return TABLE_PAGE * len({port // 512 for port in ports})

# CRoaring 0.2: a bitmap struct and its block index (4 entries of 11 bytes to start), and
# an array block's header: the fixed costs a bound has to allow besides 1 bit per target.
PER_PORT_OVERHEAD = 40 + MALLOC_HEADER + 1024
PER_BLOCK_OVERHEAD = 16 + 2 * MALLOC_HEADER


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def reply(target: int, port: int, flags: int = SYN_ACK) -> bytes:
    """A reply from target:port to our probe, with the cookie it must acknowledge."""
    ack = (cookie(KEY, SOURCE_IP, target, OUR_PORT, port) + 1) & 0xFFFFFFFF
    tcp = struct.pack("!HHIIBBHHH", port, OUR_PORT, 12345, ack, 5 << 4, flags, 1024, 0, 0)
    pseudo = struct.pack("!IIBBH", target, SOURCE_IP, 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(tcp), 1, 0, 61, 6, 0, target, SOURCE_IP)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    ether = bytes.fromhex("020000000001" "020000000002") + b"\x08\x00"
    return ether + ip + tcp


def make_engine(first: int = 0xC6120000, last: int = 0xC613FFFF,
                ports: tuple[int, ...] = (80,)) -> Engine:
    dotted = [".".join(str(b) for b in x.to_bytes(4, "big")) for x in (first, last)]
    return Engine(cookie_key=KEY, seed=1, source_ip="198.18.0.1", source_mac="02:00:00:00:00:01",
                  gateway_mac="02:00:00:00:00:02", ranges=[(dotted[0], dotted[1])],
                  ports=list(ports), source_ports=range(OUR_PORT, OUR_PORT + 1),
                  max_results=1 << 20)


def reported(engine: Engine) -> list[tuple[int, int, str]]:
    return [(int(r.ip), r.port, r.status) for r in engine.drain(1 << 20)]


def test_every_pair_is_reported_once_in_any_order_with_any_repeats() -> None:
    rng = random.Random(9)
    pairs = {(0xC6120000 + rng.randrange(1 << 17), rng.choice((22, 80, 443, 8080)))
             for _ in range(3000)}
    stream = list(pairs) * 3
    rng.shuffle(stream)
    engine = make_engine()
    outcomes = [engine.ingest(reply(ip, port)) for ip, port in stream]
    assert outcomes.count("open") == len(pairs)
    assert outcomes.count("duplicate") == 2 * len(pairs)
    got = reported(engine)
    assert sorted((ip, port) for ip, port, _ in got) == sorted(pairs)
    assert engine.stats()["rx_duplicates"] == 2 * len(pairs)


def test_the_first_status_wins_and_later_statuses_are_duplicates() -> None:
    engine = make_engine()
    a, b = 0xC6120010, 0xC6120011
    assert engine.ingest(reply(a, 80, SYN_ACK)) == "open"
    assert engine.ingest(reply(a, 80, RST_ACK)) == "duplicate"
    assert engine.ingest(reply(b, 80, RST_ACK)) == "closed"
    assert engine.ingest(reply(b, 80, SYN_ACK)) == "duplicate"
    # the same address on another port is another pair, whatever its status
    assert engine.ingest(reply(a, 81, RST_ACK)) == "closed"
    assert sorted(reported(engine)) == [(a, 80, "open"), (a, 81, "closed"), (b, 80, "closed")]


def test_extreme_addresses_and_ports_are_keyed_exactly() -> None:
    engine = make_engine()
    edges = [0x00000001, 0x0000FFFF, 0x00010000, 0x7FFFFFFF, 0x80000000, 0xFFFEFFFF,
             0xFFFF0000, 0xFFFFFFFE, 0xFFFFFFFF]
    ports = [0, 1, 255, 256, 32767, 32768, 65534, 65535]
    pairs = [(ip, port) for ip in edges for port in ports]
    assert [engine.ingest(reply(ip, port)) for ip, port in pairs] == ["open"] * len(pairs)
    assert [engine.ingest(reply(ip, port, RST_ACK)) for ip, port in pairs] == \
        ["duplicate"] * len(pairs)
    assert sorted((ip, port) for ip, port, _ in reported(engine)) == sorted(pairs)


def test_one_address_on_every_port_and_a_dense_block_stay_exact() -> None:
    engine = make_engine()
    ip = 0xC6120042
    assert all(engine.ingest(reply(ip, port)) == "open" for port in range(0, 65536, 7))
    # 5000 addresses of one /16 on one port: the block turns from array into bitmap (at 4096)
    block = [0xC6130000 + i * 13 for i in range(5000)]
    assert all(engine.ingest(reply(x, 443, RST_ACK)) == "closed" for x in block)
    assert all(engine.ingest(reply(x, 443)) == "duplicate" for x in block)
    assert all(engine.ingest(reply(ip, port)) == "duplicate" for port in range(0, 65536, 7))
    assert engine.ingest(reply(ip, 1)) == "open"
    assert len(reported(engine)) == len(range(0, 65536, 7)) + 5000 + 1


def inject_with_rx_thread(engine: Engine, frames: list[bytes]) -> list[tuple[int, int, str]]:
    rx = open_null_rx(4096)
    thread = threading.Thread(target=engine.run_rx, args=(rx,))
    thread.start()
    got: list[tuple[int, int, str]] = []
    try:
        for frame in frames:
            while not null_inject(rx, frame):
                got += reported(engine)
                time.sleep(0.001)
        for _ in range(2000):
            if engine.stats()["rx_frames"] == len(frames):
                break
            time.sleep(0.005)
    finally:
        engine.stop_rx()
        thread.join(timeout=10)
    assert not thread.is_alive()
    return got + reported(engine)


def test_memory_stays_under_4_bytes_per_reply_and_the_bits_of_the_target_space() -> None:
    """Sparse replies (about 6 % of a /15 x 4 ports) through the RX thread."""
    ports = (22, 80, 443, 8080)
    rng = random.Random(5)
    targets = rng.sample(range(1 << 17), 30000)
    frames = [reply(0xC6120000 + t, ports[i % 4]) for i, t in enumerate(targets)]
    engine = make_engine(ports=ports)
    got = inject_with_rx_thread(engine, frames)
    assert len(got) == len(set(got)) == len(frames)
    stats = engine.stats()
    assert stats["rx_open"] == len(frames)
    target_bits = (1 << 17) * len(ports)
    blocks = 2 * len(ports)
    assert 0 < stats["dedup_bytes"] <= 4 * len(frames)
    assert stats["dedup_bytes"] <= (target_bits // 8 + table_bytes(ports)
                                    + len(ports) * PER_PORT_OVERHEAD + blocks * PER_BLOCK_OVERHEAD)
    assert stats["dedup_max_insert_ns"] > 0


def test_a_fully_answering_block_costs_one_bit_per_target() -> None:
    engine = make_engine(0xC6120000, 0xC612FFFF)
    for i in range(1 << 16):
        assert engine.ingest(reply(0xC6120000 + i, 80, RST_ACK)) == "closed"
    used = engine.stats()["dedup_bytes"]
    assert used <= (1 << 16) // 8 + table_bytes((80,)) + PER_PORT_OVERHEAD + PER_BLOCK_OVERHEAD
    # the set grows with distinct replies only: repeats cost nothing
    for i in range(0, 1 << 16, 97):
        assert engine.ingest(reply(0xC6120000 + i, 80)) == "duplicate"
    assert engine.stats()["dedup_bytes"] == used


def test_scattered_ranges_cost_the_bits_of_the_target_space_not_of_their_slash16s() -> None:
    """32 /20s, each in its own /16, half of every address answering: keyed by raw address
    that would be 32 half-full arrays (8x the target bits); keyed by address number it is
    the target space's own 131072 bits."""
    ranges = [(0x64400000 + (k << 16), 0x64400000 + (k << 16) + 4095) for k in range(32)]
    engine = Engine(cookie_key=KEY, seed=1, source_ip="198.18.0.1",
                    source_mac="02:00:00:00:00:01", gateway_mac="02:00:00:00:00:02",
                    ranges=ranges, ports=[80], source_ports=range(OUR_PORT, OUR_PORT + 1),
                    max_results=1 << 20)
    answering = [first + i for first, _ in ranges for i in range(0, 4096, 2)]
    assert all(engine.ingest(reply(ip, 80)) == "open" for ip in answering)
    assert all(engine.ingest(reply(ip, 80, RST_ACK)) == "duplicate" for ip in answering[::7])
    target_bits = 32 * 4096
    assert engine.stats()["dedup_bytes"] <= (target_bits // 8 + table_bytes((80,))
                                             + PER_PORT_OVERHEAD + 2 * PER_BLOCK_OVERHEAD)
    assert sorted(ip for ip, _, _ in reported(engine)) == answering


def test_replies_from_outside_the_target_set_are_still_reported_once() -> None:
    """An address no range holds, or a port not scanned, is keyed by its raw address: a
    valid cookie from there is reported once, like any other."""
    engine = make_engine(0xC6120000, 0xC61200FF, ports=(80,))
    inside, outside = 0xC6120005, 0xC6130005
    for ip, port in ((inside, 80), (outside, 80), (inside, 81), (outside, 81)):
        assert engine.ingest(reply(ip, port)) == "open"
        assert engine.ingest(reply(ip, port, RST_ACK)) == "duplicate"
    # the raw key of one and the address number of another never collide
    assert engine.ingest(reply(5, 80)) == "open"
    assert engine.ingest(reply(0xC6120000, 80)) == "open"
    assert len(reported(engine)) == 6
