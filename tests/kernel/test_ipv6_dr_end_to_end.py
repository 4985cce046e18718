"""IPv6 Direct Routing end to end: a VRRPv3 pair of lvsha directors, two IPv6 real servers.

One LAN, 2001:db8::/64 (RFC 3849) beside the lab's IPv4 addresses. The VIP
2001:db8::100 is held by a VRRPv3 IPv6 instance (adverts from fe80:: to
ff02::12, RFC 5798 section 5.1.2) and announced with unsolicited Neighbour
Advertisements. The real servers carry the VIP on `lo` as a /128 (nodad):
Linux answers a Neighbour Solicitation only for an address of the interface
it came in on (ndisc_recv_ns() looks the target up with strict=1), so no
real server claims the VIP on the LAN, and none uses it as the source of its
own solicitations: IPv6 needs neither of IPv4's arp_ignore / arp_announce.
Forwarding stays off on the directors: DR rewrites only the MAC.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from lab import Director, Host, Lab, wait_for

from lvsha.core.vrrp_v3 import master_down_interval_v3

PEERS = str(Path(__file__).with_name("peers.py"))
VIP6 = "2001:db8::100"
SERVICE = f"[{VIP6}]:80"
REALS = {"rs1": "2001:db8::21", "rs2": "2001:db8::22"}
CONFIG = f"""
[vrrp.VI_6]
interface = "eth1"
version = 3
virtual_router_id = 61
priority = {{priority}}
advert_int = 1
virtual_ipaddress = ["{VIP6}/64"]

[[virtual_server]]
address = "{VIP6}"
port = 80
protocol = "tcp"
scheduler = "rr"
forwarding = "dr"
delay_loop = 1
""" + "".join(
    f"""
[[virtual_server.real_server]]
address = "{address}"
port = 80
tcp_check = {{{{ connect_timeout = 1 }}}}
"""
    for address in REALS.values()
)


def host6(lab: Lab, name: str, address4: str, address6: str) -> Host:
    host = lab.host(name, address4)
    host.add6(f"{address6}/64")
    return host


def real_server(lab: Lab, name: str, address4: str) -> Host:
    """The VIP on lo as a /128, without DAD; nothing else (no sysctl) is needed."""
    host = host6(lab, name, address4, REALS[name])
    host.add6(f"{VIP6}/128", dev="lo")
    host.popen([sys.executable, PEERS, "server6", name, "80"], lab.workdir / f"{name}.log")
    return host


def director(lab: Lab, name: str, address4: str, address6: str, priority: int) -> Director:
    host = host6(lab, name, address4, address6)
    assert host.run("sysctl", "-n", "net.ipv6.conf.all.forwarding").stdout.strip() == "0"
    wait_for(host.link_local_ready, 15, interval=0.1)  # the VRRPv3 source address
    return lab.start(host, CONFIG.format(priority=priority))


def dests(host: Host) -> set[str]:
    out = host.run("ipvsadm", "-Ln", "-t", SERVICE, check=False)
    if out.returncode != 0:
        return set()
    return {
        line.split()[1]
        for line in out.stdout.splitlines()
        if line.strip().startswith("->") and line.split()[1].startswith("[")
    }


def explain(*directors: Director) -> str:
    """What each director's kernel and status say, for a failure message."""
    parts = []
    for d in directors:
        table = d.host.run("ipvsadm", "-Ln", check=False).stdout
        status = d.status()
        parts.append(
            f"--- {d.host.name}\n{table}ipvs: {status['ipvs']}\n"
            f"real servers: {status['virtual_servers']}\nlog:\n{d.log_text()[-3000:]}"
        )
    return "\n".join(parts)


def count(client: Host, n: int) -> dict[str, int]:
    out = client.run(sys.executable, PEERS, "count", VIP6, "80", str(n), timeout=90)
    result: dict[str, int] = json.loads(out.stdout)
    return result


def vip_mac(client: Host) -> str | None:
    entry = client.neighbour6(VIP6)
    return entry.get("lladdr") if entry else None


def test_ipv6_dr_pair_spreads_over_two_real_servers_and_survives_a_master_crash(
    lab: Lab,
) -> None:
    client = host6(lab, "client", "192.0.2.50", "2001:db8::50")
    for name, address4 in (("rs1", "192.0.2.21"), ("rs2", "192.0.2.22")):
        real_server(lab, name, address4)
    wait_for(client.link_local_ready, 15, interval=0.1)

    # Real servers alone: nobody answers the client's solicitation for the VIP.
    ping = client.run("ping", "-6", "-c", "2", "-W", "1", VIP6, check=False)
    assert ping.returncode != 0, ping.stdout
    assert vip_mac(client) is None  # INCOMPLETE / FAILED, never a real server's MAC
    client.run("ip", "-6", "neigh", "flush", "dev", "eth1")

    d1 = director(lab, "d1", "192.0.2.11", "2001:db8::11", 150)
    d1.wait_state("MASTER", master_down_interval_v3(150, 1.0) + 15)
    d2 = director(lab, "d2", "192.0.2.12", "2001:db8::12", 100)
    d2.wait_state("BACKUP", 15)
    instance = d1.status()["instances"][0]
    assert instance["version"] == 3 and instance["primary_address"].startswith("fe80::")
    both = {f"[{a}]:80" for a in REALS.values()}
    # Both directors program the IPv6 service (the standby is warm) once the
    # IPv6 TCP checks have passed.
    try:
        wait_for(lambda: dests(d1.host) == both and dests(d2.host) == both, 30, interval=0.2)
    except TimeoutError:
        raise AssertionError(explain(d1, d2)) from None
    assert d1.status()["ipvs"]["error"] is None
    assert wait_for(lambda: d1.host.has_vip6(VIP6), 5) and not d2.host.has_vip6(VIP6)

    # rr spreads evenly; the client reached the VIP at the master's MAC.
    assert count(client, 20) == {"rs1": 10, "rs2": 10}
    assert vip_mac(client) == d1.host.mac

    # The master crashes (kill -9 leaves its VIP: take its link down too).
    d1.kill()
    d1.host.link(up=False)
    d2.wait_state("MASTER", master_down_interval_v3(100, 1.0) + 5)
    assert wait_for(lambda: d2.host.has_vip6(VIP6), 5)
    # The unsolicited NA (Override set, RFC 4861 section 7.2.6) moved the entry.
    wait_for(lambda: vip_mac(client) == d2.host.mac, 10, interval=0.1)
    assert count(client, 10) == {"rs1": 5, "rs2": 5}
    assert dests(d2.host) == both
