"""masscan -oL, byte for byte: `#masscan`, `open tcp 80 198.19.0.1 1700000000`, `# end`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyscan.output.masscan.common import MasscanWriter, masscan_status, protocol_of

if TYPE_CHECKING:
    from pyscan.scanner import Result


class MasscanListWriter(MasscanWriter):
    name = "masscan-list"
    description = "masscan -oL: status proto port ip timestamp"

    def header(self) -> None:
        self.stream.write("#masscan\n")

    def write_record(self, result: Result) -> None:
        self.stream.write(f"{masscan_status(result)} {protocol_of(result)} {result.port} "
                          f"{result.ip} {int(result.timestamp)}\n")

    def trailer(self) -> None:
        self.stream.write("# end\n")
