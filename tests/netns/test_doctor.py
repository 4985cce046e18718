"""`lvsha doctor` against real misconfigurations, in namespaces on the lab's bridge.

The cookbook's warning made concrete: a real server holding the VIP on `lo`
with the default ARP sysctls answers ARP for the VIP, and doctor names its
MAC; after `realserver setup` only the master answers. Also: a firewall
that drops VRRP, a third router with our VRID, strict rp_filter.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from lab import VIP, Director, Host, Lab, instance_toml, wait_for
from nspython import python, results, statuses

from lvsha.core.vrrp import master_down_interval

START = master_down_interval(1, 100) + 3
LISTEN = 3.0


def with_real_servers(lab: Lab, director: Director, *addresses: str) -> Path:
    """The director's own config plus a DR virtual service on `addresses`."""
    text = director.config.read_text()
    text += f'\n[[virtual_server]]\naddress = "{VIP}"\nport = 80\n'
    for address in addresses:
        text += f'\n[[virtual_server.real_server]]\naddress = "{address}"\nport = 80\n'
    path = lab.workdir / f"{director.host.name}-doctor.toml"
    path.write_text(text)
    return path


def config_only(lab: Lab, host: Host, body: str) -> Path:
    path, _ = lab.write_config(host, body)
    return path


def vip_on_lo(host: Host) -> None:
    host.run("ip", "addr", "add", f"{VIP}/32", "dev", "lo")


def test_arp_names_the_real_server_without_arp_ignore_until_it_is_fixed(lab: Lab) -> None:
    d1 = lab.start(lab.host("d1", "192.0.2.11"), instance_toml(100))
    d1.wait_state("MASTER", START)
    rs = lab.host("rs1", "192.0.2.21")
    vip_on_lo(rs)  # the cookbook's first step, without the ARP sysctls
    config = with_real_servers(lab, d1, "192.0.2.21")

    [arp] = results(d1.host, "check_arp(config, 1.0)", config)
    assert arp["status"] == "FAIL", arp
    assert f"{rs.mac} (192.0.2.21)" in arp["message"]
    assert "without arp_ignore" in arp["message"]
    assert f"lvsha realserver setup --vip {VIP}" in arp["fix"]

    # the whole `lvsha doctor` says so too, with exit status 1
    out = python(d1.host, f"sys.exit(doctor.main(sys.argv[1], {LISTEN}))", str(config))
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"FAIL  arp: VIP {VIP} on eth1: {rs.mac} (192.0.2.21)" in out.stdout

    fixed = python(rs, "sys.exit(realserver.main_setup(sys.argv[1:], None, False))", VIP)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    [arp] = results(d1.host, "check_arp(config, 1.0)", config)
    assert arp["status"] == "OK", arp
    assert "only this director (master) answers" in arp["message"]


def test_arp_from_the_backup_tells_the_master_from_a_bad_real_server(lab: Lab) -> None:
    d1 = lab.start(lab.host("d1", "192.0.2.11"), instance_toml(100))
    d1.wait_state("MASTER", START)
    d2 = lab.start(lab.host("d2", "192.0.2.12"), instance_toml(100))
    d2.wait_state("BACKUP", 5)
    wait_for(lambda: d2.status()["instances"][0]["master"], 5)  # doctor asks it who is master
    rs = lab.host("rs1", "192.0.2.21")
    vip_on_lo(rs)
    config = with_real_servers(lab, d2, "192.0.2.21")

    [arp] = results(d2.host, "check_arp(config, 1.0)", config)
    assert arp["status"] == "FAIL", arp
    assert rs.mac in arp["message"] and d1.host.mac not in arp["message"]
    assert "besides the master 192.0.2.11" in arp["message"]

    rs.run("sysctl", "-w", "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2")
    [arp] = results(d2.host, "check_arp(config, 1.0)", config)
    assert arp["status"] == "OK", arp
    assert "only the master 192.0.2.11 answers" in arp["message"]


def apply_fix(host: Host, fix: str) -> None:
    """Run the fix doctor printed, word for word."""
    host.run(*shlex.split(fix))


def test_firewall_rule_dropping_vrrp_fails_and_its_fix_works(lab: Lab) -> None:
    d1 = lab.host("d1", "192.0.2.11")
    config = config_only(lab, d1, instance_toml(100))
    assert statuses(results(d1, "check_firewall(config)", config)) == ["OK"]

    d1.nft(
        "table inet fw {\n chain input {\n  type filter hook input priority 0;\n"
        "  tcp dport 22 accept\n  ip protocol vrrp counter drop\n }\n}\n",
    )
    found = results(d1, "check_firewall(config)", config)
    [fail] = [r for r in found if r["status"] == "FAIL"]
    assert "VRRP in on eth1 from any peer to 224.0.0.18 (VI_1)" in fail["message"]
    assert "is dropped by rule handle" in fail["message"] and "inet fw input" in fail["message"]
    assert fail["fix"].startswith("nft insert rule inet fw input position ")
    apply_fix(d1, fail["fix"])
    assert statuses(results(d1, "check_firewall(config)", config)) == ["OK"]


def test_firewall_default_drop_policy_without_vrrp_accept_fails(lab: Lab) -> None:
    d1 = lab.host("d1", "192.0.2.11")
    config = config_only(lab, d1, instance_toml(100, extra='unicast_peers = ["192.0.2.12"]\n'))
    d1.nft(
        "table inet fw {\n chain input {\n  type filter hook input priority 0; policy drop;\n"
        '  ct state established,related accept\n  iifname "lo" accept\n'
        "  tcp dport 22 accept\n }\n"
        " chain output {\n  type filter hook output priority 0;\n"
        "  ip daddr 192.0.2.12 ip protocol vrrp drop\n }\n}\n",
    )
    found = results(d1, "check_firewall(config)", config)
    by_dir = {r["message"].split(" (VI_1)")[0]: r for r in found}
    inbound = by_dir["nftables: VRRP in on eth1 from 192.0.2.12 to 192.0.2.11"]
    outbound = by_dir["nftables: VRRP out on eth1 to 192.0.2.12"]
    # unicast VRRP between two peers can ride on conntrack's "established":
    # the policy drops it unless that rule happens to match, a warning
    assert inbound["status"] == "WARN", inbound
    assert "the drop policy of inet fw input" in inbound["message"]
    assert "ct state" in inbound["message"]
    assert outbound["status"] == "FAIL", outbound
    for r in (inbound, outbound):
        apply_fix(d1, r["fix"])
    assert statuses(results(d1, "check_firewall(config)", config)) == ["OK"]


def test_firewall_multicast_default_drop_fails(lab: Lab) -> None:
    d1 = lab.host("d1", "192.0.2.11")
    config = config_only(lab, d1, instance_toml(100))
    d1.nft(
        "table ip fw {\n chain input {\n  type filter hook input priority 0; policy drop;\n"
        "  ct state established,related accept\n }\n}\n",
    )
    [fail] = results(d1, "check_firewall(config)", config)
    assert fail["status"] == "FAIL"
    assert "dropped by the drop policy of ip fw input" in fail["message"]
    assert fail["fix"] == "nft add rule ip fw input ip protocol vrrp accept"


def test_same_vrid_from_a_stranger_is_reported_with_its_source(lab: Lab) -> None:
    d1 = lab.start(lab.host("d1", "192.0.2.11"), instance_toml(100))
    d1.wait_state("MASTER", START)
    d2 = lab.start(lab.host("d2", "192.0.2.12"), instance_toml(100))
    d2.wait_state("BACKUP", 5)
    # another pair's router on the same link, same VRID, its own VIP and password:
    # each side discards the other's adverts, so both stay master
    other = lab.start(
        lab.host("x", "192.0.2.13"), instance_toml(50, password="other", vip="192.0.2.200")
    )
    other.wait_state("MASTER", START)

    found = results(d2.host, f"check_vrrp_neighbours(config, {LISTEN})", d2.config)
    by_status = {r["status"]: r for r in found}
    assert sorted(statuses(found)) == ["FAIL", "OK"], found
    assert "peer 192.0.2.11 (priority 100) agrees" in by_status["OK"]["message"]
    fail = by_status["FAIL"]["message"]
    assert "192.0.2.13 sends VRID 51 adverts on eth1" in fail
    assert "VIPs 192.0.2.200 (ours: 192.0.2.100)" in fail and "another password" in fail

    # on the master the peer is silent (it is backup): only the stranger is heard
    found = results(d1.host, f"check_vrrp_neighbours(config, {LISTEN})", d1.config)
    assert statuses(found) == ["FAIL"] and "192.0.2.13" in found[0]["message"]


def test_rp_filter_strict_with_a_peer_routed_elsewhere_fails(lab: Lab) -> None:
    d1 = lab.host("d1", "192.0.2.11")
    # a second leg (a veth pair inside the namespace: no dummy module here)
    d1.run("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
    d1.run("ip", "addr", "add", "198.51.100.1/24", "dev", "eth0")
    d1.run("ip", "link", "set", "eth0", "up")
    d1.run("ip", "link", "set", "eth0p", "up")
    config = config_only(lab, d1, instance_toml(100, extra='unicast_peers = ["198.51.100.7"]\n'))
    d1.run("sysctl", "-w", "net.ipv4.conf.eth1.rp_filter=1")

    [fail] = results(d1, "check_rp_filter(config)", config)
    assert fail["status"] == "FAIL"
    assert "198.51.100.7 via eth0" in fail["message"]
    apply_fix(d1, fail["fix"])
    [ok] = results(d1, "check_rp_filter(config)", config)
    assert ok["status"] == "OK" and "loose" in ok["message"]
