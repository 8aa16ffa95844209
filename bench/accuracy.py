"""Accuracy on pyscan's truth lab: every scanner scans the same /16 x 4 ports, in which a
known random set of (ip, port) pairs is open, at several rates; recall, false positives and
duplicates are counted from each scanner's own output file. Each probe type has its rows
(ACCURACY_PROBES): TCP SYN over the /16 x 4 TCP ports; ICMP echo over the /16, where only
ECHO_HOSTS random addresses answer (the lab's nft drops echo to the others); UDP over the
/16 x UDP_PORTS, where UDP_OPEN random pairs answer (port 53 a DNS version.bind server, 123 an
echoing NTP-like responder) and every other pair answers ICMP port unreachable.

- pyscan: ``python -m pyscan scan ... --netns <lab scan ns> --format ndjson`` (the CLI users
  run), one process per scan;
- masscan: inside the lab scan namespace (``ip netns exec``), its own ``-oL`` file; its
  targets are checked through ``--echo`` before it starts;
- zmap 2.1.1: one run per port (it scans a single port), output filter ``success = 1`` so
  that repeats are written and counted as duplicates rather than silently dropped; ICMP echo
  with ``-M icmp_echoscan``, UDP with ``-M udp --probe-args=hex:<payload>`` carrying the same
  payload pyscan sends to that port (pyscan.probes.udp_payloads);
- masscan: ICMP echo with ``--ping``, UDP with ``-pU:53,U:123`` and its own built-in payloads
  for those ports (templ-payloads.c).

IPv6 rows (``tcp-syn6``, ``icmp-echo6``): the same lab's IPv6 half, SUBNET6 (a /112, as many
addresses as the IPv4 /16, inside 2001:2::/48) with OPEN_PAIRS random open (ip, port) pairs
over the same ports and ECHO_HOSTS random echo hosts, scanned by pyscan's drivers (the CLI
picks tcp-syn6 / icmp-echo6 from the targets' family). zmap 2.1.1 has no IPv6 at all; masscan
1.3.2 has tcp-syn6 rows (``--adapter-ip`` the lab's IPv6 scan address), not icmp-echo6 ones
(MASSCAN_IPV6_NOTE).

Each scanner is given 2 s after its last probe to collect replies (masscan --wait, zmap
--cooldown-time, pyscan --wait). masscan 1.3.2 does not exit by itself in the lab: its
receive thread notices the end of the scan only when a frame arrives. Once its status line
says its wait is over, one UDP datagram to the scanner's address from the target namespace
(bench.contenders.nudge_until_exit) lets it exit cleanly (exit 0) with a complete -oL file
("# end" trailer), which is what is scored.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address, IPv6Address, IPv6Network, ip_address
from pathlib import Path
from typing import Any

from bench.contenders import (
    check_lab_targets,
    masscan_argv,
    masscan_cwd,
    nudge_until_exit,
    start_masscan,
    zmap_module_args,
)
from pyscan.bench_command import BenchError

ROOT = Path(__file__).resolve().parent.parent
SUBNET = "198.19.0.0/16"
PORTS = (22, 80, 443, 8080)
OPEN_PAIRS = 4000
SEED = 20260501
RATES = (25_000.0, 100_000.0, 250_000.0)
WAIT = 2
PROBES = 65536 * len(PORTS)
ECHO_HOSTS = 4000
UDP_PORTS = (53, 123)
UDP_OPEN = 4000
# IPv6: a /112 (65536 addresses like the /16) in RFC 5180's 2001:2::/48, off the lab's link /64
SUBNET6 = "2001:2:0:100::/112"
# Probe types with accuracy rows (the IPv6 ones on the lab's IPv6 half) and who can send them
ACCURACY_PROBES = ("tcp-syn", "icmp-echo", "udp", "tcp-syn6", "icmp-echo6")
IPV4_PROBES = ("tcp-syn", "icmp-echo", "udp")
PROBES_OF = {"tcp-syn": PROBES, "icmp-echo": 65536, "udp": 65536 * len(UDP_PORTS),
             "tcp-syn6": PROBES, "icmp-echo6": 65536}
TARGET_OF = {"tcp-syn": SUBNET, "icmp-echo": SUBNET, "udp": SUBNET, "tcp-syn6": SUBNET6,
             "icmp-echo6": SUBNET6}
ZMAP_IPV6_NOTE = "zmap 2.1.1 (Debian) has no IPv6 support: no zmap rows for tcp-syn6, icmp-echo6"
MASSCAN_IPV6_NOTE = ("masscan 1.3.2 scans IPv6 in the lab (TCP: --adapter-ip 2001:2:0:ffff::1, "
                     "--router-mac as for IPv4): tcp-syn6 rows; no icmp-echo6 rows: its --ping "
                     "to the lab's IPv6 /120, where every address answers echo, found 0 of 256 "
                     "and did not exit within 40 s (tried once by hand)")
# what masscan is run for (its IPv6 ICMP echo finds nothing, see MASSCAN_IPV6_NOTE)
MASSCAN_PROBES = ("tcp-syn", "icmp-echo", "udp", "tcp-syn6")
Pair = tuple[IPv4Address | IPv6Address, int]  # ICMP echo: (address, 0)


def probe_truth(seed: int = SEED) -> tuple[set[IPv4Address], set[Pair]]:
    """The echo hosts and the open UDP pairs of the accuracy lab, drawn from ``seed``."""
    from ipaddress import IPv4Network

    rng = random.Random(seed + 1)
    addresses = list(IPv4Network(SUBNET))
    echo = set(rng.sample(addresses, ECHO_HOSTS))
    udp = {(addresses[i // len(UDP_PORTS)], UDP_PORTS[i % len(UDP_PORTS)])
           for i in rng.sample(range(len(addresses) * len(UDP_PORTS)), UDP_OPEN)}
    return echo, udp


def probe_truth6(seed: int = SEED) -> set[IPv6Address]:
    """The IPv6 echo hosts of the accuracy lab (ECHO_HOSTS of SUBNET6), drawn from ``seed``
    (the open TCP pairs are the lab's own open_count6 draw)."""
    network = IPv6Network(SUBNET6)
    base = int(network.network_address)
    picks = random.Random(f"echo6-{seed}").sample(range(network.num_addresses), ECHO_HOSTS)
    return {IPv6Address(base + index) for index in picks}


def score(found_lines: Iterable[Pair], truth: set[Pair]) -> dict[str, Any]:
    """Recall, false positives and duplicates of a scanner's reported open pairs."""
    counts = Counter(found_lines)
    found = set(counts)
    return {
        "truth": len(truth),
        "found": len(found),
        "recall": len(found & truth) / len(truth) if truth else 1.0,
        "false_positives": len(found - truth),
        "duplicates": sum(n - 1 for n in counts.values()),
    }


def parse_ndjson_open(text: str, protocol: str = "tcp") -> list[Pair]:
    """pyscan's ndjson: the (ip, port) of every ``open`` record of ``protocol`` (ICMP echo:
    ``up`` records, port 0)."""
    wanted = "up" if protocol == "icmp" else "open"
    pairs = []
    for line in text.splitlines():
        if line.strip():
            record = json.loads(line)
            if record.get("status") == wanted and record.get("proto", "tcp") == protocol:
                pairs.append((ip_address(record["ip"]), int(record.get("port") or 0)))
    return pairs


def parse_zmap_addresses(text: str, port: int) -> list[Pair]:
    """zmap csv output with ``-f saddr``: one address per line (a header line may lead)."""
    pairs = []
    for line in text.splitlines():
        value = line.strip()
        if value and value[0].isdigit():
            pairs.append((IPv4Address(value), port))
    return pairs


PYSCAN_PROBE_ARGS = {
    "tcp-syn": ["-p", ",".join(map(str, PORTS)),
                "--tcp-options", "mss"],  # masscan's probe shape: like for like
    "icmp-echo": ["--probe", "icmp-echo"],
    "udp": ["-p", ",".join(f"U:{port}" for port in UDP_PORTS)],
    # the IPv6 twins are picked from the targets' family (pyscan.probes.IPV6_TWIN)
    "tcp-syn6": ["-p", ",".join(map(str, PORTS)), "--tcp-options", "mss"],
    "icmp-echo6": ["--probe", "icmp-echo"],
}
PROTOCOL_OF = {"tcp-syn": "tcp", "icmp-echo": "icmp", "udp": "udp", "tcp-syn6": "tcp",
               "icmp-echo6": "icmp"}


def _pyscan(lab: Any, driver: str, rate: float, workdir: Path,
            probe: str = "tcp-syn") -> tuple[list[Pair], str]:
    suffix = "" if probe == "tcp-syn" else f"-{probe}"
    output = workdir / f"pyscan-{driver}-{int(rate)}{suffix}.ndjson"
    done = subprocess.run(
        [sys.executable, "-m", "pyscan", "scan", TARGET_OF[probe], *PYSCAN_PROBE_ARGS[probe],
         "--rate", str(int(rate)), "--driver", driver, "--netns", lab.scan_netns,
         "--wait", str(WAIT), "--format", "ndjson", "-o", str(output), "--quiet"],
        capture_output=True, text=True, cwd=ROOT, timeout=600)
    if done.returncode != 0:
        return [], (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
    return parse_ndjson_open(output.read_text(), PROTOCOL_OF[probe]), ""


MASSCAN_PORTS = {"tcp-syn": ",".join(map(str, PORTS)), "icmp-echo": "",
                 "udp": ",".join(f"U:{port}" for port in UDP_PORTS),
                 "tcp-syn6": ",".join(map(str, PORTS))}
SCAN_ADDRESS6 = "2001:2:0:ffff::1"  # pyscan.lab's scan side (SCAN_ADDRESS6)


def _masscan(lab: Any, gateway_mac: str, scan_mac: str, rate: float,
             workdir: Path, probe: str = "tcp-syn") -> tuple[list[Pair], str]:
    suffix = "" if probe == "tcp-syn" else f"-{probe}"
    output = workdir / f"masscan-{int(rate)}{suffix}.txt"
    argv = masscan_argv(lab.scan_interface, scan_mac, gateway_mac, [TARGET_OF[probe]],
                        MASSCAN_PORTS[probe], rate, output, WAIT, ping=probe == "icmp-echo",
                        **({"adapter_ip": SCAN_ADDRESS6} if probe == "tcp-syn6" else {}))
    started = time.monotonic()
    with masscan_cwd() as cwd:
        process = start_masscan(["ip", "netns", "exec", lab.scan_netns], argv, cwd)
        deadline = time.monotonic() + 3 * PROBES / rate + 60
        status = cwd / "masscan.stderr"
        # Its status line shows the wait counted down past zero ("waiting -N-secs") once the
        # scan and --wait are over: only then may a frame end it without losing replies.
        while process.poll() is None and time.monotonic() < deadline:
            if _MASSCAN_WAIT_OVER.search(status.read_text(errors="replace")[-400:]):
                break
            time.sleep(0.25)
        nudges = 0
        if process.poll() is None and time.monotonic() < deadline:
            nudges = nudge_until_exit(lab.target_netns, process)
        if process.poll() is None:
            process.kill()
            process.wait()
            return [], f"masscan had not exited after {time.monotonic() - started:.0f} s " \
                       f"({nudges} datagrams sent to end it)"
        status_text = status.read_text(errors="replace")
        if process.returncode != 0:
            return [], (f"masscan exited {process.returncode}: "
                        f"{(status_text.strip().splitlines() or [''])[-1][:200]}")
        if (cwd / "paused.conf").exists():
            return [], "masscan wrote paused.conf: it did not finish its scan"
    text = output.read_text()
    if not text.rstrip().endswith("# end"):
        return [], f"masscan's -oL file {output} has no '# end' trailer: incomplete"
    found = parse_masscan_list(text, PROTOCOL_OF[probe])
    # masscan's found= counts TCP results only (it stays 0 in --ping and UDP scans)
    counted = _MASSCAN_FOUND.findall(status_text) if probe in ("tcp-syn", "tcp-syn6") else []
    if counted and int(counted[-1]) != len(found):
        return found, (f"masscan's status says found={counted[-1]} but its -oL file holds "
                       f"{len(found)} results")
    return found, ""


_MASSCAN_FOUND = re.compile(r"found=(\d+)")
_MASSCAN_WAIT_OVER = re.compile(r"100\.00% done, waiting -\d+-secs")


def parse_masscan_list(text: str, protocol: str = "tcp") -> list[Pair]:
    """masscan's -oL file: ``open tcp 80 198.19.0.5 1717000000`` per open port it found,
    between a ``#masscan`` header and a ``# end`` trailer (``open udp 53 ...``; --ping:
    ``open icmp 0 ...``)."""
    pairs = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[0] == "open" and fields[1] == protocol:
            pairs.append((ip_address(fields[3]), int(fields[2])))
    return pairs


def _zmap(lab: Any, gateway_mac: str, rate: float, workdir: Path,
          probe: str = "tcp-syn") -> tuple[list[Pair], str]:
    empty = workdir / "zmap-empty.conf"
    empty.write_text("")
    check_lab_targets([SUBNET])
    pairs: list[Pair] = []
    ports = {"tcp-syn": PORTS, "icmp-echo": (0,), "udp": UDP_PORTS}[probe]
    for port in ports:
        output = workdir / f"zmap-{int(rate)}-{probe}-{port}.csv"
        done = subprocess.run(
            ["ip", "netns", "exec", lab.scan_netns, "zmap", "-C", str(empty), "-b", str(empty),
             *zmap_module_args(probe, port), "-r", str(int(rate)), "-c", str(WAIT),
             "-i", lab.scan_interface, "-S", "198.18.0.1", "-G", gateway_mac, "-f", "saddr",
             "--max-sendto-failures", "1000000000",
             "--output-filter", "success = 1", "-o", str(output), "-q", SUBNET],
            capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            return [], (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        pairs.extend(parse_zmap_addresses(output.read_text(), port))
    return pairs, ""


Scanner = Callable[[Any, float, str], tuple[list[Pair], str]]


def accuracy_section(workdir: Path, drivers: dict[str, str], log: Callable[[str], None],
                     probes: tuple[str, ...] = ACCURACY_PROBES,
                     rates: tuple[float, ...] = RATES) -> tuple[list[dict[str, Any]], list[str]]:
    import shutil

    from pyscan import netlink
    from pyscan.lab import Lab, LabError

    notes: list[str] = []
    # (name, probe types it has, how to run it)
    scanners: list[tuple[str, tuple[str, ...], Scanner]] = []
    for driver in ("af-packet", "af-xdp", "xdp-live"):
        if not drivers.get(driver):
            scanners.append((f"pyscan {driver}", ACCURACY_PROBES,
                             lambda lab, rate, probe, d=driver: _pyscan(lab, d, rate, workdir,
                                                                        probe)))
    rows: list[dict[str, Any]] = []
    echo_hosts, udp_open = probe_truth()
    lab = Lab(name=f"bacc{os.getpid() % 100000}", subnet=SUBNET, ports=PORTS,
              open_count=OPEN_PAIRS, seed=SEED, udp_ports=UDP_PORTS, udp_open=udp_open,
              echo_hosts=echo_hosts, ipv6=True, subnet6=SUBNET6, open_count6=OPEN_PAIRS,
              echo_hosts6=probe_truth6())
    try:
        with lab:
            truths: dict[str, set[Pair]] = {
                "tcp-syn": lab.truth(), "icmp-echo": {(ip, 0) for ip in lab.echo_truth()},
                "udp": lab.udp_truth(), "tcp-syn6": set(lab.truth6()),
                "icmp-echo6": {(ip, 0) for ip in lab.echo_truth6()}}
            gateway_mac = netlink.link_mac(lab.target_interface, lab.target_netns)
            scan_mac = netlink.link_mac(lab.scan_interface, lab.scan_netns)
            if shutil.which("masscan"):
                scanners.append(("masscan", MASSCAN_PROBES, lambda lab, rate, probe: _masscan(
                    lab, gateway_mac, scan_mac, rate, workdir, probe)))
            else:
                notes.append("masscan accuracy not measured: masscan is not installed")
            if shutil.which("zmap"):
                scanners.append(("zmap", IPV4_PROBES, lambda lab, rate, probe: _zmap(
                    lab, gateway_mac, rate, workdir, probe)))
            else:
                notes.append("zmap accuracy not measured: zmap is not installed")
            log(f"truth lab up: {len(truths['tcp-syn'])} open TCP pairs in {SUBNET} x {PORTS}, "
                f"{len(echo_hosts)} echo hosts, {len(udp_open)} open UDP pairs x {UDP_PORTS}")
            for probe in probes:
                truth = truths[probe]
                for rate in rates:
                    for name, has, action in scanners:
                        if probe not in has:
                            continue
                        rows.append(_accuracy_row(name, probe, rate, truth, lab, action))
                        row = rows[-1]
                        log(f"accuracy {name} {probe} at {rate:g} pps: "
                            + (f"failed: {row['error']}" if row.get("error") else
                               f"recall {row['recall']:.3%}, FP {row['false_positives']}, "
                               f"dup {row['duplicates']}"))
    except LabError as error:
        notes.append(f"accuracy not measured: the truth lab could not be built: {error}")
    if set(probes) & {"tcp-syn6", "icmp-echo6"}:
        notes += [ZMAP_IPV6_NOTE, MASSCAN_IPV6_NOTE]
    notes.append(f"Truth lab: pyscan.lab with {OPEN_PAIRS} random open (ip, port) pairs "
                 f"(seed {SEED}) in {SUBNET} x ports {','.join(map(str, PORTS))}; everything "
                 "else answers RST; target kernel answers each SYN once (tcp_syncookies=2). "
                 f"ICMP echo: {ECHO_HOSTS} random addresses answer, nft drops echo to the "
                 f"others; UDP: {UDP_OPEN} random open pairs in {SUBNET} x "
                 f"{','.join(map(str, UDP_PORTS))} (53: DNS version.bind server, 123: echoing "
                 "NTP-like responder), the others answer ICMP port unreachable. "
                 f"IPv6: {OPEN_PAIRS} random open pairs in {SUBNET6} x the same ports (the "
                 f"others RST), {ECHO_HOSTS} random echo hosts (nft drops echo to the others). "
                 f"Every scanner waits {WAIT} s for late replies.")
    return rows, notes


def udp_receive_buffer_errors(netns: str) -> int | None:
    """The namespace's UDP RcvbufErrors (/proc/net/snmp): datagrams the lab's UDP responders
    never read because their socket buffer was full, so never answered."""
    done = subprocess.run(["ip", "netns", "exec", netns, "cat", "/proc/net/snmp"],
                          capture_output=True, text=True, timeout=10)
    return parse_udp_rcvbuf_errors(done.stdout) if done.returncode == 0 else None


def parse_udp_rcvbuf_errors(snmp: str) -> int | None:
    rows = [line.split()[1:] for line in snmp.splitlines() if line.startswith("Udp:")]
    if len(rows) < 2 or "RcvbufErrors" not in rows[0]:
        return None
    return int(rows[1][rows[0].index("RcvbufErrors")])


def _accuracy_row(name: str, probe: str, rate: float, truth: set[Pair], lab: Any,
                  action: Scanner) -> dict[str, Any]:
    started = time.monotonic()
    dropped_before = udp_receive_buffer_errors(lab.target_netns) if probe == "udp" else None
    try:
        found, error = action(lab, rate, probe)
    except (BenchError, OSError, subprocess.SubprocessError) as failure:
        found, error = [], str(failure)
    row: dict[str, Any] = {"scanner": name, "probe": probe, "rate": rate,
                           "probes": PROBES_OF[probe], "wall_s": time.monotonic() - started}
    if dropped_before is not None:
        dropped_after = udp_receive_buffer_errors(lab.target_netns)
        if dropped_after is not None:
            # probes to open pairs the responders dropped: replies no scanner could see
            row["lab_dropped"] = dropped_after - dropped_before
    if error:
        row["error"] = error
    else:
        row.update(score(found, truth))
    return row
