"""The `pyscan` command: parse, make one library call, format. Nothing else lives here.

`pyscan [OPTIONS] TARGET...` scans; `pyscan lab up|down|status`, `pyscan bench`,
`pyscan drivers` and `pyscan cleanup` are subcommands. One module per part:

- ``argv``: masscan/zmap spellings rewritten before parsing;
- ``scan``: the scan command (the default);
- ``lab``, ``bench``: the lab sub-app and the driver TX benchmark command;
- ``common``: the exit codes and the one-line failure every command uses;
- ``app``: the typer app, routing, usage errors, ``drivers`` and ``cleanup``, ``main``.

Exit codes: 0 done, 1 the scan failed at run time (route, driver, firewall), 2 bad input
(nothing was created), 77 missing capability, 130 interrupted (after flushing output and
printing the summary).
"""

from pyscan.cli.app import app, main
from pyscan.cli.argv import rewrite_argv
from pyscan.cli.common import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_INTERRUPTED", "app", "main", "rewrite_argv"]
