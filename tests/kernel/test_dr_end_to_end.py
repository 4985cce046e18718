"""Direct Routing end to end: client -> VIP on the director -> real servers -> client.

One Ethernet segment (a bridge) as in lvs01: the real servers carry the VIP on
`lo` with arp_ignore=1 / arp_announce=2, so only a director answers ARP for
it, and their replies go straight to the client, never through the director.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from ipvslab import Peer, ipvsadm, lan, sh, wait_for

from lvsha.adapters.ipvs import Ipvs, IpvsReconciler
from lvsha.config import parse_config
from lvsha.core.desired import IpvsTable, desired_ipvs

VIP = "192.0.2.80"
CONFIG = f"""
[[virtual_server]]
address = "{VIP}"
port = 80
scheduler = "rr"
forwarding = "dr"
[[virtual_server.real_server]]
address = "192.0.2.11"
[[virtual_server.real_server]]
address = "192.0.2.12"
"""
REAL_SERVER_SETUP = f"""
ip addr add {VIP}/32 dev lo
for k in all lo; do
  echo 1 > /proc/sys/net/ipv4/conf/$k/arp_ignore
  echo 2 > /proc/sys/net/ipv4/conf/$k/arp_announce
done
"""


def program(ns: str, desired: IpvsTable) -> list[str]:
    async def go() -> list[str]:
        async with Ipvs(netns=ns) as ipvs:
            return await IpvsReconciler(ipvs).sync(desired)

    return asyncio.run(go())


def stats(ns: str, service: str) -> tuple[int, int]:
    """(InPkts, OutPkts) of a service from `ipvsadm -Ln --stats`."""
    for line in ipvsadm(ns, "-Ln", "--stats").splitlines():
        w = line.split()
        if len(w) > 4 and w[1] == service:
            return int(w[3]), int(w[4])
    return 0, 0


def start_servers(peers: Callable[..., Peer], hosts: dict[str, str], *names: str) -> None:
    for name in names:
        sh(hosts[name], REAL_SERVER_SETUP)
        server = peers(hosts[name], "server", name, "80")
        assert server.readline() == "ready"


def test_rr_spreads_requests_evenly_and_replies_bypass_the_director(
    netns: Callable[[str], str], peers: Callable[..., Peer]
) -> None:
    hosts = lan(
        netns,
        {
            "lb": "192.0.2.1/24",
            "rs1": "192.0.2.11/24",
            "rs2": "192.0.2.12/24",
            "client": "192.0.2.100/24",
        },
    )
    sh(hosts["lb"], f"ip addr add {VIP}/32 dev eth0")
    start_servers(peers, hosts, "rs1", "rs2")
    program(hosts["lb"], desired_ipvs(parse_config(CONFIG).virtual_servers))

    client = peers(hosts["client"], "count", VIP, "80", "20")
    assert json.loads(client.readline(timeout=60)) == {"rs1": 10, "rs2": 10}

    # DR: the director forwards what the client sends and never sees a reply
    wait_for("IPVS stats to count the traffic", lambda: stats(hosts["lb"], f"{VIP}:80")[0] > 0)
    assert stats(hosts["lb"], f"{VIP}:80")[1] == 0


def test_long_lived_connection_survives_failover_with_the_sync_daemon(
    netns: Callable[[str], str], peers: Callable[..., Peer]
) -> None:
    hosts = lan(
        netns,
        {
            "lb1": "192.0.2.1/24",
            "lb2": "192.0.2.2/24",
            "rs1": "192.0.2.11/24",
            "rs2": "192.0.2.12/24",
            "client": "192.0.2.100/24",
        },
    )
    start_servers(peers, hosts, "rs1", "rs2")
    desired = desired_ipvs(parse_config(CONFIG).virtual_servers)
    for lb, state in (("lb1", "master"), ("lb2", "backup")):
        program(hosts[lb], desired)  # both directors programmed: the standby is warm

        async def sync_daemon(ns: str = hosts[lb], state: str = state) -> None:
            async with Ipvs(netns=ns) as ipvs:
                await ipvs.set_sync_daemon(state, "eth0", 51)

        asyncio.run(sync_daemon())
    sh(hosts["lb1"], f"ip addr add {VIP}/32 dev eth0")  # lb1 is the VRRP master

    session = peers(hosts["client"], "session", VIP, "80")
    assert session.readline() == "connected"
    first = [session.send(f"before {i}") for i in range(5)]
    server = first[0].split()[0]
    assert all(line.startswith(f"{server} before") for line in first), first

    # the backup learnt the connection from the master's sync messages
    wait_for(
        "lb2 to hold the synced connection",
        lambda: "192.0.2.100" in ipvsadm(hosts["lb2"], "-Lnc"),
        timeout=20,
    )

    # lb1 dies (its link goes away); lb2 takes the VIP. The gratuitous ARP
    # that lvsha's VRRP side sends is stood in for by flushing the client's
    # neighbour entry, so the client asks again and only lb2 answers.
    sh(hosts["lb1"], "ip link set eth0 down")
    sh(hosts["lb2"], f"ip addr add {VIP}/32 dev eth0")
    sh(hosts["client"], f"ip neigh flush to {VIP} dev eth0")

    after = [session.send(f"after {i}") for i in range(3)]
    assert after == [f"{server} after {i}" for i in range(3)]
