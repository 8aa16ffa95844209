"""pyscan: a stateless kernel-bypass TCP SYN port scanner.

    import pyscan
    config = pyscan.ScanConfig.parse(["198.19.0.0/24"], ports="80,443", rate="100k")
    with pyscan.scan(config) as run:
        for result in run:
            print(result.ip, result.port, result.status)
    print(run.summary)

Importing pyscan needs neither root nor the compiled extension; both are needed only when a
scan starts.
"""

from pyscan.config import ScanConfig
from pyscan.errors import (
    ConfigError,
    Error,
    NotSupportedYet,
    PrivilegeError,
    RunFinishedError,
    ScanError,
)
from pyscan.output import open_writer, write_results
from pyscan.scanner import (
    Result,
    ScanRun,
    ScanStart,
    ScanStatus,
    Summary,
    list_probes,
    list_targets,
    scan,
)
from pyscan.targets import TargetSet

__all__ = [
    "ConfigError",
    "Error",
    "NotSupportedYet",
    "PrivilegeError",
    "Result",
    "RunFinishedError",
    "ScanConfig",
    "ScanError",
    "ScanRun",
    "ScanStart",
    "ScanStatus",
    "Summary",
    "TargetSet",
    "__version__",
    "list_probes",
    "list_targets",
    "open_writer",
    "scan",
    "write_results",
]

__version__ = "0.1.0"
