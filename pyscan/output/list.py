"""masscan -oL: `open tcp 80 198.19.0.1 1700000000`, between `#masscan` and `# end`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyscan.output.base import ResultWriter

if TYPE_CHECKING:
    from pyscan.scanner import Result


class ListWriter(ResultWriter):
    name = "list"
    description = "masscan -oL lines: status proto port ip timestamp"

    def open(self) -> None:
        self.stream.write("#masscan\n")

    def write_record(self, result: Result) -> None:
        self.stream.write(
            f"{result.status} {getattr(result, 'protocol', 'tcp')} {result.port} {result.ip} "
            f"{int(result.timestamp)}\n"
        )

    def finish(self) -> None:
        self.stream.write("# end\n")
