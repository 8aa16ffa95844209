"""ScanConfig and the parsers that turn command-line text into it.

Every parser raises `ConfigError` with one line that names the bad value and the accepted
grammar; the CLI prints it as `pyscan: error: ...` and exits 2 before anything is created.
`ScanConfig` re-checks its typed fields, so an API caller building one directly gets the
same errors.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path
from types import MappingProxyType

from pyscan.blocklist import BlocklistEntry, select_from_text
from pyscan.errors import ConfigError
from pyscan.probes import PROBE_NAMES, PROBES
from pyscan.probes.udp_payloads import (
    UdpPayload,
    parse_payload_file,
    parse_payload_name,
    payload_from_bytes,
)
from pyscan.targets import TargetError, TargetSet
from pyscan.text import ascii_digits

__all__ = [
    "DEFAULT_RATE",
    "DEFAULT_RETRY_DELAY",
    "DEFAULT_TCP_OPTIONS",
    "DEFAULT_TTL",
    "DEFAULT_WAIT",
    "MAX_RETRIES",
    "MAX_TARGETS_WITHOUT_EXCLUDE",
    "TCP_OPTION_PROFILES",
    "ConfigError",
    "ScanConfig",
    "default_source_ports",
    "parse_driver_options",
    "parse_interface",
    "parse_mac",
    "parse_max_results",
    "parse_max_runtime",
    "parse_max_targets",
    "parse_netns",
    "parse_port_spec",
    "parse_ports",
    "parse_probes",
    "parse_rate",
    "parse_retries",
    "parse_retry_delay",
    "parse_seed",
    "parse_shard",
    "parse_source_ip",
    "parse_source_ports",
    "parse_tcp_options",
    "parse_wait",
]

# zmap's default; masscan's is 100. High enough to be useful, low enough not to flood a LAN
# by accident. "max" lifts the limit (benchmarks against the lab sink).
DEFAULT_RATE = 10_000.0
DEFAULT_WAIT = 10.0  # masscan's --wait default
DEFAULT_TTL = 64
MAX_TX_THREADS = 64
# Each pair gets retries + 1 probes; the engine keeps one timestamp per pass per lane.
MAX_RETRIES = 15
DEFAULT_RETRY_DELAY = 1.0  # seconds between two probes of one pair, at least (masscan's ~1 s)
MAX_RETRY_DELAY = 3600.0
# The SYN's shape, each a copy of that stack's SYN (template.h); windows is zmap's default:
# the highest hit rate for the fewest bytes. mss is the 58-byte minimum (benchmarks).
TCP_OPTION_PROFILES = ("windows", "linux", "bsd", "mss", "none")
DEFAULT_TCP_OPTIONS = "windows"
# masscan's safety rule: more addresses than this need at least one --exclude, as proof the
# user thought about what they are about to scan. The default blocklist counts as one when it
# left something out: reserved space is what the rule was guarding.
MAX_TARGETS_WITHOUT_EXCLUDE = 1_000_000_000
# IPv6 space is too large to walk by accident: a set above 2^32 addresses (a /96) needs
# --max-targets, which makes the scan a keyed random sample of that size (issue 12).
MAX_IPV6_TARGETS_WITHOUT_CAP = 2**32

# Linux hands out ephemeral ports from 32768-60999; a default source range above it never
# collides with the host's own connections, which the isolation firewall would otherwise cut.
_DEFAULT_SOURCE_PORT_LOW = 61000
_DEFAULT_SOURCE_PORT_COUNT = 256

RATE_GRAMMAR = "packets per second: 1000, 250k, 10M, 1.5G, or max"
PORTS_GRAMMAR = ("0-65535 as N, A-B, or a comma list like 22,80,8000-8100; U:N or U:A-B for "
                 "UDP, T:N for TCP")
DEFAULT_UDP_CAPTURE_BYTES = 64
MAX_UDP_CAPTURE_BYTES = 234  # what the engine's snippet records hold (engine.h)
SHARD_GRAMMAR = "I/N with 1 <= I <= N, like 1/2"
SEED_GRAMMAR = "integer 0..2^64-1, decimal or 0x hex"
WAIT_GRAMMAR = "seconds >= 0, like 10 or 2.5"
SOURCE_PORTS_GRAMMAR = "port 1-65535 or range A-B"
RETRIES_GRAMMAR = f"integer 0..{MAX_RETRIES}"
PROBES_GRAMMAR = f"integer 1..{MAX_RETRIES + 1} (probes per pair, = --retries + 1)"
RETRY_DELAY_GRAMMAR = f"seconds 0..{MAX_RETRY_DELAY:g}, like 1 or 0.3"
MAX_RUNTIME_GRAMMAR = "seconds > 0, like 600 or 2.5"
MAX_RESULTS_GRAMMAR = "integer >= 1"
TCP_OPTIONS_GRAMMAR = " | ".join(TCP_OPTION_PROFILES)
MAC_GRAMMAR = "six hex bytes like 02:00:00:00:00:01"
MAX_TARGETS_GRAMMAR = "N probes (address x port pairs) >= 1, or P% of the scan, like 1000 or 2.5%"


_RATE_PATTERN = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([kmg]?)", re.IGNORECASE)
_RATE_MULTIPLIERS = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9}


def parse_rate(text: str) -> float:
    """'250k' -> 250000.0; 'max' -> inf (no limit)."""
    cleaned = text.strip()
    if cleaned.lower() in ("max", "unlimited"):
        return math.inf
    match = _RATE_PATTERN.fullmatch(cleaned.removesuffix("pps").removesuffix("PPS"))
    if not match:
        raise ConfigError(f"bad rate {text!r} (accepted: {RATE_GRAMMAR})")
    rate = float(match.group(1)) * _RATE_MULTIPLIERS[match.group(2).lower()]
    if not math.isfinite(rate):  # 400 nines: no limit was asked for, a typo was made
        raise ConfigError(f"bad rate {text!r}: too large (accepted: {RATE_GRAMMAR})")
    if rate <= 0:
        raise ConfigError(f"bad rate {text!r}: must be above 0 (accepted: {RATE_GRAMMAR})")
    return rate


def _parse_port_number(text: str, spec: str) -> int:
    if not ascii_digits(text):
        raise ConfigError(f"bad port {text!r} in {spec!r} (accepted: {PORTS_GRAMMAR})")
    port = int(text)
    if port > 65535:
        raise ConfigError(f"bad port {text!r} in {spec!r}: above 65535 (accepted: {PORTS_GRAMMAR})")
    return port


def parse_ports(text: str) -> tuple[int, ...]:
    """'22,80,8000-8002' -> (22, 80, 8000, 8001, 8002): deduplicated and sorted. TCP only:
    a U: item is refused here (parse_port_spec takes both)."""
    tcp, udp = parse_port_spec(text)
    if udp:
        raise ConfigError(f"UDP ports in {text!r} are not accepted here (accepted: TCP ports, "
                          "N, A-B or T:N)")
    return tcp


def parse_port_spec(text: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """masscan's port list: '80,U:53,U:123-124,T:443' -> TCP (80, 443), UDP (53, 123, 124);
    each deduplicated and sorted. An item without a prefix (or T:) is TCP."""
    cleaned = text.strip()
    if not cleaned:
        raise ConfigError(f"empty port list {text!r} (accepted: {PORTS_GRAMMAR})")
    tcp: list[str] = []
    udp: list[str] = []
    for raw_part in cleaned.split(","):
        part = raw_part.strip()
        if part[:2].upper() == "U:":
            udp.append(part[2:])
        elif part[:2].upper() == "T:":
            tcp.append(part[2:])
        else:
            tcp.append(part)
    return (_port_items(tcp, text) if tcp else (), _port_items(udp, text) if udp else ())


def _port_items(parts: list[str], text: str) -> tuple[int, ...]:
    ports: set[int] = set()
    for raw_part in parts:
        part = raw_part.strip()
        if not part:
            raise ConfigError(f"empty item in port list {text!r} (accepted: {PORTS_GRAMMAR})")
        if "-" in part:
            low_text, _, high_text = part.partition("-")
            low = _parse_port_number(low_text.strip(), text)
            high = _parse_port_number(high_text.strip(), text)
            if low > high:
                raise ConfigError(
                    f"bad port range {part!r}: {low} is above {high} (accepted: {PORTS_GRAMMAR})"
                )
            ports.update(range(low, high + 1))
        else:
            ports.add(_parse_port_number(part, text))
    return tuple(sorted(ports))


def parse_shard(text: str) -> tuple[int, int]:
    """masscan's 1-based '2/4' -> (2, 4)."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match:
        raise ConfigError(f"bad shard {text!r} (accepted: {SHARD_GRAMMAR})")
    index, count = int(match.group(1)), int(match.group(2))
    if not 1 <= index <= count:
        raise ConfigError(
            f"bad shard {text!r}: need 1 <= {index} <= {count} (accepted: {SHARD_GRAMMAR})"
        )
    return index, count


def parse_seed(text: str) -> int:
    cleaned = text.strip().lower()
    try:
        seed = int(cleaned, 16) if cleaned.startswith("0x") else int(cleaned, 10)
    except ValueError:
        raise ConfigError(f"bad seed {text!r} (accepted: {SEED_GRAMMAR})") from None
    if not 0 <= seed < 2**64:
        raise ConfigError(f"bad seed {text!r}: outside 0..2^64-1 (accepted: {SEED_GRAMMAR})")
    return seed


def parse_wait(text: str) -> float:
    cleaned = text.strip().removesuffix("s")
    try:
        wait = float(cleaned)
    except ValueError:
        raise ConfigError(f"bad wait {text!r} (accepted: {WAIT_GRAMMAR})") from None
    if not math.isfinite(wait) or wait < 0:
        raise ConfigError(
            f"bad wait {text!r}: must be a finite number >= 0 (accepted: {WAIT_GRAMMAR})"
        )
    return wait


def _parse_integer(text: str, what: str, grammar: str, low: int, high: int | None) -> int:
    cleaned = text.strip()
    if not ascii_digits(cleaned) or int(cleaned) < low or (
            high is not None and int(cleaned) > high):
        raise ConfigError(f"bad {what} {text!r} (accepted: {grammar})")
    return int(cleaned)


def _parse_seconds(text: str, what: str, grammar: str, low: float, high: float,
                   allow_zero: bool = True) -> float:
    cleaned = text.strip().removesuffix("s")
    try:
        seconds = float(cleaned)
    except ValueError:
        raise ConfigError(f"bad {what} {text!r} (accepted: {grammar})") from None
    if not math.isfinite(seconds) or not low <= seconds <= high or (not allow_zero
                                                                    and seconds == 0):
        raise ConfigError(f"bad {what} {text!r} (accepted: {grammar})")
    return seconds


def parse_retries(text: str) -> int:
    """masscan's --retries N: extra probes per pair."""
    return _parse_integer(text, "retry count", RETRIES_GRAMMAR, 0, MAX_RETRIES)


def parse_probes(text: str) -> int:
    """zmap's -P/--probes N (probes per pair) -> retries N - 1."""
    return _parse_integer(text, "probe count", PROBES_GRAMMAR, 1, MAX_RETRIES + 1) - 1


def parse_retry_delay(text: str) -> float:
    return _parse_seconds(text, "retry delay", RETRY_DELAY_GRAMMAR, 0.0, MAX_RETRY_DELAY)


def parse_max_runtime(text: str) -> float:
    """zmap's -t/--max-runtime: seconds of sending at most."""
    return _parse_seconds(text, "max runtime", MAX_RUNTIME_GRAMMAR, 0.0, math.inf,
                          allow_zero=False)


def parse_max_results(text: str) -> int:
    """zmap's -N/--max-results: stop once this many results are reported."""
    return _parse_integer(text, "max results", MAX_RESULTS_GRAMMAR, 1, None)


def parse_tcp_options(text: str) -> str:
    """--tcp-options, or zmap's --probe-args=NAME (its smallest-probes is our mss)."""
    cleaned = text.strip().lower()
    if cleaned.startswith("tcp-options="):
        cleaned = cleaned.removeprefix("tcp-options=")
    cleaned = {"smallest-probes": "mss"}.get(cleaned, cleaned)
    if cleaned not in TCP_OPTION_PROFILES:
        raise ConfigError(f"bad TCP options {text!r} (accepted: {TCP_OPTIONS_GRAMMAR})")
    return cleaned


def parse_source_ports(text: str) -> range:
    """'40000-40255' -> range(40000, 40256); '40000' -> range(40000, 40001)."""
    cleaned = text.strip()
    low_text, dash, high_text = cleaned.partition("-")
    if not ascii_digits(low_text) or (dash and not ascii_digits(high_text)):
        raise ConfigError(f"bad source port {text!r} (accepted: {SOURCE_PORTS_GRAMMAR})")
    low = int(low_text)
    high = int(high_text) if dash else low
    if not 1 <= low <= high <= 65535:
        raise ConfigError(
            f"bad source port {text!r}: need 1 <= first <= last <= 65535 "
            f"(accepted: {SOURCE_PORTS_GRAMMAR})"
        )
    return range(low, high + 1)


def default_source_ports() -> range:
    """A random 256-port range above the Linux ephemeral range (61000-65535)."""
    span = 65535 - _DEFAULT_SOURCE_PORT_LOW - _DEFAULT_SOURCE_PORT_COUNT + 2
    low = _DEFAULT_SOURCE_PORT_LOW + secrets.randbelow(span)
    return range(low, low + _DEFAULT_SOURCE_PORT_COUNT)


def parse_max_targets(text: str, probe_count: int) -> int:
    """'1000' -> 1000; '10%' -> 10 % of `probe_count`, rounded up (zmap -n; zmap's
    percentage is of the whole IPv4 space, ours of this scan's probes)."""
    cleaned = text.strip()
    if cleaned.endswith("%"):
        try:
            percent = float(cleaned[:-1])
        except ValueError:
            raise ConfigError(f"bad max targets {text!r} (accepted: {MAX_TARGETS_GRAMMAR})"
                              ) from None
        if not (math.isfinite(percent) and 0 < percent <= 100):
            raise ConfigError(f"bad max targets {text!r}: the percentage must be above 0 and "
                              f"at most 100 (accepted: {MAX_TARGETS_GRAMMAR})")
        return max(1, math.ceil(probe_count * percent / 100))
    if not ascii_digits(cleaned) or int(cleaned) < 1:
        raise ConfigError(f"bad max targets {text!r} (accepted: {MAX_TARGETS_GRAMMAR})")
    return int(cleaned)


SOURCE_IP_ACCEPTED = ("one unicast address of the targets' family: this host's, or (IPv4) a "
                      "free one in the interface's subnet")


def _parse_ip(text: str) -> IPv4Address | IPv6Address:
    cleaned = text.strip()
    if "%" in cleaned:   # a scope id names an interface; the scan's interface is --interface
        raise ValueError(cleaned)
    return IPv4Address(cleaned) if ":" not in cleaned else IPv6Address(cleaned)


def parse_source_ip(text: str) -> IPv4Address | IPv6Address:
    """One address a probe can come from; whether the host owns it, or it is a free address
    of the link, is checked when the scan starts (pyscan.netlink.source)."""
    try:
        address = _parse_ip(text)
    except ValueError:
        raise ConfigError(f"bad source IP {text!r} (accepted: {SOURCE_IP_ACCEPTED})") from None
    if address.is_unspecified or address.is_multicast or address == IPv4Address(
            "255.255.255.255"):
        raise ConfigError(f"bad source IP {text!r}: no reply can come back to it (accepted: "
                          f"{SOURCE_IP_ACCEPTED})")
    return address


def parse_gateway_ip(text: str) -> IPv4Address | IPv6Address:
    try:
        return _parse_ip(text)
    except ValueError:
        raise ConfigError(f"bad gateway IP {text!r} (accepted: one IPv4 or IPv6 address, the "
                          "next hop to ARP or neighbour-solicit for)") from None


def _family_gateway_mac(family: int, either: str | None, ipv4: str | None,
                        ipv6: str | None) -> str | None:
    """masscan's --router-mac (both families), --router-mac-ipv4 and --router-mac-ipv6: the
    one for the scan's family wins over the shared one; the other family's is unused."""
    chosen = (ipv4 if family == 4 else ipv6) or either
    return parse_mac(chosen) if chosen is not None else None


def parse_mac(text: str) -> str:
    """'02-00-00-00-00-0A' -> '02:00:00:00:00:0a'."""
    parts = re.split(r"[:-]", text.strip())
    if len(parts) != 6 or not all(re.fullmatch(r"[0-9a-fA-F]{1,2}", part) for part in parts):
        raise ConfigError(f"bad MAC address {text!r} (accepted: {MAC_GRAMMAR})")
    return ":".join(f"{int(part, 16):02x}" for part in parts)


def _parse_name(text: str, what: str, max_length: int) -> str:
    grammar = f"1-{max_length} characters, no '/', whitespace or ':'"
    if (
        not text
        or len(text) > max_length
        or text in (".", "..")
        or any(c in text for c in "/:") or any(c.isspace() for c in text)
    ):
        raise ConfigError(f"bad {what} {text!r} (accepted: {grammar})")
    return text


def parse_interface(text: str) -> str:
    """Checks the name's shape only (Linux IFNAMSIZ); whether it exists is netlink's job."""
    return _parse_name(text, "interface name", 15)


def parse_netns(text: str) -> str:
    return _parse_name(text, "network namespace name", 255)


def parse_driver_options(items: Iterable[str]) -> dict[str, str]:
    """['xdp-mode=native', 'ring-size=4096'] -> {'xdp-mode': 'native', 'ring-size': '4096'}."""
    options: dict[str, str] = {}
    for item in items:
        key, equals, value = item.partition("=")
        if not equals or not key.strip():
            raise ConfigError(f"bad driver option {item!r} (accepted: key=value)")
        options[key.strip()] = value.strip()
    return options


def _random_seed() -> int:
    return secrets.randbits(64)


def _check_driver(driver: str | None, options: Mapping[str, str]) -> None:
    """The driver name and its -O options against the driver registry.

    A chosen driver must accept every option given. Without --driver, every option must be
    known to at least one driver of the automatic order, and is checked by the one that opens.
    """
    from pyscan.drivers import automatic_order, descriptor, names

    if driver is None:
        candidates = automatic_order()
        for key in options:
            if not any(row.option(key) for row in candidates):
                accepted = sorted({o.name for row in candidates for o in row.options})
                raise ConfigError(f"driver option {key!r} is unknown to the automatic choice "
                                  f"({', '.join(r.name for r in candidates)}; accepted: "
                                  f"{', '.join(accepted)}, or name a driver with --driver)")
        return
    if driver not in names():
        raise ConfigError(f"unknown driver {driver!r} (accepted: {', '.join(names())})")
    descriptor(driver).parse_options(options)  # DriverOptionError is a ConfigError


@dataclass(frozen=True)
class ScanConfig:
    """Everything one scan needs, already validated. Build it with `ScanConfig.parse(...)`
    from command-line text, or directly with typed values."""

    targets: TargetSet
    ports: tuple[int, ...]
    rate: float = DEFAULT_RATE                     # packets per second, math.inf = no limit
    driver: str | None = None                      # None = automatic (the registry's order)
    interface: str | None = None                   # None = the route's interface
    source_ip: IPv4Address | IPv6Address | None = None  # None = the interface's address
    # None = pyscan picks 256 free ports above the ephemeral range in the scan's namespace.
    # A range given here is refused at scan start if unsafe (pyscan.sourceports) unless
    # force_source_port.
    source_ports: range | None = None
    force_source_port: bool = False
    gateway_mac: str | None = None                 # None = resolved (ARP) by netlink
    gateway_ip: IPv4Address | IPv6Address | None = None  # None = the route's next hop
    source_mac: str | None = None                  # None = the interface's own MAC
    seed: int = field(default_factory=_random_seed)  # permutation order; printed to repeat
    shard: tuple[int, int] = (1, 1)                # masscan's 1-based I/N
    wait: float = DEFAULT_WAIT                     # seconds to keep receiving after TX ends
    tx_threads: int | None = None                  # None = one per TX queue, cores allowing
    ttl: int | None = None                         # None = the --tcp-options stack's TTL
    show_closed: bool = False                      # closed and unreachable results too
    show_unreachable: bool = False                 # ICMP destination unreachable results too
    isolation: bool = True                         # nft rules so the kernel does not RST replies
    netns: str | None = None                       # run the whole scan inside this namespace
    driver_options: Mapping[str, str] = field(default_factory=dict)
    excludes: TargetSet = field(default_factory=TargetSet)  # what was subtracted, for display
    probe: str = "tcp-syn"                         # probe type of `ports`, a key of PROBES
    udp_ports: tuple[int, ...] = ()                # UDP ports (masscan's U:N), beside ports
    ping: bool = False                             # also an ICMP echo per address (--ping)
    # UDP payload choices, in order: (port or None for every UDP port, payload)
    udp_payloads: tuple[tuple[int | None, UdpPayload], ...] = ()
    udp_capture_bytes: int = DEFAULT_UDP_CAPTURE_BYTES  # reply bytes kept in Result.payload
    # What parse() did to the targets, for the start line: the default blocklist's note
    # (None when it took nothing) and input warnings such as skipped IPv6 lines.
    blocklist_note: str | None = None
    input_warnings: tuple[str, ...] = ()
    # --max-targets: the whole scan (all shards) sends only the first N probes of its order,
    # a keyed random sample; None = every probe.
    max_targets: int | None = None
    retries: int = 0                               # each pair gets retries + 1 probes
    retry_delay: float = DEFAULT_RETRY_DELAY       # seconds between two probes of a pair, at least
    max_runtime: float | None = None               # seconds of sending at most (zmap -t)
    max_results: int | None = None                 # stop after this many results (zmap -N)
    tcp_options: str = DEFAULT_TCP_OPTIONS         # the SYN's shape: TCP_OPTION_PROFILES

    def __post_init__(self) -> None:
        self._coerce()
        if not isinstance(self.targets, TargetSet):
            raise ConfigError(f"targets must be a TargetSet, not {type(self.targets).__name__}")
        if not self.targets:
            raise ConfigError("no targets to scan (every address was excluded or none was given)")
        self._check_family()
        if self.probe not in PROBE_NAMES:  # the IPv6 twins are picked by family, not named
            raise ConfigError(
                f"unknown probe {self.probe!r} (accepted: {', '.join(PROBE_NAMES)})")
        # `ports` are the probe type's: --probe udp -p 53 is -p U:53; icmp-echo takes none.
        if self.probe == "udp":
            object.__setattr__(self, "udp_ports", (*self.udp_ports, *self.ports))
            object.__setattr__(self, "ports", ())
        elif self.probe == "icmp-echo":
            if self.ports:
                raise ConfigError("probe icmp-echo takes no ports (accepted: --ping with -p "
                                  "to add an echo per address to a TCP/UDP scan)")
            object.__setattr__(self, "ping", True)
        if not self.ports and not self.udp_ports and not self.ping:
            raise ConfigError(f"empty port list (accepted: {PORTS_GRAMMAR})")
        for name in ("ports", "udp_ports"):
            ports = tuple(sorted(set(getattr(self, name))))
            if any(not isinstance(port, int) or not 0 <= port <= 65535 for port in ports):
                bad = next(p for p in ports if not isinstance(p, int) or not 0 <= p <= 65535)
                raise ConfigError(f"bad port {bad!r} (accepted: {PORTS_GRAMMAR})")
            object.__setattr__(self, name, ports)
        if not 0 <= self.udp_capture_bytes <= MAX_UDP_CAPTURE_BYTES:
            raise ConfigError(f"bad UDP capture length {self.udp_capture_bytes!r} (accepted: "
                              f"0..{MAX_UDP_CAPTURE_BYTES} bytes)")
        if not (self.rate > 0):
            raise ConfigError(f"bad rate {self.rate!r}: must be above 0 (accepted: {RATE_GRAMMAR})")
        _check_driver(self.driver, self.driver_options)
        if self.source_ports is not None and (
            not isinstance(self.source_ports, range) or self.source_ports.step != 1 or not (
                self.source_ports
                and 1 <= self.source_ports.start <= self.source_ports[-1] <= 65535)
        ):
            raise ConfigError(
                f"bad source ports {self.source_ports!r} (accepted: {SOURCE_PORTS_GRAMMAR})"
            )
        if not 0 <= self.seed < 2**64:
            raise ConfigError(f"bad seed {self.seed!r} (accepted: {SEED_GRAMMAR})")
        shard_index, shard_count = self.shard
        if not 1 <= shard_index <= shard_count:
            raise ConfigError(f"bad shard {shard_index}/{shard_count} (accepted: {SHARD_GRAMMAR})")
        if not (math.isfinite(self.wait) and self.wait >= 0):
            raise ConfigError(f"bad wait {self.wait!r} (accepted: {WAIT_GRAMMAR})")
        if self.tx_threads is not None and not 1 <= self.tx_threads <= MAX_TX_THREADS:
            raise ConfigError(
                f"bad TX thread count {self.tx_threads!r} (accepted: 1..{MAX_TX_THREADS})"
            )
        if self.ttl is not None and not 1 <= self.ttl <= 255:
            raise ConfigError(f"bad TTL {self.ttl!r} (accepted: 1..255)")
        if self.max_targets is not None and (
                isinstance(self.max_targets, bool) or not isinstance(self.max_targets, int)
                or self.max_targets < 1):
            raise ConfigError(
                f"bad max targets {self.max_targets!r} (accepted: {MAX_TARGETS_GRAMMAR})")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) \
                or not 0 <= self.retries <= MAX_RETRIES:
            raise ConfigError(f"bad retry count {self.retries!r} (accepted: {RETRIES_GRAMMAR})")
        if not (isinstance(self.retry_delay, int | float)
                and 0 <= self.retry_delay <= MAX_RETRY_DELAY):
            raise ConfigError(
                f"bad retry delay {self.retry_delay!r} (accepted: {RETRY_DELAY_GRAMMAR})")
        if self.max_runtime is not None and not (
                isinstance(self.max_runtime, int | float) and self.max_runtime > 0
                and not math.isnan(self.max_runtime)):
            raise ConfigError(
                f"bad max runtime {self.max_runtime!r} (accepted: {MAX_RUNTIME_GRAMMAR})")
        if self.max_results is not None and (
                isinstance(self.max_results, bool) or not isinstance(self.max_results, int)
                or self.max_results < 1):
            raise ConfigError(
                f"bad max results {self.max_results!r} (accepted: {MAX_RESULTS_GRAMMAR})")
        if self.tcp_options not in TCP_OPTION_PROFILES:
            raise ConfigError(
                f"bad TCP options {self.tcp_options!r} (accepted: {TCP_OPTIONS_GRAMMAR})")
        if self.interface is not None:
            parse_interface(self.interface)
        if self.netns is not None:
            parse_netns(self.netns)
        if self.gateway_mac is not None:
            object.__setattr__(self, "gateway_mac", parse_mac(self.gateway_mac))
        if self.source_mac is not None:
            object.__setattr__(self, "source_mac", parse_mac(self.source_mac))
        if self.gateway_mac is not None and self.gateway_ip is not None:
            raise ConfigError("a gateway MAC and a gateway IP to ARP for contradict each other "
                              "(accepted: one of them)")
        object.__setattr__(self, "driver_options", MappingProxyType(dict(self.driver_options)))

    def _check_family(self) -> None:
        """Addresses of the targets' family only; IPv6 sets above 2^32 need --max-targets."""
        family = self.targets.family
        for name, value in (("source IP", self.source_ip), ("gateway IP", self.gateway_ip)):
            if value is not None and value.version != family:
                raise ConfigError(
                    f"bad {name} {str(value)!r}: the targets are IPv{family} (accepted: one "
                    f"IPv{family} address)")
        if (family == 6 and self.targets.count > MAX_IPV6_TARGETS_WITHOUT_CAP
                and self.max_targets is None):
            raise ConfigError(
                f"IPv6 target set {self.targets.describe()} holds {self.targets.count:.3g} "
                f"addresses, above 2^32 (accepted: a prefix of /96 or longer, or --max-targets "
                f"N to probe a random sample of N)")

    def _coerce(self) -> None:
        """The obvious types an API caller writes become the typed fields:
        ``ScanConfig(targets="198.19.0.0/24", ports=[80], rate="10k", seed="7")``. Text goes
        through the command line's parsers, so it is checked with the same messages."""
        def put(name: str, value: object) -> None:
            object.__setattr__(self, name, value)

        for name in ("targets", "excludes"):
            value = getattr(self, name)
            if isinstance(value, str | IPv4Address | IPv4Network | IPv6Address | IPv6Network):
                value = [str(value)]
            if not isinstance(value, TargetSet) and isinstance(value, Iterable):
                try:
                    value = TargetSet.parse([str(item) for item in value])
                except TargetError as error:
                    raise ConfigError(str(error)) from None
            put(name, value)
        if isinstance(self.targets, TargetSet) and isinstance(self.excludes, TargetSet) \
                and self.excludes:
            put("targets", self.targets - self.excludes)  # no-op when parse() subtracted
        if isinstance(self.ports, str):
            tcp, udp = parse_port_spec(self.ports)
            put("ports", tcp)
            put("udp_ports", (*self.udp_ports, *udp))
        elif isinstance(self.ports, int):
            put("ports", (self.ports,))
        elif isinstance(self.ports, Iterable):
            put("ports", tuple(self.ports))
        if isinstance(self.rate, str):
            put("rate", parse_rate(self.rate))
        if isinstance(self.source_ip, str):
            put("source_ip", parse_source_ip(self.source_ip))
        if isinstance(self.gateway_ip, str):
            put("gateway_ip", parse_gateway_ip(self.gateway_ip))
        if isinstance(self.source_ports, str):
            put("source_ports", parse_source_ports(self.source_ports))
        elif isinstance(self.source_ports, int):
            put("source_ports", range(self.source_ports, self.source_ports + 1))
        elif isinstance(self.source_ports, tuple) and len(self.source_ports) == 2:
            put("source_ports", range(self.source_ports[0], self.source_ports[1] + 1))
        if isinstance(self.seed, str):
            put("seed", parse_seed(self.seed))
        if isinstance(self.shard, str):
            put("shard", parse_shard(self.shard))
        if isinstance(self.wait, str):
            put("wait", parse_wait(self.wait))
        if isinstance(self.driver_options, list | tuple):
            put("driver_options", parse_driver_options(self.driver_options))

    @property
    def probe_count(self) -> int:
        """Probes in the whole scan (all shards): targets x port entries."""
        return self.targets.count * len(self.entries)

    @property
    def entries(self) -> tuple[tuple[str, int], ...]:
        """The scan's port entries as (probe type, port): TCP ports, UDP ports, then the
        echo (port 0) with --ping. One engine port entry each (masscan encodes the same as
        port, 65536 + UDP port, and an ICMP entry)."""
        return (*(("tcp-syn", port) for port in self.ports),
                *(("udp", port) for port in self.udp_ports),
                *((("icmp-echo", 0),) if self.ping else ()))

    @property
    def udp_ports_without_payload(self) -> tuple[int, ...]:
        """UDP ports whose probes are empty datagrams (no built-in payload, none chosen)."""
        from pyscan.probes.udp_payloads import payload_for

        return tuple(port for port in self.udp_ports
                     if not (chosen := payload_for(port, self.udp_payloads)) or not chosen.data)

    @property
    def probe_types(self) -> tuple[str, ...]:
        """The probe types this scan runs, in registry order."""
        used = {name for name, _ in self.entries}
        return tuple(name for name in PROBES if name in used)

    @property
    def planned_probes(self) -> int:
        """Probes the whole scan will send: probe_count, or fewer under --max-targets."""
        if self.max_targets is None:
            return self.probe_count
        return min(self.max_targets, self.probe_count)

    @property
    def passes(self) -> int:
        """Probes per (address, port): retries + 1."""
        return self.retries + 1

    @property
    def frame_count(self) -> int:
        """Frames in the whole scan (all shards): planned probes x passes."""
        return self.planned_probes * self.passes

    @property
    def is_dry_run(self) -> bool:
        """A driver that sends nothing (null): no route, privilege or firewall needed."""
        from pyscan.drivers import descriptor

        return self.driver is not None and not descriptor(self.driver).sends

    @classmethod
    def parse(
        cls,
        targets: Sequence[str] = (),
        *,
        ports: str | Sequence[int],
        include_files: Sequence[str | Path] = (),
        excludes: Sequence[str] = (),
        exclude_files: Sequence[str | Path] = (),
        blocklist_files: Sequence[str | Path] = (),
        allowlist_files: Sequence[str | Path] = (),
        default_blocklist: bool | Sequence[BlocklistEntry] = True,
        rate: str | float = DEFAULT_RATE,
        driver: str | None = None,
        interface: str | None = None,
        source_ip: str | IPv4Address | IPv6Address | None = None,
        source_ports: str | range | None = None,
        force_source_port: bool = False,
        gateway_mac: str | None = None,
        gateway_mac_ipv4: str | None = None,
        gateway_mac_ipv6: str | None = None,
        gateway_ip: str | IPv4Address | IPv6Address | None = None,
        source_mac: str | None = None,
        seed: str | int | None = None,
        shard: str | tuple[int, int] = (1, 1),
        wait: str | float = DEFAULT_WAIT,
        tx_threads: int | None = None,
        ttl: int | None = None,
        show_closed: bool = False,
        show_unreachable: bool = False,
        isolation: bool = True,
        netns: str | None = None,
        driver_options: Sequence[str] | Mapping[str, str] = (),
        probe: str = "tcp-syn",
        ping: bool = False,
        udp_payloads: Sequence[str] = (),
        udp_payload_files: Sequence[str] = (),
        udp_payload_data: Sequence[bytes] = (),
        udp_capture_bytes: int = DEFAULT_UDP_CAPTURE_BYTES,
        max_targets: str | int | None = None,
        retries: str | int = 0,
        retry_delay: str | float = DEFAULT_RETRY_DELAY,
        max_runtime: str | float | None = None,
        max_results: str | int | None = None,
        tcp_options: str = DEFAULT_TCP_OPTIONS,
    ) -> ScanConfig:
        """Build a config from command-line style text; raises ConfigError on bad input.

        Targets go through pyscan.blocklist: allowlist files restrict them (and stand in for
        them when none are given), excludes and blocklist files are subtracted, and the
        default blocklist is subtracted from every target not wholly inside one of its rows.
        `default_blocklist=False` is --no-default-blocklist; a sequence of entries replaces
        the shipped rows (tests use it to put a blocklisted row inside the lab).
        """
        try:
            selection = select_from_text(
                targets, include_files=include_files, excludes=excludes,
                exclude_files=exclude_files, blocklist_files=blocklist_files,
                allowlist_files=allowlist_files,
                default_blocklist_on=default_blocklist is not False,
                blocklist=None if isinstance(default_blocklist, bool) else default_blocklist,
            )
        except TargetError as error:
            raise ConfigError(str(error)) from None
        if not selection.asked:
            raise ConfigError("no targets given (accepted: arguments, --include-file FILE, "
                              "--allowlist-file FILE)")
        remaining = selection.targets
        if not remaining:
            took = [what for what, count in (("the allowlist", selection.outside_allowlist),
                                             ("the excludes", selection.excluded_count),
                                             ("the default blocklist", selection.left_out.count))
                    if count]
            plural = len(took) > 1 or took == ["the excludes"]
            removers = " and ".join(took) + (" remove" if plural else " removes")
            accepted = ("targets outside reserved space, or --no-default-blocklist"
                        if selection.left_out else "excludes that leave at least one target")
            raise ConfigError(
                f"no targets left: {removers} all {selection.asked.count} target "
                f"addresses (accepted: {accepted})"
            )
        # masscan's rule is about the IPv4 internet; IPv6 has its 2^32 cap (_check_family).
        if (remaining.family == 4 and remaining.count > MAX_TARGETS_WITHOUT_EXCLUDE
                and not selection.excluded and not selection.left_out):
            raise ConfigError(
                f"target set of {remaining.count} addresses is above "
                f"{MAX_TARGETS_WITHOUT_EXCLUDE}; give at least one --exclude to confirm "
                f"(accepted: a smaller set, or any --exclude such as 255.255.255.255)"
            )
        tcp_ports: tuple[int, ...]
        udp_ports: tuple[int, ...] = ()
        if isinstance(ports, str):
            tcp_ports, udp_ports = parse_port_spec(ports) if ports else ((), ())
        else:
            tcp_ports = tuple(ports)
        # port entries: TCP, UDP and the echo (probe="udp"/"icmp-echo" moves them later)
        entries = len(set(tcp_ports)) + len(set(udp_ports)) + (
            1 if ping or probe == "icmp-echo" else 0)
        cap = (parse_max_targets(max_targets, remaining.count * entries)
               if isinstance(max_targets, str) else max_targets)
        if isinstance(driver_options, Mapping):
            options = dict(driver_options)
        else:
            options = parse_driver_options(driver_options)
        payloads = (*(parse_payload_name(text) for text in udp_payloads),
                    *(parse_payload_file(text) for text in udp_payload_files),
                    *((None, payload_from_bytes(data)) for data in udp_payload_data))
        return cls(
            targets=remaining,
            excludes=selection.excluded,
            blocklist_note=selection.note,
            input_warnings=selection.warnings,
            ports=tcp_ports,
            udp_ports=udp_ports,
            ping=ping,
            udp_payloads=payloads,
            udp_capture_bytes=udp_capture_bytes,
            max_targets=cap,
            rate=parse_rate(rate) if isinstance(rate, str) else float(rate),
            driver=driver,
            interface=parse_interface(interface) if interface is not None else None,
            source_ip=(
                parse_source_ip(source_ip) if isinstance(source_ip, str) else source_ip
            ),
            source_ports=(
                parse_source_ports(source_ports) if isinstance(source_ports, str)
                else source_ports
            ),
            force_source_port=force_source_port,
            gateway_mac=_family_gateway_mac(remaining.family, gateway_mac, gateway_mac_ipv4,
                                            gateway_mac_ipv6),
            gateway_ip=(
                parse_gateway_ip(gateway_ip) if isinstance(gateway_ip, str) else gateway_ip
            ),
            source_mac=parse_mac(source_mac) if source_mac is not None else None,
            seed=(
                parse_seed(seed) if isinstance(seed, str)
                else seed if seed is not None
                else _random_seed()
            ),
            shard=parse_shard(shard) if isinstance(shard, str) else shard,
            wait=parse_wait(wait) if isinstance(wait, str) else float(wait),
            tx_threads=tx_threads,
            ttl=ttl,
            show_closed=show_closed,
            show_unreachable=show_unreachable,
            isolation=isolation,
            netns=parse_netns(netns) if netns is not None else None,
            driver_options=options,
            probe=probe,
            retries=parse_retries(retries) if isinstance(retries, str) else retries,
            retry_delay=(parse_retry_delay(retry_delay) if isinstance(retry_delay, str)
                         else float(retry_delay)),
            max_runtime=(parse_max_runtime(max_runtime) if isinstance(max_runtime, str)
                         else max_runtime),
            max_results=(parse_max_results(max_results) if isinstance(max_results, str)
                         else max_results),
            tcp_options=parse_tcp_options(tcp_options),
        )
