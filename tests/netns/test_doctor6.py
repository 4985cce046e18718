"""`lvsha doctor` interfaces check for an IPv6 (VRRPv3) instance.

An IPv6 instance sends its adverts from the interface's link-local address
(RFC 5798 section 5.1.2.1), not from an IPv4 one: the check looks for a
link-local past DAD, and says so when IPv6 is disabled on the interface.
"""

from __future__ import annotations

from lab import Lab, wait_for
from nspython import results

CONFIG = """
[daemon]
name = "d1"
[vrrp.VI_6]
interface = "eth1"
version = 3
virtual_router_id = 61
virtual_ipaddress = ["2001:db8::100/64"]
"""


def test_an_ipv6_instance_needs_a_link_local_not_an_ipv4_address(lab: Lab) -> None:
    host = lab.host("i6d1", "192.0.2.11")
    host.run("ip", "addr", "flush", "dev", "eth1", "scope", "global")  # no IPv4 at all
    config = lab.workdir / "d1.toml"
    config.write_text(CONFIG)
    wait_for(host.link_local_ready, 10, interval=0.1)
    [ok] = results(host, "check_interfaces(config)", config)
    assert (ok["status"], ok["message"]) == ("OK", "interface eth1 (VI_6) is up, with a link-local")

    host.run("sysctl", "-qw", "net.ipv6.conf.eth1.disable_ipv6=1")
    [off] = results(host, "check_interfaces(config)", config)
    assert off["status"] == "FAIL"
    assert "IPv6 is disabled on it, and the instance's VIPs are IPv6" in off["message"]

    host.run("sysctl", "-qw", "net.ipv6.conf.eth1.disable_ipv6=0")  # back, DAD runs again
    host.run("ip", "-6", "addr", "flush", "dev", "eth1", "scope", "link")
    [none] = results(host, "check_interfaces(config)", config)
    assert none["status"] == "FAIL" and "has no usable link-local address" in none["message"]


def test_the_firewall_check_says_it_did_not_walk_an_ipv6_instances_adverts(lab: Lab) -> None:
    """The evaluator models IPv4; an IPv6 instance got an IPv4 probe to 224.0.0.18 and OK."""
    host = lab.host("i6d1", "192.0.2.11")
    config = lab.workdir / "d1.toml"
    config.write_text(CONFIG)
    host.nft("table ip6 f {\n chain in {\n  type filter hook input priority 0;\n }\n}\n")
    found = results(host, "check_firewall(config)", config)
    assert [r["status"] for r in found] == ["WARN"], found
    assert found[0]["message"].startswith("VI_6 is IPv6: doctor walks IPv4 VRRP only")
    assert "224.0.0.18" not in found[0]["message"]
