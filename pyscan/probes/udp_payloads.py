"""Built-in UDP probe payloads, one per protocol, written from the RFCs, and the user's own.

A UDP port is only "open" when something answers, and most services answer only a request
they understand, so each well-known port gets its protocol's smallest harmless request
(masscan's and zmap's practice). Payloads reach the C udp module as records
(``payload_records``: struct pyscan_udp_payload_record of pyscan/native/probe.h, then the
bytes). A payload flagged ``echoes_id`` starts with a 16-bit id the answer repeats (DNS and
NetBIOS name service headers): the module writes the cookie there and checks it in replies.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pyscan.errors import ConfigError

__all__ = [
    "BUILTIN", "DEFAULT_BY_PORT", "MAX_PAYLOAD", "UdpPayload", "parse_payload_file",
    "parse_payload_name", "payload_for", "payload_from_bytes", "payload_records",
]

MAX_PAYLOAD = 512  # PYSCAN_UDP_PAYLOAD_MAX (probe.h)
_FLAG_ECHOES_ID = 1  # PYSCAN_UDP_PAYLOAD_DNS


@dataclass(frozen=True)
class UdpPayload:
    name: str
    data: bytes
    echoes_id: bool = False  # bytes 0..1 are an id the answer repeats (DNS header)
    description: str = ""


def _dns_version_bind() -> bytes:
    # RFC 1035 4.1: id 0 (the cookie's), flags 0 (standard query), 1 question; the name
    # version.bind, type TXT (16), class CHAOS (3): what BIND, Unbound, dnsmasq answer.
    header = struct.pack("!HHHHHH", 0, 0, 1, 0, 0, 0)
    return header + b"\x07version\x04bind\x00" + struct.pack("!HH", 16, 3)


def _ntp_client() -> bytes:
    # RFC 5905 7.3: LI 0, version 4, mode 3 (client); every other field zero. Every NTP
    # server answers it, unlike mode 6/7 queries (most refuse those: "restrict noquery").
    return bytes([0x23]) + bytes(47)


def _ntp_readvar() -> bytes:
    # RFC 9327 (NTP mode 6): version 2, mode 6, opcode 2 READVAR, sequence 1, association
    # 0: the system variables, version string included. Not monlist (mode 7).
    return struct.pack("!BBHHHHH", 0x16, 0x02, 1, 0, 0, 0, 0)


def _ber(tag: int, content: bytes) -> bytes:
    assert len(content) < 128  # short-form lengths are all these messages need
    return bytes([tag, len(content)]) + content


def _snmp_get_sysdescr(version: int) -> bytes:
    # RFC 1157 / RFC 3416: GetRequest for sysDescr.0 (1.3.6.1.2.1.1.1.0) with community
    # "public"; version 0 = SNMPv1, 1 = SNMPv2c. Request id 1.
    oid = _ber(0x06, bytes([0x2B, 6, 1, 2, 1, 1, 1, 0]))
    varbind = _ber(0x30, oid + b"\x05\x00")
    pdu = _ber(0xA0, _ber(0x02, b"\x01") + _ber(0x02, b"\x00") + _ber(0x02, b"\x00")
               + _ber(0x30, varbind))
    return _ber(0x30, _ber(0x02, bytes([version])) + _ber(0x04, b"public") + pdu)


def _ssdp_msearch() -> bytes:
    # UPnP Device Architecture 1.1, 1.3.2: a unicast M-SEARCH for every service.
    return (b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n"
            b'MAN: "ssdp:discover"\r\nMX: 1\r\nST: ssdp:all\r\n\r\n')


def _netbios_node_status() -> bytes:
    # RFC 1002 4.2.17: NODE STATUS REQUEST for the name "*" (first-level encoded: each
    # nibble + 'A'), type NBSTAT (0x21), class IN; id 0 (the cookie's).
    name = b"*" + bytes(15)
    encoded = bytes(c for byte in name for c in (0x41 + (byte >> 4), 0x41 + (byte & 15)))
    return (struct.pack("!HHHHHH", 0, 0, 1, 0, 0, 0) + bytes([32]) + encoded + b"\x00"
            + struct.pack("!HH", 0x21, 1))


BUILTIN: dict[str, UdpPayload] = {
    "dns": UdpPayload("dns", _dns_version_bind(), True, "DNS TXT query for version.bind (CHAOS)"),
    "ntp": UdpPayload("ntp", _ntp_client(), False, "NTPv4 client request (mode 3)"),
    "ntp-version": UdpPayload("ntp-version", _ntp_readvar(), False,
                              "NTP mode 6 READVAR (system variables, version string)"),
    "snmp": UdpPayload("snmp", _snmp_get_sysdescr(1), False,
                       "SNMPv2c get sysDescr.0, community public"),
    "snmp-v1": UdpPayload("snmp-v1", _snmp_get_sysdescr(0), False,
                          "SNMPv1 get sysDescr.0, community public"),
    "ssdp": UdpPayload("ssdp", _ssdp_msearch(), False, "SSDP M-SEARCH ssdp:all"),
    "netbios": UdpPayload("netbios", _netbios_node_status(), True,
                          "NetBIOS name service node status request"),
    "empty": UdpPayload("empty", b"", False, "an empty datagram"),
}

DEFAULT_BY_PORT: dict[int, str] = {53: "dns", 123: "ntp", 137: "netbios", 161: "snmp",
                                   1900: "ssdp"}


def _split_port(text: str, what: str) -> tuple[int | None, str]:
    head, sep, rest = text.partition(":")
    if sep and head.isascii() and head.isdigit():  # "²" is a digit to str.isdigit
        port = int(head)
        if not 0 <= port <= 65535:
            raise ConfigError(f"bad {what} {text!r}: port {port} is outside 0-65535")
        return port, rest
    return None, text


def parse_payload_name(text: str) -> tuple[int | None, UdpPayload]:
    """'[PORT:]NAME' -> (port or None for every UDP port, the built-in payload)."""
    port, name = _split_port(text.strip(), "UDP payload")
    if name not in BUILTIN:
        raise ConfigError(f"unknown UDP payload {name!r} (accepted: {', '.join(BUILTIN)})")
    return port, BUILTIN[name]


def parse_payload_file(text: str) -> tuple[int | None, UdpPayload]:
    """'[PORT:]FILE' -> (port or None, the file's bytes). A file named *.hex holds hex
    digits (whitespace ignored); any other file is sent as it is."""
    port, path = _split_port(text.strip(), "UDP payload file")
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot read UDP payload file {path!r}: {error.strerror}") from None
    if path.endswith(".hex"):
        try:
            data = bytes.fromhex("".join(data.decode("ascii").split()))
        except (UnicodeDecodeError, ValueError):
            raise ConfigError(f"UDP payload file {path!r} is not hex (accepted: pairs of hex "
                              "digits, whitespace ignored; name the file otherwise than "
                              "*.hex to send its bytes as they are)") from None
    if len(data) > MAX_PAYLOAD:
        raise ConfigError(f"UDP payload file {path!r} has {len(data)} bytes (accepted: at "
                          f"most {MAX_PAYLOAD})")
    return port, UdpPayload(f"file:{path}", data)


def payload_from_bytes(data: bytes) -> UdpPayload:
    """A payload given inline (zmap's --probe-args=text: or hex:)."""
    if len(data) > MAX_PAYLOAD:
        raise ConfigError(f"UDP payload of {len(data)} bytes is too long (accepted: at most "
                          f"{MAX_PAYLOAD})")
    return UdpPayload("inline", bytes(data))


def payload_for(port: int, overrides: Iterable[tuple[int | None, UdpPayload]]) -> UdpPayload | None:
    """The payload a UDP probe to ``port`` carries: the last override naming the port, else
    the last one for every port, else the built-in default of the port, else None (an empty
    datagram)."""
    chosen: UdpPayload | None = None
    for_all: UdpPayload | None = None
    for override_port, payload in overrides:
        if override_port == port:
            chosen = payload
        elif override_port is None:
            for_all = payload
    if chosen is not None:
        return chosen
    if for_all is not None:
        return for_all
    name = DEFAULT_BY_PORT.get(port)
    return BUILTIN[name] if name else None


def payload_records(payloads: Mapping[int, UdpPayload]) -> bytes:
    """The C udp module's probe_args: one record per port (pyscan_udp_payload_record)."""
    out = bytearray()
    for port, payload in sorted(payloads.items()):
        flags = _FLAG_ECHOES_ID if payload.echoes_id else 0
        out += struct.pack("=HHB3x", port, len(payload.data), flags) + payload.data
    return bytes(out)
