"""The IPv6 data plane without a network (issue 12): the 36-byte cookie against the SipHash
reference, the IPv6 target set (masscan order, exactly once through the keyed permutation,
ip_number inverse), the IPv6 SYN template and both IPv6 probe modules' frames read back and
checksum-verified by scapy, and their classification of crafted replies through the engine's
RX path (valid, forged cookie, truncated, fragment, extension header, NDP, duplicates)."""

from __future__ import annotations

import random
import struct
from ipaddress import IPv6Address

import pytest
import siphashc
from scapy.layers.inet import TCP
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6ND_NS,
    IPv6,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
)
from scapy.layers.l2 import Ether

from pyscan.native import (
    Engine,
    Permutation,
    TargetSet6,
    build_syn6,
    cookie6,
    cookie6_siphash,
    null_captured,
    open_null_tx,
)
from pyscan.probes import PROBES, for_family

KEY = bytes(range(16))
SCANNER = "2001:2::1"
SCANNER_MAC = "02:00:00:00:00:01"
GATEWAY_MAC = "02:00:00:00:00:02"
SOURCE_PORTS = range(61000, 61256)
TARGETS = [("2001:2:0:1::", "2001:2:0:1::f"), ("2001:2:0:2::10", "2001:2:0:2::13")]


# ---- cookie ---------------------------------------------------------------------------

def test_cookie6_is_siphash_of_the_36_byte_tuple() -> None:
    rng = random.Random(6)
    for _ in range(2000):
        key = rng.randbytes(16)
        saddr, daddr = IPv6Address(rng.getrandbits(128)), IPv6Address(rng.getrandbits(128))
        sport, dport = rng.getrandbits(16), rng.getrandbits(16)
        message = saddr.packed + daddr.packed + struct.pack("!HH", sport, dport)
        reference = siphashc.siphash(key, message)
        assert cookie6_siphash(key, saddr, daddr, sport, dport) == reference
        assert cookie6(key, saddr, daddr, sport, dport) == reference & 0xFFFFFFFF


def test_cookie6_depends_on_every_address_byte() -> None:
    base = cookie6(KEY, SCANNER, "2001:2::2", 1, 2)
    for byte in range(16):
        changed = bytearray(IPv6Address("2001:2::2").packed)
        changed[byte] ^= 1
        assert cookie6(KEY, SCANNER, IPv6Address(bytes(changed)), 1, 2) != base


# ---- target set -------------------------------------------------------------------------

def test_target_set6_is_masscans_order_and_ip_number_inverts_it() -> None:
    t = TargetSet6(TARGETS, [80, 443, 22])
    addresses = [IPv6Address("2001:2:0:1::") + i for i in range(16)] + \
        [IPv6Address("2001:2:0:2::10") + i for i in range(4)]
    assert (t.n_ips, t.n_ports, len(t)) == (20, 3, 60)
    assert [t.at(i) for i in range(60)] == [(a, p) for p in (80, 443, 22) for a in addresses]
    assert [t.ip_number(a) for a in addresses] == list(range(20))
    assert t.ip_number("2001:2:0:1::10") is None
    assert t.ip_number("2001:2:0:2::f") is None
    assert t.ip_number("::") is None


def test_target_set6_walk_is_exactly_once_through_the_permutation() -> None:
    t = TargetSet6(TARGETS, [80, 443])
    perm = Permutation(len(t), seed=99)
    walked = [t.at(perm.at(i)) for i in range(len(t))]
    assert len(set(walked)) == len(t) == 40
    assert walked != [t.at(i) for i in range(len(t))]  # keyed, not the plain order


def test_target_set6_refuses_more_than_2_32_addresses_and_overlaps() -> None:
    assert TargetSet6([("2001:2::", "2001:2::ffff:ffff")], [80]).n_ips == 2**32
    with pytest.raises(ValueError, match="2\\^32"):
        TargetSet6([("2001:2::", "2001:2::1:0:0")], [80])
    with pytest.raises(ValueError, match="2\\^32"):
        TargetSet6([("2001:2::", "2001:2::ffff:fffe"), ("2001:2:1::", "2001:2:1::1")], [80])
    with pytest.raises(ValueError):
        TargetSet6([("2001:2::5", "2001:2::9"), ("2001:2::9", "2001:2::a")], [80])
    with pytest.raises(ValueError):
        TargetSet6([("2001:2::9", "2001:2::5")], [80])


def test_target_set6_ranges_straddling_64_bit_halves() -> None:
    t = TargetSet6([("2001:2::ffff:ffff:ffff:fffe", "2001:2:0:1::1")], [7])
    assert [t.at(i)[0] for i in range(len(t))] == \
        [IPv6Address("2001:2::ffff:ffff:ffff:fffe") + i for i in range(4)]
    assert t.ip_number("2001:2:0:1::1") == 3


# ---- the SYN template -------------------------------------------------------------------

def recomputed(packet: Ether) -> Ether:
    """The packet with scapy's own checksums: equal bytes = ours verified."""
    fresh = packet.copy()
    if fresh.haslayer(TCP):
        del fresh[TCP].chksum
    if fresh.haslayer(ICMPv6EchoRequest):
        del fresh[ICMPv6EchoRequest].cksum
    return Ether(bytes(fresh))


@pytest.mark.parametrize("profile", ["windows", "linux", "bsd", "mss", "none"])
def test_syn6_frames_are_that_profiles_syn_with_a_verifying_checksum(profile: str) -> None:
    rng = random.Random(profile)
    for _ in range(200):
        daddr = IPv6Address(rng.getrandbits(128))
        sport, dport, seq = rng.getrandbits(16), rng.getrandbits(16), rng.getrandbits(32)
        frame = build_syn6(SCANNER_MAC, GATEWAY_MAC, SCANNER, daddr, sport, dport, seq,
                           tcp_options=profile, tsval=rng.getrandbits(32))
        packet = Ether(frame)
        assert bytes(recomputed(packet)) == frame
        ip, tcp = packet[IPv6], packet[TCP]
        assert (ip.src, ip.dst, ip.nh, ip.plen) == (SCANNER, str(daddr), 6, len(frame) - 54)
        assert (tcp.sport, tcp.dport, tcp.seq, tcp.flags) == (sport, dport, seq, "S")
        assert ip.hlim == (128 if profile == "windows" else 64)


def test_syn6_options_and_window_are_the_ipv4_probes() -> None:
    from scapy.layers.inet import IP

    from pyscan.native import build_syn
    for profile in ("windows", "linux", "bsd"):
        v4 = Ether(build_syn(SCANNER_MAC, GATEWAY_MAC, "198.18.0.1", "198.19.0.1", 1, 2, 3, 0,
                             tcp_options=profile, tsval=5))
        v6 = Ether(build_syn6(SCANNER_MAC, GATEWAY_MAC, SCANNER, "2001:2::2", 1, 2, 3,
                              tcp_options=profile, tsval=5))
        # same header bytes but the checksum (offset, flags, window, urgent) and options
        assert bytes(v6[TCP])[12:16] == bytes(v4[TCP])[12:16]
        assert bytes(v6[TCP])[18:] == bytes(v4[TCP])[18:]
        assert v6[TCP].options == v4[TCP].options and v6[TCP].window == v4[TCP].window
        assert v6[IPv6].hlim == v4[IP].ttl
    hop = Ether(build_syn6(SCANNER_MAC, GATEWAY_MAC, SCANNER, "2001:2::2", 1, 2, 3, ttl=7))
    assert hop[IPv6].hlim == 7


# ---- engine: modules end to end ---------------------------------------------------------

def make_engine(probe: str, ports: list[int], **kw) -> Engine:
    return Engine(cookie_key=KEY, seed=3, source_ip=SCANNER, source_mac=SCANNER_MAC,
                  gateway_mac=GATEWAY_MAC, ranges=TARGETS, ports=ports, probe=probe,
                  source_ports=SOURCE_PORTS, family=6, **kw)


def sent(engine: Engine) -> list[Ether]:
    ring = open_null_tx(capture_frames=4096)
    engine.run_tx(0, ring)
    return [Ether(frame) for frame in null_captured(ring)]


def all_targets() -> set[tuple[str, int]]:
    t = TargetSet6(TARGETS, [0])
    return {str(t.at(i)[0]) for i in range(len(t))}


def test_syn6_scan_sends_each_target_once_with_its_cookie_in_the_engines_order() -> None:
    engine = make_engine("tcp-syn6", [80, 443])
    frames = sent(engine)
    pairs = [(f[IPv6].dst, f[TCP].dport) for f in frames]
    assert sorted(pairs) == sorted((a, p) for a in all_targets() for p in (80, 443))
    listed = engine.targets(0, 0, 100)
    assert [(str(IPv6Address(a)), p) for a, p in listed] == pairs
    for f in frames:
        assert f[IPv6].src == SCANNER and f[TCP].sport in SOURCE_PORTS
        assert f[TCP].seq == cookie6(KEY, SCANNER, f[IPv6].dst, f[TCP].sport, f[TCP].dport)
        assert bytes(recomputed(f)) == bytes(f)


def reply_to(probe: Ether, flags: str = "SA", ack_delta: int = 1) -> Ether:
    return (Ether(src=GATEWAY_MAC, dst=SCANNER_MAC) /
            IPv6(src=probe[IPv6].dst, dst=SCANNER, hlim=61) /
            TCP(sport=probe[TCP].dport, dport=probe[TCP].sport, flags=flags,
                seq=1234, ack=(probe[TCP].seq + ack_delta) & 0xFFFFFFFF,
                options=[("MSS", 1400), ("WScale", 7)]))


def test_syn6_classifies_synack_rst_and_refuses_forgeries() -> None:
    engine = make_engine("tcp-syn6", [80])
    probes = sent(engine)
    assert engine.ingest(bytes(reply_to(probes[0]))) == "open"
    assert engine.ingest(bytes(reply_to(probes[0]))) == "duplicate"
    assert engine.ingest(bytes(reply_to(probes[1], "RA"))) == "closed"
    assert engine.ingest(bytes(reply_to(probes[2], ack_delta=2))) == "invalid-cookie"
    assert engine.ingest(bytes(reply_to(probes[2], "A"))) == "ignored-flags"
    wrong_dst = reply_to(probes[3])
    wrong_dst[IPv6].dst = "2001:2::99"
    assert engine.ingest(bytes(Ether(bytes(wrong_dst)))) == "not-ours"
    bad_sum = bytearray(bytes(reply_to(probes[4])))
    bad_sum[-1] ^= 0xFF
    assert engine.ingest(bytes(bad_sum)) == "bad-checksum"
    frame = bytes(reply_to(probes[5]))
    assert engine.ingest(frame[:54 + 10]) == "malformed"  # payload length past the capture
    results = engine.drain()
    assert [(str(r.ip), r.port, r.status, r.ttl, r.mss, r.wscale) for r in results] == [
        (probes[0][IPv6].dst, 80, "open", 61, 1400, 7),
        (probes[1][IPv6].dst, 80, "closed", 61, 1400, 7)]


def test_fragments_and_extension_headers_are_not_reported() -> None:
    engine = make_engine("tcp-syn6", [80])
    probe = sent(engine)[0]
    reply = reply_to(probe)
    frag = Ether(src=GATEWAY_MAC, dst=SCANNER_MAC) / IPv6(src=probe[IPv6].dst, dst=SCANNER) / \
        IPv6ExtHdrFragment(m=0, offset=0) / reply[TCP]
    hop = Ether(src=GATEWAY_MAC, dst=SCANNER_MAC) / IPv6(src=probe[IPv6].dst, dst=SCANNER) / \
        IPv6ExtHdrHopByHop() / reply[TCP]
    assert engine.ingest(bytes(frag)) == "malformed"
    assert engine.ingest(bytes(hop)) == "not-ours"
    assert engine.ingest(bytes(reply)) == "open"


def test_echo6_requests_carry_the_cookie_and_replies_are_up() -> None:
    engine = make_engine("icmp-echo6", [0])
    frames = sent(engine)
    assert sorted(f[IPv6].dst for f in frames) == sorted(all_targets())
    for f in frames:
        c = cookie6(KEY, SCANNER, f[IPv6].dst, 0, 0)
        req = f[ICMPv6EchoRequest]
        assert (req.id, req.seq, f[IPv6].nh, len(bytes(f))) == (c >> 16, c & 0xFFFF, 58, 62)
        assert bytes(recomputed(f)) == bytes(f)

    def echo_reply(probe: Ether, seq_delta: int = 0) -> bytes:
        req = probe[ICMPv6EchoRequest]
        return bytes(Ether(src=GATEWAY_MAC, dst=SCANNER_MAC) /
                     IPv6(src=probe[IPv6].dst, dst=SCANNER, hlim=64) /
                     ICMPv6EchoReply(id=req.id, seq=(req.seq + seq_delta) & 0xFFFF))

    assert engine.ingest(echo_reply(frames[0])) == "open"
    assert engine.ingest(echo_reply(frames[0])) == "duplicate"
    assert engine.ingest(echo_reply(frames[1], 1)) == "invalid-cookie"
    unreach = (Ether(src=GATEWAY_MAC, dst=SCANNER_MAC) / IPv6(src="2001:2::fe", dst=SCANNER) /
               ICMPv6DestUnreach(code=3) / bytes(frames[2][IPv6]))
    assert engine.ingest(bytes(unreach)) == "closed"
    forged = bytearray(bytes(frames[3][IPv6]))
    forged[-1] ^= 1
    forged_unreach = (Ether(src=GATEWAY_MAC, dst=SCANNER_MAC) /
                      IPv6(src="2001:2::fe", dst=SCANNER) / ICMPv6DestUnreach(code=3) /
                      bytes(forged))
    assert engine.ingest(bytes(forged_unreach)) == "invalid-cookie"
    ns = (Ether(src=GATEWAY_MAC, dst=SCANNER_MAC) / IPv6(src=frames[4][IPv6].dst, dst=SCANNER) /
          ICMPv6ND_NS(tgt=SCANNER))
    assert engine.ingest(bytes(ns)) == "not-ours"
    results = engine.drain()
    assert [(str(r.ip), r.status, r.icmp_type, r.icmp_code, r.l4_proto) for r in results] == [
        (frames[0][IPv6].dst, "up", 129, 0, 58),
        (frames[2][IPv6].dst, "unreachable", 1, 3, 58)]
    assert [r.rtt for r in results] == [None, None]  # no send time in an echo request


def test_one_family_per_scan() -> None:
    with pytest.raises(ValueError, match="not for IPv6 targets"):
        make_engine("tcp-syn", [80])
    with pytest.raises(ValueError, match="not for IPv4 targets"):
        Engine(cookie_key=KEY, seed=3, source_ip="198.18.0.1", source_mac=SCANNER_MAC,
               gateway_mac=GATEWAY_MAC, ranges=[("198.19.0.1", "198.19.0.2")], ports=[80],
               probe="tcp-syn6")


def test_registry_maps_user_names_to_the_ipv6_twins() -> None:
    assert for_family("tcp-syn", 6) is PROBES["tcp-syn6"]
    assert for_family("icmp-echo", 6) is PROBES["icmp-echo6"]
    assert for_family("tcp-syn", 4) is PROBES["tcp-syn"]
    assert for_family("tcp-syn6", 4) is PROBES["tcp-syn"]
    assert for_family("udp", 6) is PROBES["udp6"]  # every user-facing type has a twin now


# ---- scanner wiring ---------------------------------------------------------------------

def v6_config(targets: list[str], **overrides: object):
    from pyscan import ScanConfig

    options: dict[str, object] = {"ports": "22,80", "driver": "null", "seed": "7",
                                  "rate": "max", "wait": "0"}
    options.update(overrides)
    return ScanConfig.parse(targets, **options)  # type: ignore[arg-type]


def test_dry_run_of_ipv6_targets_sends_each_pair_once() -> None:
    from pyscan import scan

    config = v6_config(["2001:2::/120", "2001:2:0:5::1-2001:2:0:5::3"], ping=True)
    with scan(config) as run:
        assert list(run) == []
    assert run.summary is not None
    assert run.summary.sent == run.summary.probes == (256 + 3) * 3


def test_list_targets_is_the_engines_ipv6_order_and_covers_the_set() -> None:
    from pyscan.scanner import list_targets

    config = v6_config(["2001:2::/126"])
    listed = list(list_targets(config))
    assert all(isinstance(address, IPv6Address) for address, _ in listed)
    assert sorted(listed) == sorted((IPv6Address("2001:2::") + i, p)
                                    for i in range(4) for p in (22, 80))
    assert listed != sorted(listed)  # keyed order, not the plain one


def test_a_huge_ipv6_set_is_sampled_from_its_first_2_32_addresses() -> None:
    from pyscan.scanner import engine_ranges, list_targets

    config = v6_config(["2001:2::/64"], ports="80", max_targets="50")
    first = int(IPv6Address("2001:2::"))
    assert engine_ranges(config) == [(first, first + 2**32 - 1)]
    listed = list(list_targets(config))
    assert len(listed) == len(set(listed)) == 50
    assert all(first <= int(a) < first + 2**32 and p == 80 for a, p in listed)


def test_ipv6_refusals_name_what_is_accepted() -> None:
    from pyscan import ConfigError

    with pytest.raises(ConfigError, match="unknown probe 'tcp-syn6'"):
        v6_config(["2001:2::/126"], probe="tcp-syn6")


def test_ipv6_results_are_deduplicated_by_address_number_and_outside_ones_reported() -> None:
    engine = make_engine("tcp-syn6", [80])
    probes = sent(engine)
    for probe in probes[:5]:
        assert engine.ingest(bytes(reply_to(probe))) == "open"
        assert engine.ingest(bytes(reply_to(probe, "RA"))) == "duplicate"
    assert engine.stats()["dedup_bytes"] > 0
    # a valid cookie from outside the target set (only a forger with the key could): reported,
    # not remembered, so repeated it is reported again rather than lost
    outside = reply_to(probes[0])
    outside[IPv6].src = "2001:2:0:9::1"
    outside[TCP].ack = (cookie6(KEY, SCANNER, "2001:2:0:9::1", outside[TCP].dport, 80) + 1)
    frame = bytes(Ether(bytes(outside)))
    assert engine.ingest(frame) == "open"
    assert engine.ingest(frame) == "open"


def test_an_icmpv6_unreachable_quoting_our_syn_is_unreachable() -> None:
    engine = make_engine("tcp-syn6", [80])
    probes = sent(engine)

    def unreachable(probe: Ether, code: int = 1, flip: int = 0, keep: int = 9999) -> bytes:
        quote = bytearray(bytes(probe[IPv6])[:keep])
        if flip:
            quote[40 + 7] ^= flip  # a bit of the quoted sequence number
        return bytes(Ether(src=GATEWAY_MAC, dst=SCANNER_MAC) /
                     IPv6(src="2001:2::fe", dst=SCANNER, hlim=63) /
                     ICMPv6DestUnreach(code=code) / bytes(quote))

    assert engine.ingest(unreachable(probes[0], code=4)) == "closed"
    assert engine.ingest(unreachable(probes[0], code=4)) == "duplicate"
    assert engine.ingest(unreachable(probes[1], flip=1)) == "invalid-cookie"
    assert engine.ingest(unreachable(probes[2], keep=40 + 6)) == "not-ours"  # cut in TCP
    results = engine.drain()
    assert [(str(r.ip), r.port, r.status, r.icmp_type, r.icmp_code, r.ttl, r.l4_proto)
            for r in results] == [(probes[0][IPv6].dst, 80, "unreachable", 1, 4, 63, 6)]
    stats = engine.stats()
    assert (stats["rx_unreachable"], stats["rx_closed"], stats["rx_invalid_cookie"]) == (1, 0, 1)
