"""What the ring drivers share from pyscan.drivers.base: the not-built check, the TX thread
refusal and releasing every ring opened so far when open() fails half-way (no root)."""

from __future__ import annotations

import ipaddress

import pytest

from pyscan.drivers import DRIVERS, DriverError, DriverRequest
from pyscan.drivers.base import close_rings, native_built, require_tx_threads

native = pytest.importorskip("pyscan.native", reason="native extension not built")


def _request(tx_threads: int, **options: str) -> DriverRequest:
    return DriverRequest(interface="none", ifindex=0, tx_threads=tx_threads, want_rx=False,
                         source_ip=ipaddress.IPv4Address("198.18.0.1"),
                         source_ports=range(40000, 40064), cookie_key=bytes(16),
                         options=options)


def test_the_extension_is_built_here_and_the_null_driver_says_so() -> None:
    assert native_built() == (True, "")
    assert DRIVERS["null"].available() == (True, "generates frames in memory, sends nothing")


@pytest.mark.parametrize("threads", [0, -1])
def test_no_tx_thread_is_refused_by_name(threads: int) -> None:
    with pytest.raises(DriverError, match=f"tx_threads {threads} is invalid: accepted 1 or more"):
        require_tx_threads(_request(threads))
    with pytest.raises(DriverError, match=f"tx_threads {threads} is invalid"):
        DRIVERS["null"].open(_request(threads))
    require_tx_threads(_request(1))


def test_close_rings_closes_each_ring_once_and_passes_over_none() -> None:
    rings = [native.open_null_tx(64), native.open_null_tx(64)]
    close_rings([*rings, None])
    assert all(ring.closed for ring in rings)
    close_rings(rings)  # closing again is harmless
    assert all(ring.closed for ring in rings)


def test_a_null_session_releases_its_rings_through_close_rings() -> None:
    session = DRIVERS["null"].open(_request(2, slots="64"))
    rings = list(session.tx_rings)
    assert len(rings) == 2 and not any(ring.closed for ring in rings)
    session.close()
    assert all(ring.closed for ring in rings) and session.tx_rings == []
