"""ICMP destination unreachables quoting a TCP SYN (probe_tcp_syn4.c's classify, through the
engine's ingest path): the quoted sequence number must be the cookie of the quoted tuple,
the quote must come from the scanner, from one of its source ports, to a target of the set;
in a scan that mixes tcp-syn, udp and icmp-echo each ICMP error goes to the module whose
probe it quotes. Cookies come from the probes the engine itself sent (the SYN's source port
is keyed by the target index), read back with scapy."""

from __future__ import annotations

from ipaddress import IPv4Address

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether

from pyscan.native import Engine, cookie, null_captured, open_null_tx

KEY = bytes(range(16, 32))
SOURCE_IP = "198.18.0.1"
ROUTER = "198.18.0.2"
SOURCE_PORTS = range(61000, 61256)
TARGETS = [("198.19.0.0", "198.19.0.15")]


def make_engine(ports: list[int], probes: list[str]) -> Engine:
    return Engine(cookie_key=KEY, seed=9, source_ip=SOURCE_IP, source_mac="02:00:00:00:00:01",
                  gateway_mac="02:00:00:00:00:02", ranges=TARGETS, ports=ports,
                  port_probes=probes, source_ports=SOURCE_PORTS)


def sent(engine: Engine) -> list[Ether]:
    ring = open_null_tx(capture_frames=4096)
    engine.run_tx(0, ring)
    return [Ether(frame) for frame in null_captured(ring)]


def icmp_error(probe: Ether, code: int = 1, icmp_type: int = 3, quote_bytes: int = 28,
               src: str = ROUTER) -> bytes:
    """What a router sends back about probe: its IPv4 header and first bytes."""
    quote = bytes(probe[IP])[:quote_bytes]
    return bytes(Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01")
                 / IP(src=src, dst=SOURCE_IP) / ICMP(type=icmp_type, code=code) / quote)


def forged(probe: Ether, **fields: object) -> Ether:
    """probe with some IP or TCP fields changed (checksums redone)."""
    copy = probe.copy()
    for name, value in fields.items():
        layer = copy[TCP] if name in ("seq", "sport", "dport") else copy[IP]
        setattr(layer, name, value)
    del copy[IP].chksum
    del copy[TCP].chksum
    return Ether(bytes(copy))


def syn_to(frames: list[Ether], address: str, port: int) -> Ether:
    return next(f for f in frames if f.haslayer(TCP) and f[IP].dst == address
                and f[TCP].dport == port)


def test_an_unreachable_quoting_our_syn_is_an_unreachable_result_with_type_and_code() -> None:
    with make_engine([80, 443], ["tcp-syn", "tcp-syn"]) as engine:
        frames = sent(engine)
        first, second = syn_to(frames, "198.19.0.3", 80), syn_to(frames, "198.19.0.4", 443)
        assert engine.ingest(icmp_error(first, code=1)) == "closed"
        # a longer quote (Linux quotes up to 576 bytes) is read the same way
        assert engine.ingest(icmp_error(second, code=13, quote_bytes=40)) == "closed"
        results = sorted(engine.drain(), key=lambda r: r.port)
        stats = engine.stats()
    assert [(r.ip, r.port, r.status, r.l4_proto, r.icmp_type, r.icmp_code, r.ttl)
            for r in results] == [
        (IPv4Address("198.19.0.3"), 80, "unreachable", 6, 3, 1, 64),
        (IPv4Address("198.19.0.4"), 443, "unreachable", 6, 3, 13, 64)]
    assert all(r.window is None and r.rtt is None for r in results)
    assert (stats["rx_unreachable"], stats["rx_closed"], stats["rx_open"]) == (2, 0, 0)


def test_a_quote_whose_sequence_is_not_the_cookie_is_refused() -> None:
    with make_engine([80], ["tcp-syn"]) as engine:
        probe = syn_to(sent(engine), "198.19.0.5", 80)
        assert engine.ingest(icmp_error(forged(probe, seq=(probe[TCP].seq + 1) % 2**32))) \
            == "invalid-cookie"
        # the cookie of another target's tuple does not fit this one
        assert engine.ingest(icmp_error(forged(probe, dst="198.19.0.6"))) == "invalid-cookie"
        assert engine.drain() == []
        assert engine.stats()["rx_invalid_cookie"] == 2


def test_quotes_that_are_not_of_our_probes_are_not_ours() -> None:
    with make_engine([80], ["tcp-syn"]) as engine:
        probe = syn_to(sent(engine), "198.19.0.7", 80)
        not_ours = [
            icmp_error(forged(probe, src="198.18.0.9")),          # another host's SYN
            icmp_error(forged(probe, dst="198.20.0.1")),          # outside the target set
            icmp_error(forged(probe, sport=SOURCE_PORTS.stop)),   # outside our source ports
            icmp_error(probe, quote_bytes=27),                    # cut before the sequence
            icmp_error(probe, quote_bytes=19),                    # cut inside the IP header
            icmp_error(probe, icmp_type=11, code=0),              # time exceeded, not type 3
        ]
        assert [engine.ingest(frame) for frame in not_ours] == ["not-ours"] * len(not_ours)
        assert engine.drain() == []


def test_an_unreachable_then_a_syn_ack_for_the_same_pair_reports_the_first_only() -> None:
    with make_engine([80], ["tcp-syn"]) as engine:
        probe = syn_to(sent(engine), "198.19.0.8", 80)
        synack = bytes(Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01")
                       / IP(src="198.19.0.8", dst=SOURCE_IP)
                       / TCP(sport=80, dport=probe[TCP].sport, flags="SA",
                             ack=probe[TCP].seq + 1))
        assert engine.ingest(icmp_error(probe)) == "closed"
        assert engine.ingest(icmp_error(probe, code=10)) == "duplicate"
        assert engine.ingest(synack) == "duplicate"
        [result] = engine.drain()
    assert (result.port, result.status) == (80, "unreachable")


def test_mixed_scan_gives_each_icmp_error_to_the_module_whose_probe_it_quotes() -> None:
    with make_engine([53, 53, 0], ["tcp-syn", "udp", "icmp-echo"]) as engine:
        frames = sent(engine)
        syn = syn_to(frames, "198.19.0.9", 53)
        datagram = next(f for f in frames if f.haslayer(UDP) and f[IP].dst == "198.19.0.9")
        echo = next(f for f in frames if f.haslayer(ICMP) and f[IP].dst == "198.19.0.9")
        assert engine.ingest(icmp_error(syn, code=1)) == "closed"
        assert engine.ingest(icmp_error(datagram, code=3, src="198.19.0.9")) == "closed"
        assert engine.ingest(icmp_error(echo, code=1)) == "closed"
        # a UDP quote cut before its 8th byte: no module can tell it is its own
        assert engine.ingest(icmp_error(datagram, code=1, quote_bytes=27)) == "not-ours"
        results = sorted(engine.drain(), key=lambda r: r.l4_proto)
        stats = engine.stats()
    assert [(r.l4_proto, r.port, r.status, r.icmp_code) for r in results] == [
        (1, 0, "unreachable", 1), (6, 53, "unreachable", 1), (17, 53, "closed", 3)]
    assert (stats["rx_unreachable"], stats["rx_closed"]) == (2, 1)


def test_cookie_helper_agrees_with_the_quoted_sequence() -> None:
    # the quoted sequence number is exactly the SipHash cookie of the SYN's tuple
    with make_engine([80], ["tcp-syn"]) as engine:
        probe = syn_to(sent(engine), "198.19.0.10", 80)
    assert probe[TCP].seq == cookie(KEY, SOURCE_IP, "198.19.0.10", probe[TCP].sport, 80)
