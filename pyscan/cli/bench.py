"""`pyscan bench`: the driver TX benchmark command (the measuring is pyscan.bench_command)."""

from __future__ import annotations

from typing import Annotated

import typer

from pyscan import drivers
from pyscan.cli.common import EXIT_FAILED, EXIT_NO_PERMISSION, OPTIONS_HELP, fail
from pyscan.privileges import PrivilegeError

__all__ = ["bench_command"]


def bench_command(
    driver: Annotated[str, typer.Option(help=" | ".join(drivers.names()) + ".")],
    interface: Annotated[str | None, typer.Option("--interface", "-i",
                                                  help="Interface to send on.")] = None,
    duration: Annotated[str, typer.Option(help="Seconds to send.")] = "10",
    tx_threads: Annotated[str, typer.Option(help="Sending threads (one queue each).")] = "1",
    size: Annotated[str, typer.Option(help="Frame bytes on the wire incl. FCS.")] = "64",
    rate: Annotated[str | None, typer.Option(help="Packets per second (default: max).")] = None,
    lab: Annotated[bool, typer.Option("--lab", help="Build a sink lab and send into it.")
                   ] = False,
    source_ip: Annotated[str | None, typer.Option(help="Source address.")] = None,
    gateway_mac: Annotated[str | None, typer.Option(help="Next-hop MAC (skip ARP).")] = None,
    driver_option: Annotated[list[str] | None, typer.Option(
        "--driver-option", "-O", help=OPTIONS_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON report on stdout.")] = False,
) -> None:
    from pyscan import bench_command as bench

    try:
        options = bench.options_from_text(driver, interface, duration, tx_threads, size, rate,
                                          lab, source_ip, gateway_mac, driver_option or [])
        if driver != "null":
            from pyscan.privileges import require_scan_privileges

            require_scan_privileges(driver, isolation=False, netns="lab" if lab else None)
        bench.run_and_print(options, as_json=as_json)
    except bench.BenchInputError as error:
        fail(str(error))
    except PrivilegeError as error:
        fail(str(error), EXIT_NO_PERMISSION)
    except bench.BenchError as error:
        fail(str(error), EXIT_FAILED)
