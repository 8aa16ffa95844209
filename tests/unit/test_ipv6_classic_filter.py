"""af-packet's IPv6 socket filter and the C parser/classifiers on the IPv6 frame corpus
(tests/corpus/replies/frames6.py), without root: libpcap's bpf_filter() runs the classic
program. Every difference from C is one the corpus row names."""

from __future__ import annotations

import ctypes
import ctypes.util

import pytest

from pyscan.native import Engine, afpacket_reply_filter6
from tests.corpus.replies import frames6


def c_outcome(frame: bytes) -> str:
    with Engine(cookie_key=frames6.KEY, seed=1, source_ip=str(frames6.SCANNER),
                source_mac=frames6.SCANNER_MAC, gateway_mac=frames6.GATEWAY_MAC,
                ranges=[frames6.TARGET_RANGE], ports=frames6.ENGINE_PORTS,
                port_probes=frames6.ENGINE_PROBES, source_ports=frames6.SOURCE_PORTS,
                probe_args=frames6.engine_probe_args(), family=6) as engine:
        return engine.ingest(frame)


class Classic:
    def __init__(self, protocols: tuple[str, ...] = ("tcp6", "icmp6", "udp6")) -> None:
        name = ctypes.util.find_library("pcap")
        if name is None:
            pytest.skip("libpcap is not installed (Debian: apt-get install libpcap0.8)")
        self._pcap = ctypes.CDLL(name)
        self._pcap.bpf_filter.restype = ctypes.c_uint
        self._pcap.bpf_filter.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint,
                                          ctypes.c_uint]
        code = afpacket_reply_filter6(frames6.SOURCE_PORTS, protocols)
        self._code = ctypes.create_string_buffer(code, len(code))

    def accepts(self, frame: bytes) -> bool:
        return self._pcap.bpf_filter(self._code, frame, len(frame), len(frame)) != 0


@pytest.mark.parametrize("name", sorted(frames6.rows()))
def test_c_and_classic_filter_on_each_ipv6_frame(name: str) -> None:
    row = frames6.rows()[name]
    assert c_outcome(row.frame) == row.c
    assert Classic().accepts(row.frame) == row.cbpf
    reported = row.c in ("open", "closed")
    if row.cbpf != reported:
        assert "cbpf" in row.exception, f"{name}: undocumented difference"


def test_a_disabled_protocol_is_not_copied() -> None:
    rows = frames6.rows()
    tcp_only, icmp_only = Classic(("tcp6",)), Classic(("icmp6",))
    assert tcp_only.accepts(rows["syn_ack"].frame)
    assert tcp_only.accepts(rows["syn_unreachable"].frame)  # unreachables quote SYNs too
    assert not tcp_only.accepts(rows["echo_reply"].frame)
    assert icmp_only.accepts(rows["echo_reply"].frame)
    assert not icmp_only.accepts(rows["syn_ack"].frame)
    assert not tcp_only.accepts(rows["udp_reply"].frame)
    assert not icmp_only.accepts(rows["udp_reply"].frame)
    udp_only = Classic(("udp6",))
    assert udp_only.accepts(rows["udp_reply"].frame)
    assert udp_only.accepts(rows["udp_port_unreachable"].frame)
    assert not udp_only.accepts(rows["udp_reply_port_outside_range"].frame)
    assert not udp_only.accepts(rows["echo_reply"].frame)
    assert not udp_only.accepts(rows["syn_ack"].frame)


def test_ipv6_protocol_names_are_checked() -> None:
    with pytest.raises(ValueError, match="'sctp6' is unknown"):
        afpacket_reply_filter6(frames6.SOURCE_PORTS, ("sctp6",))
