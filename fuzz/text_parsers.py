"""Property fuzzers for pyscan's text parsers: what a person types (targets, ports, rates,
shard, seed, wait, source ports, masscan/zmap argv) and what the kernel writes in /proc for
the pfring-zc checks. Each parser must either return a value inside its documented domain or
raise its documented error with a one-line message; anything else (IndexError, a plain
ValueError, an infinite rate, a multi-line message) is a failure."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from pyscan.cli.argv import rewrite_argv
from pyscan.config import (
    ConfigError,
    parse_ports,
    parse_rate,
    parse_seed,
    parse_shard,
    parse_source_ports,
    parse_wait,
)
from pyscan.drivers import pfring_zc
from pyscan.targets import TargetError, parse_target_file, parse_target_spec

SEED_DIR = Path(__file__).resolve().parent / "corpus" / "text"

# Text that looks like the grammar (digits, separators, unit letters) finds more than
# arbitrary Unicode; both are drawn, and Unicode digits and odd whitespace are in the mix.
_GRAMMAR_CHARS = "0123456789./-,:xXkKmMgGtTpsa \t\n\u0661\u00b2\u2070\uff11\u3000"
grammar_text = st.text(alphabet=_GRAMMAR_CHARS, max_size=40)
any_text = st.one_of(grammar_text, st.text(max_size=40))


def _one_line(error: Exception) -> None:
    message = str(error)
    assert message and "\n" not in message, f"error message is not one line: {message!r}"


def _expect(parse: Callable[[str], Any], text: str, errors: tuple[type[Exception], ...]) -> Any:
    try:
        return parse(text)
    except errors as error:
        _one_line(error)
        return None


def check_targets(text: str) -> None:
    ranges = _expect(parse_target_spec, text, (TargetError,))
    for low, high in ranges or ():
        assert 0 <= low <= high <= 0xFFFFFFFF, (text, low, high)


def check_target_file(data: bytes) -> None:
    with tempfile.NamedTemporaryFile(suffix=".txt") as handle:
        handle.write(data)
        handle.flush()
        ranges = _expect(parse_target_file, handle.name, (TargetError,))
    for low, high in ranges or ():
        assert 0 <= low <= high <= 0xFFFFFFFF, (data, low, high)


def check_ports(text: str) -> None:
    ports = _expect(parse_ports, text, (ConfigError,))
    if ports is not None:
        assert ports and list(ports) == sorted(set(ports)), text
        assert ports[0] >= 0 and ports[-1] <= 65535, text


def check_rate(text: str) -> None:
    rate = _expect(parse_rate, text, (ConfigError,))
    if rate is not None:
        assert rate > 0, (text, rate)
        unlimited = text.strip().lower() in ("max", "unlimited")
        assert math.isfinite(rate) or unlimited, f"{text!r} parsed as rate {rate}"


def check_shard(text: str) -> None:
    shard = _expect(parse_shard, text, (ConfigError,))
    if shard is not None:
        assert 1 <= shard[0] <= shard[1], (text, shard)


def check_seed(text: str) -> None:
    seed = _expect(parse_seed, text, (ConfigError,))
    if seed is not None:
        assert 0 <= seed < 2**64, (text, seed)


def check_wait(text: str) -> None:
    wait = _expect(parse_wait, text, (ConfigError,))
    if wait is not None:
        assert math.isfinite(wait) and wait >= 0, (text, wait)


def check_source_ports(text: str) -> None:
    ports = _expect(parse_source_ports, text, (ConfigError,))
    if ports is not None:
        assert 1 <= ports.start < ports.stop <= 65536, (text, ports)


_ARGV_WORDS = ["-oL", "-oJ", "-oD", "-oG", "-oC", "-oX", "-sL", "-iL", "--show", "--noshow",
               "closed", "open", "--", "--max-rate", "--rate", "--excludefile", "-p", "80",
               "--adapter", "eth0", "198.19.0.0/16", "-oL=", "--show=closed", "out.txt",
               "-O", "csv", "json", "-O=json", "--output-module", "-p-", "-oB"]
argv_lists = st.lists(st.one_of(st.sampled_from(_ARGV_WORDS), st.text(max_size=12)),
                      max_size=8)
_REWRITTEN = {"-oL", "-oJ", "-oD", "-oG", "-oC", "-oX", "-oB", "-oU", "-oH", "-oR", "-sL",
              "-iL", "--includefile", "--excludefile", "--max-rate", "--adapter",
              "--router-mac", "--adapter-ip", "--adapter-port", "--open", "--offline",
              "--show", "--noshow", "-O", "--output-module", "-p-"}


def check_argv(args: list[str]) -> None:
    out = _expect(rewrite_argv, args, (ConfigError,))
    if out is None:
        return
    assert all(isinstance(arg, str) for arg in out), out
    if not any(arg.partition("=")[0] in _REWRITTEN for arg in args):
        assert out == args, (args, out)


proc_files = st.fixed_dictionaries({
    "meminfo": st.one_of(st.binary(max_size=200), grammar_text.map(str.encode),
                         st.just(b"HugePages_Total:    1024\nHugePages_Free:  -3\n"
                                 b"Hugepagesize:       0 kB\n")),
    "mounts": st.one_of(st.binary(max_size=120), st.just(b"nodev /dev/hugepages hugetlbfs")),
    "info": st.one_of(st.binary(max_size=120), st.just(b"PF_RING Version : 8.x.\n")),
    "dev_info": st.one_of(st.binary(max_size=120), st.just(b"Polling Mode: ZC\nFamily:\n")),
    "licences": st.lists(st.text(alphabet="0123456789abcdefABCDEF:-x.", min_size=1,
                                 max_size=14), max_size=3),
})


def check_pfring_proc(files: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        proc, licences = root / "proc", root / "licences"
        (proc / "net" / "pf_ring" / "dev" / "eth0").mkdir(parents=True)
        licences.mkdir()
        (proc / "meminfo").write_bytes(files["meminfo"])
        (proc / "mounts").write_bytes(files["mounts"])
        (proc / "net" / "pf_ring" / "info").write_bytes(files["info"])
        (proc / "net" / "pf_ring" / "dev" / "eth0" / "info").write_bytes(files["dev_info"])
        for name in files["licences"]:
            if name not in (".", ".."):
                (licences / name).write_bytes(b"")
        env = pfring_zc.Environment(proc=proc, licences=licences)
        for result in (pfring_zc.check_kernel_module(env, "8.9.0"),
                       pfring_zc.check_hugepages(env), pfring_zc.check_hugepages(env, 1 << 30),
                       pfring_zc.check_device(env, "eth0"), pfring_zc.check_device(env, "eth1")):
            assert result is None or (isinstance(result, str) and "\n" not in result), result
        assert all(isinstance(m, str) for m in pfring_zc.hugetlbfs_mounts(env))
        info = pfring_zc.device_info(env, "eth0")
        assert info is not None and all(isinstance(k, str) for k in info)
        for mac in pfring_zc.licensed_macs(env):
            assert len(mac) == 17 and mac == mac.lower(), mac


def _seeds(name: str) -> list[str]:
    path = SEED_DIR / f"{name}.txt"
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


TARGETS: dict[str, tuple[st.SearchStrategy[Any], Callable[[Any], None], Callable[[], list[Any]]]]
TARGETS = {
    "targets": (any_text, check_targets, lambda: _seeds("targets")),
    "target-file": (st.one_of(st.binary(max_size=200), grammar_text.map(str.encode)),
                    check_target_file,
                    lambda: ["\n".join(_seeds("targets")).encode()]),
    "ports": (any_text, check_ports, lambda: _seeds("ports")),
    "rate": (st.one_of(any_text, st.text(alphabet="0123456789.", min_size=300, max_size=400)),
             check_rate, lambda: _seeds("rate")),
    "shard": (any_text, check_shard, lambda: _seeds("shard")),
    "seed": (any_text, check_seed, lambda: _seeds("seed")),
    "wait": (any_text, check_wait, lambda: _seeds("wait")),
    "source-ports": (any_text, check_source_ports, lambda: _seeds("source-ports")),
    "argv": (argv_lists, check_argv, lambda: [line.split(" ") for line in _seeds("argv")]),
    "pfring-proc": (proc_files, check_pfring_proc, lambda: []),
}
