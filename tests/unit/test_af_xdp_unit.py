"""The AF_XDP driver's Python side without root or network: option checks,
the one-line description, and what available() says when privileges are missing."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from pyscan.drivers import DRIVERS, DriverError, DriverRequest
from pyscan.drivers.af_xdp import (
    XDP_ATTACH_MODES,
    XDP_MODES,
    default_rx_ring_size,
    describe,
    fit_rx_ring_size,
)
from pyscan.native import XDP_ATTACH_MODES as NATIVE_ATTACH_MODES
from pyscan.native import XDP_BIND_MODES


def test_driver_and_native_agree_on_mode_names() -> None:
    assert set(XDP_MODES) == set(XDP_BIND_MODES)
    assert set(XDP_ATTACH_MODES) == set(NATIVE_ATTACH_MODES)


def request(**options: str) -> DriverRequest:
    return DriverRequest(interface="nosuchif0", ifindex=0, tx_threads=1, want_rx=True,
                         source_ip=IPv4Address("198.18.0.1"), source_ports=range(40000, 40016),
                         cookie_key=bytes(16), options=options)


@pytest.mark.parametrize("options,message", [
    ({"xdp-mode": "fast"}, "xdp-mode='fast' is invalid: accepted auto | zerocopy | copy"),
    ({"xdp_attach": "hw"}, "xdp_attach='hw' is invalid: accepted auto | native | generic"),
    ({"ring-size": "1000"}, "ring-size=1000 is invalid"),
    ({"ring_size": "32"}, "ring_size='32' is invalid"),
    ({"rx-ring-size": "3000"}, "rx-ring-size=3000 is invalid"),
    ({"rx_ring_size": "131072"}, "rx_ring_size='131072' is invalid"),
    ({"frame-size": "3000"}, "frame-size=3000 is invalid"),
    ({"batch": "0"}, "batch='0' is invalid: accepted integers 1..1024"),
    ({"ring-size": "128", "batch": "256"}, "batch='256' is invalid: accepted integers 1..128"),
])
def test_bad_options_are_refused_naming_the_value(options: dict[str, str], message: str) -> None:
    with pytest.raises(DriverError) as caught:
        DRIVERS["af-xdp"].open(request(**options))
    assert message in str(caught.value)


def test_description_says_what_was_chosen() -> None:
    info = {"zerocopy": False, "generic_attach": True, "queue_count": 4, "tx_queues": 2,
            "ring_size": 1024, "frame_size": 2048, "prog_id": 77, "rx_queues": 4,
            "rx_ring_size": 8192,
            "warnings": ["native XDP refused by the driver, using generic attach"]}
    line = describe("eth1", info, with_rx=True)
    assert line.startswith("af-xdp on eth1: copy mode, 2 TX queue(s), rings of 1024 x 2048 B")
    assert "generic (skb) attach, prog 77" in line and "4 RX queue(s) of 8192 frames" in line
    assert line.endswith("warning: native XDP refused by the driver, using generic attach")
    assert "\n" not in line
    zero_copy = describe("eth1", {**info, "zerocopy": True, "warnings": []}, with_rx=False)
    assert "zero-copy" in zero_copy and "filter" not in zero_copy and "warning" not in zero_copy


def test_unavailable_without_capabilities_says_which(monkeypatch: pytest.MonkeyPatch) -> None:
    import pyscan.privileges

    monkeypatch.setattr(pyscan.privileges, "effective_capabilities", lambda *a, **k: 0)
    available, reason = DRIVERS["af-xdp"].available()
    assert available is False
    assert "CAP_NET_RAW" in reason and "CAP_NET_ADMIN" in reason and "CAP_BPF" in reason


def test_default_rx_ring_spreads_one_budget_over_the_rx_queues() -> None:
    # One RX thread serves every socket, so the budget that absorbs its pauses is the sum.
    assert default_rx_ring_size(1) == 32768
    assert default_rx_ring_size(3) == 8192   # 10922 rounded down to a power of two
    assert default_rx_ring_size(16) == 2048
    assert default_rx_ring_size(64) == 2048  # never below the TX default


def test_default_rx_ring_fits_the_locked_memory_limit() -> None:
    mib = 1 << 20
    # Unlimited (root, CAP_IPC_LOCK): the default stands.
    assert fit_rx_ring_size(32768, 1, 4 * mib, 2048, None) == 32768
    # Debian's 8 MiB default: 4 MiB of TX UMEM leave 2048 RX frames of 2048 B.
    assert fit_rx_ring_size(32768, 1, 4 * mib, 2048, 8 * mib) == 2048
    assert fit_rx_ring_size(32768, 2, 4 * mib, 2048, 8 * mib) == 1024
    assert fit_rx_ring_size(32768, 1, 4 * mib, 2048, 1 << 40) == 32768  # never above wanted
    assert fit_rx_ring_size(32768, 1, 4 * mib, 2048, 4 * mib) == 64     # open will refuse
    assert fit_rx_ring_size(32768, 0, 4 * mib, 2048, 4 * mib) == 32768  # TX only: no RX UMEM
