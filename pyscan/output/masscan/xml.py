"""masscan -oX (src/out-xml.c): nmap's XML, one `<host>` per result, CRLF line ends.

Three repairs over masscan, all for the tools that import it (python-libnmap, Metasploit's
db_import, IVRE): every host carries nmap's `<status state="up" .../>` (masscan leaves it out,
so python-libnmap's `host.is_up()` raises KeyError), an empty scan is still a complete
`<nmaprun>` document (masscan leaves an empty file), and `<scaninfo>` names what was scanned
as nmap does, one element per protocol (masscan always writes `type="syn" protocol="tcp"`,
UDP scans too; a scan with TCP ports, or with no ports known, still writes exactly that).
`<runstats>` counts hosts as nmap does: every host that answered, open or closed, is up.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING
from xml.sax.saxutils import quoteattr

from pyscan.output.masscan.common import (
    MasscanWriter,
    masscan_reason,
    nmap_state,
    protocol_of,
)

if TYPE_CHECKING:
    from pyscan.scanner import Result


class MasscanXmlWriter(MasscanWriter):
    name = "masscan-xml"
    description = "masscan -oX: nmap-compatible XML (python-libnmap, Metasploit, IVRE)"
    always_complete = True

    def header(self) -> None:
        self.stream.write(
            '<?xml version="1.0"?>\r\n'
            "<!-- masscan v1.0 scan -->\r\n"
            f'<nmaprun scanner="masscan" start="{int(self.started)}" version="1.0-BETA"  '
            'xmloutputversion="1.03">\r\n'
        )
        if self.ports or not self.udp_ports:
            self.stream.write('<scaninfo type="syn" protocol="tcp" />\r\n')
        if self.udp_ports:
            self.stream.write('<scaninfo type="udp" protocol="udp" />\r\n')

    def open(self) -> None:
        self.hosts_up = 0
        super().open()

    def reopen(self) -> None:
        """A continued file (resume): <runstats> counts its earlier hosts too, so count the
        ones it holds that are up (the stream appends to a file the writer can read)."""
        super().reopen()
        self.hosts_up = self.records
        path = getattr(self.stream, "name", None)
        if isinstance(path, str):
            try:
                with open(path, encoding="utf-8") as earlier:
                    self.hosts_up = sum('<status state="up"' in line for line in earlier)
            except OSError:
                pass  # keep the guess: every earlier host up

    def write_record(self, result: Result) -> None:
        reason = masscan_reason(result)
        address_type = "ipv6" if result.ip.version == 6 else "ipv4"
        # an ICMP unreachable may come from a router on the way: the host is not known up
        host_state = "unknown" if result.status == "unreachable" else "up"
        self.hosts_up += host_state == "up"
        self.stream.write(
            f'<host endtime="{int(result.timestamp)}">'
            f'<status state="{host_state}" reason="{reason}" reason_ttl="{result.ttl}"/>'
            f"<address addr={quoteattr(str(result.ip))} addrtype=\"{address_type}\"/>"
            "<ports>"
            f'<port protocol="{protocol_of(result)}" portid="{result.port}">'
            f'<state state="{nmap_state(result)}" reason="{reason}" reason_ttl="{result.ttl}"/>'
            "</port>"
            "</ports>"
            "</host>\r\n"
        )

    def trailer(self) -> None:
        now = time.time()
        timestr = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
        self.stream.write(
            "<runstats>\r\n"
            f'<finished time="{int(now)}" timestr="{timestr}" '
            f'elapsed="{int(now - self.opened_at)}" />\r\n'
            # down: the hosts only an ICMP unreachable spoke for (not known up; nmap's
            # total is up + down)
            f'<hosts up="{self.hosts_up}" down="{self.records - self.hosts_up}" '
            f'total="{self.records}" />\r\n'
            "</runstats>\r\n"
            "</nmaprun>\r\n"
        )
