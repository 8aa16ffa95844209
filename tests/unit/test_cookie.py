"""The probe cookie (bpf/cookie.h via native/cookie.h) against SipHash references."""

from __future__ import annotations

import random
import struct
from ipaddress import IPv4Address

import pytest
import siphashc

from pyscan.native import cookie, cookie_siphash

PAPER_KEY = bytes(range(16))


def test_reference_library_matches_the_siphash_paper() -> None:
    """Appendix A of Aumasson & Bernstein: key 00..0f, message 00..0e."""
    assert siphashc.siphash(PAPER_KEY, bytes(range(15))) == 0xA129CA6149BE45E5


def test_twelve_byte_paper_vector() -> None:
    """Message 00..0b is the tuple saddr 0.1.2.3, daddr 4.5.6.7, ports 0x0809 and 0x0a0b
    in network byte order; the reference implementation's output, read little-endian."""
    expected = 0x751E8FBC860EE5FB
    assert siphashc.siphash(PAPER_KEY, bytes(range(12))) == expected
    assert cookie_siphash(PAPER_KEY, "0.1.2.3", "4.5.6.7", 0x0809, 0x0A0B) == expected
    assert cookie(PAPER_KEY, "0.1.2.3", "4.5.6.7", 0x0809, 0x0A0B) == expected & 0xFFFFFFFF


def test_random_tuples_match_siphashc() -> None:
    rng = random.Random(2024)
    for _ in range(3000):
        key = rng.randbytes(16)
        saddr, daddr = IPv4Address(rng.getrandbits(32)), IPv4Address(rng.getrandbits(32))
        sport, dport = rng.getrandbits(16), rng.getrandbits(16)
        message = saddr.packed + daddr.packed + struct.pack("!HH", sport, dport)
        reference = siphashc.siphash(key, message)
        assert cookie_siphash(key, saddr, daddr, sport, dport) == reference
        assert cookie(key, saddr, daddr, sport, dport) == reference & 0xFFFFFFFF


def test_edge_values_match_siphashc() -> None:
    for key in (bytes(16), b"\xff" * 16):
        for ip in ("0.0.0.0", "255.255.255.255", "198.18.0.1"):
            for port in (0, 1, 0x8000, 65535):
                message = IPv4Address(ip).packed * 2 + struct.pack("!HH", port, port)
                assert cookie_siphash(key, ip, ip, port, port) == siphashc.siphash(key, message)


def test_every_field_and_key_byte_changes_the_cookie() -> None:
    base = (PAPER_KEY, "198.18.0.1", "198.19.0.5", 40000, 443)
    reference = cookie(*base)
    assert cookie(PAPER_KEY, "198.18.0.2", "198.19.0.5", 40000, 443) != reference
    assert cookie(PAPER_KEY, "198.18.0.1", "198.19.0.6", 40000, 443) != reference
    assert cookie(PAPER_KEY, "198.18.0.1", "198.19.0.5", 40001, 443) != reference
    assert cookie(PAPER_KEY, "198.18.0.1", "198.19.0.5", 40000, 444) != reference
    # direction matters: the reply's tuple is the probe's reversed
    assert cookie(PAPER_KEY, "198.19.0.5", "198.18.0.1", 443, 40000) != reference
    for i in range(16):
        key = bytearray(PAPER_KEY)
        key[i] ^= 1
        assert cookie(bytes(key), *base[1:]) != reference


def test_addresses_accept_text_ints_and_objects() -> None:
    as_text = cookie(PAPER_KEY, "198.18.0.1", "198.19.0.5", 1, 2)
    as_int = cookie(PAPER_KEY, int(IPv4Address("198.18.0.1")), int(IPv4Address("198.19.0.5")),
                    1, 2)
    as_obj = cookie(PAPER_KEY, IPv4Address("198.18.0.1"), IPv4Address("198.19.0.5"), 1, 2)
    assert as_text == as_int == as_obj


@pytest.mark.parametrize(("args", "message"), [
    ((bytes(15), "1.2.3.4", "1.2.3.5", 1, 2), "cookie key .* is not 16 bytes"),
    ((PAPER_KEY, "1.2.3", "1.2.3.5", 1, 2), "source address '1.2.3' is not an IPv4 address"),
    ((PAPER_KEY, "1.2.3.4", "::1", 1, 2), "destination address '::1' is not an IPv4"),
    ((PAPER_KEY, "1.2.3.4", "1.2.3.5", 65536, 2), "source port 65536 is out of range"),
    ((PAPER_KEY, "1.2.3.4", "1.2.3.5", 1, -2), "destination port -2 is out of range"),
])
def test_bad_input_is_rejected(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cookie(*args)  # type: ignore[arg-type]
