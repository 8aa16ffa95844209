"""The driver registry is the one source: every descriptor is consistent with its driver and
the native bounds, and privileges, config, the automatic order, the help and the exit codes
are derived from it (a new row is picked up everywhere without another edit)."""

from __future__ import annotations

import pytest

import pyscan
from pyscan import drivers
from pyscan.config import ConfigError, ScanConfig
from pyscan.drivers import (
    DESCRIPTORS,
    DRIVERS,
    REGISTRY,
    DriverDescriptor,
    DriverError,
    DriverOption,
    DriverOptionError,
)
from pyscan.drivers.af_xdp import AfXdpUnusable
from pyscan.errors import (
    EXIT_BAD_INPUT,
    EXIT_CODES,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NO_PERMISSION,
    PrivilegeError,
    ScanError,
    exit_code,
)
from pyscan.errors import (
    ConfigError as RootConfigError,
)
from pyscan.privileges import CAPABILITY_BITS, required_capabilities


def test_one_row_per_driver_module() -> None:
    import pkgutil

    modules = {m.name for m in pkgutil.iter_modules(drivers.__path__)} - {"base"}
    assert {row.factory.__module__.rsplit(".", 1)[1] for row in REGISTRY} == modules
    assert len({row.name for row in REGISTRY}) == len(REGISTRY)
    assert list(DRIVERS) == list(DESCRIPTORS) == list(drivers.names())
    for row in REGISTRY:
        assert DRIVERS[row.name].name == row.name
        assert set(row.capabilities) <= set(CAPABILITY_BITS), row.name
        assert row.summary and "\n" not in row.summary


def test_every_default_passes_its_own_rule() -> None:
    for row in REGISTRY:
        keys = [option.key for option in row.options]
        assert len(keys) == len(set(keys)), row.name
        for option in row.options:
            if option.default is not None:
                assert option.parse(option.name, str(option.default)) == option.default
        parsed = row.parse_options({})
        assert parsed == {o.key: o.default for o in row.options if o.default is not None}


def test_descriptor_bounds_match_the_native_ones() -> None:
    native = pytest.importorskip("pyscan.native", reason="native extension not built")
    assert DESCRIPTORS["null"].option("slots").high == native.NULL_MAX_SLOTS  # type: ignore[union-attr]
    assert DESCRIPTORS["pfring-zc"].option("rx-queues").high == native.PFRING_ZC_MAX_RX_QUEUES  # type: ignore[union-attr]


def test_automatic_order_and_fallback_policy() -> None:
    assert [row.name for row in drivers.automatic_order()] == ["xdp-live", "af-xdp", "af-packet"]
    assert DESCRIPTORS["af-xdp"].fallback_on == (AfXdpUnusable,)
    assert DESCRIPTORS["af-packet"].fallback_on == ()
    assert "xdp-live > af-xdp > af-packet" in drivers.names_help()
    for name in drivers.names():
        assert name in drivers.names_help()
    for row in REGISTRY:
        for option in row.options:
            assert option.name in drivers.options_help()
            assert option.name in row.help_text() and option.help in row.help_text()


def test_engine_batch_comes_from_the_descriptor() -> None:
    assert DESCRIPTORS["af-xdp"].engine_batch({}) == 64
    assert DESCRIPTORS["af-xdp"].engine_batch({"batch": "128"}) == 128
    assert DESCRIPTORS["af-packet"].engine_batch({"batch": "128"}) == 64  # not its option


def test_option_errors_name_the_value_and_what_is_accepted() -> None:
    option = DriverOption("ring-size", "power-of-two", "ring", 2048, 64, 65536)
    assert option.parse("ring_size", "0x800") == 2048
    with pytest.raises(DriverOptionError, match=r"ring_size=1000 is invalid: accepted a "
                                                r"power of two from 64 to 65536"):
        option.parse("ring_size", "1000")
    with pytest.raises(DriverOptionError, match=r"ring-size='big' is invalid: accepted "
                                                r"integers 64\.\.65536"):
        option.parse("ring-size", "big")
    error = DriverOptionError("x")
    assert isinstance(error, DriverError) and isinstance(error, ConfigError)


def test_privileges_are_the_descriptor_s_plus_isolation_and_netns() -> None:
    for row in REGISTRY:
        bare = required_capabilities(row.name, isolation=False, netns=None)
        assert bare == dict(row.capabilities)
        isolated = required_capabilities(row.name, isolation=True, netns="lab")
        assert ("CAP_NET_ADMIN" in isolated) is (row.sends or "CAP_NET_ADMIN" in bare)
        assert "--netns lab" in isolated["CAP_SYS_ADMIN"]


class FakeDriver:
    name = "fake"

    def available(self) -> tuple[bool, str]:
        return True, "a test row"

    def open(self, request: object) -> object:
        raise DriverError("not for opening")


def test_a_new_row_is_picked_up_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    row = DriverDescriptor(
        name="fake", summary="a test row", factory=FakeDriver,
        capabilities={"CAP_NET_RAW": "the fake driver opens raw sockets"},
        options=(DriverOption("depth", "int", "how deep", 8, 1, 16),),
        automatic_rank=5)
    monkeypatch.setitem(DESCRIPTORS, "fake", row)
    monkeypatch.setitem(DRIVERS, "fake", row.factory())
    assert "fake" in drivers.names() and "fake" in drivers.names_help()
    assert drivers.automatic_order()[-1] is row
    config = ScanConfig.parse(["198.19.0.1"], ports="80", driver="fake",
                              driver_options=["depth=4"])
    assert config.driver == "fake" and not config.is_dry_run
    with pytest.raises(ConfigError, match=r"depth='17' is invalid: accepted integers 1\.\.16"):
        ScanConfig.parse(["198.19.0.1"], ports="80", driver="fake", driver_options=["depth=17"])
    assert required_capabilities("fake", isolation=False, netns=None) == {
        "CAP_NET_RAW": "the fake driver opens raw sockets"}
    assert ("fake", True, "a test row") in drivers.describe_drivers()
    assert "fake: depth" in drivers.options_help()


def test_one_exception_root_and_one_exit_code_table() -> None:
    from pyscan.firewall import FirewallError
    from pyscan.netlink import NetlinkError

    assert pyscan.Error is pyscan.errors.Error and "Error" in pyscan.__all__
    assert pyscan.ConfigError is RootConfigError is ConfigError
    cases = {
        RootConfigError("x"): EXIT_BAD_INPUT,
        DriverOptionError("x"): EXIT_BAD_INPUT,
        PrivilegeError("x"): EXIT_NO_PERMISSION,
        ScanError("x"): EXIT_FAILED,
        DriverError("x"): EXIT_FAILED,
        AfXdpUnusable("x"): EXIT_FAILED,
        NetlinkError("x"): EXIT_FAILED,
        FirewallError("x"): EXIT_FAILED,
        KeyboardInterrupt(): EXIT_INTERRUPTED,
        OSError("x"): EXIT_FAILED,
    }
    for error, code in cases.items():
        assert exit_code(error) == code, type(error).__name__
        if not isinstance(error, (KeyboardInterrupt, OSError)):
            assert isinstance(error, pyscan.Error), type(error).__name__
    # The built-in bases stay, so `except ValueError` / `except PermissionError` still work.
    assert isinstance(RootConfigError("x"), ValueError)
    assert isinstance(PrivilegeError("x"), PermissionError)
    assert set(EXIT_CODES.values()) == {1, 2, 77, 130}


@pytest.mark.parametrize(("probes", "accepted"), [
    (("tcp-syn",), "SYN-ACK/RST to the source ports and ICMP unreachables quoting TCP probes"),
    (("udp",), "UDP replies to the source ports, ICMP echo replies and ICMP unreachables "
               "quoting UDP or echo probes"),
    (("icmp-echo",), "ICMP echo replies and ICMP unreachables quoting echo probes"),
    (("tcp-syn", "udp", "icmp-echo"), "SYN-ACK/RST and UDP replies to the source ports, ICMP "
     "echo replies and ICMP unreachables quoting TCP, UDP or echo probes"),
])
def test_af_packet_start_line_says_what_its_filter_accepts(probes: tuple[str, ...],
                                                           accepted: str) -> None:
    """The protocols come from the probe types the way the filter's do (reply_protocols:
    a UDP probe's replies come as UDP or ICMP, so its filter takes echo replies too)."""
    from pyscan.drivers.af_packet import filter_text
    from pyscan.probes import PROBES, reply_protocols

    assert filter_text(reply_protocols(tuple(PROBES[name].id for name in probes))) == accepted
