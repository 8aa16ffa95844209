"""The lab sink run with BPF_PROG_TEST_RUN: every frame dropped and counted, SYNs apart."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether

from pyscan.bpf import object_path
from pyscan.native import BpfError, BpfObject, bpf_possible_cpus

pytestmark = [
    pytest.mark.bpf,
    pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF programs needs root"),
]

XDP_DROP = 1
FRAMES, BYTES, SYNS, SYN_BYTES = range(4)


def frame(packet: object) -> bytes:
    return bytes(packet)  # type: ignore[call-overload]


def syn(sport: int = 40000, dport: int = 80) -> bytes:
    return frame(Ether() / IP(src="198.18.0.1", dst="198.19.0.7")
                 / TCP(sport=sport, dport=dport, flags="S", seq=12345))


@pytest.fixture
def sink() -> Iterator[BpfObject]:
    with BpfObject(object_path("sink")) as obj:
        obj.load()
        yield obj


def test_every_frame_is_dropped_and_counted_with_its_length(sink: BpfObject) -> None:
    packet = syn()
    retval, _, data_out = sink.test_run(None, packet, repeat=1000)
    assert retval == XDP_DROP
    assert data_out == packet
    counters = sink.percpu_sum("sink_counters")
    assert counters[FRAMES] == 1000
    assert counters[BYTES] == 1000 * len(packet)


def test_only_tcp_syns_without_ack_count_as_syns(sink: BpfObject) -> None:
    frames = {
        "syn": syn(),
        "syn_ack": frame(Ether() / IP(src="198.19.0.7", dst="198.18.0.1")
                         / TCP(sport=80, dport=40000, flags="SA")),
        "rst": frame(Ether() / IP() / TCP(flags="R")),
        "udp": frame(Ether() / IP() / UDP(dport=80)),
        "arp": frame(Ether() / ARP()),
        "ethernet_header_only": frame(Ether(type=0x0800)),
        "syn_with_ip_options": frame(Ether() / IP(options=b"\x01\x01\x01\x00")
                                     / TCP(flags="S")),
        "truncated_tcp": syn()[:14 + 20 + 10],
    }
    for data in frames.values():
        retval, _, _ = sink.test_run(None, data)
        assert retval == XDP_DROP
    counters = sink.percpu_sum("sink_counters")
    assert counters[FRAMES] == len(frames)
    assert counters[BYTES] == sum(len(f) for f in frames.values())
    assert counters[SYNS] == 2
    assert counters[SYN_BYTES] == len(frames["syn"]) + len(frames["syn_with_ip_options"])


def test_rodata_switch_turns_syn_counting_off() -> None:
    with BpfObject(object_path("sink")) as obj:
        obj.set_rodata((0).to_bytes(4, "little"))
        obj.load()
        obj.test_run(None, syn(), repeat=5)
        counters = obj.percpu_sum("sink_counters")
    assert counters[FRAMES] == 5
    assert counters[SYNS] == 0


def test_counters_can_be_reset_through_the_map() -> None:
    with BpfObject(object_path("sink")) as obj:
        obj.load()
        obj.test_run(None, syn(), repeat=3)
        assert obj.percpu_sum("sink_counters")[FRAMES] == 3
        obj.map_update("sink_counters", 0, bytes(32 * bpf_possible_cpus()))
        assert obj.percpu_sum("sink_counters") == (0, 0, 0, 0)


def test_setting_rodata_after_load_is_refused(sink: BpfObject) -> None:
    with pytest.raises(BpfError, match="before load"):
        sink.set_rodata(bytes(4))


def test_wrong_rodata_size_names_the_expected_size() -> None:
    with BpfObject(object_path("sink")) as obj, pytest.raises(BpfError, match="holds 4 bytes"):
        obj.set_rodata(bytes(8))


def test_unknown_program_and_map_are_named_in_the_error(sink: BpfObject) -> None:
    with pytest.raises(BpfError, match="no program named nope"):
        sink.prog_fd("nope")
    with pytest.raises(BpfError, match="no map named nope"):
        sink.map_fd("nope")


def test_missing_object_file_is_a_clear_error(tmp_path: object) -> None:
    with pytest.raises(BpfError, match="cannot open BPF object"):
        BpfObject(f"{tmp_path}/absent.bpf.o")


def test_ipv6_tcp_syns_count_as_syns_and_other_ipv6_frames_do_not(sink: BpfObject) -> None:
    from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6, IPv6ExtHdrHopByHop

    source, target = "2001:2:0:ffff::1", "2001:2:0:1::7"
    frames = {
        "syn6": frame(Ether() / IPv6(src=source, dst=target) / TCP(flags="S")),
        "syn6_mss": frame(Ether() / IPv6(src=source, dst=target)
                          / TCP(flags="S", options=[("MSS", 1460)])),
        "syn_ack6": frame(Ether() / IPv6(src=target, dst=source) / TCP(flags="SA")),
        "echo6": frame(Ether() / IPv6(src=source, dst=target) / ICMPv6EchoRequest()),
        # TCP behind an extension header is not parsed (pyscan's probes never carry one)
        "syn6_behind_hop_by_hop": frame(Ether() / IPv6(src=source, dst=target)
                                        / IPv6ExtHdrHopByHop() / TCP(flags="S")),
        "truncated_syn6": frame(Ether() / IPv6(src=source, dst=target)
                                / TCP(flags="S"))[:14 + 40 + 10],
    }
    for data in frames.values():
        retval, _, _ = sink.test_run(None, data)
        assert retval == XDP_DROP
    counters = sink.percpu_sum("sink_counters")
    assert counters[FRAMES] == len(frames)
    assert counters[SYNS] == 2
    assert counters[SYN_BYTES] == len(frames["syn6"]) + len(frames["syn6_mss"])
