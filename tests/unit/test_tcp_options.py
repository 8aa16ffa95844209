"""--tcp-options through the engine on the null driver: every profile's frames carry the
SipHash cookie (checked with siphashc), verify with scapy's checksums, have that profile's
shape, and replies carrying any options are classified by the C classifier."""

from __future__ import annotations

import ipaddress

import pytest
import siphashc
from scapy.layers.inet import IP, TCP, in4_chksum
from scapy.layers.l2 import Ether

from pyscan.config import TCP_OPTION_PROFILES, ConfigError, ScanConfig, parse_tcp_options
from pyscan.native import TCP_OPTION_IDS, Engine, null_captured, open_null_tx

KEY = bytes(range(16))
SOURCE_IP, SOURCE_MAC, GATEWAY_MAC = "198.18.0.1", "02:00:00:00:00:01", "02:00:00:00:00:02"
# profile -> (frame length, window, TTL, option kinds in order)
SHAPES = {
    "windows": (66, 64240, 128, [2, 1, 3, 1, 1, 4]),
    "linux": (74, 64240, 64, [2, 4, 8, 1, 3]),
    "bsd": (78, 65535, 64, [2, 1, 3, 1, 1, 8, 4, 0]),   # scapy stops at the first EOL
    "mss": (58, 1024, 64, [2]),
    "none": (54, 1024, 64, []),
}
SCAPY_KINDS = {"MSS": 2, "NOP": 1, "WScale": 3, "SAckOK": 4, "Timestamp": 8, "EOL": 0}


def make_engine(profile: str, **kw: object) -> Engine:
    return Engine(cookie_key=KEY, seed=9, source_ip=SOURCE_IP, source_mac=SOURCE_MAC,
                  gateway_mac=GATEWAY_MAC, ranges=[("198.19.0.0", "198.19.0.63")],
                  ports=[80, 443], source_ports=range(40000, 40032), tcp_options=profile,
                  **kw)  # type: ignore[arg-type]


def reference_cookie(saddr: str, daddr: str, sport: int, dport: int) -> int:
    message = (ipaddress.IPv4Address(saddr).packed + ipaddress.IPv4Address(daddr).packed
               + sport.to_bytes(2, "big") + dport.to_bytes(2, "big"))
    return siphashc.siphash(KEY, message) & 0xFFFFFFFF


def test_the_config_and_the_template_know_the_same_profiles() -> None:
    assert set(TCP_OPTION_PROFILES) == set(TCP_OPTION_IDS) == set(SHAPES)


@pytest.mark.parametrize("profile", list(SHAPES))
def test_engine_frames_have_the_profile_shape_and_the_cookie(profile: str) -> None:
    length, window, ttl, kinds = SHAPES[profile]
    with make_engine(profile, retries=1, retry_delay=0) as engine:
        ring = open_null_tx(capture_frames=256)
        engine.run_tx(0, ring)
        frames = null_captured(ring)
    assert len(frames) == 256
    # each pair's two probes are the same frame but for the timestamp (the send time) and
    # the TCP checksum that covers it
    assert len({_without_timestamp(frame) for frame in frames}) == 128
    timestamps = set()
    for frame in frames:
        assert len(frame) == length
        packet = Ether(frame)
        ip, tcp = packet[IP], packet[TCP]
        assert (ip.ttl, ip.flags, tcp.window, tcp.flags) == (ttl, "DF", window, "S")
        assert [SCAPY_KINDS[name] for name, _ in tcp.options] == kinds[:len(tcp.options)]
        assert tcp.seq == reference_cookie(ip.src, ip.dst, tcp.sport, tcp.dport)
        rebuilt = packet.copy()
        del rebuilt[IP].chksum, rebuilt[TCP].chksum
        rebuilt = Ether(bytes(rebuilt))
        assert (ip.chksum, tcp.chksum) == (rebuilt[IP].chksum, rebuilt[TCP].chksum)
        timestamps |= {value for name, value in tcp.options if name == "Timestamp"}
    if 8 in kinds:  # a timestamp per probe (send time + per-connection offset), echo 0
        assert len(timestamps) > 128 and all(echo == 0 for _, echo in timestamps)


def _without_timestamp(frame: bytes) -> bytes:
    packet = Ether(frame)
    packet[TCP].chksum = 0
    packet[TCP].options = [(name, (0, 0) if name == "Timestamp" else value)
                           for name, value in packet[TCP].options]
    return bytes(packet)


def _syn_ack(probe: Ether, options: list, window: int = 29200) -> bytes:
    return bytes(Ether(src=GATEWAY_MAC, dst=SOURCE_MAC)
                 / IP(src=probe[IP].dst, dst=probe[IP].src, ttl=60)
                 / TCP(sport=probe[TCP].dport, dport=probe[TCP].sport, flags="SA", seq=5,
                       ack=probe[TCP].seq + 1, window=window, options=options))


@pytest.mark.parametrize("profile", ["linux", "bsd"])
def test_a_reply_echoing_the_timestamp_reports_its_options_and_the_rtt(profile: str) -> None:
    with make_engine(profile) as engine:
        ring = open_null_tx(capture_frames=4)
        engine.run_tx(0, ring)
        probe = Ether(null_captured(ring)[0])
        sent_tsval = dict(probe[TCP].options)["Timestamp"][0]
        answer = _syn_ack(probe, [("MSS", 1400), ("SAckOK", b""), ("Timestamp", (777, sent_tsval)),
                                  ("NOP", None), ("WScale", 7)], window=65160)
        assert engine.ingest(answer) == "open"
        (result,) = engine.drain()
    assert (result.window, result.mss, result.wscale, result.sack_permitted) == (
        65160, 1400, 7, True)
    assert (result.ts_val, result.ts_ecr) == (777, sent_tsval)
    # the echo minus the per-connection offset is the send time: a real, non-negative RTT
    # (bounded only by how long this test took to get here)
    assert result.rtt is not None and 0 <= result.rtt < 600


def test_without_a_timestamp_in_the_probe_there_is_no_rtt_but_options_are_read() -> None:
    with make_engine("windows") as engine:
        ring = open_null_tx(capture_frames=2)
        engine.run_tx(0, ring)
        probe = Ether(null_captured(ring)[0])
        answer = _syn_ack(probe, [("MSS", 1460), ("NOP", None), ("NOP", None), ("SAckOK", b""),
                                  ("NOP", None), ("WScale", 8)])
        assert engine.ingest(answer) == "open"
        (result,) = engine.drain()
    assert (result.window, result.mss, result.wscale, result.sack_permitted) == (
        29200, 1460, 8, True)
    assert result.ts_val is None and result.ts_ecr is None and result.rtt is None


def test_a_rst_without_options_and_a_truncated_option_list() -> None:
    with make_engine("linux") as engine:
        ring = open_null_tx(capture_frames=2)
        engine.run_tx(0, ring)
        first, second = (Ether(frame) for frame in null_captured(ring))
        rst = bytes(Ether(src=GATEWAY_MAC, dst=SOURCE_MAC)
                    / IP(src=first[IP].dst, dst=first[IP].src)
                    / TCP(sport=first[TCP].dport, dport=first[TCP].sport, flags="RA",
                          ack=first[TCP].seq + 1, window=0))
        assert engine.ingest(rst) == "closed"
        # an MSS option whose length runs past the header: the walk stops, nothing invented
        broken = Ether(_syn_ack(second, [("NOP", None)] * 4))
        raw = bytearray(bytes(broken))
        raw[-4:] = bytes([2, 8, 5, 0xB4])
        # the checksum must stay right, or the frame is dropped before the option walk
        tcp_at = 14 + 20
        raw[tcp_at + 16:tcp_at + 18] = b"\0\0"
        checksum = in4_chksum(6, broken[IP], bytes(raw[tcp_at:]))
        raw[tcp_at + 16:tcp_at + 18] = checksum.to_bytes(2, "big")
        assert engine.ingest(bytes(raw)) == "open"
        closed, opened = engine.drain()
    assert (closed.window, closed.mss, closed.sack_permitted, closed.rtt) == (0, None, False, None)
    assert (opened.mss, opened.wscale, opened.ts_val) == (None, None, None)


@pytest.mark.parametrize("profile", list(SHAPES))
def test_replies_with_any_options_are_classified(profile: str) -> None:
    with make_engine(profile) as engine:
        ring = open_null_tx(capture_frames=128)
        engine.run_tx(0, ring)
        for index, frame in enumerate(null_captured(ring)[:20]):
            probe = Ether(frame)
            options = [("MSS", 1400), ("SAckOK", b""), ("Timestamp", (7, 9)), ("NOP", None),
                       ("WScale", 7)][:index % 6]
            flags = "SA" if index % 2 else "RA"
            answer = (Ether(src=GATEWAY_MAC, dst=SOURCE_MAC)
                      / IP(src=probe[IP].dst, dst=probe[IP].src, ttl=60)
                      / TCP(sport=probe[TCP].dport, dport=probe[TCP].sport, flags=flags,
                            seq=5, ack=probe[TCP].seq + 1, window=29200, options=options))
            assert engine.ingest(bytes(answer)) == ("open" if flags == "SA" else "closed")
            assert engine.ingest(bytes(answer)) == "duplicate"


def test_profile_parsing_accepts_zmap_spellings() -> None:
    assert parse_tcp_options("Windows") == "windows"
    assert parse_tcp_options("smallest-probes") == "mss"
    assert parse_tcp_options("tcp-options=linux") == "linux"
    with pytest.raises(ConfigError, match=r"bad TCP options 'solaris' \(accepted: windows"):
        parse_tcp_options("solaris")
    config = ScanConfig.parse(["198.19.0.0/30"], ports="80", driver="null")
    assert config.tcp_options == "windows" and config.ttl is None
