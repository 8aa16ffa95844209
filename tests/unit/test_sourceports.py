"""Source-port safety: the host's ports read from /proc, and the refusal rule.

The fixture tree tests/unit/fixtures/proc holds real-format /proc files: LISTEN sockets on
22, 8080, 62000 (IPv4) and 443, 63000 (IPv6); established or TIME_WAIT sockets on 61000,
50000 and 61234 that must not count; ephemeral range 32768-60999 with 40000-40255 and 50000
reserved.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pyscan.sourceports import (
    HostPorts,
    SourcePortError,
    check_source_ports,
    choose_source_ports,
    format_ports,
    read_host_ports,
    source_port_problems,
    suggest_source_ports,
)

if TYPE_CHECKING:
    from pyscan.config import ScanConfig

FIXTURE_PROC = Path(__file__).parent / "fixtures" / "proc"


@pytest.fixture
def host() -> HostPorts:
    return read_host_ports(FIXTURE_PROC)


def test_fixture_tables_are_read_exactly(host: HostPorts) -> None:
    assert host.ephemeral == range(32768, 61000)
    assert host.reserved == frozenset(range(40000, 40256)) | {50000}
    # LISTEN only; established (61000, 61234) and TIME_WAIT (50000) sockets are not listeners
    assert host.listening == {22, 8080, 62000, 443, 63000}


def test_missing_tcp6_table_means_no_ipv6_listeners(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    shutil.copytree(FIXTURE_PROC, proc)
    (proc / "thread-self" / "net" / "tcp6").unlink()
    (proc / "sys" / "net" / "ipv4" / "ip_local_reserved_ports").unlink()
    host = read_host_ports(proc)
    assert host.listening == {22, 8080, 62000}
    assert host.reserved == frozenset()


def test_unreadable_sysctl_is_an_error_not_a_guess(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    shutil.copytree(FIXTURE_PROC, proc)
    (proc / "sys" / "net" / "ipv4" / "ip_local_port_range").write_text("garbage\n")
    with pytest.raises(OSError, match="ip_local_port_range"):
        read_host_ports(proc)


@pytest.mark.parametrize(("ports", "named"), [
    (range(22, 23), ["port 22 is below 1024"]),
    (range(1, 1024), ["ports 1-1023 are below 1024"]),
    (range(40300, 40301), ["port 40300 is in the kernel's ephemeral range 32768-60999"]),
    (range(8080, 8081), ["port 8080 has a listening TCP socket"]),
    (range(443, 444), ["port 443 is below 1024", "port 443 has a listening TCP socket"]),
    (range(62990, 63010), ["port 63000 has a listening TCP socket"]),
    (range(61990, 63010), ["ports 62000, 63000 have listening TCP sockets"]),
    (range(1000, 33000), ["ports 1000-1023 are below 1024", "ports 32768-32999 are in the",
                          "port 8080 has a listening"]),
])
def test_unsafe_ranges_name_their_ports(host: HostPorts, ports: range,
                                        named: list[str]) -> None:
    with pytest.raises(SourcePortError) as error:
        check_source_ports(ports, host)
    message = str(error.value)
    assert "\n" not in message
    assert "--force-source-port" in message
    for phrase in named:
        assert phrase in message


@pytest.mark.parametrize("ports", [
    range(61000, 61256),   # the default's neighbourhood; 61000 is only an outgoing socket
    range(40000, 40256),   # reserved: the kernel never hands these out as ephemeral ports
    range(50000, 50001),   # reserved, and its socket is in TIME_WAIT, not listening
    range(1024, 8080),     # below the ephemeral range, stops short of the listener
    range(63001, 65536),
])
def test_safe_ranges_pass(host: HostPorts, ports: range) -> None:
    check_source_ports(ports, host)
    assert source_port_problems(ports, host) == []


def test_reserved_ports_split_the_ephemeral_conflict(host: HostPorts) -> None:
    problems = source_port_problems(range(39990, 40266), host)
    assert problems == ["ports 39990-39999, 40256-40265 are in the kernel's ephemeral range "
                        "32768-60999 (the host's own connections)"]


def test_refusal_suggests_a_safe_range_of_the_same_size(host: HostPorts) -> None:
    with pytest.raises(SourcePortError, match=r"like 61000-61255,") as error:
        check_source_ports(range(40300, 40556), host)
    suggested = str(error.value).split("like ")[1].split(",")[0]
    low, high = (int(part) for part in suggested.split("-"))
    check_source_ports(range(low, high + 1), host)


def test_message_without_isolation_names_the_other_harm(host: HostPorts) -> None:
    with pytest.raises(SourcePortError, match="replies would reach the host's sockets"):
        check_source_ports(range(22, 23), host, isolation=False)


def test_suggestion_skips_listeners_and_wraps_around() -> None:
    host = HostPorts(ephemeral=range(1024, 65000), listening=frozenset({65100}))
    assert suggest_source_ports(100, host) == range(65000, 65100)
    assert suggest_source_ports(400, host) == range(65101, 65501)
    assert suggest_source_ports(500, host) is None  # only 100 + 435 free, never 500 in a row
    with pytest.raises(SourcePortError, match="no 500 consecutive free source ports"):
        choose_source_ports(host, 500)


def test_chosen_default_is_safe_and_above_the_ephemeral_range(host: HostPorts) -> None:
    for _ in range(200):
        ports = choose_source_ports(host)
        assert len(ports) == 256
        assert ports.start >= 61000
        assert source_port_problems(ports, host) == []


def test_default_moves_below_when_the_ephemeral_range_reaches_the_top() -> None:
    host = HostPorts(ephemeral=range(20000, 65536), listening=frozenset({1024, 1030}))
    ports = choose_source_ports(host)
    assert ports == range(1031, 1287)


def test_format_ports_compacts_and_truncates() -> None:
    assert format_ports({22, 80, 81, 82}) == "22, 80-82"
    assert format_ports({1, 3, 5, 7, 9, 10}, limit=2) == "1, 3 and 4 more"


def test_real_proc_sees_a_listener_this_test_opens() -> None:
    """The reader against this machine's own /proc, with a socket whose state we know."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    bound = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        bound.bind(("127.0.0.1", 0))  # bound, never listening
        host = read_host_ports()
        listening_port = listener.getsockname()[1]
        assert listening_port in host.listening
        assert bound.getsockname()[1] not in host.listening
        assert 1 <= host.ephemeral.start <= host.ephemeral[-1] <= 65535
        with pytest.raises(SourcePortError, match=f"port {listening_port} has a listening"):
            check_source_ports(range(listening_port, listening_port + 1), host)
    finally:
        listener.close()
        bound.close()
    assert listening_port not in read_host_ports().listening


# --- how the scanner uses it (this machine's /proc; nothing is sent) -----------------------

def _config(**settings: object) -> ScanConfig:
    from pyscan.config import ScanConfig

    return ScanConfig.parse(["198.19.0.1"], ports="80", driver="af-packet",
                            **settings)  # type: ignore[arg-type]


def test_scanner_check_refuses_before_the_scan_and_skips_what_claims_nothing() -> None:
    from pyscan import scanner

    with pytest.raises(SourcePortError, match="port 22 is below 1024"):
        scanner.check_source_ports(_config(source_ports="22"))
    scanner.check_source_ports(_config(source_ports="22", force_source_port=True))
    scanner.check_source_ports(_config())  # no range given: the scan chooses one
    from pyscan.config import ScanConfig

    dry = ScanConfig.parse(["198.19.0.1"], ports="80", driver="null", source_ports="22")
    scanner.check_source_ports(dry)  # a dry run claims no port


def test_scan_time_resolution_chooses_checks_and_warns() -> None:
    from pyscan import scanner

    chosen, warnings = scanner._source_ports(_config())
    assert len(chosen) == 256 and not warnings
    assert source_port_problems(chosen, read_host_ports()) == []
    with pytest.raises(SourcePortError):
        scanner._source_ports(_config(source_ports="1000-1001"))
    forced, warnings = scanner._source_ports(_config(source_ports="1000-1001",
                                                     force_source_port=True))
    assert forced == range(1000, 1002)
    assert warnings == ("--force-source-port: ports 1000-1001 are below 1024 (system "
                        "services' ports); their inbound TCP is dropped while the scan runs",)
