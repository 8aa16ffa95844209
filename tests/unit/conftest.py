"""Unit tests never reach a network: a scan that is not a dry run and not inside a namespace
is stopped before it resolves a route (which could ARP) or opens a driver, whatever the test
asked for. Tests that need real packets belong in tests/net, inside the lab's namespaces."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import pyscan.scanner


@pytest.fixture(autouse=True)
def no_packets_from_the_host_namespace(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    resolve = pyscan.scanner._resolve_path

    def guarded(config: Any) -> Any:
        if not config.is_dry_run:
            raise AssertionError("a unit test tried to send packets (not a dry run): use "
                                 "--dry-run / the null driver, or move it to tests/net")
        return resolve(config)

    monkeypatch.setattr(pyscan.scanner, "_resolve_path", guarded)
    yield
