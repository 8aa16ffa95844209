"""masscan's and zmap's command lines, run as `pyscan masscan ARGS...` / `pyscan zmap ARGS...`
in a lab, each checked against the lab's truth (the exact open set; everything else answers
RST). The same argv masscan or zmap takes, plus pyscan's --netns to run inside the lab."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from xml.etree import ElementTree

import pytest

from pyscan import netlink
from pyscan.lab import SCAN_ADDRESS, Lab

SUBNET = "198.19.0.0/28"
PORTS = (22, 80, 443)
Pairs = set[tuple[IPv4Address, int]]


@pytest.fixture
def lab(lab_factory: Callable[..., Lab]) -> Lab:
    return lab_factory(subnet=SUBNET, ports=PORTS, open_count=12, seed=3)


def every_pair() -> Pairs:
    return {(address, port) for address in IPv4Network(SUBNET) for port in PORTS}


def pyscan(*args: str) -> tuple[int, str, str]:
    done = subprocess.run([sys.executable, "-m", "pyscan", *args], capture_output=True,
                          text=True, timeout=120)
    return done.returncode, done.stdout, done.stderr


def masscan(lab: Lab, *args: str) -> tuple[int, str, str]:
    return pyscan("masscan", *args, "--netns", lab.scan_netns, "--wait", "1", "--rate", "5000")


def zmap(lab: Lab, *args: str) -> tuple[int, str, str]:
    rate = [] if "-B" in args else ["-r", "5000"]
    return pyscan("zmap", *args, "--netns", lab.scan_netns, "-c", "1", *rate)


def pairs_from(letter: str, text: str, status: str = "open") -> Pairs:
    found: Pairs = set()
    if letter == "L":
        for line in text.splitlines():
            if not line.startswith("#"):
                state, _, port, ip, _ = line.split()
                if state == status:
                    found.add((IPv4Address(ip), int(port)))
    elif letter == "J":
        for item in json.loads(text):
            for port in item["ports"]:
                if port["status"] == status:
                    found.add((IPv4Address(item["ip"]), port["port"]))
    elif letter == "D":
        for line in text.splitlines():
            record = json.loads(line)
            if record["data"]["status"] == status:
                found.add((IPv4Address(record["ip"]), record["port"]))
    elif letter == "G":
        for match in re.finditer(r"Host: (\S+) \(\)\tPorts: (\d+)/(\w+)/", text):
            if match.group(3) == status:
                found.add((IPv4Address(match.group(1)), int(match.group(2))))
    elif letter == "X":
        for host in ElementTree.fromstring(text).iter("host"):
            address, port, state = host.find("address"), host.find("ports/port"), \
                host.find("ports/port/state")
            assert address is not None and port is not None and state is not None
            if state.get("state") == status:
                found.add((IPv4Address(address.get("addr")), int(port.get("portid", "0"))))
    return found


@pytest.mark.parametrize("letter", ["L", "J", "D", "G", "X"])
def test_masscan_output_files_hold_the_truth(lab: Lab, tmp_path: Path, letter: str) -> None:
    path = tmp_path / f"out.o{letter}"
    code, _, _ = masscan(lab, SUBNET, "-p22,80,443", f"-o{letter}", str(path))
    assert code == 0
    assert pairs_from(letter, path.read_text()) == lab.truth()


def test_masscan_show_closed_reports_every_other_pair_closed(lab: Lab, tmp_path: Path) -> None:
    path = tmp_path / "out.ndjson"
    masscan(lab, SUBNET, "-p", "22,80,443", "--show", "closed", "-oD", str(path))
    text = path.read_text()
    assert pairs_from("D", text) == lab.truth()
    assert pairs_from("D", text, "closed") == every_pair() - lab.truth()
    assert {json.loads(line)["data"]["reason"] for line in text.splitlines()} == \
        {"syn-ack", "rst-ack"}


def test_masscan_console_output_and_nmap_habits(lab: Lab) -> None:
    code, out, _ = masscan(lab, "-sS", "-Pn", "-n", "-T4", SUBNET, "-p22,80,443", "--open")
    assert code == 0
    found = {(IPv4Address(m.group(2)), int(m.group(1)))
             for m in re.finditer(r"Discovered open port (\d+)/tcp on (\S+)", out)}
    assert found == lab.truth()
    assert all(len(line) == 79 for line in out.splitlines())


def test_masscan_stdout_dash_and_append(lab: Lab, tmp_path: Path) -> None:
    _, out, _ = masscan(lab, SUBNET, "-p22,80,443", "-oL", "-")
    assert pairs_from("L", out) == lab.truth()
    path = tmp_path / "both.txt"
    masscan(lab, SUBNET, "-p22", "-oL", str(path))
    masscan(lab, SUBNET, "-p80,443", "-oL", str(path), "--append-output")
    assert pairs_from("L", path.read_text()) == lab.truth()


def test_masscan_config_file_include_and_exclude_files(lab: Lab, tmp_path: Path) -> None:
    excluded = sorted({address for address, _ in lab.truth()})[0]
    (tmp_path / "targets.txt").write_text(f"# lab\n{SUBNET}\n")
    (tmp_path / "skip.txt").write_text(f"{excluded}\n")
    conf = tmp_path / "scan.conf"
    conf.write_text(f"ports = 22,80,443\nincludefile = {tmp_path / 'targets.txt'}\n"
                    f"exclude-file = {tmp_path / 'skip.txt'}\noutput-format = ndjson\n"
                    f"output-filename = {tmp_path / 'out.ndjson'}\n")
    code, _, _ = masscan(lab, "-c", str(conf))
    assert code == 0
    assert pairs_from("D", (tmp_path / "out.ndjson").read_text()) == \
        {pair for pair in lab.truth() if pair[0] != excluded}


def test_masscan_shards_together_cover_the_truth(lab: Lab, tmp_path: Path) -> None:
    union: Pairs = set()
    for shard in ("1/2", "2/2"):
        path = tmp_path / f"shard{shard[0]}.txt"
        masscan(lab, SUBNET, "-p22,80,443", "--seed", "42", "--shard", shard, "-oL", str(path))
        found = pairs_from("L", path.read_text())
        assert not found & union
        union |= found
    assert union == lab.truth()


def test_masscan_adapter_options_and_top_ports(lab: Lab, tmp_path: Path) -> None:
    gateway_mac = netlink.link_mac(lab.target_interface, lab.target_netns)
    path = tmp_path / "out.xml"
    code, _, _ = masscan(lab, SUBNET, "--top-ports", "100", "--adapter", lab.scan_interface,
                         "--adapter-ip", str(SCAN_ADDRESS.ip), "--router-mac", gateway_mac,
                         "--adapter-port", "61000-61063", "--ttl", "64", "-oX", str(path))
    assert code == 0
    assert pairs_from("X", path.read_text()) == lab.truth()  # 22, 80, 443 are in the top 100


def test_masscan_adapter_mac_router_ip_targets_file_and_exclude(lab: Lab,
                                                                 tmp_path: Path) -> None:
    """--adapter-mac only changes the probes' Ethernet source (replies still come to the
    interface: the target ARPs the scanner's address), --router-ip 198.18.0.2 is the lab's
    real next hop, ARPed instead of the route's; -iL and --exclude shape the targets."""
    excluded = sorted({address for address, _ in lab.truth()})[0]
    (tmp_path / "targets.txt").write_text(f"{SUBNET}\n")
    path = tmp_path / "out.txt"
    code, _, err = masscan(lab, "-iL", str(tmp_path / "targets.txt"), "--exclude",
                           str(excluded), "-p22,80,443", "--adapter-mac", "02:5c:a1:00:00:01",
                           "--router-ip", "198.18.0.2", "--noshow", "closed", "-v",
                           "--max-rate", "4000", "-oL", str(path))
    assert code == 0, err
    assert pairs_from("L", path.read_text()) == {p for p in lab.truth() if p[0] != excluded}
    # A router that never answers ARP: the error names it, so the flag really is used.
    code, _, err = masscan(lab, SUBNET, "-p80", "--router-ip", "198.18.0.99", "-oL",
                           str(tmp_path / "never.txt"))
    assert code == 1 and "198.18.0.99" in err and "ARP" in err


def test_masscan_iflist_names_the_lab_interface(lab: Lab) -> None:
    code, out, _ = pyscan("masscan", "--iflist", "--netns", lab.scan_netns)
    assert code == 0 and lab.scan_interface in out.split()


def test_masscan_offline_list_and_echo(lab: Lab) -> None:
    code, out, _ = masscan(lab, SUBNET, "-p22,80,443", "--offline")
    assert code == 0 and "Discovered" not in out
    _, out, _ = masscan(lab, SUBNET, "-p22,80,443", "-sL")
    assert len(out.splitlines()) == 16 * 3
    _, out, _ = masscan(lab, SUBNET, "-p22,80,443", "--echo")
    assert f"range = {SUBNET}" in out.splitlines() and "ports = 22,80,443" in out


# --- zmap ----------------------------------------------------------------------------------


def open_on(lab: Lab, port: int) -> set[str]:
    return {str(address) for address, open_port in lab.truth() if open_port == port}


def test_zmap_default_output_is_the_addresses_that_answered(lab: Lab) -> None:
    code, out, _ = zmap(lab, "-p", "80", SUBNET)
    assert code == 0
    assert sorted(out.splitlines()) == sorted(open_on(lab, 80))


def test_zmap_default_output_with_several_ports(lab: Lab) -> None:
    _, out, _ = zmap(lab, "-p", "22,80,443", SUBNET)
    assert {(IPv4Address(ip), int(port)) for ip, port in
            (line.split(",") for line in out.splitlines())} == lab.truth()


def test_zmap_csv_module_fields_and_filter(lab: Lab, tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    code, _, _ = zmap(lab, "-p", "22,80,443", "-O", "csv", "-f", "saddr,sport,success,"
                      "classification", "-o", str(path), SUBNET)
    assert code == 0
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == 16 * 3  # an output module sees the RSTs too
    assert {(IPv4Address(r["saddr"]), int(r["sport"])) for r in rows
            if r["success"] == "1"} == lab.truth()
    assert {r["classification"] for r in rows if r["success"] == "0"} == {"rst"}
    filtered = tmp_path / "filtered.csv"
    zmap(lab, "-p", "22,80,443", "-O", "csv", "-f", "saddr", "--output-filter",
         "success = 1 && sport = 80", "-o", str(filtered), SUBNET)
    assert set(filtered.read_text().split()) == open_on(lab, 80)


def test_zmap_json_module_and_metadata(lab: Lab, tmp_path: Path) -> None:
    path, meta = tmp_path / "out.json", tmp_path / "meta.json"
    code, _, _ = zmap(lab, "-p", "22,80,443", "-O", "json", "-f", "*", "-o", str(path),
                      "-m", str(meta), "-e", "5", SUBNET)
    assert code == 0
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert {(IPv4Address(r["saddr"]), r["sport"]) for r in records if r["success"]} == \
        lab.truth()
    metadata = json.loads(meta.read_text())
    assert metadata["success_unique"] == len(lab.truth())
    assert metadata["failure_total"] == 16 * 3 - len(lab.truth())
    assert metadata["total_sent"] == 16 * 3
    assert metadata["seed"] == 5 and metadata["use_seed"] == 1
    assert metadata["output_module"] == "json" and metadata["probe_module"] == "tcp_synscan"


def test_zmap_shards_blocklist_and_network_options(lab: Lab, tmp_path: Path) -> None:
    union: set[str] = set()
    for shard in ("0", "1"):
        _, out, _ = zmap(lab, "-p", "80", "--shards", "2", "--shard", shard, "-e", "9", SUBNET)
        assert not set(out.split()) & union
        union |= set(out.split())
    assert union == open_on(lab, 80)
    blocked = sorted(open_on(lab, 80))[0] if open_on(lab, 80) else "198.19.0.0"
    (tmp_path / "block.conf").write_text(f"# blocklist\n{blocked}/32\n")
    gateway_mac = netlink.link_mac(lab.target_interface, lab.target_netns)
    _, out, _ = zmap(lab, "-p", "80", "-b", str(tmp_path / "block.conf"), "-i",
                     lab.scan_interface, "-S", str(SCAN_ADDRESS.ip), "-G", gateway_mac,
                     "-s", "61000-61010", "-T", "1", "-B", "10M", SUBNET)
    assert set(out.split()) == open_on(lab, 80) - {blocked}


def test_zmap_allowlist_list_of_ips_source_mac_quiet(lab: Lab, tmp_path: Path) -> None:
    addresses = sorted(open_on(lab, 80)) or ["198.19.0.1"]
    (tmp_path / "allow.txt").write_text(f"{addresses[0]}/32\n")
    (tmp_path / "ips.txt").write_text("\n".join(addresses[1:]) + "\n")
    code, out, err = zmap(lab, "-p", "80", "-w", str(tmp_path / "allow.txt"),
                          "--list-of-ips", str(tmp_path / "ips.txt"), "--source-mac",
                          "02:5c:a1:00:00:02", "-q", "-v", "3")
    assert code == 0 and err == ""
    assert sorted(out.split()) == addresses


def test_zmap_dryrun_sends_nothing(lab: Lab) -> None:
    code, out, _ = zmap(lab, "-p", "80", "-d", SUBNET)
    assert code == 0 and out == ""


def test_unbuilt_flags_are_refused_by_name_with_exit_2(lab: Lab, tmp_path: Path) -> None:
    for tool, args, flag in (("masscan", ["--banners"], "--banners"),
                             ("masscan", ["--resume-index", "5"], "--resume-index"),
                             ("masscan", ["-pS:2905"], "-p S:2905"),
                             ("zmap", ["-M", "dns"], "-M dns"),
                             ("zmap", ["-n", "10%"], "-n 10%")):
        ports = ["-p80"]
        code, out, err = pyscan(tool, SUBNET, *ports, *args, "--netns", lab.scan_netns,
                                "-o" if tool == "zmap" else "-oL", str(tmp_path / "never"))
        assert code == 2 and out == ""
        assert err.strip() == err.strip().splitlines()[0]  # one line
        assert err.startswith(f"pyscan: error: {flag} is not supported yet: ")
    assert list(tmp_path.iterdir()) == []  # nothing created


def test_pcap_holds_every_valid_reply(lab: Lab, tmp_path: Path) -> None:
    from scapy.layers.inet import IP, TCP
    from scapy.utils import rdpcap

    path, pcap = tmp_path / "out.txt", tmp_path / "replies.pcap"
    code, _, err = masscan(lab, SUBNET, "-p22,80,443", "-oL", str(path), "--pcap", str(pcap))
    assert code == 0, err
    packets = rdpcap(str(pcap))
    syn_acks = {(IPv4Address(p[IP].src), p[TCP].sport) for p in packets
                if p[TCP].flags == "SA"}
    resets = {(IPv4Address(p[IP].src), p[TCP].sport) for p in packets if p[TCP].flags.R}
    assert syn_acks == lab.truth() == pairs_from("L", path.read_text())
    assert resets == every_pair() - lab.truth()
    assert all(p[IP].dst == str(SCAN_ADDRESS.ip) for p in packets)


def test_masscan_retries_and_zmap_probes_and_limits_find_the_truth(lab: Lab,
                                                                   tmp_path: Path) -> None:
    """masscan's --retries and zmap's -P / -N / --probe-args run end to end: each pair once."""
    path = tmp_path / "out.oL"
    code, _, err = masscan(lab, SUBNET, "-p22,80,443", "--retries", "1", "-oL", str(path))
    assert code == 0, err
    assert pairs_from("L", path.read_text()) == lab.truth()
    code, out, err = zmap(lab, "-p", "80", "-P", "2", "--probe-args=linux", SUBNET)
    assert code == 0, err
    lines = out.split()
    assert len(lines) == len(set(lines)) and set(lines) == open_on(lab, 80)
    code, out, err = zmap(lab, "-p", "80", "-N", "2", SUBNET)
    assert code == 0, err
    assert len(out.split()) == 2 and set(out.split()) <= open_on(lab, 80)
