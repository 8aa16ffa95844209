"""`pyscan lab up|down|status`: the virtual lab's sub-app (the lab itself is pyscan.lab)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from pyscan.cli.common import EXIT_NO_PERMISSION, fail, fail_with, parse_count
from pyscan.config import ConfigError
from pyscan.privileges import PrivilegeError

__all__ = ["lab_app"]

_T = TypeVar("_T")

lab_app = typer.Typer(no_args_is_help=True, help="The virtual lab: namespaces, veth, targets.")


def _lab_call(action: Callable[[], _T]) -> _T:
    """Run one lab operation with the privilege check and errors as one line."""
    from pyscan.lab import LabError
    from pyscan.privileges import require_lab_privileges

    try:
        require_lab_privileges()
    except PrivilegeError as error:
        fail(str(error), EXIT_NO_PERMISSION)
    try:
        return action()
    except LabError as error:
        fail_with(error)   # LabInputError is bad input (exit 2), the rest a failure (1)


@lab_app.command("up", help="Build the lab: two namespaces, a veth pair, AnyIP targets.")
def lab_up(
    name: Annotated[str, typer.Option(help="Lab name (prefix of its namespaces).")] = "pyscan",
    subnet: Annotated[str, typer.Option(
        help="Target addresses, inside 198.18.0.0/15.")] = "198.19.0.0/16",
    ports: Annotated[str, typer.Option(help="Ports the targets listen on.")] = "22,80,443,8080",
    open_count: Annotated[str | None, typer.Option(
        help="Open exactly this many random (address, port) pairs instead of all.")] = None,
    seed: Annotated[str | None, typer.Option(
        help="Seed for the draws of --open-count, --unreachable, --udp-open-count and their "
             "IPv6 counterparts.")] = None,
    unreachable: Annotated[str | None, typer.Option(
        help="Answer SYNs to this many random (address, port) pairs that are not open with "
             "ICMP destination unreachable (codes 0, 1, 10, 13 in turn).")] = None,
    sink: Annotated[bool, typer.Option(
        "--sink", help="Count and drop every probe at the target (TX-rate measurement).")
    ] = False,
    queues: Annotated[str, typer.Option(help="veth queue pairs.")] = "1",
    loss: Annotated[str, typer.Option(
        help="Drop this share of IPv4 frames at random, each way: 10%, 0.5% (a lossy path).")
    ] = "0%",
    subnet6: Annotated[str | None, typer.Option(
        help="IPv6 target prefix inside 2001:2::/48 (default 2001:2::/120; a --sink lab has "
             "IPv6 only when this is given).")] = None,
    no_ipv6: Annotated[bool, typer.Option(
        "--no-ipv6", help="IPv4 only: no IPv6 on the lab's link.")] = False,
    open_count6: Annotated[str | None, typer.Option(
        help="Open exactly this many random IPv6 (address, port) pairs instead of all.")
    ] = None,
    echo_count6: Annotated[str | None, typer.Option(
        help="Only this many random IPv6 addresses answer ICMPv6 echo (default: all).")
    ] = None,
    unreachable6: Annotated[str | None, typer.Option(
        help="Answer SYNs to this many random IPv6 (address, port) pairs that are not open "
             "with ICMPv6 destination unreachable (codes 0, 1, 3, 4 in turn).")] = None,
    udp_ports: Annotated[str | None, typer.Option(
        help="UDP responders on these ports (53 answers DNS version.bind, the others echo "
             "the datagram); every IPv4 address answers on them unless --udp-open-count.")
    ] = None,
    udp_open_count: Annotated[str | None, typer.Option(
        help="Only this many random IPv4 (address, UDP port) pairs of --udp-ports answer; "
             "every other one answers ICMP port unreachable.")] = None,
    udp_open_count6: Annotated[str | None, typer.Option(
        help="This many random IPv6 (address, UDP port) pairs of --subnet6 x --udp-ports "
             "answer; every other one answers ICMPv6 port unreachable.")] = None,
) -> None:
    from pyscan.config import parse_ports, parse_seed
    from pyscan.lab import DEFAULT_SUBNET6, Lab

    count = _optional_count(open_count, "--open-count")
    unreachable_count = _optional_count(unreachable, "--unreachable")
    queue_count = parse_count(queues, "--queues", 1, 64)
    try:
        port_list = parse_ports(ports)
        draw_seed = parse_seed(seed) if seed is not None else None
        loss_percent = _parse_loss(loss)
        # Constructing a Lab only checks its settings: bad input is refused (exit 2) before
        # the privilege check and before anything exists.
        count6 = _optional_count(open_count6, "--open-count6")
        echo6 = _optional_count(echo_count6, "--echo-count6")
        unreachable_count6 = _optional_count(unreachable6, "--unreachable6")
        udp_port_list = _parse_udp_ports(udp_ports) if udp_ports is not None else ()
        udp_count = _optional_count(udp_open_count, "--udp-open-count")
        udp_count6 = _optional_count(udp_open_count6, "--udp-open-count6")
        for option, value in (("--udp-open-count", udp_count),
                              ("--udp-open-count6", udp_count6)):
            if value is not None and not udp_port_list:
                fail(f"{option} needs --udp-ports (accepted: --udp-ports 53,123 "
                     f"{option} N)")
        given6 = [option for option, value in (
            ("--subnet6", subnet6), ("--open-count6", count6), ("--echo-count6", echo6),
            ("--unreachable6", unreachable_count6), ("--udp-open-count6", udp_count6))
            if value is not None]
        if no_ipv6 and given6:
            fail(f"{'/'.join(given6)} and --no-ipv6 contradict each other (accepted: one "
                 "of them)")
        ipv6 = False if no_ipv6 else True if given6 else None
        prefix6 = subnet6 or DEFAULT_SUBNET6
        lab = Lab(name=name, subnet=subnet, ports=port_list, open_count=count, seed=draw_seed,
                  sink=sink, queues=queue_count, loss=loss_percent,
                  unreachable_count=unreachable_count, ipv6=ipv6,
                  subnet6=prefix6, open_count6=count6,
                  echo_hosts6=(None if echo6 is None
                               else Lab.draw_echo_hosts6(prefix6, echo6, draw_seed)),
                  unreachable_count6=unreachable_count6, udp_ports=udp_port_list,
                  udp_open_count=udp_count, udp_open_count6=udp_count6)
    except ConfigError as error:
        fail(str(error))
    lab = _lab_call(lab.up)
    typer.echo(_format_status(lab.status()))
    typer.echo(f"scan it with:  {lab.scan_command()}")
    for label, command in (("over IPv6:", lab.scan_command6()),
                           ("UDP:", lab.udp_scan_command()),
                           ("UDP over IPv6:", lab.udp_scan_command6())):
        if command is not None:
            typer.echo(f"{label:<15}{command}")


def _optional_count(text: str | None, option: str) -> int | None:
    """A count option left out (None), or a count of pairs or hosts: exit 2 if not one."""
    return None if text is None else parse_count(text, option, 0, 2**32)


def _parse_udp_ports(text: str) -> tuple[int, ...]:
    """'53,123' or 'U:53,U:123-124' -> (53, 123, ...); exit 2 for anything else (T: too)."""
    from pyscan.config import parse_ports

    items = [item.strip() for item in text.split(",")]
    accepted = "accepted: UDP ports N, A-B or U:N, comma-separated, within 1-65535"
    if any(item[:2].upper() == "T:" for item in items):
        fail(f"bad --udp-ports {text!r}: TCP ports go in --ports ({accepted})")
    try:
        return parse_ports(",".join(item[2:] if item[:2].upper() == "U:" else item
                                    for item in items))
    except ConfigError:
        fail(f"bad --udp-ports {text!r} ({accepted})")


def _parse_loss(text: str) -> float:
    """'10%' or '10' -> 10.0 (percent, each way); exit 2 outside 0 <= loss < 100."""
    cleaned = text.strip().removesuffix("%").strip()
    try:
        percent = float(cleaned)
    except ValueError:
        fail(f"bad --loss {text!r} (accepted: a percentage 0 <= loss < 100, like 10% or 0.5%)")
    if not 0 <= percent < 100:
        fail(f"bad --loss {text!r} (accepted: a percentage 0 <= loss < 100, like 10% or 0.5%)")
    return percent


@lab_app.command("down", help="Remove the lab's namespaces, links and programs.")
def lab_down(
    name: Annotated[str, typer.Option(help="Lab name.")] = "pyscan",
) -> None:
    from pyscan.lab import Lab

    _lab_call(lambda: Lab.load(name).down())
    typer.echo(f"lab {name!r} removed")


@lab_app.command("status", help="Show what the lab has running.")
def lab_status(
    name: Annotated[str | None, typer.Option(help="Lab name (default: every lab).")] = None,
) -> None:
    from pyscan.lab import list_labs

    names = [name] if name is not None else list_labs()
    if not names:
        typer.echo("no labs are up")
        return
    for index, lab_name in enumerate(names):
        if index:
            typer.echo("")
        typer.echo(_format_status(_lab_call(functools.partial(_load_status, lab_name))))


def _load_status(name: str) -> dict[str, Any]:
    from pyscan.lab import Lab

    return Lab.load(name).status()


def _format_status(status: object) -> str:
    if isinstance(status, dict):
        return "\n".join(f"{key}: {value}" for key, value in status.items())
    return str(status)
