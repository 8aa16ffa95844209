"""The programs the bench puts side by side, and how each one is started and read.

Every contender runs as its own process inside the sink lab's scan namespace; the sink counts
what reached it (see sinklab.py). A contender may also say what it believes it sent (its own
counter and wall clock); the report shows both and never mixes them up.

masscan and zmap only ever run inside a lab namespace, against lab addresses: their targets
are checked to lie in 198.18.0.0/15 before they start (masscan's parsed configuration is
read back with ``--echo``, which also shows anything /etc/masscan/masscan.conf added), zmap
is started with an empty configuration file (-C) and an empty blocklist (-b), so the
system-wide /etc/zmap/zmap.conf and its blocklist are not read.

masscan runs with its working directory in a fresh temporary directory, removed afterwards:
it writes `paused.conf` into its working directory when it is stopped by a signal, and that
file must not land in the repository. masscan 1.3.2's receive thread notices the end of a
scan only when a frame arrives, so after the scan `nudge_until_exit` sends it UDP datagrams
from the lab's target namespace until it exits cleanly, its output files complete.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from bench.sinklab import SCAN_IP, SCAN_IP6, TARGET_NET, SinkLab, SinkSamples, SinkSnapshot
from pyscan.bench_command import BenchError

LAB_RANGE = ipaddress.ip_network("198.18.0.0/15")
LAB_RANGE6 = ipaddress.ip_network("2001:2::/48")  # RFC 5180 benchmarking
HERE = Path(__file__).resolve().parent
BARE_LOOPS = ("bare_tpacket", "bare_afxdp", "bare_gen")


@dataclass
class TxRun:
    """One contender, one run, on the sink."""

    contender: str
    threads: int
    requested_pps: float | None
    frame_len: int
    sink_frames: int                  # sink counter delta over the whole run
    sink_per_queue: dict[int, int]
    sink_pps: float | None            # sink counter over the steady window, wall clock
    self_sent: int | None = None      # the contender's own count of frames sent
    self_pps: float | None = None     # self_sent / the contender's own wall clock
    cpu_ns: int | None = None         # CPU time of the sending threads (thread CPU clock)
    error: str = ""
    extra: dict[str, object] = field(default_factory=dict)
    probe: str = "tcp-syn"            # what was sent (pyscan.bench_command.BENCH_PROBES)


# --- bare loops --------------------------------------------------------------------------------


def compile_bare_loops(workdir: Path) -> dict[str, Path]:
    """gcc the ceiling loops into workdir (binaries are never committed)."""
    binaries = {}
    libs = {"bare_tpacket": ["-lpthread"], "bare_afxdp": ["-lxdp", "-lbpf", "-lpthread"],
            "bare_gen": [f"-I{HERE.parent / 'pyscan' / 'bpf'}",
                         f"-I{HERE.parent / 'pyscan' / 'native'}",
                         str(HERE.parent / "pyscan" / "native" / "permute.c"),
                         str(HERE.parent / "pyscan" / "native" / "template.c"),
                         str(HERE.parent / "pyscan" / "native" / "targetset.c"), "-lpthread"]}
    for name in BARE_LOOPS:
        target = workdir / name
        done = subprocess.run(
            ["gcc", "-O3", "-Wall", "-Wextra", "-o", str(target), str(HERE / f"{name}.c"),
             *libs[name]],
            capture_output=True, text=True,
        )
        if done.returncode != 0:
            raise BenchError(f"cannot compile bench/{name}.c: {done.stderr.strip()[:300]}")
        binaries[name] = target
    return binaries


def parse_bare_output(text: str) -> dict[str, object]:
    """The bare loops' one-line JSON report (last line of stdout)."""
    lines = [line for line in text.splitlines() if line.strip().startswith("{")]
    if not lines:
        raise BenchError(f"bare loop printed no report: {text.strip()[:200]!r}")
    data = json.loads(lines[-1])
    if not isinstance(data, dict) or "sent" not in data or "wall_ns" not in data:
        raise BenchError(f"bare loop report lacks sent/wall_ns: {lines[-1][:200]}")
    return data


# The bare loops' frame protocol for each pyscan probe type (bare_frame.h)
BARE_PROTOCOL = {"tcp-syn": "tcp", "icmp-echo": "icmp", "udp": "udp", "tcp-syn6": "tcp6",
                 "icmp-echo6": "icmp6"}


def run_bare(lab: SinkLab, binary: Path, seconds: float, frame_len: int, threads: int,
             probe: str = "tcp-syn") -> TxRun:
    """A bare loop resending one frame of ``frame_len`` bytes shaped like ``probe``'s."""
    if BARE_PROTOCOL[probe].endswith("6"):
        lab.ensure_ipv6()  # before the first IPv6 row, whoever sends it, so MLD is done
    argv = lab.exec_argv(str(binary), lab.scan_if, str(seconds), str(frame_len), str(threads),
                         BARE_PROTOCOL[probe])
    run, stdout, _ = _sampled(lab, binary.name, argv, threads, None, frame_len, seconds + 10)
    run.probe = probe
    report = parse_bare_output(stdout)
    run.self_sent = int(report["sent"])  # type: ignore[call-overload]
    wall_ns = int(report["wall_ns"])  # type: ignore[call-overload]
    run.self_pps = run.self_sent / (wall_ns / 1e9) if wall_ns else None
    run.cpu_ns = int(report["cpu_ns"])  # type: ignore[call-overload]
    run.error = str(report.get("error", ""))
    return run


# --- pyscan drivers ----------------------------------------------------------------------------


def run_pyscan(lab: SinkLab, driver: str, seconds: float, threads: int,
               rate: float | None = None, probe: str = "tcp-syn") -> TxRun:
    """``pyscan bench`` for one driver inside the scan namespace (bench/pyscan_tx.py)."""
    from pyscan.bench_command import ETHERNET_OVERHEAD, bench_probe, wire_bytes

    bench = bench_probe(probe)
    size = wire_bytes(bench.frame_len) - ETHERNET_OVERHEAD
    if bench.family == 6:
        lab.ensure_ipv6()
    argv = lab.exec_argv(
        sys.executable, "-m", "bench.pyscan_tx", "--driver", driver, "--interface", lab.scan_if,
        "--duration", str(seconds), "--tx-threads", str(threads), "--probe", probe,
        "--size", str(size),
        "--source-ip", SCAN_IP6 if bench.family == 6 else SCAN_IP,
        "--gateway-mac", lab.gateway_mac,
        *(["--rate", str(rate)] if rate else []),
    )
    run, stdout, stderr = _sampled(lab, driver, argv, threads, rate, size - 4, seconds + 30)
    run.probe = probe
    try:
        report = json.loads(stdout)
    except json.JSONDecodeError:
        run.error = (stderr.strip().splitlines() or ["no output"])[-1][:300]
        return run
    run.self_sent = int(report["sent"])
    run.self_pps = float(report["pps"])
    run.cpu_ns = int(report["cpu_ns"])

    run.extra = {"description": report.get("description", ""),
                 "driver_drops": report.get("driver_drops", 0)}
    return run


def run_pyscan_scan(lab: SinkLab, workdir: Path, driver: str, seconds: float,
                    threads: int) -> TxRun:
    """A full ``pyscan`` scan on the sink, like masscan and zmap are measured: the reply
    filter attached, the RX thread running, results drained into an output file; stopped with
    SIGTERM after ``seconds`` (exit 143 is its normal end here)."""
    output = workdir / f"pyscan-scan-{driver}-{threads}.txt"
    argv = lab.exec_argv(
        sys.executable, "-m", "pyscan", TARGET_NET, "-p", "1-65535", "--driver", driver,
        "--rate", "max", "-i", lab.scan_if, "--source-ip", SCAN_IP, "--gateway-mac",
        lab.gateway_mac, "--tx-threads", str(threads), "--wait", "0", "-oL", str(output),
        # its SIGTERM end saves a pause file: in the run's directory, not the repository's
        "--pause-file", str(workdir / f"pyscan-paused-{driver}-{threads}.json"),
        "--checkpoint-every", "0",
        # the probe `pyscan bench` and the bare loops send (58 bytes, 60 with padding), not the
        # scan's default 66-byte windows profile: like with like
        "--tcp-options", "mss")
    check_lab_targets([TARGET_NET])
    before = lab.snapshot()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=HERE.parent)
    run = _finish_sampled(lab, f"{driver} scan", process, before, threads, None, 60,
                          seconds + 1.0, terminate=True)
    stderr = str(run.extra.pop("stderr"))
    run.extra.pop("stdout")
    if process.returncode == 143:
        run.error = ""
    elif run.error or not run.sink_frames:
        run.error = (stderr.strip().splitlines() or ["pyscan sent nothing"])[-1][:300]
    return run


# --- masscan and zmap --------------------------------------------------------------------------


def check_lab_targets(targets: Iterable[str]) -> None:
    """Refuse to start an external scanner whose targets leave 198.18.0.0/15 (IPv6:
    2001:2::/48)."""
    for target in targets:
        first, _, last = target.partition("-")
        for address in filter(None, (first, last)):
            network = ipaddress.ip_network(address.strip(), strict=False)
            allowed = LAB_RANGE6 if network.version == 6 else LAB_RANGE
            if not network.subnet_of(allowed):  # type: ignore[arg-type]
                raise BenchError(f"refusing to scan {target}: outside the lab range {allowed}")


_MASSCAN_RANGE = re.compile(r"^\s*range\s*=\s*(.+?)\s*$")


def masscan_echo_ranges(echo: str) -> list[str]:
    """Target ranges from ``masscan --echo`` (the fully parsed configuration)."""
    ranges = []
    for line in echo.splitlines():
        match = _MASSCAN_RANGE.match(line)
        if match:
            ranges.extend(part.strip() for part in match.group(1).split(",") if part.strip())
    return ranges


def masscan_argv(lab_if: str, scan_mac: str, gateway_mac: str, targets: list[str],
                 ports: str, rate: float, output: Path | None, wait: int,
                 ping: bool = False, adapter_ip: str = SCAN_IP) -> list[str]:
    """masscan pointed at the lab; output None = its default "Discovered open port" lines
    on stdout. ``ping``: --ping (an ICMP echo per address); ports "" = no -p. IPv6 targets:
    ``adapter_ip`` the scanner's IPv6 address (masscan then sends IPv6 from it)."""
    return ["masscan", *targets, *(["-p", ports] if ports else []),
            *(["--ping"] if ping else []), "--rate", str(int(rate)), "--adapter", lab_if,
            "--adapter-ip", adapter_ip, "--adapter-mac", scan_mac, "--router-mac", gateway_mac,
            "--wait", str(wait), *(["-oL", str(output)] if output else [])]


@contextmanager
def masscan_cwd() -> Iterator[Path]:
    """A fresh working directory for one masscan run (its paused.conf, stdout and stderr
    files), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="pyscan-bench-masscan-") as directory:
        yield Path(directory)


def nudge_until_exit(target_netns: str, process: subprocess.Popen[str], address: str = SCAN_IP,
                     timeout: float = 30.0) -> int:
    """After masscan's scan and wait are over: one UDP datagram (port 9, discard) to the
    scanner's address every half second, sent from inside the lab's target namespace, until
    masscan exits. Returns how many were sent; the process still runs if ``timeout`` passed.
    Its receive thread checks for the end of the scan only when a frame arrives."""
    check_lab_targets([address])
    from pyscan.netlink import in_netns

    sent = 0
    deadline = time.monotonic() + timeout
    with in_netns(target_netns), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        while process.poll() is None and time.monotonic() < deadline:
            sock.sendto(b"end", (address, 9))
            sent += 1
            with suppress(subprocess.TimeoutExpired):
                process.wait(0.5)
    return sent


def start_masscan(exec_argv: list[str], argv: list[str], cwd: Path) -> subprocess.Popen[str]:
    if not shutil.which("masscan"):
        raise BenchError("masscan is not installed (make bench installs the Debian package)")
    echo = subprocess.run([*exec_argv, *argv, "--echo"], capture_output=True, text=True, cwd=cwd)
    ranges = masscan_echo_ranges(echo.stdout)
    if not ranges:
        raise BenchError(f"masscan --echo showed no ranges: {echo.stderr.strip()[:200]}")
    check_lab_targets(ranges)
    # masscan prints a line per open port on stdout and a status line on stderr: to files,
    # never to pipes nobody drains while it runs (a full pipe blocks masscan for good)
    with open(cwd / "masscan.stdout", "w") as out, open(cwd / "masscan.stderr", "w") as err:
        return subprocess.Popen([*exec_argv, *argv], stdout=out, stderr=err, text=True,
                                cwd=cwd)


def zmap_module_args(probe: str, port: int) -> list[str]:
    """zmap 2.1.1's module flags for one run of ``probe`` (to ``port``, for TCP and UDP): the
    UDP payload is the one pyscan sends to that port, given as --probe-args=hex:."""
    if probe == "tcp-syn":
        return ["-p", str(port)]
    if probe == "icmp-echo":
        return ["-M", "icmp_echoscan"]
    if probe == "udp":
        from pyscan.probes.udp_payloads import payload_for

        payload = payload_for(port, ())
        return ["-M", "udp", "-p", str(port),
                *([f"--probe-args=hex:{payload.data.hex()}"] if payload else [])]
    raise ValueError(f"zmap has no module for probe {probe!r}: accepted "
                     f"{', '.join(BARE_PROTOCOL)}")


def zmap_argv(lab_if: str, gateway_mac: str, workdir: Path, port: int, rate: float | None,
              output: Path, *, probes: int = 1, threads: int = 1,
              max_runtime: float | None = None, cooldown: int = 0,
              probe: str = "tcp-syn") -> list[str]:
    empty = workdir / "zmap-empty.conf"
    empty.write_text("")
    check_lab_targets([TARGET_NET])
    return ["zmap", "-C", str(empty), "-b", str(empty), *zmap_module_args(probe, port),
            "-r", str(int(rate or 0)), "-P", str(probes), "-T", str(threads),
            *(["-t", str(int(max_runtime))] if max_runtime else []),
            "-c", str(cooldown), "-i", lab_if, "-S", SCAN_IP, "-G", gateway_mac,
            "--max-sendto-failures", "1000000000",
            "-o", str(output), "-q", TARGET_NET]


def run_masscan_tx(lab: SinkLab, workdir: Path, seconds: float,
                   rate: float | None = None) -> TxRun:
    """masscan at --rate (100 M = as fast as it goes) for ``seconds``, then SIGTERM (a TX run
    is time-boxed: its /16 x 65535 ports would take far longer). The paused.conf masscan
    writes on SIGTERM goes to its temporary working directory and is removed with it."""
    argv = masscan_argv(lab.scan_if, lab.scan_mac, lab.gateway_mac, [TARGET_NET], "1-65535",
                        rate or 100_000_000, workdir / "masscan-tx.txt", 0)
    with masscan_cwd() as cwd:
        before = lab.snapshot()
        process = start_masscan(lab.exec_argv(), argv, cwd)
        run = _finish_sampled(lab, "masscan", process, before, 1, rate, 0, seconds + 1.0,
                              terminate=True)
        run.extra.pop("stdout")
        run.extra.pop("stderr")
        if run.error:
            lines = (cwd / "masscan.stderr").read_text().strip().splitlines()
            run.error = (lines or [run.error])[-1][:300]
    return run


ZMAP_PROBES = 100
ZMAP_RATED_PROBES = 20


def run_zmap_tx(lab: SinkLab, workdir: Path, seconds: float, threads: int = 1,
                rate: float | None = None, probe: str = "tcp-syn") -> TxRun:
    """zmap 2.1.1 scans one port of at most a /16 here, so it sends several probes per target
    (-P) to last ``seconds`` (-t caps the run). Its -r limits *targets* per second and sends
    a target's probes back to back, so a packet rate R is asked for as -r R/P with -P P.
    ``probe``: its module for pyscan's probe type (zmap_module_args; UDP to port 53 with
    pyscan's DNS payload, the frame pyscan's UDP row sends)."""
    if not shutil.which("zmap"):
        raise BenchError("zmap is not installed (make bench installs the Debian package)")
    probes = ZMAP_RATED_PROBES if rate else ZMAP_PROBES
    target_rate = rate / probes if rate else None
    argv = zmap_argv(lab.scan_if, lab.gateway_mac, workdir, 53 if probe == "udp" else 80,
                     target_rate, workdir / "zmap-tx.csv", probes=probes, threads=threads,
                     max_runtime=seconds, probe=probe)
    run, _, stderr = _sampled(lab, "zmap", lab.exec_argv(*argv), threads, rate, 0, seconds + 30)
    run.probe = probe
    if not run.sink_frames:
        run.error = (stderr.strip().splitlines() or ["zmap sent nothing"])[-1][:300]
    return run


# --- shared ------------------------------------------------------------------------------------


def _sampled(lab: SinkLab, name: str, argv: list[str], threads: int, rate: float | None,
             frame_len: int, timeout: float) -> tuple[TxRun, str, str]:
    before = lab.snapshot()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=HERE.parent)
    run = _finish_sampled(lab, name, process, before, threads, rate, frame_len, timeout)
    return run, str(run.extra.pop("stdout")), str(run.extra.pop("stderr"))


def _finish_sampled(lab: SinkLab, name: str, process: subprocess.Popen[str],
                    before: SinkSnapshot, threads: int, rate: float | None, frame_len: int,
                    timeout: float, terminate: bool = False) -> TxRun:
    import time

    deadline = time.monotonic() + timeout
    samples = SinkSamples()
    try:
        while True:
            samples.times.append(time.monotonic())
            samples.totals.append(lab.total())
            if process.poll() is not None:
                break
            if time.monotonic() >= deadline:
                process.terminate()
                process.wait(10)
                samples.times.append(time.monotonic())
                samples.totals.append(lab.total())
                break
            time.sleep(0.25)
        stdout, stderr = process.communicate(timeout=30)
        stdout, stderr = stdout or "", stderr or ""  # None when redirected to files
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    received = lab.snapshot().since(before)
    run = TxRun(
        contender=name, threads=threads, requested_pps=rate,
        frame_len=received.mean_frame_len or frame_len,
        sink_frames=received.total_frames, sink_per_queue=received.frames,
        sink_pps=samples.steady_rate(),
    )
    if process.returncode not in (0, None) and not (terminate and process.returncode < 0):
        run.error = (stderr.strip().splitlines() or [f"exit {process.returncode}"])[-1][:300]
    run.extra = {"stdout": stdout, "stderr": stderr}
    return run
