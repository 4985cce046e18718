"""`lvsha import-keepalived`: keepalived.conf files in, configs of the same meaning out.

Every corpus file in tests/data/keepalived is real keepalived syntax (checked
with keepalived's own --config-test when it is installed); its translation
must pass lvsha's parse_config and mean the same thing key by key, and what
could not be translated must be listed, exactly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lab import netns_available

from lvsha.config import (
    Config,
    HttpCheck,
    MiscCheck,
    RealServerConfig,
    TcpCheck,
    VirtualAddress,
    parse_config,
)
from lvsha.config.model import HttpUrl
from lvsha.exits import EX_CANTCREAT, EX_CONFIG, EX_OK
from lvsha.tools.keepalived.importer import Conversion, convert, main
from lvsha.tools.keepalived.reader import KeepalivedImportError, quoted_escaped_words
from lvsha.tools.keepalived.writer import toml_string

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "keepalived"
CORPUS = sorted(DATA.glob("*.conf"))
KA_2XX = tuple(range(200, 300))


def converted(name: str, config_id: str | None = None) -> tuple[Config, Conversion]:
    result = convert(DATA / name, config_id)
    return parse_config(result.toml), result


def paths(items: list[str]) -> list[str]:
    """The `keepalived.path` part of each `path: why` entry."""
    return [item.split(": ", 1)[0] for item in items]


def write(tmp_path: Path, text: str, name: str = "keepalived.conf") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def convert_text(tmp_path: Path, text: str) -> tuple[Config, Conversion]:
    result = convert(write(tmp_path, text))
    return parse_config(result.toml), result


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(KeepalivedImportError) as info:
        convert(write(tmp_path, text))
    return info.value.problems


INSTANCE = """
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 7
    virtual_ipaddress {
        192.0.2.7
    }
%s
}
"""


# ------------------------------------------------------------- the corpus --


def test_the_corpus_has_the_lvs01_template_and_at_least_six_more() -> None:
    assert DATA / "lvs01.conf" in CORPUS
    assert len(CORPUS) >= 7


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_every_corpus_file_translates_into_a_valid_config(path: Path) -> None:
    result = convert(path)
    config = parse_config(result.toml)
    assert config.vrrp
    assert not [w for w in result.warnings if "does not pass" in w]
    header = result.toml.split("\n[daemon]")[0]
    assert all(f"#   - {item}" in header for item in result.untranslated + result.warnings)


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_check_config_accepts_every_translation(path: Path, tmp_path: Path) -> None:
    out = tmp_path / "lvsha.toml"
    # a translation that changes failover (AH in multi_sync.conf) is written, and fails
    expected = EX_CONFIG if convert(path).failures else EX_OK
    assert main(str(path), str(out)) == expected
    done = subprocess.run(
        [sys.executable, "-m", "lvsha.cli", "check-config", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
        check=False,
    )
    assert done.returncode == EX_OK, done.stderr


# keepalived 2.2.7 about the cookbook template, as the cookbook wrote it:
# `persistence_timeout 0` is refused (and ignored: the service is then not
# persistent, which is what lvsha's 0 means), and lvs_sync_daemon_interface
# inside an instance is deprecated (but still obeyed).
EXPECTED_KEEPALIVED_COMPLAINTS = {
    "lvs01.conf": {
        "(lvs01.conf: Line 27) number '0' outside range [1, 2678400]",
        "(lvs01.conf: Line 27) persistence_timeout invalid",
        "(lvs01.conf: Line 20) (VI_1) Specifying lvs_sync_daemon_interface against a vrrp "
        "is deprecated.",
        "(lvs01.conf: Line 20)         Please use global lvs_sync_daemon",
    },
}
INTERFACES = ("eth0", "eth1", "eth2")


ConfigTest = Callable[[Path], tuple[int, set[str]]]


@pytest.fixture(scope="module")
def keepalived_runner() -> Iterator[ConfigTest]:
    """Run `keepalived --config-test` where the corpus's interfaces exist, if we can.

    keepalived checks that interfaces exist: in a namespace with veth links
    named eth0..eth2 it can judge the whole file. Without namespaces it runs
    here, and its complaints about missing interfaces are set aside.
    """
    binary = shutil.which("keepalived") or (
        "/usr/sbin/keepalived" if os.path.exists("/usr/sbin/keepalived") else None
    )
    if binary is None:
        pytest.skip("keepalived is not installed")
    name = f"lvsha-kaimp-{os.getpid()}"
    use_netns = netns_available() is None

    def run(path: Path) -> tuple[int, set[str]]:
        argv = [binary, "--config-test", "-f", path.name]
        if use_netns:
            argv = ["ip", "netns", "exec", name, *argv]
        done = subprocess.run(
            argv, capture_output=True, text=True, cwd=path.parent, timeout=30, check=False
        )
        lines = {line for line in done.stderr.splitlines() if line.strip()}
        if not use_netns:
            lines = {
                line
                for line in lines
                if "doesn't exist" not in line and "Non-existent interface" not in line
            }
        return done.returncode, lines

    try:
        if use_netns:
            subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
            for i, ifname in enumerate(INTERFACES):
                subprocess.run(
                    ["ip", "-n", name, "link", "add", ifname, "type", "veth", "peer", f"p{i}"],
                    check=True,
                    timeout=10,
                )
        yield run
    finally:
        if use_netns:
            subprocess.run(["ip", "netns", "del", name], check=False, timeout=10)


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_keepalived_itself_accepts_every_corpus_file(
    keepalived_runner: ConfigTest, path: Path
) -> None:
    returncode, complaints = keepalived_runner(path)
    expected = EXPECTED_KEEPALIVED_COMPLAINTS.get(path.name, set())
    assert complaints == expected
    if not expected and netns_available() is None:
        assert returncode == 0


# ------------------------------------------------------- meaning, key by key --


def test_lvs01_template_means_what_the_cookbook_pair_did() -> None:
    config, result = converted("lvs01.conf")
    assert config.daemon.name == "lvs1"
    (vi,) = config.vrrp
    assert (vi.name, vi.interface, vi.virtual_router_id, vi.priority, vi.advert_int) == (
        "VI_1",
        "eth1",
        51,
        100,
        1,
    )
    assert vi.preempt is True
    assert (vi.auth_type, vi.auth_password) == ("pass", "grr02")
    assert vi.virtual_ipaddress == (VirtualAddress("161.202.132.84", 32, "eth1"),)
    assert vi.sync_daemon_interface == "eth0"
    assert vi.unicast_peers == () and vi.notify == ()
    (vs,) = config.virtual_servers
    assert (vs.address, vs.port, vs.protocol, vs.fwmark) == ("161.202.132.84", 80, "tcp", None)
    assert (vs.scheduler, vs.forwarding, vs.persistence_timeout, vs.delay_loop) == (
        "rr",
        "dr",
        0,
        20.0,
    )
    assert vs.real_servers == (
        RealServerConfig("161.202.142.206", 80, 1, tcp_check=TcpCheck(connect_timeout=3.0)),
        RealServerConfig("161.202.142.207", 80, 1, tcp_check=TcpCheck(connect_timeout=3.0)),
    )
    assert paths(result.untranslated) == ["vrrp_instance.VI_1.state"]
    assert "starts every instance as BACKUP" in result.untranslated[0]
    assert result.warnings == []


def test_lvs01_template_translates_to_the_reference_config() -> None:
    """The hand-written conf/lvsha.toml is the same pair: the translation must equal it."""
    config, _ = converted("lvs01.conf")
    reference = parse_config((ROOT / "conf" / "lvsha.toml").read_text())
    assert config == reference


def test_unicast_pair() -> None:
    config, result = converted("unicast_pair.conf")
    assert config.daemon.name == "lb-a"
    (vi,) = config.vrrp
    assert (vi.virtual_router_id, vi.priority, vi.advert_int, vi.preempt) == (60, 150, 2, False)
    assert (vi.unicast_src_ip, vi.unicast_peers) == ("198.51.100.11", ("198.51.100.12",))
    assert (vi.auth_type, vi.auth_password) == ("pass", "s3cr3t")
    assert vi.virtual_ipaddress == (
        VirtualAddress("203.0.113.10", 24, "eth1"),
        VirtualAddress("203.0.113.11", 32, "eth1"),
    )
    assert vi.track_interface == ("eth0",)
    assert [(t.name, t.weight) for t in vi.track_interface_weights] == [("eth2", -20)]
    # global vrrp_garp_* are the instance's defaults
    assert (vi.garp_master_delay, vi.garp_master_repeat) == (10.0, 3)
    assert (vi.garp_master_refresh, vi.garp_master_refresh_repeat) == (60.0, 2)
    (vs,) = config.virtual_servers
    assert (vs.scheduler, vs.forwarding, vs.delay_loop) == ("wlc", "dr", 5.0)
    assert (vs.persistence_timeout, vs.persistence_netmask) == (300, "255.255.255.0")
    first, second = vs.real_servers
    assert (first.weight, first.retry, first.delay_before_retry) == (3, 2, 1.0)
    assert first.tcp_check == TcpCheck(connect_timeout=2.0, connect_port=8443)
    # keepalived's connect_timeout default is 5 s (lvsha's is 3): written out
    assert second.tcp_check == TcpCheck(5.0, "198.51.100.122", 8443)
    assert (second.weight, second.retry, second.delay_before_retry) == (1, None, None)
    assert paths(result.untranslated) == [
        "global_defs.vrrp_skip_check_adv_addr",
    ]
    assert vi.virtual_ipaddress[0].label == "eth1:vip"  # translated (issue 11)
    assert result.warnings == []


def test_nat_with_http_checks_and_a_sorry_server() -> None:
    config, result = converted("nat_http.conf")
    ext, internal = config.vrrp
    assert (ext.name, ext.priority, ext.auth_password) == ("VI_EXT", 200, "lbpass01")
    assert ext.virtual_ipaddress == (VirtualAddress("192.0.2.100", 24, "eth0"),)
    assert (internal.name, internal.auth_type) == ("VI_INT", "none")
    assert internal.virtual_ipaddress == (VirtualAddress("198.51.100.1", 24, "eth1"),)
    (vs,) = config.virtual_servers
    assert (vs.scheduler, vs.forwarding, vs.delay_loop) == ("wrr", "nat", 10.0)
    assert (vs.quorum, vs.hysteresis, vs.inhibit_on_failure) == (2, 1, True)
    assert vs.sorry_server == RealServerConfig("198.51.100.99", 8080)
    one, two, three = vs.real_servers
    # virtual-server connect_timeout/retry/delay_before_retry/virtualhost reach every check
    assert (one.weight, one.retry, one.delay_before_retry) == (2, 3, 2.0)
    assert one.http_get == HttpCheck(
        path="/health", status=(200, 204), host="www.example.com", connect_timeout=4.0
    )
    assert two.http_get == HttpCheck(
        path="/health?full=1",
        status=KA_2XX,
        digest="9b3a0c85a887a256d6939da88aabd8cd",
        host="www.example.com",
        connect_timeout=6.0,
        more_urls=(HttpUrl("/", KA_2XX),),  # the second url is checked too (issue 11)
    )
    # no status_code: keepalived accepts 200-299
    assert three.http_get == HttpCheck(
        path="/", status=KA_2XX, host="static.example.com", connect_timeout=4.0
    )
    # the mail settings are translated (issue 11)
    assert config.daemon.smtp is not None
    assert (config.daemon.smtp.host, config.daemon.smtp.port) == ("192.0.2.25", 25)
    assert config.daemon.smtp.sender == "lb@example.com"
    assert paths(result.untranslated) == [
        "global_defs.enable_script_security",
        "global_defs.script_user",
        "vrrp_instance.VI_EXT.state",
        "vrrp_instance.VI_INT.state",
    ]
    assert three.notify_down == ("/usr/bin/logger", "-t", "lvs", "198.51.100.13", "down")
    assert paths(result.warnings) == [
        "virtual_server(192.0.2.100:80).real_server(198.51.100.13:8080).notify_down"
    ]


def test_firewall_mark_service() -> None:
    config, result = converted("fwmark.conf")
    (vs,) = config.virtual_servers
    assert (vs.fwmark, vs.address, vs.port) == (7, None, 0)
    assert (vs.scheduler, vs.scheduler_flags, vs.forwarding) == (
        "sh",
        ("sh-port", "sh-fallback"),
        "dr",
    )
    # `persistence_timeout` without a value is keepalived's 6 minutes
    assert (vs.persistence_timeout, vs.delay_loop) == (360, 15.0)
    for real in vs.real_servers:
        assert (real.port, real.weight) == (0, 10)
        assert real.tcp_check == TcpCheck(connect_timeout=2.0, connect_port=80)
        assert real.initial_state == "down"  # keepalived's alpha
    assert paths(result.untranslated) == [
        "global_defs.lvs_flush",
        "virtual_server(fwmark 7).real_server(198.51.100.31).PING_CHECK",
    ]
    assert paths(result.warnings) == ["virtual_server(fwmark 7).real_server(198.51.100.31)"]
    assert "all 2 checkers" in result.warnings[0]


def test_two_instances_sync_group_and_global_sync_daemon() -> None:
    config, result = converted("multi_sync.conf")
    out, inside = config.vrrp
    assert (out.name, out.virtual_router_id, out.preempt_delay) == ("VI_OUT", 21, 30.0)
    assert [v.address for v in out.virtual_ipaddress] == ["203.0.113.21", "203.0.113.22"]
    # `lvs_sync_daemon eth1 VI_OUT` in global_defs lands on VI_OUT
    assert (out.sync_daemon_interface, inside.sync_daemon_interface) == ("eth1", None)
    assert out.garp_interval == inside.garp_interval == 0.01
    assert (inside.garp_master_delay, inside.garp_master_repeat) == (2.0, 2)
    # AH cannot be translated: the instance runs without authentication
    assert inside.auth_type == "none"
    (vs,) = config.virtual_servers
    smtp, tcp = vs.real_servers
    assert smtp.check is None
    assert tcp.tcp_check == TcpCheck(connect_timeout=5.0)
    assert vs.forwarding == "nat"
    # the script, its tracking and the group are translated (script_user root -> user)
    (script,) = config.vrrp_scripts
    assert (script.script, script.interval, script.rise, script.fall, script.user) == (
        ("/usr/bin/pgrep", "haproxy"),
        2.0,
        2,
        2,
        "root",
    )
    assert [(t.name, t.weight) for t in out.track_script] == [("chk_haproxy", None)]
    (group,) = config.sync_groups
    assert (group.name, group.group) == ("VG_1", ("VI_OUT", "VI_IN"))
    assert paths(result.untranslated) == [
        "global_defs.enable_script_security",
        "global_defs.script_user",
        "static_ipaddress",
        "vrrp_instance.VI_IN.authentication.auth_type",
        "virtual_server(203.0.113.21:25).real_server(198.51.100.41:25).SMTP_CHECK",
        "global_defs.lvs_sync_daemon id 5",
    ]
    assert "switch the peer to PASS or none" in result.untranslated[3]
    assert "VRID (21) as the sync id" in result.untranslated[5]
    assert [v.address for v in out.virtual_ipaddress_excluded] == ["203.0.113.23"]
    # AH changes failover: the import says so and exits non-zero (main)
    assert [f.split(":")[0] for f in result.failures] == [
        "vrrp_instance.VI_IN.authentication.auth_type"
    ]
    assert result.warnings == [
        "vrrp_script.chk_haproxy.script: runs as argv ['/usr/bin/pgrep', 'haproxy'] without a shell"
    ]


def test_notify_scripts_become_argv() -> None:
    config, result = converted("notify.conf")
    (vi,) = config.vrrp
    assert vi.notify == ("/usr/bin/logger",)
    assert vi.notify_master == ("/usr/bin/logger", "-t", "keepalived", "became master")
    assert vi.notify_backup == ("/usr/bin/logger", "-t", "keepalived", "now backup")
    assert vi.notify_fault == ("/usr/bin/systemctl", "restart", "networking.service")
    assert vi.advert_int == 3
    assert paths(result.untranslated) == [
        "global_defs.enable_script_security",
        "global_defs.script_user",
        "vrrp_instance.VI_1.notify_backup",
        "vrrp_instance.VI_1.notify_stop",
        "vrrp_instance.VI_1.smtp_alert",
    ]
    assert "runs as user root" in result.untranslated[2]
    assert paths(result.warnings) == [
        "vrrp_instance.VI_1.notify",
        "vrrp_instance.VI_1.notify_master",
        "vrrp_instance.VI_1.notify_backup",
        "vrrp_instance.VI_1.notify_fault",
    ]
    assert all("without a shell" in w for w in result.warnings)


def test_ssl_get() -> None:
    config, result = converted("ssl_get.conf")
    (vs,) = config.virtual_servers
    assert (vs.scheduler, vs.forwarding, vs.persistence_timeout, vs.delay_loop) == (
        "lblc",
        "tun",
        120,
        6.0,
    )
    one, two = vs.real_servers
    assert (one.weight, one.retry, one.delay_before_retry) == (5, 2, 4.0)
    assert one.ssl_get == HttpCheck(
        tls=True,
        path="/status",
        status=KA_2XX,
        digest="0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        host="api.example.com",
        connect_timeout=3.0,
    )
    assert one.ssl_get.sni is None  # lvsha sends `host` as the server name, as enable_sni did
    assert two.ssl_get == HttpCheck(
        tls=True, path="/status", status=(200,), regex="ok|ready", connect_timeout=5.0
    )
    assert paths(result.untranslated) == [
        "SSL",
        "vrrp_instance.VI_TLS.state",
        "virtual_server(192.0.2.41:443).real_server(198.51.100.52:443).SSL_GET.http_protocol",
    ]
    assert paths(result.warnings) == [
        "virtual_server(192.0.2.41:443).real_server(198.51.100.52:443).SSL_GET.url.regex"
    ]


def test_misc_check() -> None:
    config, result = converted("misc_check.conf")
    (vs,) = config.virtual_servers
    assert (vs.protocol, vs.scheduler_flags) == ("udp", ("ops",))
    one, two = vs.real_servers
    assert one.misc_check == MiscCheck(
        ("/usr/bin/dig", "@198.51.100.61", "+time=2", "+tries=1", "example.com"), 5.0
    )
    assert two.misc_check == MiscCheck(("/usr/bin/dig", "@198.51.100.62", "example.com"))
    assert paths(result.untranslated) == [
        "global_defs.enable_script_security",
        "global_defs.script_user",
        "virtual_server(192.0.2.53:53).real_server(198.51.100.62:53).MISC_CHECK.misc_dynamic",
    ]
    assert len(result.warnings) == 2 and all("without a shell" in w for w in result.warnings)


def test_includes_parameters_comments_and_conditionals() -> None:
    config, result = converted("include.conf")
    (vi,) = config.vrrp
    assert (vi.name, vi.interface, vi.virtual_router_id) == ("VI_INC", "eth0", 80)
    assert (vi.auth_type, vi.auth_password) == ("pass", "inc 80")
    assert vi.virtual_ipaddress == (VirtualAddress("192.0.2.80", 32, "eth0"),)
    (vs,) = config.virtual_servers
    assert (vs.address, vs.port, vs.scheduler, vs.forwarding) == ("192.0.2.80", 80, "rr", "dr")
    assert [(r.address, r.weight, r.tcp_check) for r in vs.real_servers] == [
        ("198.51.100.71", 1, TcpCheck(3.0)),
        ("198.51.100.72", 2, TcpCheck(3.0)),
    ]
    assert result.untranslated == []
    # without a config id, @lb1/@lb2 lines are skipped (and said so)
    assert config.daemon.name != "lb1"
    assert "include.conf:9, " in result.warnings[0] and "include.conf:10" in result.warnings[0]


def test_a_config_id_selects_the_conditional_lines() -> None:
    config, result = converted("include.conf", config_id="lb2")
    assert config.daemon.name == "lb2"
    assert result.warnings == []


# ------------------------------------------------------------- the reader --


def test_comments_quotes_and_escapes(tmp_path: Path) -> None:
    config, _ = convert_text(
        tmp_path,
        INSTANCE
        % r"""
    authentication {   # a comment
        auth_type PASS ! another
        auth_pass "a#b!c"
    }
    notify "/usr/bin/logger \#tag"
""",
    )
    (vi,) = config.vrrp
    assert vi.auth_password == "a#b!c"
    assert vi.notify == ("/usr/bin/logger", "#tag")


def test_braces_split_lines_wherever_they_stand(tmp_path: Path) -> None:
    config, _ = convert_text(
        tmp_path,
        "vrrp_instance VI_1 { interface eth0\nvirtual_router_id 7\n"
        "virtual_ipaddress { 192.0.2.7 } }\n"
        "virtual_server 192.0.2.7 80 { real_server 192.0.2.8 80 { TCP_CHECK { connect_timeout 1 }"
        " } }\n",
    )
    assert config.vrrp[0].virtual_ipaddress == (VirtualAddress("192.0.2.7", 32, "eth0"),)
    assert config.virtual_servers[0].real_servers[0].tcp_check == TcpCheck(1.0)


def test_a_block_may_open_on_the_next_line(tmp_path: Path) -> None:
    config, _ = convert_text(
        tmp_path,
        "vrrp_instance VI_1\n{\ninterface eth0\nvirtual_router_id 7\n"
        "virtual_ipaddress\n{\n192.0.2.7\n}\n}\n",
    )
    assert config.vrrp[0].virtual_router_id == 7


def test_parameters_are_substituted(tmp_path: Path) -> None:
    config, _ = convert_text(
        tmp_path,
        "$NET=192.0.2\n$ID=7\n$BASE=${NET}.${ID}\n"
        "vrrp_instance VI_$ID {\n interface eth0\n virtual_router_id $ID\n"
        " virtual_ipaddress {\n  ${BASE}/32\n }\n"
        ' notify_master "/usr/bin/logger ${_PWD}"\n}\n',
    )
    (vi,) = config.vrrp
    assert (vi.name, vi.virtual_router_id) == ("VI_7", 7)
    assert vi.virtual_ipaddress[0].address == "192.0.2.7"
    assert vi.notify_master == ("/usr/bin/logger", str(tmp_path.resolve()))


def test_negated_conditionals(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "global_defs {\n @^lb1 router_id not-lb1\n @lb1 router_id is-lb1\n}\n"
        + INSTANCE % "@^lb1 priority 50",
    )
    for config_id, name, priority in (("lb1", "is-lb1", 100), ("lb2", "not-lb1", 50)):
        config = parse_config(convert(path, config_id).toml)
        assert (config.daemon.name, config.vrrp[0].priority) == (name, priority)


def test_includes_are_relative_to_the_including_file(tmp_path: Path) -> None:
    write(tmp_path, INSTANCE % "", "conf/sub/vrrp.conf")
    write(tmp_path, "global_defs {\n router_id inc\n}\n", "conf/sub/globals.conf")
    write(tmp_path, "include sub/{globals,vrrp}.conf\n", "conf/main.conf")
    main_conf = write(tmp_path, "include conf/main.conf\nincluder nothing/*.conf\n", "top.conf")
    result = convert(main_conf)
    config = parse_config(result.toml)
    assert (config.daemon.name, config.vrrp[0].name) == ("inc", "VI_1")
    assert any("nothing/*.conf: no file matched" in w for w in result.warnings)


def test_script_words_split_like_keepalived() -> None:
    assert quoted_escaped_words(r"""notify "/bin/x 'a b' c" root""") == [
        "notify",
        "/bin/x 'a b' c",
        "root",
    ]
    assert quoted_escaped_words(r"a\tb 'c\x41' \101") == ["a\tb", "cA", "A"]
    with pytest.raises(ValueError):
        quoted_escaped_words("notify '/bin/x")


# ---------------------------------------------------------- translations --


def test_names_and_strings_that_need_toml_quoting(tmp_path: Path) -> None:
    config, _ = convert_text(
        tmp_path,
        (INSTANCE % "authentication {\n auth_type PASS\n auth_pass a\\b'c\n}").replace(
            "VI_1", "vrrp4.eth0.7"
        ),
    )
    (vi,) = config.vrrp
    assert (vi.name, vi.auth_password) == ("vrrp4.eth0.7", "a\\b'c")


def test_a_long_password_is_cut_as_keepalived_sends_it(tmp_path: Path) -> None:
    config, result = convert_text(
        tmp_path, INSTANCE % "authentication {\n auth_type PASS\n auth_pass longpassword\n}"
    )
    assert config.vrrp[0].auth_password == "longpass"
    assert paths(result.warnings) == ["vrrp_instance.VI_1.authentication.auth_pass"]


def test_instance_details(tmp_path: Path) -> None:
    config, result = convert_text(
        tmp_path,
        INSTANCE
        % """
    state BACKUP
    state LEADER
    priority 255
    nopreempt
    advert_int 1.5
    mcast_src_ip 192.0.2.1
    unicast_peer {
        192.0.2.2 min_ttl 250
    }
    virtual_ipaddress {
        2001:db8::7
        192.0.2.8/24 brd 192.0.2.255 scope global dev eth2
    }
    use_vmac
    track_interface {
        eth1 weight 0
    }
    garp_master_repeat 0
    frobnicate 3
""",
    )
    (vi,) = config.vrrp
    assert (vi.priority, vi.preempt, vi.advert_int) == (255, True, 2)
    assert (vi.unicast_src_ip, vi.unicast_peers) == ("192.0.2.1", ("192.0.2.2",))
    assert vi.virtual_ipaddress == (
        VirtualAddress("192.0.2.7", 32, "eth0"),
        VirtualAddress("192.0.2.8", 24, "eth2"),
    )
    assert vi.track_interface == ("eth1",)
    assert vi.garp_master_repeat == 5
    assert paths(result.untranslated) == [
        "vrrp_instance.VI_1.state",
        "vrrp_instance.VI_1.unicast_peer[192.0.2.2] min_ttl 250",
        "vrrp_instance.VI_1.virtual_ipaddress[2001:db8::7]",
        "vrrp_instance.VI_1.virtual_ipaddress[192.0.2.8/24] scope global",
        "vrrp_instance.VI_1.use_vmac",
        "vrrp_instance.VI_1.garp_master_repeat",
        "vrrp_instance.VI_1.frobnicate",
        "vrrp_instance.VI_1.nopreempt",
        "vrrp_instance.VI_1.state",
    ]
    assert "'LEADER' is not MASTER or BACKUP" in result.untranslated[0]
    assert "unknown keyword at" in result.untranslated[6]
    assert "keepalived.conf:" in result.untranslated[6]
    assert paths(result.warnings) == ["vrrp_instance.VI_1.advert_int"]


def test_global_defaults_and_overrides(tmp_path: Path) -> None:
    config, result = convert_text(
        tmp_path,
        "global_defs {\n vrrp_min_garp\n vrrp_garp_master_refresh 30\n lvs_sync_daemon eth1\n"
        " vrrp_version 3\n}\n" + INSTANCE % "garp_master_repeat 4",
    )
    (vi,) = config.vrrp
    assert (vi.garp_master_delay, vi.garp_master_repeat, vi.garp_master_refresh) == (0.0, 4, 30.0)
    assert vi.sync_daemon_interface == "eth1"  # the only instance
    assert (config.daemon.vrrp_version, vi.version) == (3, 3)  # tests/unit/test_import_v3.py
    assert paths(result.untranslated) == []


def test_a_global_sync_daemon_with_the_default_id(tmp_path: Path) -> None:
    config, result = convert_text(
        tmp_path,
        "global_defs {\n lvs_sync_daemon eth1 inst VI_1 id 7 port 8848\n}\n"
        + INSTANCE % ""
        + INSTANCE.replace("VI_1", "VI_2").replace("7", "8") % "",
    )
    assert [vi.sync_daemon_interface for vi in config.vrrp] == ["eth1", None]
    assert paths(result.untranslated) == ["global_defs.lvs_sync_daemon port 8848"]


def test_instances_lvsha_cannot_run_are_dropped_and_listed(tmp_path: Path) -> None:
    config, result = convert_text(
        tmp_path,
        "vrrp_instance V6 {\n interface eth0\n virtual_router_id 9\n"
        " virtual_ipaddress {\n  2001:db8::9\n }\n}\n"
        "vrrp_instance NOIF {\n virtual_router_id 8\n unicast_peer {\n 192.0.2.2\n }\n"
        " virtual_ipaddress {\n  192.0.2.8\n }\n}\n" + INSTANCE % "",
    )
    assert [vi.name for vi in config.vrrp] == ["VI_1"]
    assert paths(result.untranslated) == [
        "vrrp_instance.V6.virtual_ipaddress[2001:db8::9]",
        "vrrp_instance.V6",
        "vrrp_instance.NOIF",
    ]
    assert "interface" in result.untranslated[2]


def test_virtual_server_defaults_are_keepalived_s(tmp_path: Path) -> None:
    config, _ = convert_text(
        tmp_path,
        INSTANCE % "" + "virtual_server 192.0.2.7 25 {\n persistence_granularity 255.255.0.0\n"
        " real_server 192.0.2.20 25 {\n  TCP_CHECK {\n  }\n }\n}\n",
    )
    (vs,) = config.virtual_servers
    assert (vs.forwarding, vs.scheduler, vs.delay_loop) == ("nat", "wlc", 60.0)
    assert (vs.persistence_timeout, vs.persistence_netmask) == (360, "255.255.0.0")
    assert vs.real_servers[0].tcp_check == TcpCheck(5.0)


def test_real_server_settings_and_inheritance(tmp_path: Path) -> None:
    config, result = convert_text(
        tmp_path,
        INSTANCE % ""
        + """
virtual_server 192.0.2.7 80 {
    lb_kind DR
    delay_loop 10
    connect_timeout 2
    warmup 4
    inhibit_on_failure
    real_server 192.0.2.21 80 {
        alpha
        nb_get_retry 4
        delay_loop 30
        HTTP_GET {
            connect_timeout 1
            url {
                path /ok
            }
        }
    }
    real_server 192.0.2.22 80 {
        inhibit_on_failure off
        lvs_method NAT
        uthreshold 100
        HTTP_GET {
        }
        TCP_CHECK {
            alpha
        }
    }
}
virtual_server group WEB {
}
virtual_server 2001:db8::1 80 {
}
""",
    )
    vs, v6 = config.virtual_servers
    assert (v6.address, v6.port) == ("2001:db8::1", 80)  # IPv6 is translated too
    one, two = vs.real_servers
    assert (one.initial_state, one.retry, one.warmup) == ("down", 4, 4.0)
    assert one.http_get == HttpCheck(path="/ok", status=KA_2XX, connect_timeout=1.0)
    assert (two.initial_state, two.tcp_check) == ("down", TcpCheck(2.0))
    assert vs.inhibit_on_failure is True
    prefix = "virtual_server(192.0.2.7:80)"
    assert paths(result.untranslated) == [
        f"{prefix}.real_server(192.0.2.21:80).delay_loop",
        f"{prefix}.real_server(192.0.2.22:80).uthreshold",
        f"{prefix}.real_server(192.0.2.22:80).lvs_method",
        f"{prefix}.real_server(192.0.2.22:80).HTTP_GET",
        f"{prefix}.real_server.inhibit_on_failure",
        "virtual_server group WEB",
    ]


# ----------------------------------------------------------- bad input --


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "vrrp_instance VI_1 {\n interface eth0\n",
            "keepalived.conf:1: block 'vrrp_instance VI_1' ",
        ),
        ("global_defs {\n}\n}\n", "keepalived.conf:3: '}' closes no block"),
        ("{\n}\n", "keepalived.conf:1: '{' without a keyword"),
        ('global_defs {\n router_id "x\n}\n', "keepalived.conf:2: unterminated double quote"),
        ("$X=a \\\n b\n", "keepalived.conf:1: multi-line parameter $X"),
        ("~SEQ(N, 1, 3) x\n", "keepalived.conf:1: ~SEQ / ~LST"),
        ("$A=$B\n$B=$A\nx $A\n", "keepalived.conf:3: parameter substitution does not end"),
    ],
)
def test_unreadable_input_names_the_line(tmp_path: Path, text: str, expected: str) -> None:
    (problem,) = problems(tmp_path, text)
    assert problem.startswith(str(tmp_path / expected))


def test_bad_values_are_all_reported_with_their_lines(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 300\n priority abc\n"
        " virtual_ipaddress {\n  192.0.2.999\n }\n}\n"
        "virtual_server 192.0.2.1 http {\n}\n"
        "virtual_server 192.0.2.1 80 {\n lb_algo fastest\n delay_loop soon\n"
        " real_server 192.0.2.2 80 {\n  weight -1\n  HTTP_GET {\n   url {\n"
        "    status_code 2xx\n    digest nothex\n   }\n  }\n }\n}\n",
    )
    where = str(tmp_path / "keepalived.conf")
    assert [p.removeprefix(where) for p in found] == [
        ":3: virtual_router_id: 300 is outside 1..255",
        ":4: priority: 'abc' is not an integer",
        ":6: 192.0.2.999: '192.0.2.999' is not an IPv4 address with an optional /prefixlen",
        ":9: virtual_server: 'http' is not an integer",
        ":12: lb_algo: 'fastest' is not an IPVS scheduler",
        ":13: delay_loop: 'soon' is not a number",
        ":15: weight: -1 is outside 0..65535",
        ":18: status_code: '2xx' is not a status code or a range like 200-299",
        ":19: digest: 'nothex' is not an MD5 digest (32 hexadecimal digits)",
    ]


def test_include_loops_and_missing_files(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path, "include keepalived.conf\n")
    assert "includes nested deeper than" in problem
    with pytest.raises(KeepalivedImportError, match="cannot read"):
        convert(tmp_path / "absent.conf")


def test_main_exit_codes_and_streams(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(str(DATA / "lvs01.conf"), None) == EX_OK
    out, err = capsys.readouterr()
    assert parse_config(out).vrrp[0].name == "VI_1"
    assert "not translated: vrrp_instance.VI_1.state:" in err
    target = tmp_path / "lvsha.toml"
    assert main(str(DATA / "lvs01.conf"), str(target)) == EX_OK
    assert capsys.readouterr().out == ""
    assert parse_config(target.read_text()).daemon.name == "lvs1"
    assert main(str(DATA / "lvs01.conf"), str(tmp_path / "no" / "dir.toml")) == EX_CANTCREAT
    bad = write(tmp_path, "vrrp_instance VI_1 {\n")
    assert main(str(bad), None) == EX_CONFIG
    out, err = capsys.readouterr()
    assert out == "" and f"{bad}:1: block" in err and "Traceback" not in err
    good = write(tmp_path, INSTANCE % "", "good.conf")
    assert main(str(good), str(good)) == EX_CANTCREAT  # never overwrites its input
    assert good.read_text() == INSTANCE % ""
    assert "it is the keepalived file being translated" in capsys.readouterr().err


def test_the_command_line_never_shows_a_traceback(tmp_path: Path) -> None:
    bad = write(tmp_path, "virtual_server 192.0.2.1 80 {\n real_server x {\n }\n}\n")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from lvsha.tools.keepalived.importer import main;"
            f" sys.exit(main({str(bad)!r}, None))",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
        check=False,
    )
    assert done.returncode == EX_CONFIG
    assert f"{bad}:2: real_server: 'x' is not an IPv4 or IPv6 address" in done.stderr
    assert "Traceback" not in done.stderr


# ------------------------------------------------------------- properties --


@given(st.text())
def test_toml_strings_round_trip(text: str) -> None:
    assert tomllib.loads(f"x = {toml_string(text)}")["x"] == text


KEEPALIVED_WORDS = st.sampled_from(
    [
        "vrrp_instance",
        "VI_1",
        "virtual_server",
        "real_server",
        "{",
        "}",
        "interface",
        "eth0",
        "virtual_router_id",
        "51",
        "priority",
        "virtual_ipaddress",
        "192.0.2.1",
        "80",
        "\n",
        " ",
        '"',
        "'",
        "#",
        "!",
        "\\",
        "$X=",
        "$X",
        "@a",
        "TCP_CHECK",
        "HTTP_GET",
        "url",
        "path",
        "status_code",
        "200-299",
        "notify",
        "authentication",
        "auth_pass",
        "include",
        "*",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(KEEPALIVED_WORDS, max_size=60))
def test_any_input_translates_or_fails_cleanly(words: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "keepalived.conf"
        path.write_text(" ".join(words))
        try:
            result = convert(path)
        except KeepalivedImportError as exc:
            assert exc.problems and all(p.startswith(str(path)) for p in exc.problems)
        else:
            tomllib.loads(result.toml)


def test_a_checker_only_keepalived_conf_says_lvsha_needs_vrrp_or_bgp(tmp_path: Path) -> None:
    """keepalived runs a lone checker; an lvsha director needs [vrrp.*] or [bgp] (issue 14)."""
    text = """
virtual_server 192.0.2.100 80 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 192.0.2.21 80 {
        TCP_CHECK { connect_timeout 3 }
    }
}
"""
    _, result = convert_text(tmp_path, text)
    assert any(
        w.startswith("output does not pass check-config:") and "[bgp]" in w for w in result.warnings
    ), result.warnings
