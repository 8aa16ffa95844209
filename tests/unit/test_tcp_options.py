"""--tcp-options through the engine on the null driver: every profile's frames carry the
SipHash cookie (checked with siphashc), verify with scapy's checksums, have that profile's
shape, and replies carrying any options are classified by the C classifier."""

from __future__ import annotations

import ipaddress

import pytest
import siphashc
from scapy.layers.inet import IP, TCP
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
    assert len(frames) == 256 and len(set(frames)) == 128  # each pair's two probes are equal
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
    if 8 in kinds:  # a timestamp per connection, echo 0, like a first SYN
        assert len(timestamps) == 128 and all(echo == 0 for _, echo in timestamps)


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
