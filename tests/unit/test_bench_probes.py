"""The bench's ICMP echo and UDP rows: the probe table's arithmetic, the accuracy rows per
probe type, the zmap/masscan spellings, and the frames the bare loops build."""

from __future__ import annotations

import json
import struct
import subprocess
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path

import pytest

from bench.accuracy import (
    ECHO_HOSTS,
    SUBNET,
    UDP_OPEN,
    UDP_PORTS,
    parse_masscan_list,
    parse_ndjson_open,
    parse_udp_rcvbuf_errors,
    probe_truth,
)
from bench.contenders import zmap_module_args
from bench.report import accuracy_table, probe_table, target_checks
from pyscan.bench_command import (
    BENCH_PROBES,
    ETHERNET_OVERHEAD,
    BenchInputError,
    BenchOptions,
    bench_probe,
    wire_bytes,
)
from pyscan.probes.udp_payloads import BUILTIN

HERE = Path(__file__).resolve().parent.parent.parent / "bench"


def test_bench_probes_have_their_frame_lengths() -> None:
    assert bench_probe("tcp-syn").frame_len == 58
    assert bench_probe("icmp-echo").frame_len == 42
    # IPv6: 20 bytes more than the IPv4 frame with the same TCP option profile
    assert bench_probe("tcp-syn6").frame_len == 78
    assert bench_probe("icmp-echo6").frame_len == 62
    udp = bench_probe("udp")
    assert udp.frame_len == 42 + len(BUILTIN["dns"].data)
    # every UDP port carries the same DNS payload: one record per port, each that long
    assert len(udp.probe_args) == len(udp.ports) * (8 + len(BUILTIN["dns"].data))
    with pytest.raises(BenchInputError, match="accepted tcp-syn, icmp-echo, udp, tcp-syn6"):
        bench_probe("udp6")
    assert set(BENCH_PROBES) == {"tcp-syn", "icmp-echo", "udp", "tcp-syn6", "icmp-echo6"}


def test_ipv6_bench_probes_target_the_rfc5180_prefix_only() -> None:
    network = IPv6Network("2001:2::/48")
    for name in ("tcp-syn6", "icmp-echo6"):
        probe = bench_probe(name)
        first, last = (IPv6Address(a) for a in probe.targets)
        assert probe.family == 6 and first in network and last in network
        assert int(last) - int(first) + 1 == 65536  # as many addresses as the IPv4 /16
    assert bench_probe("tcp-syn").targets == ("198.19.0.0", "198.19.255.255")
    assert bench_probe("icmp-echo6").retries == bench_probe("icmp-echo").retries


def test_bench_options_size_follows_the_probe() -> None:
    udp_size = wire_bytes(bench_probe("udp").frame_len) - ETHERNET_OVERHEAD
    BenchOptions(driver="null", probe="udp", size=udp_size).check()
    BenchOptions(driver="null", probe="icmp-echo", size=64).check()  # padded to 64 on a wire
    with pytest.raises(BenchInputError, match=f"its udp probe.*accepted: {udp_size}"):
        BenchOptions(driver="null", probe="udp", size=64).check()


def _run(probe: str, contender: str, threads: int, pps: float, frame: int) -> dict[str, object]:
    key = "self_pps" if contender == "null" else "sink_pps"
    return {"contender": contender, "threads": threads, "probe": probe, key: pps,
            "frame_len": frame}


def test_probe_table_divides_by_the_same_frame_bare_loop_and_the_drivers_syn_rate() -> None:
    runs = [_run("icmp-echo", "bare_afxdp", 1, 1_000_000, 42),
            _run("icmp-echo", "af-xdp", 1, 900_000, 42),
            _run("icmp-echo", "af-xdp", 1, 950_000, 42),
            _run("icmp-echo", "af-xdp", 1, 920_000, 42),
            _run("udp", "bare_tpacket", 1, 600_000, 72),
            _run("udp", "af-packet", 1, 300_000, 72),
            _run("udp", "null", 1, 20e6, 72),
            _run("icmp-echo", "zmap", 1, 460_000, 62),
            {"contender": "af-packet", "threads": 1, "probe": "udp", "error": "boom"}]
    tcp = [{"contender": "af-xdp", "threads": 1, "sink_pps": 1_840_000.0}]
    generation = [{"contender": "null", "threads": 1, "self_pps": 40e6}]
    rows = {line.split(" | ")[0] + line.split(" | ")[1]: line
            for line in probe_table(runs, tcp, generation)[2:]}
    assert rows["| icmp-echoaf-xdp"].endswith("| 0.92x | 2.00x | 0.50x |")  # median 920k
    assert rows["| udpaf-packet"].endswith("| 0.50x | - | - |")
    assert rows["| udpnull"].endswith("| - | - | 0.50x |")
    assert rows["| icmp-echozmap"].endswith("| - | - | - |")
    assert "| 42 |" in rows["| icmp-echobare_afxdp"]
    checks = "\n".join(target_checks({"probes": runs}))
    assert "af-xdp icmp-echo >= 90 % of bare_afxdp with the same frame, 1 thread(s) | 92.0% " \
           "| met" in checks
    assert "af-packet udp >= 90 % of bare_tpacket with the same frame, 1 thread(s) | 50.0% " \
           "| NOT met" in checks


def test_accuracy_table_has_a_probe_column_and_old_rows_are_tcp() -> None:
    rows = [{"scanner": "zmap", "rate": 25e3, "probes": 10, "truth": 4, "found": 4,
             "recall": 1.0, "false_positives": 0, "duplicates": 0, "wall_s": 1.0},
            {"scanner": "zmap", "probe": "udp", "rate": 25e3, "error": "no zmap"}]
    lines = accuracy_table(rows)
    assert lines[2].startswith("| tcp-syn | zmap | 25.0 kpps | 10 |")
    assert lines[2].endswith("| 0 | 0 | - | 1.0 |")
    assert lines[3].startswith("| udp | zmap | 25.0 kpps | - |") and "no zmap" in lines[3]
    udp = dict(rows[0], probe="udp", lab_dropped=116)
    assert accuracy_table([udp])[2].endswith("| 0 | 0 | 116 | 1.0 |")
    checks = "\n".join(target_checks({"accuracy": [
        {"scanner": "pyscan af-xdp", "probe": "icmp-echo", "rate": 1e5, "recall": 0.5,
         "truth": 4000, "false_positives": 0, "duplicates": 0}]}))
    assert "pyscan af-xdp icmp-echo recall >= 99.9 %" in checks and "NOT met" in checks
    lab_limited = {"scanner": "pyscan xdp-live", "probe": "udp", "rate": 2.5e5, "truth": 4000,
                   "recall": 3753 / 4000, "false_positives": 0, "duplicates": 0,
                   "lab_dropped": 247}
    checks = target_checks({"accuracy": [lab_limited, dict(lab_limited, lab_dropped=100)]})
    assert checks[-2].endswith("lab drops 247 | lab-limited: its responders dropped 247, "
                               "every miss |")
    assert checks[-1].endswith("lab drops 100 | NOT met |")


def test_udp_rcvbuf_errors_are_read_from_proc_net_snmp() -> None:
    snmp = ("Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\n"
            "Udp: 3884 0 116 3884 116 0\nUdpLite: InDatagrams\nUdpLite: 0\n")
    assert parse_udp_rcvbuf_errors(snmp) == 116
    assert parse_udp_rcvbuf_errors("Tcp: a\nTcp: 1\n") is None


def test_probe_truth_is_drawn_from_the_seed_inside_the_lab() -> None:
    echo, udp = probe_truth()
    assert (echo, udp) == probe_truth()
    assert probe_truth(1) != (echo, udp)
    network = IPv4Network(SUBNET)
    assert len(echo) == ECHO_HOSTS and all(ip in network for ip in echo)
    assert len(udp) == UDP_OPEN and all(ip in network and port in UDP_PORTS for ip, port in udp)
    assert {port for _, port in udp} == set(UDP_PORTS)


def test_zmap_module_args_send_pyscans_payload_for_the_port() -> None:
    assert zmap_module_args("icmp-echo", 0) == ["-M", "icmp_echoscan"]
    assert zmap_module_args("tcp-syn", 80) == ["-p", "80"]
    assert zmap_module_args("udp", 53) == ["-M", "udp", "-p", "53",
                                           f"--probe-args=hex:{BUILTIN['dns'].data.hex()}"]
    assert zmap_module_args("udp", 9999) == ["-M", "udp", "-p", "9999"]  # no payload known
    with pytest.raises(ValueError, match="no module"):
        zmap_module_args("sctp", 1)


def test_parsers_pick_the_probes_protocol() -> None:
    ndjson = "\n".join(json.dumps(r) for r in (
        {"ip": "198.19.0.1", "port": 0, "proto": "icmp", "status": "up"},
        {"ip": "198.19.0.2", "port": 53, "proto": "udp", "status": "open"},
        {"ip": "198.19.0.3", "port": 53, "proto": "udp", "status": "closed"},
        {"ip": "198.19.0.4", "port": 80, "proto": "tcp", "status": "open"}))
    assert parse_ndjson_open(ndjson, "icmp") == [(IPv4Address("198.19.0.1"), 0)]
    assert parse_ndjson_open(ndjson, "udp") == [(IPv4Address("198.19.0.2"), 53)]
    assert parse_ndjson_open(ndjson) == [(IPv4Address("198.19.0.4"), 80)]
    masscan = ("#masscan\nopen icmp 0 198.19.0.1 1\nopen udp 53 198.19.0.2 1\n"
               "open tcp 80 198.19.0.3 1\n# end\n")
    assert parse_masscan_list(masscan, "icmp") == [(IPv4Address("198.19.0.1"), 0)]
    assert parse_masscan_list(masscan, "udp") == [(IPv4Address("198.19.0.2"), 53)]
    assert parse_masscan_list(masscan) == [(IPv4Address("198.19.0.3"), 80)]


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _bare_frame(tmp_path: Path, protocol: str, length: int) -> bytes:
    source = tmp_path / "frame.c"
    source.write_text(
        '#include <stdio.h>\n#include "bare_frame.h"\n'
        "int main(int argc, char **argv) { uint8_t f[256]; unsigned n = (unsigned)atoi(argv[2]);"
        " (void)argc; bare_frame_fill_proto(f, n, 0, bare_frame_proto(argv[1]));"
        ' for (unsigned i = 0; i < n; i++) printf("%02x", f[i]); return 0; }\n')
    binary = tmp_path / "frame"
    subprocess.run(["gcc", "-Wall", "-Wextra", "-Werror", "-include", "stdlib.h",
                    f"-I{HERE}", "-o", str(binary), str(source)], check=True)
    return bytes.fromhex(subprocess.run([str(binary), protocol, str(length)], check=True,
                                        capture_output=True, text=True).stdout)


@pytest.mark.parametrize(("protocol", "length"), [("tcp", 60), ("icmp", 42), ("udp", 72)])
def test_bare_frame_builds_a_valid_frame_of_the_probes_protocol(tmp_path: Path, protocol: str,
                                                                 length: int) -> None:
    frame = _bare_frame(tmp_path, protocol, length)
    assert len(frame) == length
    ip, l4 = frame[14:34], frame[34:]
    assert _checksum(ip) == 0xFFFF
    assert ip[9] == {"tcp": 6, "icmp": 1, "udp": 17}[protocol]
    assert IPv4Address(ip[16:20]) in IPv4Network("198.18.0.0/15")
    if protocol == "icmp":
        assert l4[0] == 8 and _checksum(l4) == 0xFFFF
    else:
        pseudo = ip[12:20] + bytes([0, ip[9]]) + struct.pack("!H", len(l4))
        assert _checksum(pseudo + l4) == 0xFFFF
    if protocol == "udp":
        assert struct.unpack("!HH", l4[2:6]) == (53, len(l4))


@pytest.mark.parametrize(("protocol", "probe"), [("tcp6", "tcp-syn6"), ("icmp6", "icmp-echo6")])
def test_bare_ipv6_frame_matches_the_probe_and_has_valid_checksums(tmp_path: Path,
                                                                   protocol: str,
                                                                   probe: str) -> None:
    """scapy recomputes the checksums from scratch: the bare loop's must equal them."""
    from scapy.layers.inet import TCP
    from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
    from scapy.layers.l2 import Ether

    length = bench_probe(probe).frame_len
    frame = _bare_frame(tmp_path, protocol, length)
    assert len(frame) == length
    packet = Ether(frame)
    assert packet[Ether].type == 0x86DD
    ip = packet[IPv6]
    assert IPv6Address(ip.src) in IPv6Network("2001:2::/48")
    assert IPv6Address(ip.dst) in IPv6Network("2001:2::/48")
    assert ip.plen == length - 14 - 40
    field = "chksum" if protocol == "tcp6" else "cksum"
    layer = packet[TCP] if protocol == "tcp6" else packet[ICMPv6EchoRequest]
    sent = getattr(layer, field)
    delattr(layer, field)
    assert getattr(Ether(bytes(packet))[type(layer)], field) == sent
    if protocol == "tcp6":
        # the IPv4 rows' "mss" profile: a SYN with one MSS option, no payload
        assert layer.flags == "S" and layer.dataofs == 6
        assert layer.options == [("MSS", 1460)] and bytes(layer.payload) == b""
    # a corrupted byte must break the checksum, so the comparison above can fail
    broken = Ether(frame[:-1] + bytes([frame[-1] ^ 0xFF]))
    layer = broken[TCP] if protocol == "tcp6" else broken[ICMPv6EchoRequest]
    sent = getattr(layer, field)
    delattr(layer, field)
    assert getattr(Ether(bytes(broken))[type(layer)], field) != sent


def test_ipv6_accuracy_rows_use_the_labs_ipv6_half_inside_2001_2() -> None:
    from bench.accuracy import (
        ACCURACY_PROBES,
        IPV4_PROBES,
        PROTOCOL_OF,
        SUBNET6,
        TARGET_OF,
        probe_truth6,
    )

    network = IPv6Network(SUBNET6)
    assert network.subnet_of(IPv6Network("2001:2::/48")) and network.num_addresses == 65536
    echo = probe_truth6()
    assert len(echo) == ECHO_HOSTS and all(ip in network for ip in echo)
    assert echo == probe_truth6() and echo != probe_truth6(seed=1)  # drawn from the seed
    assert {"tcp-syn6", "icmp-echo6"} <= set(ACCURACY_PROBES)
    assert not {"tcp-syn6", "icmp-echo6"} & set(IPV4_PROBES)  # zmap/masscan: IPv4 rows only
    assert TARGET_OF["tcp-syn6"] == TARGET_OF["icmp-echo6"] == SUBNET6
    assert (PROTOCOL_OF["tcp-syn6"], PROTOCOL_OF["icmp-echo6"]) == ("tcp", "icmp")


def test_ndjson_parser_reads_ipv6_records() -> None:
    text = "\n".join(json.dumps(r) for r in (
        {"ip": "2001:2:0:100::7", "port": 80, "proto": "tcp", "status": "open"},
        {"ip": "2001:2:0:100::8", "port": 80, "proto": "tcp", "status": "closed"},
        {"ip": "2001:2:0:100::9", "port": 0, "proto": "icmp", "status": "up"}))
    assert parse_ndjson_open(text) == [(IPv6Address("2001:2:0:100::7"), 80)]
    assert parse_ndjson_open(text, "icmp") == [(IPv6Address("2001:2:0:100::9"), 0)]


def test_probe_rows_of_other_probe_types_are_kept_from_the_last_results(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.run

    previous = {"environment": {"run_id": "old"}, "section_runs": {"probes": "old"},
                "probes": [{"probe": "icmp-echo", "contender": "af-xdp"},
                           {"probe": "tcp-syn6", "contender": "af-xdp"}]}
    (tmp_path / "results.json").write_text(json.dumps(previous))
    monkeypatch.setattr(bench.run, "RESULTS", tmp_path)
    runs = bench.run.keep_other_probe_rows(
        [{"probe": "tcp-syn6", "contender": "af-packet"}], ("tcp-syn6",), "new")
    assert runs == [{"probe": "icmp-echo", "contender": "af-xdp", "run": "old"},
                    {"probe": "tcp-syn6", "contender": "af-packet", "run": "new"}]


def test_probe_plan_has_no_zmap_rows_for_ipv6() -> None:
    from bench.run import NO_ZMAP_PROBES, PROBE_ROWS, probe_plan

    assert {"tcp-syn6", "icmp-echo6"} <= set(PROBE_ROWS) and set(NO_ZMAP_PROBES) <= \
        set(PROBE_ROWS)
    binaries = {"bare_tpacket": Path("t"), "bare_afxdp": Path("x")}
    labels = [label for label, _ in probe_plan(None, Path("."), binaries,  # type: ignore[arg-type]
                                               {}, 1.0, ("tcp-syn6", "udp"))]
    assert "zmap udp 1T" in labels and not any(x.startswith("zmap tcp-syn6") for x in labels)
    assert "bare_afxdp tcp-syn6 2T" in labels and "xdp-live tcp-syn6 1T" in labels


def test_masscan_ipv6_targets_are_checked_against_2001_2_and_its_list_parsed() -> None:
    from bench.accuracy import MASSCAN_PROBES, SCAN_ADDRESS6, SUBNET6
    from bench.contenders import check_lab_targets, masscan_argv
    from pyscan.bench_command import BenchError
    from pyscan.lab import SCAN_ADDRESS6 as LAB_SCAN_ADDRESS6

    check_lab_targets([SUBNET6, "2001:2::1-2001:2::ff", "198.19.0.0/16"])
    for outside in ("2001:3::/64", "2001:2:1::/64", "2001:db8::1-2001:db8::2"):
        with pytest.raises(BenchError, match="outside the lab range 2001:2::/48"):
            check_lab_targets([outside])
    assert str(LAB_SCAN_ADDRESS6.ip) == SCAN_ADDRESS6
    assert "tcp-syn6" in MASSCAN_PROBES and "icmp-echo6" not in MASSCAN_PROBES
    argv = masscan_argv("s", "02:00:00:00:00:01", "02:00:00:00:00:02", [SUBNET6], "80", 1000,
                        None, 2, adapter_ip=SCAN_ADDRESS6)
    assert argv[argv.index("--adapter-ip") + 1] == SCAN_ADDRESS6
    text = "#masscan\nopen tcp 22 2001:2:0:100::3 1796010738\nopen tcp 80 198.19.0.1 1\n# end\n"
    assert parse_masscan_list(text) == [(IPv6Address("2001:2:0:100::3"), 22),
                                        (IPv4Address("198.19.0.1"), 80)]
