"""`pyscan masscan ARGS` and `pyscan zmap ARGS`: each tool's grammar read into one Plan,
flags that need unbuilt capabilities refused by name, defaults as the tools have them."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyscan.cli.masscan import echo_lines, parse_masscan
from pyscan.cli.top_ports import TOP_TCP_PORTS
from pyscan.cli.zmap import parse_zmap
from pyscan.config import ConfigError, ScanConfig
from pyscan.errors import NotSupportedYet

# --- masscan -------------------------------------------------------------------------------


def test_masscan_defaults_and_console_output() -> None:
    plan = parse_masscan(["198.19.0.0/24", "-p80"])
    assert plan.targets == ["198.19.0.0/24"]
    assert plan.scan == {"rate": "100", "wait": "10", "ttl": 255, "ports": "80",
                         "show_closed": False}
    assert [(out.format, out.path) for out in plan.outputs] == [("masscan-console", None)]
    ScanConfig.parse(plan.targets, **{k: v for k, v in plan.scan.items()})


@pytest.mark.parametrize(("flag", "letter_writer"), [
    ("-oL", "masscan-list"), ("-oJ", "masscan-json"), ("-oD", "masscan-ndjson"),
    ("-oG", "masscan-grepable"), ("-oX", "masscan-xml")])
def test_masscan_output_letters(flag: str, letter_writer: str) -> None:
    plan = parse_masscan(["198.19.0.1", "-p", "80", flag, "out.file"])
    assert [(out.format, str(out.path)) for out in plan.outputs] == [(letter_writer, "out.file")]


def test_masscan_output_format_and_filename_and_append() -> None:
    plan = parse_masscan(["198.19.0.1", "-p80", "--output-format", "ndjson",
                          "--output-filename=x.ndjson", "--append-output"])
    (output,) = plan.outputs
    assert (output.format, str(output.path), output.append) == ("masscan-ndjson", "x.ndjson",
                                                                  True)
    # masscan's default for a file named without a format is XML.
    (output,) = parse_masscan(["198.19.0.1", "-p80", "--output-filename", "f"]).outputs
    assert output.format == "masscan-xml"
    assert parse_masscan(["198.19.0.1", "-p80", "-oL", "-"]).outputs[0].to_stdout


def test_masscan_port_spellings() -> None:
    assert parse_masscan(["198.19.0.1", "-p-"]).scan["ports"] == "1-65535"
    assert parse_masscan(["198.19.0.1", "-pT:80,443"]).scan["ports"] == "80,443"
    assert parse_masscan(["198.19.0.1", "--ports", "22", "-p", "80"]).scan["ports"] == "22,80"
    assert parse_masscan(["198.19.0.1", "-pT:80,U:53,54"]).scan["ports"] == "80,U:53,U:54"
    ping = parse_masscan(["198.19.0.1", "--ping"])
    assert (ping.scan["ports"], ping.scan["ping"]) == ("", True)
    mixed = parse_masscan(["198.19.0.1", "--ping", "-p80,U:53"]).scan
    assert ScanConfig.parse(["198.19.0.1"], **{k: mixed[k] for k in ("ports", "ping")}
                            ).entries == (("tcp-syn", 80), ("udp", 53), ("icmp-echo", 0))
    top = parse_masscan(["198.19.0.1", "--top-ports", "5"]).scan["ports"]
    assert top == ",".join(map(str, TOP_TCP_PORTS[:5])) == "1,3,4,6,7"


@pytest.mark.parametrize(("argv", "flag"), [
    (["-pS:2905"], "-p S:2905"),
    (["-pT:80,I:8"], "-p I:8"),
    (["-p80", "--banners"], "--banners"),
    (["-p80", "--resume-index", "5"], "--resume-index"),
    (["-p80", "-sU"], "-sU"),
    (["-p80", "--wait", "forever"], "--wait forever"),
    (["-p80", "-oB", "f"], "-oB"),
    (["-p80", "--output-format", "binary"], "--output-format binary"),
])
def test_masscan_unbuilt_capabilities_are_refused_by_name(argv: list[str], flag: str) -> None:
    with pytest.raises(NotSupportedYet, match=f"^{flag} is not supported yet: "):
        parse_masscan(["198.19.0.1", *argv])


def test_masscan_resume_takes_only_rate_and_wait() -> None:
    plan = parse_masscan(["--resume", "paused.conf", "--rate", "5000", "--wait", "3"])
    assert (plan.action, plan.resume_path) == ("resume", "paused.conf")
    assert (plan.scan["rate"], plan.scan["wait"]) == ("5000", "3")
    with pytest.raises(ConfigError, match=r"these change it: --ports 80, --seed 3, "
                                          r"target 198.19.0.1, -o out.json \(accepted"):
        parse_masscan(["--resume", "paused.conf", "-p80", "--seed", "3", "198.19.0.1",
                       "-oJ", "out.json"])


def test_masscan_nmap_habits_are_accepted() -> None:
    plan = parse_masscan(["-sS", "-Pn", "-n", "-T4", "198.19.0.1", "-p80", "-v"])
    assert plan.targets == ["198.19.0.1"] and plan.action == "scan" and plan.verbose == 1
    assert parse_masscan(["-sL", "198.19.0.1", "-p80"]).action == "list-targets"


def test_masscan_names_ignore_dashes_like_masscan() -> None:
    one = parse_masscan(["198.19.0.1", "-p80", "--excludefile", "a", "--exclude-file", "b",
                         "--includefile", "c", "-iL", "d", "--exclude", "198.19.0.9"])
    assert one.scan["exclude_files"] == ["a", "b"]
    assert one.scan["include_files"] == ["c", "d"]
    assert one.scan["excludes"] == ["198.19.0.9"]


def test_masscan_adapter_options() -> None:
    plan = parse_masscan(["198.19.0.1", "-p80", "--adapter", "eth1", "--adapter-ip",
                          "198.18.0.1", "--adapter-port", "61000", "--router-mac",
                          "02:00:00:00:00:01", "--ttl", "64", "--seed", "7", "--shard", "2/3",
                          "--max-rate", "5000", "--wait", "2"])
    scan = plan.scan
    assert (scan["interface"], scan["source_ip"], scan["source_ports"], scan["gateway_mac"],
            scan["ttl"], scan["seed"], scan["shard"], scan["rate"], scan["wait"]) == (
        "eth1", "198.18.0.1", "61000", "02:00:00:00:00:01", 64, "7", "2/3", "5000", "2")
    short = parse_masscan(["198.19.0.1", "-p80", "-e", "eth2", "-S198.18.0.5", "-g", "61001"])
    assert (short.scan["interface"], short.scan["source_ip"], short.scan["source_ports"]) == (
        "eth2", "198.18.0.5", "61001")


def test_masscan_adapter_mac_and_router_ip_reach_the_config() -> None:
    plan = parse_masscan(["198.19.0.1", "-p80", "--adapter-mac", "02-AA-bb-cc-dd-01",
                          "--router-ip", "198.18.0.2"])
    config = ScanConfig.parse(plan.targets, **plan.scan)
    assert config.source_mac == "02:aa:bb:cc:dd:01"
    assert str(config.gateway_ip) == "198.18.0.2" and config.gateway_mac is None
    echoed = echo_lines(plan)
    assert "adapter-mac = 02-AA-bb-cc-dd-01" in echoed and "router-ip = 198.18.0.2" in echoed
    with pytest.raises(ConfigError, match="bad MAC address 'nope'"):
        ScanConfig.parse(["198.19.0.1"], ports="80", source_mac="nope")
    with pytest.raises(ConfigError, match=r"bad gateway IP '198\.18'"):
        ScanConfig.parse(["198.19.0.1"], ports="80", gateway_ip="198.18")
    with pytest.raises(ConfigError, match="contradict"):
        ScanConfig.parse(["198.19.0.1"], ports="80", gateway_ip="198.18.0.2",
                         gateway_mac="02:00:00:00:00:01")


def test_masscan_show_open_only_offline() -> None:
    assert parse_masscan(["198.19.0.1", "-p80", "--show", "closed"]).scan["show_closed"]
    assert not parse_masscan(["198.19.0.1", "-p80", "--show", "closed",
                              "--open-only"]).scan["show_closed"]
    assert parse_masscan(["198.19.0.1", "-p80", "--offline"]).scan["driver"] == "null"
    with pytest.raises(NotSupportedYet, match="--noshow open"):
        parse_masscan(["198.19.0.1", "-p80", "--noshow", "open"])
    with pytest.raises(ConfigError, match="bad --show value 'half'"):
        parse_masscan(["198.19.0.1", "-p80", "--show", "half"])


def test_masscan_config_file_as_echo_writes_it(tmp_path: Path) -> None:
    """masscan's own --echo output (recorded from masscan 1.3.2) is a config file for -c."""
    conf = tmp_path / "masscan.conf"
    conf.write_text("seed = 10789316150416037981\nrate = 100       \nshard = 1/1\n"
                    "nocapture = servername\n\n\nadapter = lab-s\nadapter-ip = 198.18.0.1\n"
                    "router-mac-ipv4 = 7e-73-ee-1a-86-e0\n"
                    "router-mac-ipv6 = 7e-73-ee-1a-86-e0\n"
                    "# TARGET SELECTION (IP, PORTS, EXCLUDES)\nports = 22,80\n"
                    "range = 198.19.0.0/29\n")
    plan = parse_masscan(["-c", str(conf), "--rate", "2000"])
    assert plan.targets == ["198.19.0.0/29"]
    assert plan.scan["ports"] == "22,80" and plan.scan["rate"] == "2000"
    # One per family; the scan's family picks (pyscan.config._family_gateway_mac).
    assert plan.scan["gateway_mac_ipv4"] == plan.scan["gateway_mac_ipv6"] == "7e-73-ee-1a-86-e0"
    again = tmp_path / "again.conf"
    again.write_text("\n".join(echo_lines(plan)) + "\n")
    replay = parse_masscan(["--conf", str(again)])
    assert replay.targets == plan.targets
    keys = ("ports", "rate", "seed", "interface", "gateway_mac_ipv4", "gateway_mac_ipv6")
    assert {k: replay.scan[k] for k in keys} == {k: plan.scan[k] for k in keys}


def test_masscan_config_errors_name_file_and_line(tmp_path: Path) -> None:
    conf = tmp_path / "bad.conf"
    conf.write_text("rate = 100\nbanners = true\n")
    with pytest.raises(NotSupportedYet, match=r"bad.conf:2: --banners is not supported yet"):
        parse_masscan(["-c", str(conf), "-p80", "198.19.0.1"])
    with pytest.raises(ConfigError, match="cannot read config file"):
        parse_masscan(["-c", str(tmp_path / "missing.conf")])


@pytest.mark.parametrize(("argv", "message"), [
    (["--bogus"], "unknown masscan option --bogus"),
    (["-oX"], "-oX needs a file name"),
    (["-oQ", "f"], "unknown output option -oQ"),
    (["-p"], "-p needs a value"),
    (["--ttl", "300"], "bad --ttl '300'"),
    (["--top-ports", "5000"], "bad --top-ports '5000'"),
    (["-sX"], "unsupported nmap scan type -sX"),
    ([], "no ports given"),
])
def test_masscan_bad_input_is_named(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_masscan(["198.19.0.1", *argv])


# --- zmap ----------------------------------------------------------------------------------


def test_zmap_defaults_and_default_output() -> None:
    plan = parse_zmap(["-p", "80", "198.19.0.0/24"])
    assert plan.targets == ["198.19.0.0/24"]
    assert plan.scan == {"rate": "10000", "wait": "8", "ttl": 255, "ports": "80"}
    (output,) = plan.outputs
    assert (output.format, output.path) == ("zmap-csv", None)
    assert output.options["fields"] == ("saddr",)
    assert output.options["only_success"] and output.options["header_row"] is False
    several = parse_zmap(["-p", "22,80", "198.19.0.0/24"]).outputs[0]
    assert several.options["fields"] == ("saddr", "sport")


def test_zmap_output_module_fields_filter() -> None:
    plan = parse_zmap(["-p80", "198.19.0.0/24", "-O", "csv", "-f", "saddr,sport,success",
                       "--output-filter", "success = 1 && repeat = 0", "-o", "out.csv"])
    (output,) = plan.outputs
    assert (output.format, str(output.path)) == ("zmap-csv", "out.csv")
    assert output.options["fields"] == ("saddr", "sport", "success")
    assert output.options["output_filter"].text == "success = 1 && repeat = 0"
    assert plan.scan["show_closed"]  # an output module sees every reply, RSTs too
    json_plan = parse_zmap(["-p80", "198.19.0.1", "--output-module=json", "-o", "-"])
    assert json_plan.outputs[0].format == "zmap-json" and json_plan.outputs[0].to_stdout


def test_zmap_network_and_timing_options(tmp_path: Path) -> None:
    plan = parse_zmap(["-p80", "198.19.0.0/24", "-r", "500", "-c", "3", "-e", "9",
                       "--shards", "4", "--shard", "0", "-s", "61000-61100", "-S", "198.18.0.1",
                       "-G", "02:00:00:00:00:01", "-i", "lab-s", "-T", "2", "-d", "-q",
                       "-b", "block.conf", "-w", "allow.txt", "-I", "ips.txt",
                       "-m", "meta.json", "--probe-ttl", "64"])
    scan = plan.scan
    assert (scan["rate"], scan["wait"], scan["seed"], scan["shard"], scan["source_ports"],
            scan["source_ip"], scan["gateway_mac"], scan["interface"], scan["tx_threads"],
            scan["driver"], scan["ttl"]) == (
        "500", "3", "9", "1/4", "61000-61100", "198.18.0.1", "02:00:00:00:00:01", "lab-s",
        2, "null", 64)
    assert scan["exclude_files"] == ["block.conf"]
    assert scan["include_files"] == ["allow.txt", "ips.txt"]
    assert plan.quiet and plan.metadata_path == "meta.json"
    mac = parse_zmap(["-p80", "198.19.0.1", "--source-mac", "02:00:00:00:00:09"])
    assert ScanConfig.parse(mac.targets, **mac.scan).source_mac == "02:00:00:00:00:09"


def test_zmap_bandwidth_counts_pyscans_probe_frame() -> None:
    from pyscan.cli import zmap
    from pyscan.native import SYN_FRAME_LEN

    assert max(SYN_FRAME_LEN + 24, 84) == zmap._WIRE_BYTES


def test_zmap_bandwidth_becomes_packets_per_second() -> None:
    assert parse_zmap(["-p80", "198.19.0.1", "-B", "10M"]).scan["rate"] == str(10_000_000 // 672)
    with pytest.raises(ConfigError, match="contradict"):
        parse_zmap(["-p80", "198.19.0.1", "-B", "10M", "-r", "5"])


def test_zmap_config_file_is_overridden_by_the_command_line(tmp_path: Path) -> None:
    conf = tmp_path / "zmap.conf"
    conf.write_text("# zmap config\nrate 500\ntarget-port 443\ncooldown-time 2\n"
                    "blacklist-file \"/etc/zmap/blocklist.conf\"\n")
    plan = parse_zmap(["-C", str(conf), "-r", "700", "198.19.0.1"])
    assert (plan.scan["rate"], plan.scan["ports"], plan.scan["wait"]) == ("700", "443", "2")
    assert plan.scan["exclude_files"] == ["/etc/zmap/blocklist.conf"]


def test_zmap_icmp_and_udp_modules(tmp_path: Path) -> None:
    assert parse_zmap(["198.19.0.1", "-M", "icmp_echoscan"]).scan["probe"] == "icmp-echo"
    udp = parse_zmap(["-p", "53", "198.19.0.1", "-M", "udp", "--probe-args=hex:00ff"]).scan
    config = ScanConfig.parse(["198.19.0.1"], ports=udp["ports"], probe=udp["probe"],
                              udp_payload_data=udp["udp_payload_data"])
    assert config.entries == (("udp", 53),)
    assert config.udp_payloads[0][1].data == b"\x00\xff"
    payload = tmp_path / "p.bin"
    payload.write_bytes(b"hi")
    plan = parse_zmap(["-p", "7", "198.19.0.1", "-M", "udp", f"--probe-args=file:{payload}"])
    assert plan.scan["udp_payload_files"] == [str(payload)]


@pytest.mark.parametrize(("argv", "flag"), [
    (["-n", "10%"], "-n 10%"),
    (["-M", "dns"], "-M dns"),
    (["-M", "udp", "--probe-args", "template:x"], "--probe-args template:"),
    (["-O", "redis"], "-O redis"),
    (["--max-sendto-failures", "10"], "--max-sendto-failures"),
    (["--retries", "3"], "--retries"),
    (["-X"], "-X/--vpn"),
])
def test_zmap_unbuilt_capabilities_are_refused_by_name(argv: list[str], flag: str) -> None:
    with pytest.raises(NotSupportedYet, match=f"^{flag} is not supported yet: "):
        parse_zmap(["-p80", "198.19.0.1", *argv])


@pytest.mark.parametrize(("argv", "message"), [
    (["198.19.0.1"], "no port given"),
    (["-p80", "198.19.0.1", "-M", "bogus"], "unknown probe module 'bogus'"),
    (["-p80", "198.19.0.1", "-O", "xml"], "unknown output module 'xml'"),
    (["-p80", "198.19.0.1", "-O", "csv", "-f", "ipid"], "'ipid' is not supported yet"),
    (["-p80", "198.19.0.1", "-P", "17"], "bad probe count '17'"),
    (["-p80", "198.19.0.1", "--probe-args", "osx"], "bad TCP options 'osx'"),
    (["-p80", "198.19.0.1", "--output-filter", "bogus = 1"], "Field 'bogus' does not exist"),
    (["-p80", "198.19.0.1", "--shards", "2", "--shard", "1"], "--shards needs --seed"),
    (["-p80", "198.19.0.1", "--shards", "2", "--shard", "2", "-e", "1"], "bad --shard '2'"),
    (["-p80", "198.19.0.1", "--bogus"], "unrecognized arguments: --bogus"),
    (["-p80", "198.19.0.1", "-v", "9"], "bad -v '9'"),
])
def test_zmap_bad_input_is_named(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_zmap(argv)


def test_zmap_information_actions() -> None:
    assert parse_zmap(["--list-output-fields"]).action == "list-output-fields"
    assert parse_zmap(["--list-probe-modules"]).action == "list-probe-modules"
    assert parse_zmap(["--version"]).action == "version"


def test_zmap_max_targets_count_reaches_the_config() -> None:
    plan = parse_zmap(["-p80", "198.19.0.0/24", "-n", "100"])
    assert plan.scan["max_targets"] == "100"
    from pyscan.cli.personality import build_config

    assert build_config(plan).planned_probes == 100


def test_retries_limits_and_probe_args_reach_the_scan() -> None:
    """The capabilities that are built: masscan's --retries, zmap's -P/-t/-N/--probe-args."""
    from pyscan.cli.personality import build_config as plan_config

    masscan = parse_masscan(["198.19.0.0/30", "-p80", "--retries", "2"])
    assert plan_config(masscan).retries == 2
    zmap = parse_zmap(["-p80", "198.19.0.0/30", "-P", "3", "-t", "9", "-N", "5",
                       "--probe-args", "smallest-probes"])
    config = plan_config(zmap)
    assert (config.retries, config.max_runtime, config.max_results, config.tcp_options) == (
        2, 9.0, 5, "mss")
