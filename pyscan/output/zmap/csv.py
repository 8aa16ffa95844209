"""zmap's csv output module (src/output_modules/module_csv.c): a header row only when more
than one field is selected, fields joined by commas, a string holding a comma in double
quotes, an absent value as an empty cell."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyscan.output.zmap.writer import ZmapWriter

if TYPE_CHECKING:
    from pyscan.scanner import Result


def _cell(value: object) -> str:
    if value is None:
        return ""
    text = str(value)
    return f'"{text}"' if isinstance(value, str) and "," in text else text


class ZmapCsvWriter(ZmapWriter):
    name = "zmap-csv"
    description = "zmap's csv output module (-O csv), zmap's field names"

    def open(self) -> None:
        if self.header_row:
            self.stream.write(",".join(self.fields) + "\n")

    def write_record(self, result: Result) -> None:
        self.stream.write(",".join(_cell(value) for _, value in self.values(result)) + "\n")
