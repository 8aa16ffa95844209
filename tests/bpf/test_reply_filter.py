"""The XDP reply filter on crafted frames (BPF_PROG_TEST_RUN), against an independent SipHash.

No interface is involved: the program is loaded and verified, then run on frames built with
scapy. Its XSKMAP is empty here, so a matching frame still returns XDP_PASS (the redirect's
fallback action); what tells a match from a pass is the program's per-CPU counters.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest
import siphashc
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Dot1Q, Ether

pytestmark = [
    pytest.mark.bpf,
    pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF programs needs root"),
]

native = pytest.importorskip("pyscan.native")

SCANNER = IPv4Address("198.18.0.1")
TARGET = IPv4Address("198.19.7.9")
SOURCE_PORTS = range(40000, 40064)
KEY = bytes.fromhex("8f0c2a11d35e49b07c66f1a2b9e04d13")


def reference_cookie(key: bytes, saddr: IPv4Address, daddr: IPv4Address,
                     sport: int, dport: int) -> int:
    """Low 32 bits of SipHash-2-4 over the probe's tuple, computed by siphashc."""
    message = saddr.packed + daddr.packed + sport.to_bytes(2, "big") + dport.to_bytes(2, "big")
    return siphashc.siphash(key, message) & 0xFFFFFFFF


def reply(flags: str = "SA", *, ack: int | None = None, src: IPv4Address = TARGET,
          dst: IPv4Address = SCANNER, sport: int = 443, dport: int = 40007,
          key: bytes = KEY, ip_options: bytes = b"", frag: int = 0, mf: bool = False) -> bytes:
    """A reply from src:sport to dst:dport, acknowledging the probe's cookie unless told."""
    if ack is None:
        ack = (reference_cookie(key, dst, src, dport, sport) + 1) & 0xFFFFFFFF
    ip = IP(src=str(src), dst=str(dst), ttl=61, frag=frag, flags="MF" if mf else 0)
    if ip_options:
        ip.options = ip_options
    frame = (Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01") / ip
             / TCP(sport=sport, dport=dport, flags=flags, seq=12345, ack=ack, window=64240))
    return bytes(frame)


@pytest.fixture
def reply_filter() -> Iterator[native.ReplyFilter]:
    with native.ReplyFilter(KEY, scanner_ip=SCANNER, ports=SOURCE_PORTS) as loaded:
        yield loaded


def run(reply_filter: native.ReplyFilter, frame: bytes) -> tuple[str, dict[str, int]]:
    before = reply_filter.counters()
    action = reply_filter.test_run(frame)
    after = reply_filter.counters()
    return action, {name: after[name] - before[name] for name in after}


# The XSKMAP is empty here: every match is also unqueued (passed, lost to the scan).
MATCHED = {"seen": 1, "matched": 1, "passed": 0, "unqueued": 1, "arp_replied": 0,
           "arp_conflict": 0}
PASSED = {"seen": 1, "matched": 0, "passed": 1, "unqueued": 0, "arp_replied": 0,
          "arp_conflict": 0}


def test_program_loads_and_verifies(reply_filter: native.ReplyFilter) -> None:
    assert reply_filter.prog_id > 0
    assert reply_filter.counters() == {"seen": 0, "matched": 0, "passed": 0, "unqueued": 0,
                                       "arp_replied": 0, "arp_conflict": 0}


def test_syn_ack_with_good_cookie_matches(reply_filter: native.ReplyFilter) -> None:
    action, delta = run(reply_filter, reply("SA"))
    assert delta == MATCHED
    assert action == "XDP_PASS"  # empty XSKMAP slot: the redirect falls back to pass


def test_rst_ack_with_good_cookie_matches(reply_filter: native.ReplyFilter) -> None:
    assert run(reply_filter, reply("RA"))[1] == MATCHED


@pytest.mark.parametrize("sport", [1, 80, 65535])
@pytest.mark.parametrize("dport", [SOURCE_PORTS.start, SOURCE_PORTS.stop - 1])
def test_every_tuple_is_checked_with_its_own_cookie(reply_filter: native.ReplyFilter,
                                                    sport: int, dport: int) -> None:
    assert run(reply_filter, reply("SA", sport=sport, dport=dport))[1] == MATCHED


@pytest.mark.parametrize("description,frame", [
    ("ack equals the cookie, not cookie + 1",
     reply("SA", ack=reference_cookie(KEY, SCANNER, TARGET, 40007, 443))),
    ("cookie made with another key", reply("SA", key=bytes(16))),
    ("cookie of another target", reply("SA", ack=reference_cookie(
        KEY, SCANNER, IPv4Address("198.19.7.10"), 40007, 443) + 1)),
    ("plain ACK with a good ack number", reply("A")),
    ("SYN without ACK", reply("S")),
    ("RST without ACK", reply("R")),
    ("IPv4 options, good cookie", reply("SA", ip_options=b"\x01\x01\x01\x00")),
    ("first fragment, good cookie", reply("SA", mf=True)),
    ("later fragment offset", reply("SA", frag=8)),
    ("addressed to another host", reply("SA", dst=IPv4Address("198.18.0.2"))),
    ("port below the scan's source ports", reply("SA", dport=SOURCE_PORTS.start - 1)),
    ("port above the scan's source ports", reply("SA", dport=SOURCE_PORTS.stop)),
    ("UDP", bytes(Ether() / IP(src=str(TARGET), dst=str(SCANNER)) / UDP(sport=53, dport=40007))),
    ("ICMP", bytes(Ether() / IP(src=str(TARGET), dst=str(SCANNER)) / ICMP())),
    ("ARP", bytes(Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(pdst=str(SCANNER), psrc=str(TARGET)))),
    ("truncated inside the TCP header", reply("SA")[:14 + 20 + 19]),
    ("truncated inside the IP header", reply("SA")[:14 + 10]),
    ("Ethernet header only", reply("SA")[:14]),
])
def test_everything_else_passes_untouched(reply_filter: native.ReplyFilter,
                                          description: str, frame: bytes) -> None:
    action, delta = run(reply_filter, frame)
    assert action == "XDP_PASS", description
    assert delta == PASSED, description


def test_vlan_tagged_reply_passes(reply_filter: native.ReplyFilter) -> None:
    plain = Ether(reply("SA"))
    tagged = Ether(src=plain.src, dst=plain.dst) / Dot1Q(vlan=7) / plain.payload
    assert run(reply_filter, bytes(tagged))[1] == PASSED


def test_siphash_reference_vector_through_the_program() -> None:
    """The paper's key 00..0f and message 00..0b: SipHash = 0x751e8fbc860ee5fb."""
    key = bytes(range(16))
    probe_saddr, probe_daddr = IPv4Address("0.1.2.3"), IPv4Address("4.5.6.7")
    assert reference_cookie(key, probe_saddr, probe_daddr, 0x0809, 0x0A0B) == 0x860EE5FB
    with native.ReplyFilter(key) as any_destination:
        frame = reply("SA", src=probe_daddr, dst=probe_saddr, sport=0x0A0B, dport=0x0809,
                      ack=0x860EE5FB + 1)
        assert run(any_destination, frame)[1] == MATCHED
        assert run(any_destination, reply("SA", src=probe_daddr, dst=probe_saddr, sport=0x0A0B,
                                          dport=0x0809, ack=0x860EE5FB))[1] == PASSED


def test_cookie_equals_the_c_data_plane() -> None:
    cookie = getattr(native, "cookie", None)
    if cookie is None:
        pytest.skip("pyscan.native.cookie (core area) not built in this tree")
    with native.ReplyFilter(KEY, scanner_ip=SCANNER, ports=SOURCE_PORTS) as loaded:
        for target_port in (22, 443, 8080):
            for source_port in (SOURCE_PORTS.start, SOURCE_PORTS.stop - 1):
                c_cookie = cookie(KEY, SCANNER, TARGET, source_port, target_port)
                assert c_cookie == reference_cookie(KEY, SCANNER, TARGET, source_port,
                                                    target_port)
                frame = reply("SA", sport=target_port, dport=source_port,
                              ack=(c_cookie + 1) & 0xFFFFFFFF)
                assert run(loaded, frame)[1] == MATCHED


def test_counters_add_up_over_many_frames(reply_filter: native.ReplyFilter) -> None:
    good, bad = reply("SA"), reply("SA", key=bytes(16))
    for frame in [good, bad, bad, good, good]:
        reply_filter.test_run(frame)
    assert reply_filter.counters() == {"seen": 5, "matched": 3, "passed": 2, "unqueued": 3,
                                       "arp_replied": 0, "arp_conflict": 0}


def test_bad_inputs_are_refused_with_the_value() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        native.ReplyFilter(b"short")
    with pytest.raises(ValueError, match="port range"):
        native.ReplyFilter(KEY, ports=range(5, 5))
    with pytest.raises(native.AfXdpError, match=r"nonexistent\.bpf\.o"):
        native.ReplyFilter(KEY, object_path="/nonexistent.bpf.o")


def test_without_cap_bpf_the_refusal_names_the_capability() -> None:
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to drop capabilities")
    child = """
import pyscan.native as n
from pyscan.drivers import DRIVERS
print(DRIVERS["af-xdp"].available())
print(n.afxdp_probe())
try:
    n.ReplyFilter(bytes(16))
except n.AfXdpError as error:
    print(error.strerror)
"""
    dropped = "-bpf,-sys_admin,-net_raw"
    out = subprocess.run(
        ["setpriv", f"--inh-caps={dropped}", f"--bounding-set={dropped}", sys.executable, "-c",
         child], capture_output=True, text=True, check=True, timeout=60,
        cwd=Path(native.__file__).resolve().parents[2]).stdout.splitlines()
    assert out[0].startswith("(False, 'needs CAP_NET_RAW, CAP_BPF")
    assert out[1] == "(False, 'AF_XDP sockets need CAP_NET_RAW (run as root)')"
    assert out[2] == ("loading the XDP reply filter was refused (Operation not permitted): "
                      "it needs CAP_BPF and CAP_NET_ADMIN (run as root)")


def test_a_closed_filter_refuses_use_instead_of_crashing() -> None:
    loaded = native.ReplyFilter(KEY, scanner_ip=SCANNER, ports=SOURCE_PORTS)
    assert loaded.prog_id > 0
    loaded.close()
    loaded.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        loaded.test_run(reply())
    with pytest.raises(ValueError, match="closed"):
        loaded.counters()
    with pytest.raises(ValueError, match="closed"):
        _ = loaded.prog_id


def test_replies_to_the_engines_probes_match_in_xdp_and_in_c(
        reply_filter: native.ReplyFilter) -> None:
    """The probe seam end to end: probes the tcp-syn module built (through the probe table)
    are answered; the XDP match (probe_tcp_syn4.h, chosen by probe_id) and the engine's
    classifier (probe_tcp_syn4.c on reply_parse.c's view) both accept every answer, and both
    refuse it once the acknowledgement is off by one."""
    with native.Engine(cookie_key=KEY, seed=3, source_ip=SCANNER, source_mac="02:00:00:00:00:01",
                       gateway_mac="02:00:00:00:00:02", ranges=[(TARGET, TARGET)],
                       ports=[22, 80, 443, 8080], source_ports=SOURCE_PORTS,
                       probe="tcp-syn") as engine:
        ring = native.open_null_tx(capture_frames=4)
        engine.run_tx(0, ring)
        probes = native.null_captured(ring)
        assert len(probes) == 4
        for probe in probes:
            syn = Ether(probe)[TCP]
            good = reply("SA", sport=syn.dport, dport=syn.sport, ack=(syn.seq + 1) & 0xFFFFFFFF)
            bad = reply("SA", sport=syn.dport, dport=syn.sport, ack=syn.seq)
            assert run(reply_filter, good)[1] == MATCHED
            assert run(reply_filter, bad)[1] == PASSED
            assert engine.ingest(good) == "open"
            assert engine.ingest(bad) == "invalid-cookie"


def test_a_probe_id_without_an_xdp_match_is_refused_before_load() -> None:
    # The filter's per-probe switch would pass every frame for an id it lacks: the scan would
    # silently see no reply, so the loader refuses it and names the known ids.
    from pyscan.probes import PROBES

    unknown = max(probe.id for probe in PROBES.values()) + 1
    with pytest.raises(native.AfXdpError, match=rf"probe id {unknown} has no XDP match"):
        native.ReplyFilter(KEY, probe=unknown)
    for probe in PROBES.values():
        with native.ReplyFilter(KEY, probe=probe.id) as loaded:
            assert loaded.counters()["seen"] == 0


# The replies a host makes to each --tcp-options profile: a SYN-ACK carries the options the
# probe offered (and the host supports), so its TCP header is 20 to 60 bytes long.
REPLY_OPTION_SETS = {
    "none": [],
    "mss": [("MSS", 1460)],
    "windows": [("MSS", 1460), ("NOP", None), ("NOP", None), ("SAckOK", b""), ("NOP", None),
                ("WScale", 7)],
    "linux": [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (123456, 0x8BADF00D)),
              ("NOP", None), ("WScale", 7)],
    "bsd": [("MSS", 1460), ("NOP", None), ("WScale", 6), ("SAckOK", b""),
            ("Timestamp", (99, 0x8BADF00D)), ("EOL", None)],
    "40 bytes": [("NOP", None)] * 40,
}


@pytest.mark.parametrize("profile", list(REPLY_OPTION_SETS))
@pytest.mark.parametrize("flags", ["SA", "RA"])
def test_replies_match_whatever_options_they_carry(reply_filter: native.ReplyFilter,
                                                   profile: str, flags: str) -> None:
    packet = Ether(reply(flags))
    packet[TCP].options = REPLY_OPTION_SETS[profile]
    del packet[IP].len, packet[IP].chksum, packet[TCP].chksum, packet[TCP].dataofs
    assert run(reply_filter, bytes(packet))[1] == MATCHED
