"""xdp-live options and privileges, checked before anything is loaded (no root needed)."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from pyscan.drivers import DRIVERS, DriverError, DriverRequest
from pyscan.privileges import missing_capabilities, required_capabilities


def _request(**options: str) -> DriverRequest:
    return DriverRequest(interface="veth0", ifindex=7, tx_threads=1, want_rx=True,
                         source_ip=IPv4Address("198.18.0.1"), source_ports=range(40000, 40064),
                         cookie_key=bytes(16), options=options)


@pytest.mark.parametrize(("options", "named"), [
    ({"batch": "0"}, "batch='0'"),
    ({"batch": "2048"}, "batch='2048'"),
    ({"kernel-batch": "300"}, "kernel-batch='300'"),
    ({"pin": "maybe"}, "pin='maybe'"),
    ({"xdp-attach": "hw"}, "xdp-attach='hw'"),
])
def test_a_bad_option_is_refused_naming_it_and_what_is_accepted(options: dict[str, str],
                                                                 named: str) -> None:
    pytest.importorskip("pyscan._native")
    with pytest.raises(DriverError, match="accepted") as caught:
        DRIVERS["xdp-live"].open(_request(**options))
    assert named in str(caught.value)


def test_it_needs_bpf_perfmon_and_net_admin_which_cap_sys_admin_covers_but_net_admin() -> None:
    needs = required_capabilities("xdp-live", isolation=False, netns=None)
    assert {"CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN", "CAP_NET_RAW"} == set(needs)
    sys_admin = 1 << 21
    assert missing_capabilities(needs, effective=sys_admin) == ["CAP_NET_RAW", "CAP_NET_ADMIN"]
    assert missing_capabilities(needs, effective=0) == list(needs)


def test_its_registry_row_gives_the_engine_one_bpf_prog_run_per_1024_probes() -> None:
    from pyscan.drivers import automatic_order, descriptor, names
    from pyscan.drivers.xdp_live import XdpLiveUnusable

    row = descriptor("xdp-live")
    assert "xdp-live" in names() and DRIVERS["xdp-live"].name == "xdp-live"
    assert row.engine_batch({}) == 1024
    assert row.engine_batch({"batch": "256"}) == 256
    # tried first; an interface that cannot take XDP redirects falls back to af-xdp
    assert [r.name for r in automatic_order()][:2] == ["xdp-live", "af-xdp"]
    assert XdpLiveUnusable in row.fallback_on
