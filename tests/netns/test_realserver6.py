"""`lvsha realserver` with an IPv6 VIP, and the kernel behaviour it relies on.

The claim in lvsha/tools/realserver6.py, shown on a real kernel: with the
VIP on `lo` a real server does not answer a Neighbour Solicitation for it
that arrives on eth1, with the default sysctls; with the VIP on eth1 it
does (so clients would bypass the director).
"""

from __future__ import annotations

import json

from lab import Host, Lab, wait_for
from nspython import python

VIP6 = "2001:db8::100"


def setup(host: Host, *vips: str, write: str | None = None) -> list[str]:
    out = python(host, f"print(json.dumps(realserver.setup(sys.argv[1:], {write!r})))", *vips)
    assert out.returncode == 0, out.stderr
    lines: list[str] = json.loads(out.stdout)
    return lines


def check(host: Host, *vips: str) -> tuple[int, str]:
    out = python(host, "sys.exit(realserver.main_check(sys.argv[1:]))", *vips)
    return out.returncode, out.stdout


def sysctl(host: Host, name: str) -> str:
    return host.run("sysctl", "-n", name).stdout.strip()


def vip_mac(client: Host) -> str | None:
    entry = client.neighbour6(VIP6)
    return entry.get("lladdr") if entry else None


def test_setup_puts_the_ipv6_vip_on_lo_and_sets_no_sysctl(lab: Lab) -> None:
    rs = lab.host("i6rs", "192.0.2.21")
    status, text = check(rs, VIP6)
    assert status == 1 and f"VIP {VIP6} is not on lo" in text
    assert "arp_ignore" not in text  # IPv4's sysctls are not asked for an IPv6 VIP

    assert setup(rs, f"{VIP6}/128") == [f"added {VIP6}/128 on lo (nodad)"]
    (entry,) = [a for a in rs.addresses6("lo") if a["local"] == VIP6]
    assert entry["prefixlen"] == 128 and not entry.get("tentative")
    assert sysctl(rs, "net.ipv4.conf.all.arp_ignore") == "0"  # untouched
    status, text = check(rs, VIP6)
    assert status == 0, text
    assert text.startswith(f"OK: LVS-DR real server ready ({VIP6} on lo; IPv6 needs no sysctl")
    assert setup(rs, VIP6) == []  # idempotent


def test_check_finds_the_ipv6_vip_elsewhere_too_wide_or_ipv6_disabled(lab: Lab) -> None:
    rs = lab.host("i6rs", "192.0.2.21")
    setup(rs, VIP6)
    rs.add6(f"{VIP6}/64")  # on eth1 as well: the classic mistake
    rs.add6("2001:db8::101/64", dev="lo")
    status, text = check(rs, VIP6, "2001:db8::101")
    assert status == 1
    assert f"VIP {VIP6} is also on eth1: the real server answers neighbour solicitations" in text
    assert "VIP 2001:db8::101 is on lo as /64" in text
    rs.run("sysctl", "-qw", "net.ipv6.conf.lo.disable_ipv6=1")
    status, text = check(rs, VIP6)
    assert status == 1 and "net.ipv6.conf.lo.disable_ipv6 = 1: lo can hold no IPv6 VIP" in text


def test_a_vip_on_lo_is_not_answered_for_on_the_lan_a_vip_on_eth1_is(lab: Lab) -> None:
    rs = lab.host("i6rs", "192.0.2.21")
    client = lab.host("i6cl", "192.0.2.50")
    rs.add6("2001:db8::21/64")
    client.add6("2001:db8::50/64")
    assert setup(rs, VIP6) == [f"added {VIP6}/128 on lo (nodad)"]
    wait_for(rs.link_local_ready, 10, interval=0.1)
    wait_for(client.link_local_ready, 10, interval=0.1)
    # the real server itself is reachable: neighbour discovery works on the LAN
    assert client.run("ping", "-6", "-c", "1", "-W", "2", "2001:db8::21").returncode == 0
    ping = client.run("ping", "-6", "-c", "2", "-W", "1", VIP6, check=False)
    assert ping.returncode != 0 and vip_mac(client) is None
    # the control: the same VIP on eth1 is answered at once
    client.run("ip", "-6", "neigh", "flush", "dev", "eth1")
    rs.add6(f"{VIP6}/64")
    assert client.run("ping", "-6", "-c", "1", "-W", "2", VIP6).returncode == 0
    assert vip_mac(client) == rs.mac
