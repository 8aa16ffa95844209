"""--source-ip of an address the scanner namespace does not own (masscan's trick), in the truth
lab: the lab's link is a /24, 198.18.0.1 is the scanner's, 198.18.0.2 the target end (the
gateway); 198.18.0.77 belongs to nobody (IPv6: the link is 2001:2:0:ffff::/64, ::1 and ::2,
2001:2:0:ffff::77 belongs to nobody and pyscan answers neighbour solicitations for it).
pyscan answers the target's ARP for it (af-xdp and xdp-live: the XDP filter, by redirect on
this veth; af-packet and pfring-zc: the RX thread), the scanner's kernel drops the replies as
not its own, and no isolation table is created.
Before the first probe the scan ARPs the gateway from the borrowed address, which primes the
gateway's neighbour entry; the test then makes the target forget it and ask again while the
scan waits for late replies.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from ipaddress import IPv4Interface, IPv6Interface

import pytest

import pyscan
from pyscan import firewall, netlink
from pyscan.drivers import DRIVERS
from pyscan.lab import Lab
from tests.net.helpers import draw_lab6
from tests.pfring_standin.build import build_standin

BORROWED = "198.18.0.77"
SUBNET = "198.19.0.0/20"
PORTS = (22, 80, 443)
OPEN_PAIRS = 300
# the pfring stand-in reads one frame per recv(): a rate its socket buffer keeps up with
RATES = {"af-xdp": 50_000, "xdp-live": 50_000, "af-packet": 50_000, "pfring-zc": 10_000}


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build_standin(tmp_path_factory.mktemp("srcip-standin")))


def _options(driver: str, standin: str) -> dict[str, str]:
    if driver == "pfring-zc":
        return {"lib": standin}
    ok, reason = DRIVERS[driver].available()
    assert ok, f"{driver} must run on this machine: {reason}"
    return {}


def _pyscan_tables(netns: str) -> list[str]:
    return firewall.list_tables(firewall.TABLE_PREFIX, netns)


def _target_neighbour_mac(lab: Lab, address: str) -> str | None:
    shown = subprocess.run(["ip", "-j", "-n", lab.target_netns, "neigh", "show", address],
                           capture_output=True, text=True, check=True).stdout
    entries = [e for e in json.loads(shown or "[]") if e.get("lladdr")]
    return str(entries[0]["lladdr"]) if entries else None


def _solicited_node_joined(lab: Lab) -> bool:
    """Whether the scan interface listens to 2001:2:0:ffff::77's solicited-node group."""
    shown = subprocess.run(["ip", "-n", lab.scan_netns, "maddr", "show", "dev",
                            lab.scan_interface], capture_output=True, text=True,
                           check=True).stdout
    return "33:33:ff:00:00:77" in shown or "ff02::1:ff00:77" in shown


def _ask_again(lab: Lab, address: str) -> str | None:
    """Flush the target's neighbour entry for ``address``, send it one UDP datagram from the
    target namespace (its kernel ARPs, or solicits, first; the datagram itself is dropped by
    the scanner's kernel, which does not own the address) and return the MAC the target then
    holds."""
    subprocess.run(["ip", "-n", lab.target_netns, "neigh", "flush", "to", address], check=True)
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with netlink.in_netns(lab.target_netns):
        sock = socket.socket(family, socket.SOCK_DGRAM)
    with sock:
        sock.sendto(b"who-has", (address, 9))
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        mac = _target_neighbour_mac(lab, address)
        if mac:
            return mac
        time.sleep(0.05)
    return None


@pytest.mark.parametrize("driver", ["af-xdp", "xdp-live", "af-packet", "pfring-zc"])
def test_unowned_source_finds_every_open_pair_without_a_firewall(
        lab_factory: Callable[..., Lab], tcp_connect: Callable[..., str], driver: str,
        standin: str) -> None:
    options = _options(driver, standin)
    lab = lab_factory(subnet=SUBNET, ports=PORTS, open_count=OPEN_PAIRS, seed=21)
    truth = lab.truth()
    own_ip, own_port = sorted(truth)[0]
    scanner_mac = netlink.link_mac(lab.scan_interface, lab.scan_netns)
    config = pyscan.ScanConfig.parse(
        [SUBNET], ports=",".join(map(str, PORTS)), rate=RATES[driver], driver=driver, wait=2,
        netns=lab.scan_netns, seed=5, source_ip=BORROWED, driver_options=options)

    found = []
    during: dict[str, object] = {}

    def while_waiting(status: pyscan.ScanStatus) -> None:
        # every probe is out, the RX side still runs (and answers ARP): a flushed neighbour
        # entry now costs no reply, while mid-send it would queue replies at the target
        if status.phase != "waiting" or "neighbour" in during:
            return
        # the host's own traffic, from its own address, to an open lab port
        during["own_connect"] = tcp_connect(lab.scan_netns, str(own_ip), own_port)
        during["primed"] = _target_neighbour_mac(lab, BORROWED)
        # the target forgets the address and asks again: the scan must answer
        during["neighbour"] = _ask_again(lab, BORROWED)
        during["tables_waiting"] = _pyscan_tables(lab.scan_netns)

    with pyscan.scan(config, on_status=while_waiting) as run:
        for result in run:
            found.append((result.ip, result.port))
            if "tables" not in during:   # sending
                during["tables"] = _pyscan_tables(lab.scan_netns)
        summary = run.summary
    assert summary is not None

    assert during == {"tables": [], "own_connect": "open", "primed": scanner_mac,
                      "neighbour": scanner_mac, "tables_waiting": []}
    assert _pyscan_tables(lab.scan_netns) == []
    assert set(found) == truth, repr(summary)[:2000]  # recall and precision both exact
    assert len(found) == len(set(found))            # nothing twice
    assert summary.open == OPEN_PAIRS
    assert summary.invalid_cookies == 0
    assert summary.arp_replies is not None and summary.arp_replies >= 1


def test_owned_source_keeps_the_isolation_table(lab_factory: Callable[..., Lab]) -> None:
    """The scanner's own address, given explicitly: today's path, ARP left to the kernel."""
    lab = lab_factory(subnet="198.19.0.0/24", ports=(80,), open_count=20, seed=22)
    config = pyscan.ScanConfig.parse(
        ["198.19.0.0/24"], ports="80", rate=20_000, driver="af-packet", wait=1,
        netns=lab.scan_netns, seed=5, source_ip="198.18.0.1")
    tables = []
    with pyscan.scan(config) as run:
        for _ in run:
            if not tables:
                tables = _pyscan_tables(lab.scan_netns)
        summary = run.summary
    assert summary is not None and summary.open == 20
    assert len(tables) == 1
    assert summary.arp_replies is None


@pytest.mark.parametrize(("address", "why"), [
    ("198.18.0.2", "the network, broadcast or gateway address"),
    ("198.18.0.255", "the network, broadcast or gateway address"),
    ("198.18.0.0", "the network, broadcast or gateway address"),
    ("198.18.1.5", "neither an address of this host nor in the subnet"),
])
def test_unusable_source_is_refused_with_exit_2(lab_factory: Callable[..., Lab], address: str,
                                                 why: str) -> None:
    lab = lab_factory(subnet="198.19.0.0/30", ports=(80,))
    done = subprocess.run(
        [sys.executable, "-m", "pyscan", "--netns", lab.scan_netns, "198.19.0.0/30", "-p",
         "80", "--source-ip", address, "--driver", "af-packet", "--wait", "0"],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and address in lines[0] and why in lines[0], done.stderr
    assert "accepted" in lines[0]
    assert _pyscan_tables(lab.scan_netns) == []


def test_source_in_use_on_the_link_is_refused(lab_factory: Callable[..., Lab]) -> None:
    """Another host answers ARP for the address: borrowing it would steal its replies."""
    lab = lab_factory(subnet="198.19.0.0/30", ports=(80,))
    netlink.add_address(lab.target_interface, IPv4Interface("198.18.0.99/24"), lab.target_netns)
    config = pyscan.ScanConfig.parse(["198.19.0.0/30"], ports="80", driver="af-packet", wait=0,
                                     netns=lab.scan_netns, source_ip="198.18.0.99")
    refused = r"198\.18\.0\.99 is in use on .*answered ARP"
    with pytest.raises(pyscan.ConfigError, match=refused), pyscan.scan(config) as run:
        list(run)


def test_responder_answers_requests_and_counts_claimants(lab_factory: Callable[..., Lab]) -> None:
    """The RX-thread responder on its own: a request for the address is answered (and seen by
    the target's kernel), another host's gratuitous ARP for it is counted as a conflict."""
    from scapy.layers.l2 import ARP, Ether

    from pyscan.native import ArpResponder

    lab = lab_factory(subnet="198.19.0.0/30", ports=(80,))
    target_mac = netlink.link_mac(lab.target_interface, lab.target_netns)
    scanner_mac = netlink.link_mac(lab.scan_interface, lab.scan_netns)
    asked = bytes(Ether(src=target_mac, dst="ff:ff:ff:ff:ff:ff")
                  / ARP(op=1, hwsrc=target_mac, psrc="198.18.0.2", pdst=BORROWED))
    claimed = bytes(Ether(src="02:00:00:00:00:99", dst="ff:ff:ff:ff:ff:ff")
                    / ARP(op=1, hwsrc="02:00:00:00:00:99", psrc=BORROWED, pdst=BORROWED))
    with netlink.in_netns(lab.scan_netns):
        responder = ArpResponder(netlink.link_index(lab.scan_interface, lab.scan_netns),
                                 BORROWED, scanner_mac)
    with responder:
        assert responder.handle(asked)
        assert not responder.handle(claimed)
        assert responder.stats() == {"answered": 1, "send_errors": 0, "conflicts": 1}
    assert responder.stats()["answered"] == 1     # kept after close
    # an unsolicited reply: Linux keeps it only for an entry it already has (arp_accept=0)
    assert _target_neighbour_mac(lab, BORROWED) in (None, scanner_mac)


def _claim_from_the_target(lab: Lab, frame: bytes) -> None:
    """Send ``frame`` (another host claiming the borrowed address) out of the target
    namespace's end of the lab link, towards the scanner."""
    with netlink.in_netns(lab.target_netns):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    with sock:
        sock.bind((lab.target_interface, 0))
        sock.send(frame)


def _scan_while_claiming(lab: Lab, config: pyscan.ScanConfig, frame: bytes
                         ) -> tuple[list[pyscan.Result], pyscan.Summary]:
    """Run ``config``, sending ``frame`` from the target once the scan waits for replies;
    (results, summary), after checking the frame was sent exactly then."""
    sent: list[str] = []

    def while_waiting(status: pyscan.ScanStatus) -> None:
        if status.phase == "waiting" and not sent:
            _claim_from_the_target(lab, frame)
            sent.append(status.phase)

    with pyscan.scan(config, on_status=while_waiting) as run:
        found = list(run)
        summary = run.summary
    assert summary is not None and sent == ["waiting"]
    return found, summary


@pytest.mark.parametrize("driver", ["af-xdp", "xdp-live", "af-packet"])
def test_a_gratuitous_arp_during_a_scan_is_reported_as_a_conflict(
        lab_factory: Callable[..., Lab], driver: str) -> None:
    """Another host claims the borrowed address while the scan runs: the summary warns, on the
    XDP drivers (the reply filter's xdp_arp_conflict) as on af-packet (the RX thread)."""
    from scapy.layers.l2 import ARP, Ether

    from pyscan.status import render_summary

    _options(driver, "")
    lab = lab_factory(subnet="198.19.0.0/28", ports=(80,), open_count=4, seed=23)
    claimant = "02:00:00:00:00:99"
    gratuitous = bytes(Ether(src=claimant, dst="ff:ff:ff:ff:ff:ff")
                       / ARP(op=1, hwsrc=claimant, psrc=BORROWED, pdst=BORROWED))
    config = pyscan.ScanConfig.parse(
        ["198.19.0.0/28"], ports="80", rate=10_000, driver=driver, wait=1,
        netns=lab.scan_netns, seed=5, source_ip=BORROWED)
    found, summary = _scan_while_claiming(lab, config, gratuitous)
    assert len(found) == 4
    assert summary.arp_conflicts >= 1, summary
    if driver != "af-packet":
        assert summary.driver_counters["xdp_arp_conflict"] == summary.arp_conflicts
    assert "warning: " in render_summary(summary)


# --- IPv6: neighbour discovery answered for the borrowed address ---

BORROWED6 = "2001:2:0:ffff::77"
SUBNET6 = "2001:2::/120"
RATES6 = {"af-xdp": 50_000, "xdp-live": 50_000, "af-packet": 50_000, "pfring-zc": 10_000}


@pytest.mark.parametrize("driver", ["af-xdp", "xdp-live", "af-packet", "pfring-zc"])
def test_unowned_ipv6_source_finds_the_truth_without_a_firewall(
        lab_factory: Callable[..., Lab], driver: str, standin: str) -> None:
    """The IPv6 twin of the first test: the scan primes the gateway with one solicitation
    from the borrowed address, answers the target's solicitations (XDP filter or RX thread,
    pfring-zc through its stand-in)
    while it waits, joins the address's solicited-node group only while it runs, and finds
    exactly the lab's IPv6 truth with no isolation table."""
    options = _options(driver, standin)
    lab = draw_lab6(lab_factory, 23, SUBNET6, PORTS, open_count=90, echo_count=1)
    truth = lab.truth6()
    scanner_mac = netlink.link_mac(lab.scan_interface, lab.scan_netns)
    config = pyscan.ScanConfig.parse(
        [SUBNET6], ports=",".join(map(str, PORTS)), rate=RATES6[driver], driver=driver,
        wait=2, netns=lab.scan_netns, seed=5, source_ip=BORROWED6, driver_options=options)
    assert not _solicited_node_joined(lab)

    found = []
    during: dict[str, object] = {}

    def while_waiting(status: pyscan.ScanStatus) -> None:
        if status.phase != "waiting" or "neighbour" in during:
            return
        during["primed"] = _target_neighbour_mac(lab, BORROWED6)
        during["joined"] = _solicited_node_joined(lab)
        # the target forgets the address and solicits it again: the scan must answer
        during["neighbour"] = _ask_again(lab, BORROWED6)
        during["tables_waiting"] = _pyscan_tables(lab.scan_netns)

    with pyscan.scan(config, on_status=while_waiting) as run:
        for result in run:
            found.append((result.ip, result.port))
            if "tables" not in during:   # sending
                during["tables"] = _pyscan_tables(lab.scan_netns)
        summary = run.summary
    assert summary is not None

    assert during == {"tables": [], "primed": scanner_mac, "joined": True,
                      "neighbour": scanner_mac, "tables_waiting": []}
    assert not _solicited_node_joined(lab)          # left with the scan
    assert _pyscan_tables(lab.scan_netns) == []
    assert set(found) == truth, repr(summary)[:2000]  # recall and precision both exact
    assert len(found) == len(set(found))
    assert summary.open == len(truth) == 90
    assert summary.invalid_cookies == 0
    assert summary.arp_replies is not None and summary.arp_replies >= 1


@pytest.mark.parametrize("driver", ["af-xdp", "af-packet"])
def test_a_dad_probe_during_an_ipv6_scan_is_reported_as_a_conflict(
        lab_factory: Callable[..., Lab], driver: str) -> None:
    """The IPv6 twin: another host's duplicate address detection for the borrowed address
    while the scan runs is counted (the XDP filter's rule is the RX thread's) and the summary
    line is labelled ndp."""
    from scapy.layers.inet6 import ICMPv6ND_NS, IPv6
    from scapy.layers.l2 import Ether

    from pyscan.status import render_summary

    _options(driver, "")
    lab = draw_lab6(lab_factory, 24, SUBNET6, (80,), open_count=4, echo_count=0)
    dad = bytes(Ether(src="02:00:00:00:00:99", dst="33:33:ff:00:00:77")
                / IPv6(src="::", dst="ff02::1:ff00:77", hlim=255) / ICMPv6ND_NS(tgt=BORROWED6))
    config = pyscan.ScanConfig.parse(
        [SUBNET6], ports="80", rate=10_000, driver=driver, wait=1, netns=lab.scan_netns,
        seed=5, source_ip=BORROWED6)
    found, summary = _scan_while_claiming(lab, config, dad)
    assert len(found) == 4
    assert summary.family == 6 and summary.arp_conflicts >= 1, summary
    if driver == "af-xdp":
        assert summary.driver_counters["xdp_arp_conflict"] == summary.arp_conflicts
    shown = render_summary(summary)
    assert "  ndp        " in shown and "neighbour discovery frames from another host" in shown


@pytest.mark.parametrize(("address", "why"), [
    ("2001:2:0:ffff::2", "the subnet-router anycast or gateway address"),
    ("2001:2:0:ffff::", "the subnet-router anycast or gateway address"),
    ("2001:2:0:fffe::5", "neither an address of this host nor in an on-link prefix"),
    ("fe80::77", "neither an address of this host nor in an on-link prefix"),
])
def test_unusable_ipv6_source_is_refused_with_exit_2(lab_factory: Callable[..., Lab],
                                                     address: str, why: str) -> None:
    lab = lab_factory(subnet="198.19.0.0/30", ports=(80,), subnet6="2001:2::/126")
    done = subprocess.run(
        [sys.executable, "-m", "pyscan", "--netns", lab.scan_netns, "2001:2::/126", "-p", "80",
         "--source-ip", address, "--driver", "af-packet", "--wait", "0"],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and address in lines[0] and why in lines[0], done.stderr
    assert "2001:2:0:ffff::/64" in lines[0] and "accepted" in lines[0]
    assert _pyscan_tables(lab.scan_netns) == []
    assert not _solicited_node_joined(lab)


def test_ipv6_source_in_use_on_the_link_is_refused(lab_factory: Callable[..., Lab]) -> None:
    """Another host answers the kernel's solicitation for the address."""
    lab = lab_factory(subnet="198.19.0.0/30", ports=(80,), subnet6="2001:2::/126")
    netlink.add_address(lab.target_interface, IPv6Interface("2001:2:0:ffff::99/64"),
                        lab.target_netns)
    config = pyscan.ScanConfig.parse(["2001:2::/126"], ports="80", driver="af-packet", wait=0,
                                     netns=lab.scan_netns, source_ip="2001:2:0:ffff::99")
    refused = r"2001:2:0:ffff::99 is in use on .*answered neighbour discovery"
    with pytest.raises(pyscan.ConfigError, match=refused), pyscan.scan(config) as run:
        list(run)
    assert not _solicited_node_joined(lab)


def test_ipv6_source_is_refused_while_forwarding_is_on(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory(subnet="198.19.0.0/30", ports=(80,), subnet6="2001:2::/126")
    netlink.write_sysctl(f"net/ipv6/conf/{lab.scan_interface}/forwarding", "1", lab.scan_netns)
    config = pyscan.ScanConfig.parse(["2001:2::/126"], ports="80", driver="af-packet", wait=0,
                                     netns=lab.scan_netns, source_ip=BORROWED6)
    with pytest.raises(pyscan.ConfigError, match=r"::77 .*IP forwarding is on .*ipv6"), \
            pyscan.scan(config) as run:
        list(run)


def test_ndp_responder_answers_solicitations_and_counts_claimants(
        lab_factory: Callable[..., Lab]) -> None:
    """The RX-thread responder on its own, IPv6: a solicitation for the address is answered
    (and the target's kernel takes the advertisement), another host's duplicate address
    detection for it is counted as a conflict and not answered."""
    from scapy.layers.inet6 import ICMPv6ND_NS, ICMPv6NDOptSrcLLAddr, IPv6
    from scapy.layers.l2 import Ether

    from pyscan.native import ArpResponder

    lab = lab_factory(subnet="198.19.0.0/30", ports=(80,), subnet6="2001:2::/126")
    target_mac = netlink.link_mac(lab.target_interface, lab.target_netns)
    scanner_mac = netlink.link_mac(lab.scan_interface, lab.scan_netns)
    asked = bytes(Ether(src=target_mac, dst="33:33:ff:00:00:77")
                  / IPv6(src="2001:2:0:ffff::2", dst="ff02::1:ff00:77", hlim=255)
                  / ICMPv6ND_NS(tgt=BORROWED6) / ICMPv6NDOptSrcLLAddr(lladdr=target_mac))
    dad = bytes(Ether(src="02:00:00:00:00:99", dst="33:33:ff:00:00:77")
                / IPv6(src="::", dst="ff02::1:ff00:77", hlim=255) / ICMPv6ND_NS(tgt=BORROWED6))
    # the target has an entry waiting for an answer, as when it solicits on its own
    subprocess.run(["ip", "-n", lab.target_netns, "neigh", "replace", BORROWED6, "dev",
                    lab.target_interface, "nud", "incomplete"], check=False)
    with netlink.in_netns(lab.scan_netns):
        responder = ArpResponder(netlink.link_index(lab.scan_interface, lab.scan_netns),
                                 BORROWED6, scanner_mac)
    with responder:
        assert responder.handle(asked)
        assert not responder.handle(dad)
        assert responder.stats() == {"answered": 1, "send_errors": 0, "conflicts": 1}
    assert _target_neighbour_mac(lab, BORROWED6) in (None, scanner_mac)


def test_the_priming_solicitation_teaches_the_gateway_our_mac(
        lab_factory: Callable[..., Lab]) -> None:
    """What the scan sends before its first probe: one solicitation for the gateway from the
    borrowed address, with our MAC in its option. Linux creates a neighbour entry for the
    asker from it, so the gateway needs no solicitation of its own before the first reply."""
    from pyscan.native import announce_ndp

    lab = lab_factory(subnet="198.19.0.0/30", ports=(80,), subnet6="2001:2::/126")
    scanner_mac = netlink.link_mac(lab.scan_interface, lab.scan_netns)
    subprocess.run(["ip", "-n", lab.target_netns, "neigh", "flush", "to", BORROWED6],
                   check=True)
    assert _target_neighbour_mac(lab, BORROWED6) is None
    with netlink.in_netns(lab.scan_netns):
        announce_ndp(netlink.link_index(lab.scan_interface, lab.scan_netns), BORROWED6,
                     scanner_mac, "2001:2:0:ffff::2")
    deadline = time.monotonic() + 3
    while _target_neighbour_mac(lab, BORROWED6) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _target_neighbour_mac(lab, BORROWED6) == scanner_mac


def test_the_cli_scans_from_an_unowned_ipv6_address(lab_factory: Callable[..., Lab]) -> None:
    """The command line's own check (check_source_address, before its start line) lets the
    borrowed IPv6 address through, and the scan reports exactly the open pairs."""
    lab = lab_factory(subnet="198.19.0.0/30", ports=(80,), subnet6="2001:2::/126")
    done = subprocess.run(
        [sys.executable, "-m", "pyscan", "--netns", lab.scan_netns, "2001:2::/126", "-p", "80",
         "--source-ip", BORROWED6, "--driver", "af-packet", "--wait", "1"],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    reported = {line.split()[3] for line in done.stdout.splitlines()
                if line.startswith("open tcp 80 ")}
    assert reported == {str(address) for address, _ in lab.truth6()}
    assert "  ndp        " in done.stderr and "no isolation firewall" in done.stderr
    assert _pyscan_tables(lab.scan_netns) == []
