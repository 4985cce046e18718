"""IPv6 services in the real kernel: lvsha programs them, `ipvsadm -Ln` reads them back.

The same invariant as for IPv4 (tests/kernel/test_ipvs_table.py): after a
pass, a re-plan against a fresh dump is empty, so the AF_INET6 encoding
and decoding agree with the kernel's, persistence prefix included.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ipvslab import config, dump, ipvsadm, parse_ipvsadm, replan, sh, sync

from lvsha.adapters.ipvs import Ipvs, IpvsReconciler
from lvsha.core.desired import IpvsTable, ServiceKey, desired_ipvs

VIP6 = "2001:db8::10"


def listing(ns: str) -> dict[str, tuple[object, ...]]:
    return {
        k: (s.scheduler, s.persistent, s.mask, s.dests)
        for k, s in parse_ipvsadm(ipvsadm(ns, "-Ln")).items()
    }


def services(prefix: int = 64, weight: int = 3, sched: str = "rr") -> str:
    text = ""
    for port, fwd, timeout in ((80, "dr", 0), (8080, "nat", 300), (8443, "tun", 0)):
        text += f"""
[[virtual_server]]
address = "{VIP6}"
port = {port}
scheduler = "{sched}"
forwarding = "{fwd}"
persistence_timeout = {timeout}
persistence_netmask = {prefix}
[[virtual_server.real_server]]
address = "2001:db8:1::1"
weight = 1
[[virtual_server.real_server]]
address = "2001:db8:1::2"
weight = {weight}
"""
    text += """
[[virtual_server]]
address = "192.0.2.10"
port = 80
[[virtual_server.real_server]]
address = "198.51.100.1"

[[virtual_server]]
address = "2001:db8::53"
port = 53
protocol = "udp"
forwarding = "nat"
[[virtual_server.real_server]]
address = "2001:db8:1::53"
port = 5353

[[virtual_server]]
fwmark = 7
[[virtual_server.real_server]]
address = "2001:db8:1::7"
port = 80

[[virtual_server]]
fwmark = 7
[[virtual_server.real_server]]
address = "198.51.100.7"
port = 80
"""
    return text


def test_ipv6_dr_nat_tun_services_read_back_and_replan_is_empty(
    netns: Callable[[str], str],
) -> None:
    ns = netns("d6lb")
    vss = config(services())
    desired = desired_ipvs(vss)
    done = asyncio.run(sync(ns, desired))
    assert len(done) == len(vss) + sum(len(v.real_servers) for v in vss)
    assert asyncio.run(replan(ns, desired)) == []  # the kernel holds exactly the model
    got = listing(ns)
    assert got[f"TCP [{VIP6}]:80"] == (
        "rr",
        0,
        "255.255.255.255",  # ipvsadm prints no mask without persistence
        {"[2001:db8:1::1]:80": ("dr", 1), "[2001:db8:1::2]:80": ("dr", 3)},
    )
    assert got[f"TCP [{VIP6}]:8080"][:2] == ("rr", 300)
    assert got[f"TCP [{VIP6}]:8080"][3] == {
        "[2001:db8:1::1]:8080": ("nat", 1),
        "[2001:db8:1::2]:8080": ("nat", 3),
    }
    assert set(got[f"TCP [{VIP6}]:8443"][3].values()) == {("tun", 1), ("tun", 3)}  # type: ignore[attr-defined]
    assert got["UDP [2001:db8::53]:53"][3] == {"[2001:db8:1::53]:5353": ("nat", 1)}
    assert got["TCP 192.0.2.10:80"][3] == {"198.51.100.1:80": ("dr", 1)}
    saved = ipvsadm(ns, "-Sn")
    # the same mark in both families: two services, told apart by their family
    assert got["FWM 7 IPv6"] == ("wlc", 0, "255.255.255.255", {"[2001:db8:1::7]:80": ("dr", 1)})
    assert got["FWM 7"] == ("wlc", 0, "255.255.255.255", {"198.51.100.7:80": ("dr", 1)})
    assert "-A -f 7 -6 -s wlc\n" in saved and "-A -f 7 -s wlc\n" in saved
    dumped = asyncio.run(dump(ns))
    assert {ServiceKey.for_fwmark(7, 6), ServiceKey.for_fwmark(7)} <= dumped.keys()
    # the persistence prefix is what the kernel stores (ipvsadm -S prints it as -M)
    assert f"-A -t [{VIP6}]:8080 -s rr -p 300 -M 64" in saved, saved


def test_ipv6_edits_in_place_and_drift_is_repaired(netns: Callable[[str], str]) -> None:
    ns = netns("d6lb")
    asyncio.run(sync(ns, desired_ipvs(config(services()))))
    second = desired_ipvs(config(services(prefix=48, weight=5, sched="wlc")))
    done = asyncio.run(sync(ns, second))
    assert {line.split()[0] for line in done} == {"edit"}, done
    assert f"edit service TCP [{VIP6}]:8080 wlc persistent 300 mask 48 " in "\n".join(done) + " "
    assert asyncio.run(replan(ns, second)) == []
    assert f"-A -t [{VIP6}]:8080 -s wlc -p 300 -M 48" in ipvsadm(ns, "-Sn")

    ipvsadm(ns, "-d", "-t", f"[{VIP6}]:80", "-r", "[2001:db8:1::2]:80")
    ipvsadm(ns, "-D", "-u", "[2001:db8::53]:53")
    done = asyncio.run(sync(ns, second))
    assert done == [
        f"add dest [2001:db8:1::2]:80 dr weight 5 to TCP [{VIP6}]:80",
        "add service UDP [2001:db8::53]:53 wlc",
        "add dest [2001:db8:1::53]:5353 nat weight 1 to UDP [2001:db8::53]:53",
    ]
    assert asyncio.run(replan(ns, second)) == []


def test_a_foreign_ipv6_service_is_left_alone_an_owned_one_deleted(
    netns: Callable[[str], str],
) -> None:
    ns = netns("d6lb")
    sh(
        ns,
        """
        ipvsadm -A -t [2001:db8::99]:443 -s wlc
        ipvsadm -a -t [2001:db8::99]:443 -r [2001:db8:1::50]:443 -m -w 4
        """,
    )
    desired = desired_ipvs(config(services()))
    own = desired.keys()

    async def reload_without_them() -> list[str]:
        async with Ipvs(netns=ns) as ipvs:
            rec = IpvsReconciler(ipvs)
            await rec.sync(desired)
            dumped = await ipvs.dump()
            assert ServiceKey("tcp", "2001:db8::99", 443) in dumped  # decoded, not skipped
            return await rec.sync(IpvsTable())

    done = asyncio.run(reload_without_them())
    assert sum(line.startswith("delete service") for line in done) == len(own)
    assert set(parse_ipvsadm(ipvsadm(ns, "-Ln"))) == {"TCP [2001:db8::99]:443"}
