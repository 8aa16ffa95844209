"""masscan 1.3.2's output files, byte for byte: `-oL -oJ -oD -oG -oX`.

`MASSCAN_FORMATS[letter]` is the writer for `-o<letter>`. These are what a masscan spelling
means (in `pyscan masscan` and in plain pyscan); pyscan's own clean schemas are the writers in
`pyscan.output.FORMATS` (`--format`).
"""

from __future__ import annotations

from pyscan.output.base import ResultWriter
from pyscan.output.masscan.common import MASSCAN_VERSION, masscan_reason, service_name
from pyscan.output.masscan.console import MasscanConsoleWriter
from pyscan.output.masscan.grepable import MasscanGrepableWriter
from pyscan.output.masscan.json import MasscanJsonWriter
from pyscan.output.masscan.list import MasscanListWriter
from pyscan.output.masscan.ndjson import MasscanNdjsonWriter
from pyscan.output.masscan.xml import MasscanXmlWriter

__all__ = [
    "MASSCAN_FORMATS",
    "MASSCAN_FORMAT_NAMES",
    "MASSCAN_VERSION",
    "MasscanConsoleWriter",
    "MasscanGrepableWriter",
    "MasscanJsonWriter",
    "MasscanListWriter",
    "MasscanNdjsonWriter",
    "MasscanXmlWriter",
    "masscan_reason",
    "service_name",
]

MASSCAN_FORMATS: dict[str, type[ResultWriter]] = {
    "L": MasscanListWriter,
    "J": MasscanJsonWriter,
    "D": MasscanNdjsonWriter,
    "G": MasscanGrepableWriter,
    "X": MasscanXmlWriter,
}
# masscan's --output-format names for the same writers.
MASSCAN_FORMAT_NAMES: dict[str, str] = {
    "list": "L", "json": "J", "ndjson": "D", "grepable": "G", "xml": "X",
}
