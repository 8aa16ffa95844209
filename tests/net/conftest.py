"""Shared fixtures for tests that build network namespaces (root only).

- ``lab_factory(**lab_settings) -> Lab``: a lab that is up, with a name unique to this
  process and test (``pt<pid>-<n>``), always brought down when the test ends, pass or fail.
- ``tcp_connect(netns, ip, port, source_port=0, timeout=2.0) -> "open"|"refused"|"timeout"``:
  a plain TCP connect (IPv4 or IPv6) made from inside ``netns``.
- ``cli_lab -> str``: a unique lab name for a lab built with ``pyscan lab up``, removed with
  ``pyscan lab down`` after the test, pass or fail.

Plain helpers the truth tests share (scans, forged frames, result checks) are in helpers.py.
- ``scratch_netns(tag) -> str``: an empty namespace with a unique name, removed after the test.
- ``no_leftovers`` (automatic): after each test, nothing of this process is left behind - no
  namespace with our prefix, no lab state file, no ``pyscan_*`` nft table owned by this
  process, no XDP program or interface with our prefix in the host namespace.

Every name made here starts with ``NAME_PREFIX`` so tests of several people (and several
pytest processes) can run at the same time without touching each other.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pyscan import firewall, netlink
from pyscan.lab import LAB_STATE_DIR, Lab
from tests.net.helpers import run_cli, tcp_connect_from

NAME_PREFIX = f"pt{os.getpid()}-"
_counter = itertools.count()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.net)
            if os.geteuid() != 0:
                item.add_marker(pytest.mark.skip(
                    reason="needs root: builds network namespaces, veths and nft tables"))


def unique_name(tag: str = "") -> str:
    """A lab/namespace name no other test or process uses (at most 13 characters)."""
    name = f"{NAME_PREFIX}{next(_counter)}{tag}"
    if len(name) > 13:
        raise ValueError(f"name {name!r} is longer than 13 characters: shorten tag {tag!r}")
    return name


@pytest.fixture(name="unique_name")
def unique_name_fixture() -> Callable[[str], str]:
    """``unique_name(tag="")``: a name for a lab, namespace or interface of this test."""
    return unique_name


@pytest.fixture
def lab_factory() -> Iterator[Callable[..., Lab]]:
    made: list[Lab] = []

    def make(**settings: Any) -> Lab:
        settings.setdefault("name", unique_name())
        lab = Lab(**settings)
        made.append(lab)
        return lab.up()

    yield make
    errors = []
    for lab in reversed(made):
        try:
            lab.down()
        except Exception as error:  # every lab gets its down() even if one fails
            errors.append(f"{lab.name}: {error}")
    assert not errors, "lab down failed: " + "; ".join(errors)


@pytest.fixture
def scratch_netns() -> Iterator[Callable[[str], str]]:
    made: list[str] = []

    def make(tag: str = "") -> str:
        name = unique_name(tag)
        netlink.create_netns(name)
        made.append(name)
        # quiet like the lab: no router solicitations or MLD reports on test links, so
        # counters see only what a test sends
        netlink.write_sysctl("net/ipv6/conf/all/disable_ipv6", "1", name)
        netlink.write_sysctl("net/ipv6/conf/default/disable_ipv6", "1", name)
        return name

    yield make
    for name in made:
        netlink.remove_netns(name)


@pytest.fixture
def tcp_connect() -> Callable[..., str]:
    """``tcp_connect(netns, ip, port, source_port=0, timeout=2.0)`` -> open/refused/timeout,
    from inside ``netns`` (never from the host namespace), IPv4 or IPv6 by ``ip``."""
    return tcp_connect_from


@pytest.fixture
def cli_lab() -> Iterator[str]:
    """A unique name for a lab that the test builds through ``pyscan lab up --name``; whatever
    the test did, ``pyscan lab down`` removes it afterwards (down of a lab never built is
    refused: ignored), and its namespaces must be gone."""
    name = unique_name("c")
    yield name
    run_cli("lab", "down", "--name", name, timeout=60)
    assert not netlink.netns_exists(f"{name}-scan")
    assert not netlink.netns_exists(f"{name}-tgt")


def _our_tables() -> list[str]:
    ours = []
    for name in firewall.list_tables():
        owner = firewall._table_owner(name, None)
        if owner is not None and owner[0] == os.getpid():
            ours.append(name)
    return ours


def leftovers() -> list[str]:
    from pyscan.native import xdp_attached_prog_id

    found = [f"namespace {n}" for n in netlink.list_netns(NAME_PREFIX)]
    found += [f"lab state {p}" for p in LAB_STATE_DIR.glob(f"{NAME_PREFIX}*.json")]
    found += [f"lab lock {p}" for p in LAB_STATE_DIR.glob(f".{NAME_PREFIX}*.lock")]
    found += [f"nft table {t}" for t in _our_tables()]
    for link in netlink.link_names():
        if link.startswith(NAME_PREFIX):
            found.append(f"host interface {link}")
            if xdp_attached_prog_id(netlink.link_index(link)):
                found.append(f"XDP program on host interface {link}")
    return found


@pytest.fixture(autouse=True)
def no_leftovers() -> Iterator[None]:
    yield
    left = leftovers()
    # Clean up so one leak does not fail every later test, then fail this one.
    for name in netlink.list_netns(NAME_PREFIX):
        netlink.remove_netns(name)
    for path in [*LAB_STATE_DIR.glob(f"{NAME_PREFIX}*.json"),
                 *LAB_STATE_DIR.glob(f".{NAME_PREFIX}*.lock")]:
        path.unlink(missing_ok=True)
    for table in _our_tables():
        firewall.run_nft(f"delete table inet {table}\n")
    for link in netlink.link_names():
        if link.startswith(NAME_PREFIX):
            netlink.delete_link(link)
    assert not left, "left behind: " + ", ".join(left)
