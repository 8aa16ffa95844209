"""pyscan.scan() end to end without root: the null driver for exact TX accounting, and a
reflecting driver (null TX ring + injectable RX ring) whose replies scapy builds from the
probes the engine generated, so the whole loop - TX, cookies, RX, dedup, drain, output
types, summary - runs in one process."""

from __future__ import annotations

import threading
from ipaddress import IPv4Address

import pytest

import pyscan

pytest.importorskip("pyscan.native", reason="native extension not built")

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from pyscan import ConfigError, Result, ScanConfig, ScanRun, scan
from pyscan.drivers import DRIVERS
from pyscan.drivers.base import DriverError, DriverRequest, RingSession
from pyscan.drivers.null import NullDriver
from pyscan.privileges import (
    CAPABILITY_BITS,
    PrivilegeError,
    require_scan_privileges,
)
from pyscan.scanner import ScanStart, ScanStatus, list_targets
from pyscan.status import StatusLine, format_status, render_summary, summary_json


def dry_config(**overrides: object) -> ScanConfig:
    options: dict[str, object] = {"ports": "22,80,443", "driver": "null", "seed": "12345",
                                  "rate": "max", "wait": "0"}
    options.update(overrides)
    targets = options.pop("targets", ["198.19.0.0/24", "198.19.7.1-198.19.7.9"])
    return ScanConfig.parse(targets, **options)  # type: ignore[arg-type]


def scan_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("pyscan-")]


def test_dry_run_sends_every_probe_once() -> None:
    config = dry_config()
    statuses: list[ScanStatus] = []
    with scan(config, on_status=statuses.append) as run:
        results = list(run)
    assert results == []
    summary = run.summary
    assert summary is not None
    assert summary.probes == summary.sent == (256 + 9) * 3
    assert summary.targets == 265 and summary.ports == 3
    assert summary.tx_errors == 0
    assert summary.seed == 12345
    assert summary.driver == "null"
    assert not summary.interrupted
    assert statuses and statuses[-1].phase == "done"
    assert statuses[-1].sent == summary.sent
    assert scan_threads() == []


@pytest.mark.parametrize("threads", [1, 3])
def test_shards_and_threads_add_up(threads: int) -> None:
    sent = 0
    for index in (1, 2, 3, 4, 5):
        with scan(dry_config(shard=f"{index}/5", tx_threads=threads)) as run:
            list(run)
        assert run.summary is not None
        assert run.summary.sent == run.summary.probes
        sent += run.summary.sent
    assert sent == 265 * 3


def test_stop_while_sending_ends_early_and_cleans_up() -> None:
    config = dry_config(targets=["198.18.0.0/16"], rate="200")
    run = scan(config, on_status=lambda status: run.stop())
    with run:
        list(run)
    assert run.summary is not None
    assert run.summary.interrupted
    assert run.summary.sent < run.summary.probes
    assert scan_threads() == []


def test_close_from_another_thread_ends_the_scan() -> None:
    config = dry_config(targets=["198.18.0.0/16"], rate="500")
    with scan(config) as run:
        iterator = iter(run)
        closer = threading.Timer(0.3, run.close)
        closer.start()
        with pytest.raises(StopIteration):
            next(iterator)  # no results come from the null driver; close() ends the wait
        closer.join()
    assert run.summary is not None and run.summary.sent < run.summary.probes
    assert scan_threads() == []


def test_scan_needs_a_config() -> None:
    with pytest.raises(ConfigError, match="ScanConfig"):
        ScanRun("198.19.0.1")  # type: ignore[arg-type]


# --- a driver that answers the probes it is given --------------------------------------------


class ReflectingSession(RingSession):
    """TX into a capturing null ring; once every probe is captured, inject replies into a
    null RX ring: SYN-ACK for `open_pairs`, RST-ACK for `closed_pairs`, plus a duplicate
    and a forged (bad cookie) reply for each open pair."""

    def __init__(self, probes: int, open_pairs: set[tuple[str, int]],
                 closed_pairs: set[tuple[str, int]]) -> None:
        from pyscan.native import open_null_rx, open_null_tx

        super().__init__([open_null_tx(256, capture_frames=probes)], open_null_rx(4096),
                         "reflecting test driver")
        self.probes, self.open_pairs, self.closed_pairs = probes, open_pairs, closed_pairs
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.captured: list[bytes] = []
        self.thread = threading.Thread(target=self._reflect, name="reflector", daemon=True)
        self.thread.start()

    def _reflect(self) -> None:
        from pyscan.native import null_captured, null_inject

        try:
            while not self.done.is_set():
                frames = null_captured(self.tx_rings[0])
                if len(frames) >= self.probes:
                    break
                self.done.wait(0.01)
            else:
                return
            self.captured = list(frames)
            for frame in frames:
                probe = Ether(frame)
                pair = (probe[IP].dst, probe[TCP].dport)
                if pair in self.open_pairs:
                    replies = [self._reply(probe, "SA", 0), self._reply(probe, "SA", 0),
                               self._reply(probe, "SA", 77)]
                elif pair in self.closed_pairs:
                    replies = [self._reply(probe, "RA", 0)]
                else:
                    continue
                for reply in replies:
                    while not null_inject(self.rx_ring, reply):
                        self.done.wait(0.001)
        except BaseException as error:
            self.error = error

    @staticmethod
    def _reply(probe: Ether, flags: str, ack_error: int) -> bytes:
        reply = (
            Ether(src=probe.dst, dst=probe.src)
            / IP(src=probe[IP].dst, dst=probe[IP].src, ttl=57)
            / TCP(sport=probe[TCP].dport, dport=probe[TCP].sport, flags=flags, seq=1000,
                  ack=(probe[TCP].seq + 1 + ack_error) % 2**32)
        )
        return bytes(reply)

    def close(self) -> None:
        self.done.set()
        self.thread.join()
        super().close()


class ReflectingDriver:
    name = "null"

    def __init__(self, probes: int, open_pairs: set[tuple[str, int]],
                 closed_pairs: set[tuple[str, int]]) -> None:
        self.args = (probes, open_pairs, closed_pairs)
        self.session: ReflectingSession | None = None

    def available(self) -> tuple[bool, str]:
        return True, "test"

    def open(self, request: DriverRequest) -> ReflectingSession:
        self.session = ReflectingSession(*self.args)
        return self.session


@pytest.mark.parametrize("show_closed", [False, True])
def test_replies_become_results_exactly_once(monkeypatch, show_closed: bool) -> None:
    config = dry_config(targets=["198.19.0.0/27"], ports="22,80", wait="60",
                        show_closed=show_closed)
    every_pair = sorted((str(ip), port) for ip, port in list_targets(config))
    open_pairs = set(every_pair[::5])
    closed_pairs = set(every_pair[1::7]) - open_pairs
    driver = ReflectingDriver(config.probe_count, open_pairs, closed_pairs)
    monkeypatch.setitem(DRIVERS, "null", driver)

    expected = len(open_pairs) + (len(closed_pairs) if show_closed else 0)
    results: list[Result] = []
    with scan(config) as run:
        for result in run:
            results.append(result)
            if len(results) == expected:
                run.stop()  # sending is over: this ends the wait instead of sleeping 60 s
    assert driver.session is not None and driver.session.error is None
    seen = [(str(r.ip), r.port) for r in results]
    assert len(seen) == len(set(seen)) == expected
    assert {p for p, r in zip(seen, results, strict=True) if r.status == "open"} == open_pairs
    closed_seen = {p for p, r in zip(seen, results, strict=True) if r.status == "closed"}
    assert closed_seen == (closed_pairs if show_closed else set())
    assert all(isinstance(r.ip, IPv4Address) and r.ttl == 57 for r in results)
    assert all(r.timestamp > 1.6e9 for r in results)

    summary = run.summary
    assert summary is not None
    assert summary.sent == summary.probes == 64
    assert summary.open == len(open_pairs)
    assert summary.closed == len(closed_pairs)
    assert summary.duplicates == len(open_pairs)
    assert summary.invalid_cookies == len(open_pairs)
    assert summary.valid == 2 * len(open_pairs) + len(closed_pairs)
    assert not summary.interrupted
    assert summary.driver_description == "reflecting test driver"


def test_source_mac_and_gateway_mac_are_the_probes_ethernet_addresses(monkeypatch) -> None:
    """--adapter-mac / --source-mac (config.source_mac) replaces the interface's MAC as the
    probes' Ethernet source, as --router-mac does the destination."""
    config = dry_config(targets=["198.19.0.0/30"], ports="80", wait="60",
                        source_mac="02:aa:00:00:00:05", gateway_mac="02:bb:00:00:00:06")
    every_pair = {(str(ip), port) for ip, port in list_targets(config)}
    driver = ReflectingDriver(config.probe_count, every_pair, set())
    monkeypatch.setitem(DRIVERS, "null", driver)
    with scan(config) as run:
        for count, _ in enumerate(run, 1):
            if count == len(every_pair):
                run.stop()
    assert driver.session is not None and driver.session.error is None
    frames = [Ether(frame) for frame in driver.session.captured]
    assert len(frames) == 4
    assert {(frame.src, frame.dst) for frame in frames} == {
        ("02:aa:00:00:00:05", "02:bb:00:00:00:06")}


# --- privileges and status rendering ---------------------------------------------------------


def mask(*names: str) -> int:
    return sum(1 << CAPABILITY_BITS[name] for name in names)


def test_privileges_name_the_missing_capability() -> None:
    with pytest.raises(PrivilegeError, match=r"CAP_NET_RAW.*af-packet"):
        require_scan_privileges("af-packet", isolation=False, netns=None, effective=0)
    with pytest.raises(PrivilegeError, match=r"CAP_NET_ADMIN.*nftables"):
        require_scan_privileges("af-packet", isolation=True, netns=None,
                                effective=mask("CAP_NET_RAW"))
    with pytest.raises(PrivilegeError, match=r"CAP_SYS_ADMIN.*--netns lab"):
        require_scan_privileges("af-packet", isolation=False, netns="lab",
                                effective=mask("CAP_NET_RAW"))
    require_scan_privileges("af-packet", isolation=True, netns=None,
                            effective=mask("CAP_NET_RAW", "CAP_NET_ADMIN"))
    # CAP_SYS_ADMIN stands in for CAP_BPF, as the kernel allows
    require_scan_privileges("af-xdp", isolation=True, netns=None,
                            effective=mask("CAP_NET_RAW", "CAP_NET_ADMIN", "CAP_SYS_ADMIN"))
    require_scan_privileges("null", isolation=True, netns=None, effective=0)


def test_status_line_and_summary_text() -> None:
    status = ScanStatus(phase="sending", elapsed=2.0, sent=500, total=1000, rate=250.0,
                        found=3, closed=4, drops=0, wait_left=0.0)
    assert status.eta == pytest.approx(2.0)
    text = format_status(status)
    assert "50.00 %" in text and "open 3" in text and "250 pps" in text

    class FakeTerminal:
        def __init__(self) -> None:
            self.written = ""

        def isatty(self) -> bool:
            return False

        def write(self, text: str) -> None:
            self.written += text

        def flush(self) -> None:
            pass

    quiet_stream, forced_stream = FakeTerminal(), FakeTerminal()
    StatusLine(quiet_stream)(status)
    StatusLine(forced_stream, force=True)(status)
    assert quiet_stream.written == ""
    assert "sent 500/1000" in forced_stream.written

    with scan(dry_config()) as run:
        list(run)
    assert run.summary is not None
    block = render_summary(run.summary)
    assert f"sent       {run.summary.sent} of {run.summary.probes} probes" in block
    assert "--seed 12345" in block
    import json

    assert json.loads(summary_json(run.summary))["sent"] == run.summary.sent


def test_leaving_the_loop_early_releases_everything(monkeypatch) -> None:
    config = dry_config(targets=["198.19.0.0/28"], ports="80", wait="60")
    every_pair = {(str(ip), port) for ip, port in list_targets(config)}
    driver = ReflectingDriver(config.probe_count, every_pair, set())
    monkeypatch.setitem(DRIVERS, "null", driver)
    with scan(config) as run:
        for _ in run:
            break
    # Left early, the summary still holds the engine's counts (issue 11: it was None).
    assert run.summary is not None
    assert run.summary.sent == config.probe_count and run.summary.open >= 1
    assert driver.session is not None and driver.session.rx_ring is None  # closed
    assert scan_threads() == []
    with pytest.raises(pyscan.RunFinishedError, match="this scan has finished"):
        iter(run)


def test_a_finished_run_refuses_a_second_iteration() -> None:
    with scan(dry_config()) as run:
        first = list(run)
        assert run.summary is not None and first == []
        with pytest.raises(pyscan.RunFinishedError, match=r"accepted: a new run"):
            for _ in run:
                pass


def test_result_to_dict_is_json_ready() -> None:
    import json
    from ipaddress import IPv4Address

    result = pyscan.Result(IPv4Address("198.19.0.1"), 80, "open", 64, 1_700_000_000.5)
    assert json.loads(json.dumps(result.to_dict())) == {
        "ip": "198.19.0.1", "port": 80, "status": "open", "ttl": 64,
        "timestamp": 1_700_000_000.5, "window": None, "mss": None, "wscale": None,
        "sack_permitted": None, "ts_val": None, "ts_ecr": None, "rtt": None}


def test_scan_config_takes_the_obvious_types() -> None:
    from ipaddress import IPv4Address, IPv4Network

    config = pyscan.ScanConfig(targets="198.19.0.0/24", ports=[80, 22], rate="10k", seed="7",
                               shard="2/3", wait="2.5", source_ports="61000-61003",
                               source_ip="198.18.0.1", excludes=["198.19.0.7"],
                               driver_options=["rx_blocks=64"], driver="af-packet")
    assert config.targets.count == 255 and IPv4Address("198.19.0.7") not in config.targets
    assert (config.ports, config.rate, config.seed, config.shard, config.wait) == (
        (22, 80), 10_000.0, 7, (2, 3), 2.5)
    assert config.source_ports == range(61000, 61004)
    assert config.source_ip == IPv4Address("198.18.0.1")
    assert pyscan.ScanConfig(targets=IPv4Network("198.19.0.0/30"), ports=80).targets.count == 4
    assert pyscan.ScanConfig(targets=["198.19.0.1", "198.19.0.3"], ports="80").targets.count == 2
    with pytest.raises(pyscan.ConfigError, match="bad target 'x'"):
        pyscan.ScanConfig(targets="x", ports=[80])
    with pytest.raises(pyscan.ConfigError, match="bad rate"):
        pyscan.ScanConfig(targets="198.19.0.1", ports=[80], rate="fast")


def test_public_namespace() -> None:
    import pyscan

    assert pyscan.__all__ == sorted(pyscan.__all__)
    for name in pyscan.__all__:
        assert hasattr(pyscan, name), name
    assert pyscan.scan is scan
    assert pyscan.Result is Result


def test_driver_choice_and_thread_count(monkeypatch) -> None:
    import os

    from pyscan.scanner import choose_driver, tx_thread_count

    assert choose_driver(dry_config()) == ("null", "chosen with --driver")
    automatic = ScanConfig.parse(["198.19.0.1"], ports="80")
    name, why = choose_driver(automatic)
    assert name in ("xdp-live", "af-xdp", "af-packet")
    assert why.startswith("automatic: ")

    class Unavailable:
        def available(self) -> tuple[bool, str]:
            return False, "no libxdp here"

    monkeypatch.setitem(DRIVERS, "af-xdp", Unavailable())
    monkeypatch.setitem(DRIVERS, "xdp-live", Unavailable())  # its replies need libxdp too
    assert choose_driver(automatic) == ("af-packet", "automatic: xdp-live is not available "
                                                     "(no libxdp here); af-xdp is not "
                                                     "available (no libxdp here)")
    assert tx_thread_count(dry_config(tx_threads=3), tx_queues=8) == 3
    assert tx_thread_count(dry_config(), tx_queues=8) == 1  # dry run: one
    assert tx_thread_count(automatic, tx_queues=64) == min(64, os.cpu_count() or 1)
    assert tx_thread_count(automatic, tx_queues=1) == 1


def test_a_failing_tx_thread_stops_the_others_and_raises(monkeypatch) -> None:
    from pyscan import ScanError
    from pyscan.native import Engine

    real_run_tx = Engine.run_tx

    def run_tx(self: Engine, thread_index: int, ring: object) -> None:
        if thread_index == 1:
            raise OSError(5, "TX thread 1 failed: injected")
        real_run_tx(self, thread_index, ring)

    monkeypatch.setattr(Engine, "run_tx", run_tx)
    # Thread 0 alone would need minutes at this rate; it must be stopped, not waited for.
    config = dry_config(targets=["198.18.0.0/16"], rate="100", tx_threads=2)
    with pytest.raises(ScanError, match="injected"), scan(config) as run:
        list(run)
    assert scan_threads() == []


# --- the driver is chosen once, and the start line names the one that runs ------------------


class HookTaken(DriverError):
    """Stands for AfXdpUnusable: the interface cannot take this driver, another can."""


class TakenHookDriver:
    """An automatic driver ranked first whose open() fails the way af-xdp does on an
    interface whose XDP hook is taken."""

    name = "fake-xdp"

    def __init__(self, error: DriverError) -> None:
        self.error = error
        self.opened = 0
        self.asked = 0

    def available(self) -> tuple[bool, str]:
        self.asked += 1
        return True, "fake fast path"

    def open(self, request: DriverRequest) -> RingSession:
        self.opened += 1
        raise self.error


class CountingNullDriver(NullDriver):
    """The null driver's rings under another registry name, counting what is asked of it."""

    name = "fake-packet"

    def __init__(self) -> None:
        self.asked = 0
        self.opened = 0
        self.requests: list[DriverRequest] = []

    def available(self) -> tuple[bool, str]:
        self.asked += 1
        return super().available()

    def open(self, request: DriverRequest) -> RingSession:
        self.opened += 1
        self.requests.append(request)
        return super().open(request)


def install_fake_drivers(monkeypatch: pytest.MonkeyPatch, error: DriverError
                         ) -> tuple[TakenHookDriver, CountingNullDriver]:
    """Only the two fakes in the automatic order, no route lookup: an automatic scan that
    needs neither root nor a network."""
    import pyscan.scanner
    from pyscan import drivers
    from pyscan.drivers.base import DriverDescriptor

    first, second = TakenHookDriver(error), CountingNullDriver()
    rows = {
        "fake-xdp": DriverDescriptor(name="fake-xdp", summary="first", factory=lambda: first,
                                     automatic_rank=0, fallback_on=(HookTaken,),
                                     batch_size=128),
        "fake-packet": DriverDescriptor(name="fake-packet", summary="second",
                                        factory=lambda: second, automatic_rank=1,
                                        options=drivers.DESCRIPTORS["null"].options,
                                        batch_size=32),
        "null": drivers.DESCRIPTORS["null"],
    }
    monkeypatch.setattr(drivers, "DESCRIPTORS", rows)
    monkeypatch.setattr(drivers, "DRIVERS", {"fake-xdp": first, "fake-packet": second,
                                             "null": NullDriver()})
    monkeypatch.setattr(pyscan.scanner, "_resolve_path", lambda config: pyscan.scanner._Path(
        interface="fake0", ifindex=0, source_ip=IPv4Address("198.18.0.1"),
        source_mac="02:00:00:00:00:02", gateway_mac="02:00:00:00:00:01"))
    return first, second


def automatic_config() -> ScanConfig:
    return ScanConfig.parse(["198.19.0.0/28"], ports="80", seed="5", rate="max", wait="0",
                            isolation=False, tx_threads=1)


def test_the_start_names_the_driver_that_really_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = install_fake_drivers(monkeypatch, HookTaken("fake0 already has an XDP "
                                                                "program"))
    events: list[str] = []
    starts: list[ScanStart] = []

    def on_start(start: ScanStart) -> None:
        starts.append(start)
        events.append("start")

    run = scan(automatic_config(), on_status=lambda status: events.append(status.phase),
               on_start=on_start)
    assert run.start is None  # nothing is chosen before the scan runs
    with run:
        list(run)
    assert len(starts) == 1 and run.start is starts[0]
    assert events[0] == "start" and events.count("start") == 1  # before any status
    assert run.start.driver == "fake-packet" == run.summary.driver  # type: ignore[union-attr]
    assert run.start.why == ("automatic: fake-xdp could not be used (fake0 already has an "
                             "XDP program)")
    assert run.start.interface == "fake0"
    assert "warning: fake-xdp could not be used" in run.summary.driver_description  # type: ignore[union-attr]
    assert run.summary.sent == 16  # type: ignore[union-attr]
    # Chosen once: each driver asked once whether it can run, each opened once.
    assert (first.asked, first.opened, second.asked, second.opened) == (1, 1, 1, 1)


def test_no_fallback_for_other_errors_or_a_named_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    from pyscan import ScanError

    first, second = install_fake_drivers(monkeypatch, DriverError("out of memory"))
    with pytest.raises(ScanError, match="driver 'fake-xdp' could not open 'fake0': out of "
                                        "memory"), scan(automatic_config()) as run:
        list(run)
    assert run.start is None and second.opened == 0

    first.error = HookTaken("hook taken")
    named = ScanConfig.parse(["198.19.0.0/28"], ports="80", driver="fake-xdp",
                             isolation=False, wait="0")
    monkeypatch.setattr("pyscan.privileges.effective_capabilities", lambda *a: 0)
    with pytest.raises(ScanError, match="hook taken"), scan(named) as run:
        list(run)
    assert run.start is None and second.opened == 0


def test_the_engine_batch_is_the_descriptor_s(monkeypatch: pytest.MonkeyPatch) -> None:
    from pyscan.native import Engine

    batches: list[int] = []
    real_init = Engine.__init__

    def init(self: Engine, **kwargs: object) -> None:
        batches.append(int(kwargs["batch_size"]))  # type: ignore[call-overload]
        real_init(self, **kwargs)

    monkeypatch.setattr(Engine, "__init__", init)
    install_fake_drivers(monkeypatch, HookTaken("hook taken"))
    with scan(automatic_config()) as run:
        list(run)
    with scan(dry_config(targets=["198.19.0.0/30"])) as dry:
        list(dry)
    # The hint of the driver that ran (fake-packet: 32), not of the one that failed (128);
    # null declares none: the default.
    assert batches == [32, 64]
    assert dry.start is not None and dry.start.driver == "null"
    assert dry.start.why == "chosen with --driver"


def test_the_scan_s_probe_reaches_the_driver_and_the_engine(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from pyscan.native import Engine
    from pyscan.probes import PROBES

    probes: list[object] = []
    real_init = Engine.__init__

    def init(self: Engine, **kwargs: object) -> None:
        probes.append(kwargs["probe"])
        real_init(self, **kwargs)

    monkeypatch.setattr(Engine, "__init__", init)
    _, second = install_fake_drivers(monkeypatch, HookTaken("hook taken"))
    with scan(automatic_config()) as run:
        list(run)
    # One probe id, looked up in the registry, for the in-kernel match and the engine alike.
    assert [request.probe_id for request in second.requests] == [PROBES["tcp-syn"].id]
    assert probes == [PROBES["tcp-syn"].id]
