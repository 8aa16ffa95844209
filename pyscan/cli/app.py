"""The `pyscan` typer app: routing, usage errors as one line, and the small commands.

A first argument that is not a subcommand name routes to `scan`, so masscan habits
(`pyscan 198.19.0.0/16 -p80 --rate 100k -oL out.txt`) work.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from pyscan.cli.argv import masscan_spellings_help, rewrite_argv
from pyscan.cli.bench import bench_command
from pyscan.cli.cluster import worker_command
from pyscan.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NO_PERMISSION,
    fail,
    plain_help_type,
)
from pyscan.cli.lab import lab_app
from pyscan.cli.personality import PERSONALITIES, run_personality
from pyscan.cli.scan import ScanCommand, scan_command
from pyscan.config import ConfigError

__all__ = ["app", "main"]


class _PyscanGroup(TyperGroup):
    """Routes a first argument that is not a subcommand to `scan`, rewrites masscan
    spellings, and prints every usage error as one `pyscan: error:` line with exit 2."""

    def get_help_option(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        option = super().get_help_option(ctx)
        if option is not None:
            plain_help_type(option)
        return option

    # typer vendors click and names the base Context only privately (typer._click); the
    # public typer.Context is its subclass, hence the one ignore.
    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        if args[:1] and args[0] in PERSONALITIES:
            # masscan's and zmap's grammars are their own: click must not see those
            # arguments, so the command finds them untouched in ctx.meta.
            ctx.meta["personality_args"] = args[1:]
            return super().parse_args(ctx, args[:1])
        if args[:1] != ["worker"]:  # masscan spellings are scan options (worker has --max-rate)
            args = rewrite_argv(args)
        if args[:1] == ["--version"]:
            from pyscan import __version__

            typer.echo(f"pyscan {__version__}")
            raise typer.Exit(0)
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["scan", *args]
        return super().parse_args(ctx, args)

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        try:
            result = super().main(args=args, prog_name=prog_name or "pyscan",
                                  complete_var=complete_var, standalone_mode=False,
                                  windows_expand_args=windows_expand_args, **extra)
        except (ConfigError, typer.TyperException) as error:
            # TyperException is the base of typer's (vendored click's) usage errors.
            if not standalone_mode:
                raise
            format_message = getattr(error, "format_message", None)
            message = (format_message() if format_message else str(error)).rstrip(".")
            if type(error).__name__ == "NoArgsIsHelpError":
                # No arguments at all: the message is the help text (rich prints it itself).
                if message:
                    typer.echo(message, err=True)
                sys.exit(EXIT_BAD_INPUT)
            if "accepted:" not in message:
                message += " (accepted: see pyscan --help)"
            typer.echo(f"pyscan: error: {message}", err=True)
            code = getattr(error, "exit_code", EXIT_BAD_INPUT)
            sys.exit(EXIT_BAD_INPUT if code in (1, 2) else code)
        except typer.Abort:
            if not standalone_mode:
                raise
            sys.exit(EXIT_INTERRUPTED)
        if standalone_mode:
            sys.exit(result if isinstance(result, int) else 0)
        return result


app = typer.Typer(
    cls=_PyscanGroup,
    add_completion=False,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Stateless kernel-bypass TCP SYN port scanner.\n\n"
         "`pyscan TARGET... -p PORTS [OPTIONS]` scans (the `scan` command); "
         "`pyscan scan --help` lists the scan options (--rate, --driver, -oL/-oJ/-oX FILE, "
         "--format, --exclude, --wait, --dry-run, ...) and the masscan spellings it reads. "
         "`pyscan masscan ARGS` and `pyscan zmap ARGS` take those tools' command lines. "
         "docs/cli.md has every option and the exit codes.",
)
app.add_typer(lab_app, name="lab")
app.command("scan", cls=ScanCommand, epilog=masscan_spellings_help(),
            help="Scan TARGETs (also the default: `pyscan TARGET... -p PORTS`).")(scan_command)


@app.command("drivers", help="List the drivers and whether each can run here, and why.")
def drivers_command() -> None:
    from pyscan.drivers import describe_drivers

    rows = [(name, "yes" if available else "no", reason)
            for name, available, reason in describe_drivers()]
    width = max(len(name) for name, _, _ in rows)
    typer.echo(f"{'driver':<{width}}  available  reason")
    for name, shown, reason in rows:
        typer.echo(f"{name:<{width}}  {shown:<9}  {reason}")


@app.command("cleanup", help="Remove firewall tables left behind by scans that died.")
def cleanup_command(
    netns: Annotated[str | None, typer.Option(
        help="Clean this namespace instead of the current one.")] = None,
) -> None:
    from pyscan.config import parse_netns
    from pyscan.firewall import FirewallError, cleanup_stale
    from pyscan.netlink import NetlinkError
    from pyscan.privileges import missing_capabilities

    try:
        namespace = parse_netns(netns) if netns is not None else None
    except ConfigError as error:
        fail(str(error))
    missing = missing_capabilities(["CAP_NET_ADMIN"])
    if missing:
        fail("missing capability CAP_NET_ADMIN (listing and deleting nftables tables); "
             "run as root (sudo pyscan cleanup)", EXIT_NO_PERMISSION)
    try:
        removed = cleanup_stale(namespace)
    except (FirewallError, NetlinkError) as error:
        fail(str(error), EXIT_FAILED)
    where = f" in {namespace}" if namespace else ""
    typer.echo(f"removed {len(removed)} stale table(s){where}"
               + (": " + ", ".join(removed) if removed else ""))


app.command("worker", help="Serve a Dask scheduler as a pyscan worker for one scanning NIC "
            "(docs/cluster.md).")(worker_command)


def _personality_command(tool: str) -> None:
    def command(ctx: typer.Context) -> None:
        run_personality(tool, ctx.meta.get("personality_args", []))

    command.__name__ = f"{tool}_command"
    app.command(tool, add_help_option=False,
                help=f"{tool}'s own command line and defaults: `pyscan {tool} ARGS...` "
                     f"(alias {tool}='pyscan {tool}'); see docs/cli.md.")(command)


for _tool in PERSONALITIES:
    _personality_command(_tool)


app.command("bench", help="Driver TX benchmark: pps, Gbit/s on the wire, CPU/packet, "
            "line-rate share; --lab adds an exact sink count.")(bench_command)


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point (`pyscan`, `python -m pyscan`)."""
    try:
        typer.main.get_command(app).main(args=argv, prog_name="pyscan")
    finally:
        # The exit code is decided: a late Ctrl-C or SIGTERM must not replace it with a
        # traceback or a death by signal while the interpreter shuts down.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)
