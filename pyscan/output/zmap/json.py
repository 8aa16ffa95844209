"""zmap's json output module (src/output_modules/module_json.c): one JSON object per line,
printed the way json-c prints it (`{ "saddr": "198.19.0.1", "sport": 80 }`, `/` escaped).
An absent value is left out of the object, as zmap leaves out a null field."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from pyscan.output.zmap.writer import ZmapWriter

if TYPE_CHECKING:
    from pyscan.scanner import Result


def _json_c(value: object) -> str:
    return json.dumps(value).replace("/", "\\/")


class ZmapJsonWriter(ZmapWriter):
    name = "zmap-json"
    description = "zmap's json output module (-O json): one object per line"

    def write_record(self, result: Result) -> None:
        members = [f"{_json_c(name)}: {_json_c(value)}"
                   for name, value in self.values(result) if value is not None]
        self.stream.write("{ " + ", ".join(members) + " }\n" if members else "{ }\n")
