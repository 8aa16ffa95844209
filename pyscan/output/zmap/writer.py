"""What zmap's csv and json output modules share: field selection, the output filter and the
success-only rule of zmap's default mode, applied to each result before it is written.

zmap applies the same steps in the same order (src/recv.c): drop unsuccessful replies when
the mode says so, drop repeats (pyscan has none), drop what the filter rejects, then hand the
selected fields to the output module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TextIO

from pyscan.output.base import ResultWriter
from pyscan.output.zmap.fields import Value, field

if TYPE_CHECKING:
    from pyscan.output.zmap.filter import OutputFilter
    from pyscan.scanner import Result

__all__ = ["ZmapWriter"]


class ZmapWriter(ResultWriter):
    """Base for zmap's output modules. `fields`: names as zmap spells them (checked);
    `output_filter`: a parsed --output-filter; `only_success`: zmap's default mode;
    `header_row`: None for zmap's rule (csv only)."""

    def __init__(
        self,
        stream: TextIO,
        *,
        started: float,
        ports: tuple[int, ...] = (),
        owns_stream: bool = False,
        fields: tuple[str, ...] = ("saddr",),
        output_filter: OutputFilter | None = None,
        only_success: bool = False,
        header_row: bool | None = None,
        udp_ports: tuple[int, ...] = (),
        ping: bool = False,
    ) -> None:
        self.fields = fields
        # zmap's rule: a header row when more than one field; default mode has none.
        self.header_row = len(fields) > 1 if header_row is None else header_row
        self._readers = [(name, field(name).read) for name in fields]
        self.output_filter = output_filter
        self._filter_readers = ([(name, field(name).read) for name in output_filter.fields]
                                if output_filter is not None else [])
        self.only_success = only_success
        self.skipped = 0
        super().__init__(stream, started=started, ports=ports, owns_stream=owns_stream,
                         udp_ports=udp_ports, ping=ping)

    def write(self, result: Result) -> None:
        if self.only_success and result.status not in ("open", "up"):
            self.skipped += 1
            return
        if self.output_filter is not None:
            values = {name: read(result) for name, read in self._filter_readers}
            if not self.output_filter.matches(values):
                self.skipped += 1
                return
        super().write(result)

    def values(self, result: Result) -> list[tuple[str, Value]]:
        return [(name, read(result)) for name, read in self._readers]
