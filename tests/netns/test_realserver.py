"""`lvsha realserver setup|check` in fresh namespaces: a real server from nothing.

A new namespace has the kernel's defaults (arp_ignore = arp_announce = 0, no
VIP), like a freshly installed real server; sysctls under net.ipv4.conf are
per namespace, so nothing leaks to the host.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from lab import VIP, Host, Lab
from nspython import python

from lvsha.tools.realserver import SYSCTL_FILE

VIP2 = "198.51.100.80"


def setup(host: Host, *vips: str, write: str | None = None, dry_run: bool = False) -> list[str]:
    out = python(
        host, f"print(json.dumps(realserver.setup(sys.argv[1:], {write!r}, {dry_run})))", *vips
    )
    assert out.returncode == 0, out.stderr
    lines: list[str] = json.loads(out.stdout)
    return lines


def check(host: Host, *vips: str) -> tuple[int, str]:
    out = python(host, "sys.exit(realserver.main_check(sys.argv[1:]))", *vips)
    return out.returncode, out.stdout


def sysctl(host: Host, name: str) -> str:
    return host.run("sysctl", "-n", name).stdout.strip()


def lo_addresses(host: Host) -> set[str]:
    return {a for a in host.addresses("lo") if a != "127.0.0.1"}


def test_setup_on_a_fresh_server_then_check_is_clean_and_a_second_setup_is_a_noop(
    lab: Lab,
) -> None:
    rs = lab.host("rs1", "192.0.2.21")
    status, text = check(rs, VIP, VIP2)
    assert status == 1
    assert f"VIP {VIP} is not on lo" in text and f"VIP {VIP2} is not on lo" in text
    assert "net.ipv4.conf.all.arp_ignore = 0, want 1" in text
    assert "net.ipv4.conf.all.arp_announce = 0, want 2" in text

    done = setup(rs, VIP, f"{VIP2}/32")
    assert done == [
        "set net.ipv4.conf.all.arp_ignore = 1 (was 0)",
        "set net.ipv4.conf.all.arp_announce = 2 (was 0)",
        "set net.ipv4.conf.lo.arp_ignore = 1 (was 0)",
        "set net.ipv4.conf.lo.arp_announce = 2 (was 0)",
        f"added {VIP}/32 on lo",
        f"added {VIP2}/32 on lo",
    ]
    assert lo_addresses(rs) == {VIP, VIP2}
    assert rs.addresses("eth1") == {"192.0.2.21"}
    for iface, name, value in (("all", "arp_ignore", "1"), ("lo", "arp_announce", "2")):
        assert sysctl(rs, f"net.ipv4.conf.{iface}.{name}") == value

    assert check(rs, VIP, VIP2) == (
        0,
        f"OK: LVS-DR real server ready ({VIP}, {VIP2}; arp_ignore and arp_announce set)\n",
    )
    assert setup(rs, VIP, VIP2) == []
    out = python(rs, "sys.exit(realserver.main_setup(sys.argv[1:], None, False))", VIP)
    assert (out.returncode, out.stdout) == (
        0,
        "nothing to change: the VIPs are on lo and the ARP sysctls are set\n",
    )


def test_dry_run_says_what_it_would_do_and_changes_nothing(lab: Lab) -> None:
    rs = lab.host("rs1", "192.0.2.21")
    done = setup(rs, VIP, dry_run=True)
    assert done[0] == "would set net.ipv4.conf.all.arp_ignore = 1 (was 0)"
    assert done[-1] == f"would add {VIP}/32 on lo"
    assert lo_addresses(rs) == set()
    assert sysctl(rs, "net.ipv4.conf.all.arp_ignore") == "0"


def test_check_finds_the_vip_on_another_interface_and_a_wide_prefix(lab: Lab) -> None:
    rs = lab.host("rs1", "192.0.2.21")
    setup(rs, VIP)
    rs.run("ip", "addr", "add", f"{VIP}/24", "dev", "eth1")  # the classic mistake
    rs.run("ip", "addr", "add", f"{VIP2}/24", "dev", "lo")
    status, text = check(rs, VIP, VIP2)
    assert status == 1
    assert f"VIP {VIP} is also on eth1: the real server answers ARP for it there" in text
    assert f"VIP {VIP2} is on lo as /24" in text


def test_check_finds_arp_ignore_overridden_on_an_interface(lab: Lab) -> None:
    rs = lab.host("rs1", "192.0.2.21")
    setup(rs, VIP)
    rs.run("sysctl", "-w", "net.ipv4.conf.eth1.arp_ignore=3")  # max(all, eth1) = 3
    status, text = check(rs, VIP)
    assert status == 1
    assert "net.ipv4.conf.eth1.arp_ignore = 3: it answers ARP for addresses of scope global" in text


def test_check_finds_strict_rp_filter_where_the_default_route_is_elsewhere(lab: Lab) -> None:
    rs = lab.host("rs1", "192.0.2.21")
    setup(rs, VIP)
    # a second leg with the default route, as a public/private VLAN pair
    rs.run("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
    rs.run("ip", "addr", "add", "203.0.113.21/24", "dev", "eth0")
    rs.run("ip", "link", "set", "eth0", "up")
    rs.run("ip", "link", "set", "eth0p", "up")
    rs.run("ip", "route", "add", "default", "via", "203.0.113.1", "dev", "eth0")
    rs.run("sysctl", "-w", "net.ipv4.conf.all.rp_filter=1")
    status, text = check(rs, VIP)
    assert status == 1
    assert "rp_filter is strict on eth1 but the default route leaves by eth0" in text
    assert "rp_filter is strict on eth0" not in text
    rs.run("sysctl", "-w", "net.ipv4.conf.all.rp_filter=2")
    assert check(rs, VIP)[0] == 0


def test_the_written_sysctl_file_alone_makes_a_fresh_server_right(lab: Lab) -> None:
    """Setup with --write on one server; `sysctl -p` of its file on another."""
    rs1, rs2 = lab.host("rs1", "192.0.2.21"), lab.host("rs2", "192.0.2.22")
    root = lab.workdir / "root"
    code = "print(json.dumps(realserver.setup(sys.argv[2:], 'networkd', root=Path(sys.argv[1]))))"
    out = python(rs1, code, str(root), VIP)
    assert out.returncode == 0, out.stderr
    conf = root / SYSCTL_FILE
    network = root / "etc/systemd/network/10-lvsha-lo.network"
    assert f"wrote {conf}" in out.stdout and f"wrote {network}" in out.stdout
    assert f"Address={VIP}/32" in network.read_text()

    rs2.run("sysctl", "-p", str(conf))
    rs2.run("ip", "addr", "add", f"{VIP}/32", "dev", "lo")  # what networkd does with the file
    assert check(rs2, VIP)[0] == 0
    # and a second run on rs1 rewrites nothing
    out = python(rs1, code, str(root), VIP)
    assert Path(conf).exists() and out.stdout.strip() == "[]"


def test_realserver_commands_from_the_cli(lab: Lab) -> None:
    host = lab.host("rs1", "192.0.2.21")
    cli = [sys.executable, "-m", "lvsha.cli", "realserver"]
    assert host.run(*cli, "check", "--vip", "192.0.2.100", check=False).returncode == 1
    assert host.run(*cli, "setup", "--vip", "192.0.2.100").returncode == 0
    out = host.run(*cli, "check", "--vip", "192.0.2.100", check=False)
    assert out.returncode == 0, out.stdout + out.stderr
