"""lvsha programs IPVS; `ipvsadm -Ln` (an independent tool) reads it back.

Each test owns a fresh director namespace (IPVS tables are per namespace).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import replace

import pytest
from ipvslab import (
    available_schedulers,
    config,
    dump,
    ipvsadm,
    parse_ipvsadm,
    replan,
    sh,
    sync,
    wait_for,
)

from lvsha.adapters.ipvs import Ipvs, IpvsBatchError, IpvsReconciler
from lvsha.config import VirtualServerConfig
from lvsha.core.desired import Destination, IpvsTable, Service, ServiceKey, desired_ipvs
from lvsha.core.reconcile import diff
from lvsha.runtime.ipvs_sync import IpvsSync

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
    # BGP directors: both at once, each sends its connections and takes the others'
    assert sorted(asyncio.run(switch("both"))) == ["backup", "master"]
    assert asyncio.run(switch("backup")) == ["backup"]
    start = time.monotonic()
    assert asyncio.run(switch(None)) == []
    assert time.monotonic() - start < 5  # a stop the kernel does not ACK must not hang
    assert ipvsadm(ns, "-L", "--daemon") == ""


# ------------------------------------------- batches, the model, the verify --

A = ServiceKey("tcp", "192.0.2.1", 80)
B = ServiceKey("tcp", "192.0.2.2", 80)
C = ServiceKey("tcp", "192.0.2.3", 80)


def dest(last: int, weight: int = 1) -> Destination:
    return Destination(f"198.51.100.{last}", 80, weight, "dr")


def table(*services: Service) -> IpvsTable:
    return IpvsTable(services)


TABLE = table(
    Service(A, "rr", destinations=(dest(1), dest(2))),
    Service(B, "rr", destinations=(dest(1), dest(2))),
    Service(C, "wlc", destinations=(dest(3),)),
)


class KernelRig:
    """IpvsSync on the real kernel in one namespace, with a clock the test walks."""

    def __init__(self, ns: str) -> None:
        self.now = 0.0
        self.adapters: list[Ipvs] = []

        def kernel() -> Ipvs:
            self.adapters.append(Ipvs(netns=ns))
            return self.adapters[-1]

        self.sync = IpvsSync(60.0, kernel=kernel, clock=lambda: self.now)
        self.sync.start()

    @property
    def dumps(self) -> int:
        return sum(a.dumps for a in self.adapters)

    def apply(self, desired: IpvsTable) -> list[str]:
        """A whole-table pass as the daemon makes it: with the one that takes a verify."""
        return asyncio.run(self.whole_pass(desired))

    async def whole_pass(self, desired: IpvsTable) -> list[str]:
        done = await self.sync.apply(desired, None)
        if await self.sync.verified_beside():  # on_verified: the daemon's next whole pass
            done += await self.sync.apply(desired, None)
        return done

    def close(self) -> None:
        asyncio.run(self.sync.close([]))


def test_a_refused_operation_mid_batch_is_named_and_the_rest_applied(
    netns: Callable[[str], str],
) -> None:
    ns = netns("lb")
    bad = table(
        TABLE.services[0], replace(TABLE.services[1], scheduler="nosuch"), TABLE.services[2]
    )

    async def attempt() -> IpvsBatchError:
        async with Ipvs(netns=ns) as ipvs:
            with pytest.raises(IpvsBatchError) as info:
                await ipvs.apply(diff(bad, await ipvs.dump()))
            return info.value

    err = asyncio.run(attempt())
    assert [(str(op), why) for op, why in err.failed] == [
        (f"add service {B} nosuch", "ENOENT (No such file or directory)"),
        (f"add dest 198.51.100.1:80 dr weight 1 to {B}", "ESRCH (No such process)"),
        (f"add dest 198.51.100.2:80 dr weight 1 to {B}", "ESRCH (No such process)"),
    ]
    assert len(err.applied) == 5  # A and C with their destinations, in order
    assert set(parse_ipvsadm(ipvsadm(ns, "-Ln"))) == {f"TCP {A.address}:80", f"TCP {C.address}:80"}
    # re-plan on the real kernel: only the refused service remains to do
    assert {str(op) for op in diff(bad, asyncio.run(dump(ns)))} == {str(op) for op, _ in err.failed}


def test_changes_reach_the_kernel_without_a_dump_and_a_verify_repairs_drift(
    netns: Callable[[str], str],
) -> None:
    ns = netns("lb")
    rig = KernelRig(ns)
    try:
        rig.apply(TABLE)
        assert rig.dumps == 1
        assert asyncio.run(dump(ns)) == TABLE  # re-plan is empty
        # a real server of A fails: straight to the kernel, no dump
        rig.now += 1
        fewer = table(Service(A, "rr", destinations=(dest(2),)), *TABLE.services[1:])
        assert rig.apply(fewer) == [f"delete dest 198.51.100.1:80 from {A}"]
        assert rig.dumps == 1
        assert (
            "198.51.100.1:80" not in parse_ipvsadm(ipvsadm(ns, "-Ln"))[f"TCP {A.address}:80"].dests
        )
        # drift by hand: trusted away until the verify is due, then repaired and reported
        ipvsadm(ns, "-e", "-t", f"{C.address}:80", "-r", "198.51.100.3:80", "-g", "-w", "9")
        rig.now += 30
        assert rig.apply(fewer) == [] and rig.dumps == 1
        rig.now += 31
        repaired = [
            f"edit dest 198.51.100.3:80 dr weight 1 in {C} (was 198.51.100.3:80 dr weight 9)"
        ]
        assert rig.apply(fewer) == repaired
        assert rig.dumps == 2
        assert rig.sync.status()["verify"]["repaired"] == repaired
        assert diff(fewer, asyncio.run(dump(ns))) == []
    finally:
        rig.close()


def test_health_passes_during_a_verify_dumped_beside_them_leave_the_kernel_as_wanted(
    netns: Callable[[str], str],
) -> None:
    """The periodic verify dumps on its own socket while health passes go on (issue 13).

    200 services x 10 destinations; while the verify dumps, each health
    pass drops a destination of one service the dump has likely read and
    of one it has likely not (the dump goes in key order). The pass that
    takes the dump finds no drift and does nothing, and re-planning
    against a fresh dump of the real kernel is empty.
    """
    ns = netns("lb")
    keys = [ServiceKey("tcp", "192.0.2.1", port) for port in range(1000, 1200)]
    dests = tuple(dest(last) for last in range(1, 11))
    big = table(*(Service(key, "rr", destinations=dests) for key in keys))
    rig = KernelRig(ns)

    async def scenario() -> tuple[list[str], int, IpvsTable]:
        await rig.sync.apply(big, None)  # start: verify in line, program the table
        rig.now += 61  # the periodic verify is due
        assert await rig.sync.apply(big, None) == []  # starts it beside, does not wait
        current, during = big, 0
        for i in range(40):
            pair = {keys[i], keys[-1 - i]}
            fewer = table(*(Service(k, "rr", destinations=dests[1:]) for k in pair))
            current = current.replace(pair, fewer)
            assert len(await rig.sync.apply(current, None, frozenset(pair))) == 2
            during += rig.dumps == 1  # the verify's dump has not ended yet
        assert await rig.sync.verified_beside()
        return await rig.sync.apply(current, None), during, current

    try:
        taken, during, current = asyncio.run(scenario())
        assert during >= 1  # at least one pass went in while the dump ran
        assert taken == []
        assert rig.dumps == 2 and rig.sync.status()["verify"]["repaired_total"] == 0
        assert diff(current, asyncio.run(dump(ns))) == []
    finally:
        rig.close()


def test_a_pass_told_the_changed_services_leaves_the_kernel_as_a_whole_pass_would(
    netns: Callable[[str], str],
) -> None:
    """The health-change path: only the named services are planned and sent.

    After each incremental pass (a destination removed, a weight edited, a
    service gone, a refused one in the middle), re-planning the whole table
    against a fresh dump of the real kernel is empty, or holds exactly the
    refused operations.
    """
    ns = netns("lb")
    rig = KernelRig(ns)

    def apply(desired: IpvsTable, *keys: ServiceKey) -> list[str]:
        return asyncio.run(rig.sync.apply(desired, None, frozenset(keys)))

    try:
        rig.apply(TABLE)
        rig.now += 1
        fewer = TABLE.replace({A}, table(Service(A, "rr", destinations=(dest(2),))))
        assert apply(fewer, A) == [f"delete dest 198.51.100.1:80 from {A}"]
        assert diff(fewer, asyncio.run(dump(ns))) == []
        heavier = fewer.replace({C}, table(Service(C, "wlc", destinations=(dest(3, 5),))))
        assert apply(heavier, C) == [
            f"edit dest 198.51.100.3:80 dr weight 5 in {C} (was 198.51.100.3:80 dr weight 1)"
        ]
        assert diff(heavier, asyncio.run(dump(ns))) == []
        gone = heavier.replace({B}, table())
        apply(gone, B)
        assert diff(gone, asyncio.run(dump(ns)), gone.keys() | {B}) == []
        bad = gone.replace(
            {A, C},
            table(
                Service(A, "nosuch", destinations=(dest(2),)),
                Service(C, "wlc", destinations=(dest(3, 5), dest(4))),
            ),
        )
        with pytest.raises(IpvsBatchError) as info:
            apply(bad, A, C)
        assert [str(op) for op, _ in info.value.failed] == [f"edit service {A} nosuch (was {A} rr)"]
        assert {str(op) for op in diff(bad, asyncio.run(dump(ns)))} == {
            str(op) for op, _ in info.value.failed
        }
        assert rig.dumps == 1  # no pass above dumped
    finally:
        rig.close()


def test_a_refusal_from_unseen_drift_is_repaired_by_the_next_verify(
    netns: Callable[[str], str],
) -> None:
    ns = netns("lb")
    rig = KernelRig(ns)
    try:
        rig.apply(TABLE)
        ipvsadm(ns, "-D", "-t", f"{A.address}:80")  # unseen by the model
        rig.now += 5
        changed = table(
            Service(A, "rr", destinations=(dest(1), dest(2), dest(4))),
            Service(B, "rr", destinations=(dest(1),)),
            TABLE.services[2],
        )
        with pytest.raises(IpvsBatchError) as info:
            rig.apply(changed)
        assert [(str(op), why) for op, why in info.value.failed] == [
            (f"add dest 198.51.100.4:80 dr weight 1 to {A}", "ESRCH (No such process)")
        ]
        assert set(parse_ipvsadm(ipvsadm(ns, "-Ln"))[f"TCP {B.address}:80"].dests) == {
            "198.51.100.1:80"
        }  # B's change went in
        rig.now += 5  # inside the interval: the error brings the verify
        rig.apply(changed)
        assert rig.dumps == 2
        assert rig.sync.status()["verify"]["repaired"][0] == f"add service {A} rr"
        assert diff(changed, asyncio.run(dump(ns))) == []
    finally:
        rig.close()


def test_dump_of_a_service_too_big_for_one_reply_and_a_batch_of_thousands(
    netns: Callable[[str], str],
) -> None:
    """600 destinations in one service fill several dump replies; 4,000 operations
    go in two sendmsgs, every one acknowledged; the dump reads back all of it."""
    ns = netns("lb")
    big = Service(
        A,
        "wrr",
        destinations=tuple(
            Destination(f"198.51.100.{i}", p, 1, "dr") for i in range(1, 201) for p in (80, 81, 82)
        ),
    )
    small = [
        Service(ServiceKey("tcp", "192.0.2.9", port), "rr", destinations=(dest(1), dest(2)))
        for port in range(1000, 2134)
    ]
    want = table(big, *small)

    async def program_and_dump() -> tuple[int, int, IpvsTable]:
        async with Ipvs(netns=ns) as ipvs:
            ops = diff(want, await ipvs.dump())
            sends = ipvs._batch_socket.sendmsgs
            await ipvs.apply(ops)
            return len(ops), ipvs._batch_socket.sendmsgs - sends, await ipvs.dump()

    ops, sendmsgs, got = asyncio.run(program_and_dump())
    assert ops == 1 + 600 + 1134 * 3 == 4003
    assert sendmsgs <= 3  # batches of up to 2,048 (fewer if the buffers are small)
    assert got == want
