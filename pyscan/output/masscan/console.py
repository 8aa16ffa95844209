"""What masscan prints on standard output when no output file is given (src/output.c):
`Discovered open port 80/tcp on 198.19.0.1`, padded with blanks to 79 columns so that it
covers the status line it may overwrite."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyscan.output.masscan.common import MasscanWriter, masscan_status, protocol_of

if TYPE_CHECKING:
    from pyscan.scanner import Result


class MasscanConsoleWriter(MasscanWriter):
    name = "masscan-console"
    description = "masscan's default output: Discovered open port 80/tcp on IP"

    def write_record(self, result: Result) -> None:
        line = (f"Discovered {masscan_status(result)} port {result.port}/{protocol_of(result)}"
                f" on {result.ip}")
        self.stream.write(line.ljust(79) + "\n")
        self.stream.flush()  # masscan flushes each line: a pipe sees it at once
