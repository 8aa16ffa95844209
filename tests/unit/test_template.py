"""The SYN probe (template.h): bytes and checksums checked by scapy and dpkt."""

from __future__ import annotations

import random
import struct
from ipaddress import IPv4Address

import dpkt
import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from pyscan.native import SYN_FRAME_LEN, build_syn

SRC_MAC, DST_MAC = "02:00:00:00:00:01", "0a:1b:2c:3d:4e:5f"


def random_probe(rng: random.Random) -> dict[str, object]:
    return {
        "src_mac": rng.randbytes(6), "dst_mac": rng.randbytes(6),
        "saddr": IPv4Address(rng.getrandbits(32)), "daddr": IPv4Address(rng.getrandbits(32)),
        "sport": rng.getrandbits(16), "dport": rng.getrandbits(16),
        "seq": rng.getrandbits(32), "ip_id": rng.getrandbits(16),
        "ttl": rng.randint(1, 255), "mss": rng.randint(1, 65535),
        "window": rng.randint(1, 65535), "tcp_options": "mss",
    }


def scapy_recomputed(frame: bytes) -> tuple[int, int]:
    """Both checksums as scapy computes them from scratch for the same headers."""
    packet = Ether(frame)
    del packet[IP].chksum
    del packet[TCP].chksum
    rebuilt = Ether(bytes(packet))
    return rebuilt[IP].chksum, rebuilt[TCP].chksum


def assert_probe(frame: bytes, probe: dict[str, object]) -> None:
    assert len(frame) == SYN_FRAME_LEN == 58
    packet = Ether(frame)
    ip, tcp = packet[IP], packet[TCP]
    assert bytes.fromhex(packet.dst.replace(":", "")) == probe["dst_mac"]
    assert bytes.fromhex(packet.src.replace(":", "")) == probe["src_mac"]
    assert packet.type == 0x0800
    assert (ip.version, ip.ihl, ip.len, ip.proto, ip.flags, ip.frag) == (4, 5, 44, 6, "DF", 0)
    assert (ip.src, ip.dst) == (str(probe["saddr"]), str(probe["daddr"]))
    assert (ip.id, ip.ttl) == (probe["ip_id"], probe["ttl"])
    assert (tcp.sport, tcp.dport, tcp.seq, tcp.ack) == (
        probe["sport"], probe["dport"], probe["seq"], 0)
    assert (tcp.dataofs, tcp.flags, tcp.window, tcp.urgptr) == (6, "S", probe["window"], 0)
    assert tcp.options == [("MSS", probe["mss"])]
    assert (ip.chksum, tcp.chksum) == scapy_recomputed(frame)


def test_random_probes_parse_and_checksum_with_scapy() -> None:
    rng = random.Random(58)
    for _ in range(400):
        probe = random_probe(rng)
        assert_probe(build_syn(**probe), probe)  # type: ignore[arg-type]


def test_checksum_carry_edge_cases() -> None:
    """All-ones fields push the one's complement sums through every carry fold."""
    for value in (0, 0xFFFFFFFF, 0x0000FFFF, 0xFFFF0000, 0x8000_8000):
        probe = {
            "src_mac": b"\xff" * 6, "dst_mac": b"\x00" * 6,
            "saddr": IPv4Address(value), "daddr": IPv4Address(value ^ 0xFFFFFFFF),
            "sport": value & 0xFFFF, "dport": 0xFFFF, "seq": value, "ip_id": 0xFFFF,
            "ttl": 255, "mss": 0xFFFF, "window": 0xFFFF, "tcp_options": "mss",
        }
        assert_probe(build_syn(**probe), probe)  # type: ignore[arg-type]


def _ones_complement_sum_is_valid(data: bytes) -> bool:
    return dpkt.in_cksum(data) == 0


def test_dpkt_agrees_the_checksums_verify() -> None:
    rng = random.Random(7)
    for _ in range(200):
        probe = random_probe(rng)
        frame = build_syn(**probe)  # type: ignore[arg-type]
        eth = dpkt.ethernet.Ethernet(frame)
        ip = eth.data
        assert isinstance(ip, dpkt.ip.IP) and isinstance(ip.data, dpkt.tcp.TCP)
        assert ip.data.flags == dpkt.tcp.TH_SYN
        assert dpkt.tcp.parse_opts(ip.data.opts) == [
            (dpkt.tcp.TCP_OPT_MSS, struct.pack("!H", probe["mss"]))]
        header, segment = frame[14:34], frame[34:]
        assert _ones_complement_sum_is_valid(header)
        pseudo = ip.src + ip.dst + struct.pack("!BBH", 0, 6, len(segment))
        assert _ones_complement_sum_is_valid(pseudo + segment)


def test_defaults_and_text_macs() -> None:
    frame = build_syn(SRC_MAC, DST_MAC, "198.18.0.1", "198.19.0.9", 40000, 80, 1, 2,
                      tcp_options="mss")
    packet = Ether(frame)
    assert (packet.src, packet.dst) == (SRC_MAC, DST_MAC)
    assert (packet[IP].ttl, packet[TCP].window, packet[TCP].options) == (64, 1024,
                                                                         [("MSS", 1460)])


# Each profile as that stack sends its SYN (scapy's option names): option kinds, order and
# values, window, TTL, frame length. Timestamp values are per probe (tsval), echoes 0.
TSVAL = 0x8BADF00D
PROFILES = {
    "windows": (66, 64240, 128, [("MSS", 1460), ("NOP", None), ("WScale", 8), ("NOP", None),
                                 ("NOP", None), ("SAckOK", b"")]),
    "linux": (74, 64240, 64, [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (TSVAL, 0)),
                              ("NOP", None), ("WScale", 7)]),
    "bsd": (78, 65535, 64, [("MSS", 1460), ("NOP", None), ("WScale", 6), ("NOP", None),
                            ("NOP", None), ("Timestamp", (TSVAL, 0)), ("SAckOK", b""),
                            ("EOL", None), ("EOL", None)]),
    "mss": (58, 1024, 64, [("MSS", 1460)]),
    "none": (54, 1024, 64, []),
}


def _options_as_pairs(options: list) -> list:
    # scapy gives NOP/EOL as (name, None) and single-value options as their value
    return [(name, value) for name, value in options]


@pytest.mark.parametrize("profile", list(PROFILES))
def test_each_profile_is_that_stacks_syn_and_checksums_verify(profile: str) -> None:
    length, window, ttl, options = PROFILES[profile]
    rng = random.Random(profile)
    for _ in range(100):
        daddr = IPv4Address(rng.getrandbits(32))
        sport, dport = rng.getrandbits(16), rng.getrandbits(16)
        seq, ip_id = rng.getrandbits(32), rng.getrandbits(16)
        frame = build_syn(SRC_MAC, DST_MAC, "198.18.0.1", daddr, sport, dport, seq, ip_id,
                          tcp_options=profile, tsval=TSVAL)
        assert len(frame) == length
        packet = Ether(frame)
        ip, tcp = packet[IP], packet[TCP]
        assert (ip.version, ip.ihl, ip.tos, ip.len, ip.flags, ip.frag, ip.ttl, ip.id) == (
            4, 5, 0, length - 14, "DF", 0, ttl, ip_id)
        assert (tcp.sport, tcp.dport, tcp.seq, tcp.ack, tcp.flags, tcp.window, tcp.urgptr) == (
            sport, dport, seq, 0, "S", window, 0)
        assert tcp.dataofs * 4 == length - 34
        # scapy stops at the first end-of-list; dpkt (below) sees every option byte
        first_eol = next((i + 1 for i, (name, _) in enumerate(options) if name == "EOL"),
                         len(options))
        assert _options_as_pairs(tcp.options) == options[:first_eol]
        assert (ip.chksum, tcp.chksum) == scapy_recomputed(frame)
        # dpkt, an independent parser: the same option kinds in the same order, and the sums
        eth = dpkt.ethernet.Ethernet(frame)
        kinds = [kind for kind, _ in dpkt.tcp.parse_opts(eth.data.data.opts)]
        scapy_kinds = {"MSS": 2, "NOP": 1, "WScale": 3, "SAckOK": 4, "Timestamp": 8, "EOL": 0}
        assert kinds == [scapy_kinds[name] for name, _ in options]
        assert _ones_complement_sum_is_valid(frame[14:34])
        pseudo = frame[26:34] + struct.pack("!BBH", 0, 6, length - 34)
        assert _ones_complement_sum_is_valid(pseudo + frame[34:])


def test_profile_values_can_be_overridden_and_checksums_still_verify() -> None:
    frame = build_syn(SRC_MAC, DST_MAC, "198.18.0.1", "198.19.0.9", 1, 2, 3, 4, ttl=33,
                      mss=1200, window=4096, tcp_options="linux", tsval=0xFFFFFFFF)
    packet = Ether(frame)
    assert (packet[IP].ttl, packet[TCP].window) == (33, 4096)
    assert packet[TCP].options[0] == ("MSS", 1200)
    assert packet[TCP].options[2] == ("Timestamp", (0xFFFFFFFF, 0))
    assert (packet[IP].chksum, packet[TCP].chksum) == scapy_recomputed(frame)


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="TCP options 'solaris' are unknown: accepted windows"):
        build_syn(SRC_MAC, DST_MAC, "198.18.0.1", "198.19.0.9", 1, 2, 3, 4,
                  tcp_options="solaris")


@pytest.mark.parametrize(("field", "value", "message"), [
    ("src_mac", "02:00:00:00:00", "source MAC '02:00:00:00:00' is not a MAC address"),
    ("dst_mac", "zz:00:00:00:00:00", "destination MAC 'zz:00:00:00:00:00' is not a MAC"),
    ("daddr", "198.19.0.256", "destination address '198.19.0.256' is not an IPv4 address"),
    ("seq", 2**32, "sequence number 4294967296 is out of range"),
    ("ttl", 256, "TTL 256 is out of range"),
    ("ip_id", -1, "IP ID -1 is out of range"),
])
def test_bad_input_is_rejected(field: str, value: object, message: str) -> None:
    args: dict[str, object] = {"src_mac": SRC_MAC, "dst_mac": DST_MAC, "saddr": "198.18.0.1",
                               "daddr": "198.19.0.1", "sport": 1, "dport": 2, "seq": 3,
                               "ip_id": 4}
    args[field] = value
    with pytest.raises(ValueError, match=message):
        build_syn(**args)  # type: ignore[arg-type]
