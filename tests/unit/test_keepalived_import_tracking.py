"""import-keepalived: the constructs real LVS/gateway pairs rely on (issue 11).

Configs written in the spirit of public ones: an LVS-DR pair checking nginx
with a weighted script, a WAN/LAN gateway pair with a sync group, a strict
pair built from keepalived's own default keepalived.conf.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lvsha.config import parse_config
from lvsha.config.model import TrackRef
from lvsha.exits import EX_CONFIG, EX_OK
from lvsha.tools.keepalived.importer import Conversion, convert, main

LVS_DR = """
! LVS-DR director pair, node A
global_defs {
   lvs_id LVS_A
   script_user nobody
}

vrrp_script chk_nginx {
    script "/usr/bin/pgrep -x nginx"
    interval 2
    timeout 1
    weight -30
    rise 2
    fall 3
}

vrrp_script chk_web {
    script "/usr/bin/curl -fsS -m 1 http://127.0.0.1/health"
    interval 1
    weight 10
    user www-data
}

vrrp_script not_tracked {
    script "/bin/true"
}

vrrp_track_file maint {
    file /run/keepalived/maint
    weight 0
}

vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    nopreempt
    preempt_delay 60
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass grr02
    }
    virtual_ipaddress {
        192.0.2.100/32
    }
    track_script {
        chk_nginx
        chk_web weight 20
    }
    track_interface {
        eth0
        eth1 weight -20
    }
    track_file {
        maint
    }
}

virtual_server 192.0.2.100 80 {
    delay_loop 6
    lb_algo wrr
    lb_kind dr
    protocol TCP
    real_server 198.51.100.10 80 {
        weight 1
        TCP_CHECK {
            connect_ip 198.51.100.110 8080
            connect_timeout 3
        }
    }
}
"""

GATEWAY = """
vrrp_sync_group VG_GW {
    group {
        VI_WAN
        VI_LAN
    }
    notify "/usr/local/sbin/gw-notify --group"
    notify_master /usr/local/sbin/gw-master
}
vrrp_instance VI_WAN {
    state BACKUP
    interface eth0
    virtual_router_id 10
    priority 100
    virtual_ipaddress {
        203.0.113.1/24
    }
}
vrrp_instance VI_LAN {
    state BACKUP
    interface eth1
    virtual_router_id 11
    priority 100
    virtual_ipaddress {
        198.51.100.1/24
    }
}
"""

# keepalived's own default keepalived.conf (Debian ships it as an example)
STRICT = """
global_defs {
   router_id LVS_DEVEL
   vrrp_skip_check_adv_addr
   vrrp_strict
   vrrp_garp_interval 0
   vrrp_gna_interval 0
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass 1111
    }
    virtual_ipaddress {
        192.0.2.16
    }
}
"""


def conv(tmp_path: Path, text: str, name: str = "keepalived.conf") -> Conversion:
    path = tmp_path / name
    path.write_text(text)
    return convert(path)


def test_lvs_dr_pair_scripts_weights_and_file(tmp_path: Path) -> None:
    result = conv(tmp_path, LVS_DR)
    cfg = parse_config(result.toml)
    assert cfg.daemon.name == "LVS_A"  # lvs_id
    nginx, web = cfg.vrrp_scripts  # not_tracked is listed as dropped
    assert (nginx.script, nginx.interval, nginx.timeout, nginx.weight) == (
        ("/usr/bin/pgrep", "-x", "nginx"),
        2.0,
        1.0,
        -30,
    )
    assert (nginx.rise, nginx.fall, nginx.user) == (2, 3, "nobody")  # global script_user
    assert (web.weight, web.user) == (10, "www-data")
    (vi,) = cfg.vrrp
    assert vi.track_script == (TrackRef("chk_nginx"), TrackRef("chk_web", 20))
    assert vi.track_interface == ("eth0",)
    assert vi.track_interface_weights == (TrackRef("eth1", -20),)
    assert vi.track_file == (TrackRef("/run/keepalived/maint", 0),)
    # state MASTER: keepalived clears nopreempt and preempt_delay
    assert (vi.preempt, vi.preempt_delay) == (True, 0.0)
    assert any(u.startswith("vrrp_instance.VI_1.nopreempt: cleared") for u in result.untranslated)
    assert any(
        u.startswith("vrrp_instance.VI_1.preempt_delay: cleared") for u in result.untranslated
    )
    assert any(u.startswith("vrrp_script.not_tracked:") for u in result.untranslated)
    (vs,) = cfg.virtual_servers
    assert vs.forwarding == "dr"  # `lb_kind dr` in lower case
    (rs,) = vs.real_servers
    assert rs.tcp_check is not None
    assert (rs.tcp_check.connect_ip, rs.tcp_check.connect_port) == ("198.51.100.110", 8080)
    assert result.failures == []


def test_a_script_keepalived_ran_as_root_stays_root(tmp_path: Path) -> None:
    text = LVS_DR.replace("   script_user nobody\n", "")
    result = conv(tmp_path, text)
    nginx, web = parse_config(result.toml).vrrp_scripts
    assert (nginx.user, web.user) == ("root", "www-data")
    assert any("vrrp_script.chk_nginx.user: runs as root" in w for w in result.warnings)


def test_gateway_sync_group(tmp_path: Path) -> None:
    result = conv(tmp_path, GATEWAY)
    (group,) = parse_config(result.toml).sync_groups
    assert group.group == ("VI_WAN", "VI_LAN")
    assert group.notify == ("/usr/local/sbin/gw-notify", "--group")
    assert group.notify_master == ("/usr/local/sbin/gw-master",)
    assert result.failures == []


def test_group_naming_a_missing_instance_changes_failover(tmp_path: Path) -> None:
    result = conv(
        tmp_path, GATEWAY.replace("        VI_LAN\n    }", "        VI_LAN\n        VI_DMZ\n    }")
    )
    assert [f.split(":")[0] for f in result.failures] == ["vrrp_sync_group.VG_GW.group[VI_DMZ]"]
    assert parse_config(result.toml).sync_groups[0].group == ("VI_WAN", "VI_LAN")


def test_vrrp_strict_sends_no_authentication(tmp_path: Path) -> None:
    result = conv(tmp_path, STRICT)
    (vi,) = parse_config(result.toml).vrrp
    assert vi.auth_type == "none"
    assert any(
        u.startswith("vrrp_instance.VI_1.authentication: vrrp_strict") for u in result.untranslated
    )


@pytest.mark.parametrize(
    ("old", "new", "failure"),
    [
        (
            "chk_web weight 20",
            "chk_web weight 20 reverse",
            "vrrp_instance.VI_1.track_script[chk_web] reverse",
        ),
        (
            "eth1 weight -20",
            "eth1 weight -20 reverse",
            "vrrp_instance.VI_1.track_interface[eth1] reverse",
        ),
        ("auth_type PASS", "auth_type AH", "vrrp_instance.VI_1.authentication.auth_type"),
        ("        maint\n", "        nosuchfile\n", "vrrp_instance.VI_1.track_file[nosuchfile]"),
        (
            "        chk_nginx\n",
            "        chk_nginx\n        chk_gone\n",
            "vrrp_instance.VI_1.track_script[chk_gone]",
        ),
    ],
)
def test_what_changes_failover_fails_the_import(
    tmp_path: Path, old: str, new: str, failure: str
) -> None:
    assert old in LVS_DR
    path = tmp_path / "k.conf"
    path.write_text(LVS_DR.replace(old, new, 1))
    result = convert(path)
    assert failure in [f.split(": ")[0] for f in result.failures], result.failures
    assert main(str(path), str(tmp_path / "out.toml")) == EX_CONFIG
    parse_config(result.toml)  # what was translated is still valid


def test_an_import_that_yields_nothing_fails(tmp_path: Path) -> None:
    path = tmp_path / "k.conf"
    path.write_text("global_defs {\n  router_id X\n}\n")
    assert "no vrrp_instance and no virtual_server" in convert(path).failures[0]
    assert main(str(path), None) == EX_CONFIG


def test_a_clean_import_exits_zero(tmp_path: Path) -> None:
    path = tmp_path / "k.conf"
    path.write_text(GATEWAY)
    assert main(str(path), str(tmp_path / "out.toml")) == EX_OK


MAIL = """
global_defs {
    notification_email {
        ops@example.net
        oncall@example.net
    }
    notification_email_from lb1@example.net
    smtp_server 192.0.2.25 2525
    smtp_connect_timeout 10
    router_id lb1
}
"""


def test_mail_settings_and_smtp_alert(tmp_path: Path) -> None:
    text = MAIL + GATEWAY.replace(
        "    priority 100\n    virtual_ipaddress {\n        203.0.113.1/24",
        "    priority 100\n    smtp_alert\n    virtual_ipaddress {\n        203.0.113.1/24",
    ).replace("    notify_master", "    smtp_alert\n    notify_master")
    result = conv(tmp_path, text)
    cfg = parse_config(result.toml)
    assert cfg.daemon.smtp is not None
    assert (cfg.daemon.smtp.host, cfg.daemon.smtp.port, cfg.daemon.smtp.timeout) == (
        "192.0.2.25",
        2525,
        10.0,
    )
    assert cfg.daemon.smtp.to == ("ops@example.net", "oncall@example.net")
    assert cfg.daemon.smtp.sender == "lb1@example.net"
    wan, lan = cfg.vrrp
    assert (wan.smtp_alert, lan.smtp_alert) == (True, False)
    assert cfg.sync_groups[0].smtp_alert
    assert cfg.warnings == ()


def test_no_smtp_server_no_mail(tmp_path: Path) -> None:
    result = conv(tmp_path, MAIL.replace("    smtp_server 192.0.2.25 2525\n", "") + GATEWAY)
    assert parse_config(result.toml).daemon.smtp is None
    assert any(
        u.startswith("global_defs.notification_email: no smtp_server") for u in result.untranslated
    )
