"""lvsha programs IPVS; `ipvsadm -Ln` (an independent tool) reads it back.

Each test owns a fresh director namespace (IPVS tables are per namespace).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

import pytest
from ipvslab import available_schedulers, ipvsadm, parse_ipvsadm, sh, wait_for

from lvsha.adapters.ipvs import Ipvs, IpvsReconciler
from lvsha.config import VirtualServerConfig, parse_config
from lvsha.core.desired import IpvsTable, desired_ipvs
from lvsha.core.reconcile import diff

SCHEDULERS = [
    "rr",
    "wrr",
    "lc",
    "wlc",
    "lblc",
    "lblcr",
    "dh",
    "sh",
    "sed",
    "nq",
    "mh",
    "fo",
    "ovf",
    "twos",
]
SCHED_FLAGS = {"sh": ["sh-fallback", "sh-port"], "mh": ["mh-fallback", "mh-port"]}
IPVSADM_FLAGS = {"sh": ("sh-fallback", "sh-port"), "mh": ("mh-fallback", "mh-port")}


def config(text: str) -> tuple[VirtualServerConfig, ...]:
    return parse_config(text).virtual_servers


async def sync(ns: str, desired: IpvsTable) -> list[str]:
    """One pass by a fresh reconciler, as after a restart of lvsha."""
    async with Ipvs(netns=ns) as ipvs:
        return await IpvsReconciler(ipvs).sync(desired)


async def replan(ns: str, desired: IpvsTable) -> list[str]:
    async with Ipvs(netns=ns) as ipvs:
        return [str(op) for op in diff(desired, await ipvs.dump())]


def expected_listing(vss: tuple[VirtualServerConfig, ...]) -> dict[str, tuple[object, ...]]:
    """What `ipvsadm -Ln` must show for these virtual servers."""
    out: dict[str, tuple[object, ...]] = {}
    for vs in vss:
        key = f"FWM {vs.fwmark}" if vs.fwmark else f"{vs.protocol.upper()} {vs.address}:{vs.port}"
        dests = {f"{r.address}:{r.port}": (vs.forwarding, r.weight) for r in vs.real_servers}
        out[key] = (
            vs.scheduler,
            IPVSADM_FLAGS.get(vs.scheduler, ()) if vs.scheduler_flags else (),
            vs.persistence_timeout,
            vs.persistence_netmask if vs.persistence_timeout else "255.255.255.255",
            dests,
        )
    return out


def listing(ns: str) -> dict[str, tuple[object, ...]]:
    return {
        k: (s.scheduler, s.flags, s.persistent, s.mask, s.dests)
        for k, s in parse_ipvsadm(ipvsadm(ns, "-Ln")).items()
    }


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_every_scheduler_and_forwarding_method_reads_back_in_ipvsadm(
    netns: Callable[[str], str], scheduler: str
) -> None:
    if scheduler not in available_schedulers():
        pytest.skip(
            f"this kernel ({os.uname().release}) ships no ip_vs_{scheduler} module; "
            "twos was added upstream after Debian 12's 6.1"
        )
    ns = netns("lb")
    flags = SCHED_FLAGS.get(scheduler, [])
    text = ""
    for port, fwd in ((80, "dr"), (8080, "nat"), (8443, "tun")):
        text += f"""
[[virtual_server]]
address = "192.0.2.10"
port = {port}
scheduler = "{scheduler}"
scheduler_flags = {flags!r}
forwarding = "{fwd}"
persistence_timeout = {300 if fwd == "nat" else 0}
persistence_netmask = "{"255.255.255.0" if fwd == "nat" else "255.255.255.255"}"
[[virtual_server.real_server]]
address = "198.51.100.1"
weight = 1
[[virtual_server.real_server]]
address = "198.51.100.2"
weight = 3
[[virtual_server.real_server]]
address = "198.51.100.3"
port = {port}
weight = 0
"""
    text += f"""
[[virtual_server]]
fwmark = 7
scheduler = "{scheduler}"
[[virtual_server.real_server]]
address = "203.0.113.9"

[[virtual_server]]
address = "192.0.2.10"
port = 53
protocol = "udp"
scheduler = "{scheduler}"
forwarding = "nat"
[[virtual_server.real_server]]
address = "203.0.113.53"
port = 5353
weight = 2
"""
    vss = config(text)
    desired = desired_ipvs(vss)
    done = asyncio.run(sync(ns, desired))
    assert len(done) == len(vss) + sum(len(v.real_servers) for v in vss)
    assert listing(ns) == expected_listing(vss)
    assert asyncio.run(replan(ns, desired)) == []  # re-plan on the real kernel: nothing


def test_edits_in_place_scheduler_weight_forwarding_persistence(
    netns: Callable[[str], str],
) -> None:
    ns = netns("lb")
    base = """
[[virtual_server]]
address = "192.0.2.10"
port = 80
scheduler = "{sched}"
forwarding = "{fwd}"
persistence_timeout = {timeout}
[[virtual_server.real_server]]
address = "198.51.100.1"
weight = {weight}
"""
    first = config(base.format(sched="rr", fwd="dr", timeout=0, weight=1))
    second = config(base.format(sched="wlc", fwd="nat", timeout=60, weight=5))
    asyncio.run(sync(ns, desired_ipvs(first)))
    done = asyncio.run(sync(ns, desired_ipvs(second)))
    assert [line.split()[0] for line in done] == ["edit", "edit"], done
    assert listing(ns) == expected_listing(second)


def test_drift_is_repaired_and_reported(netns: Callable[[str], str]) -> None:
    ns = netns("lb")
    vss = config(LVS01)
    desired = desired_ipvs(vss)
    asyncio.run(sync(ns, desired))
    ipvsadm(ns, "-d", "-t", "192.0.2.84:80", "-r", "198.51.100.206:80")
    ipvsadm(ns, "-e", "-t", "192.0.2.84:80", "-r", "198.51.100.207:80", "-g", "-w", "9")
    done = asyncio.run(sync(ns, desired))
    assert done == [
        "add dest 198.51.100.206:80 dr weight 1 to TCP 192.0.2.84:80",
        "edit dest 198.51.100.207:80 dr weight 1 in TCP 192.0.2.84:80 (was 198.51.100.207:80 dr weight 9)",  # noqa: E501
    ]
    ipvsadm(ns, "-D", "-t", "192.0.2.84:80")  # an operator's stray delete
    done = asyncio.run(sync(ns, desired))
    assert done[0] == "add service TCP 192.0.2.84:80 rr" and len(done) == 3
    assert listing(ns) == expected_listing(vss)


LVS01 = """
[[virtual_server]]
address = "192.0.2.84"
port = 80
protocol = "tcp"
scheduler = "rr"
forwarding = "dr"
persistence_timeout = 0
delay_loop = 20
[[virtual_server.real_server]]
address = "198.51.100.206"
port = 80
weight = 1
tcp_check = { connect_timeout = 3 }
[[virtual_server.real_server]]
address = "198.51.100.207"
port = 80
weight = 1
tcp_check = { connect_timeout = 3 }
"""


def test_adopts_existing_table_without_flush_and_leaves_foreign_entries(
    netns: Callable[[str], str],
) -> None:
    ns = netns("lb")
    # the table as keepalived (or an operator) left it, plus a foreign service
    sh(
        ns,
        """
        ip link add d0 type dummy; ip addr add 192.0.2.1/24 dev d0; ip link set d0 up
        ip route add 198.51.100.0/24 dev d0
        ipvsadm -A -t 192.0.2.84:80 -s rr
        ipvsadm -a -t 192.0.2.84:80 -r 198.51.100.206:80 -g -w 1
        ipvsadm -a -t 192.0.2.84:80 -r 198.51.100.207:80 -g -w 1
        ipvsadm -A -t 192.0.2.99:443 -s wlc
        ipvsadm -a -t 192.0.2.99:443 -r 198.51.100.50:443 -m -w 4
        """,
    )
    # a live connection through the adopted service (a local client: IPVS
    # schedules locally sent packets too); its entry and the service's
    # counters would vanish if lvsha flushed or re-created the service
    sh(ns, "timeout 1 bash -c 'exec 3<>/dev/tcp/192.0.2.84/80' || true", check=False)
    wait_for("the connection to be counted", lambda: _conns(ns, "192.0.2.84:80") >= 1)
    entries = ipvsadm(ns, "-Lnc")
    assert "192.0.2.84:80" in entries
    foreign_before = parse_ipvsadm(ipvsadm(ns, "-Ln"))["TCP 192.0.2.99:443"]

    desired = desired_ipvs(config(LVS01))
    assert asyncio.run(sync(ns, desired)) == []  # adopted: nothing to do

    assert "192.0.2.84:80" in ipvsadm(ns, "-Lnc")  # the connection entry survived
    assert _conns(ns, "192.0.2.84:80") >= 1
    assert parse_ipvsadm(ipvsadm(ns, "-Ln"))["TCP 192.0.2.99:443"] == foreign_before

    # a service dropped from the config is deleted; the foreign one stays
    async def reload_without_it() -> list[str]:
        async with Ipvs(netns=ns) as ipvs:
            rec = IpvsReconciler(ipvs)
            await rec.sync(desired)
            return await rec.sync(IpvsTable())

    done = asyncio.run(reload_without_it())
    assert done[-1] == "delete service TCP 192.0.2.84:80"
    assert set(parse_ipvsadm(ipvsadm(ns, "-Ln"))) == {"TCP 192.0.2.99:443"}


def _conns(ns: str, service: str) -> int:
    """Total connections of a service (`ipvsadm -Ln --stats`; lags up to 2 s)."""
    for line in ipvsadm(ns, "-Ln", "--stats").splitlines():
        words = line.split()
        if len(words) > 2 and words[1] == service:
            return int(words[2])
    return 0


def test_sync_daemon_master_backup_and_stop_show_in_ipvsadm(netns: Callable[[str], str]) -> None:
    ns = netns("lb")
    sh(ns, "ip link add eth0 type dummy; ip addr add 192.0.2.1/24 dev eth0; ip link set eth0 up")

    async def switch(state: str | None) -> list[str]:
        async with Ipvs(netns=ns) as ipvs:
            await ipvs.set_sync_daemon(state, "eth0", 51)
            return [d.state for d in await ipvs.sync_daemons()]

    assert asyncio.run(switch("master")) == ["master"]
    assert ipvsadm(ns, "-L", "--daemon").startswith("master sync daemon (mcast=eth0, syncid=51")
    assert asyncio.run(switch("master")) == ["master"]  # idempotent
    assert asyncio.run(switch("backup")) == ["backup"]
    assert ipvsadm(ns, "-L", "--daemon").startswith("backup sync daemon (mcast=eth0, syncid=51")
    start = time.monotonic()
    assert asyncio.run(switch(None)) == []
    assert time.monotonic() - start < 5  # a stop the kernel does not ACK must not hang
    assert ipvsadm(ns, "-L", "--daemon") == ""
