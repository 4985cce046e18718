"""Start, VRRP first (issue 13): the socket and the Master_Down timer come before
anything slow, stale VIPs still go before this node can be master, READY=1
still waits for the first IPVS pass. On fakes and a virtual clock, where the
slow steps are made slow on purpose.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from lvsha.config import VirtualAddress, VirtualServerConfig
from lvsha.core.desired import IpvsTable
from lvsha.core.packet import AUTH_PASS, Advertisement, pad_password
from lvsha.core.vrrp import master_down_interval
from tests.core.test_simulation import ipv4_datagram
from tests.runtime import vclock
from tests.runtime.fakes import (
    Director,
    FakeHealth,
    FakeLan,
    daemon_toml,
    director,
    instance_toml,
    until,
)

VIP = VirtualAddress("192.0.2.100", 32, "eth1")
A = "192.0.2.11"
SLOW = 0.5  # virtual seconds each slow step takes

SERVICE = """
[[virtual_server]]
address = "192.0.2.100"
port = 80
protocol = "tcp"
scheduler = "rr"
forwarding = "dr"

[[virtual_server.real_server]]
address = "198.51.100.21"
port = 80
"""


class Timeline:
    """When each step of the start happened, on the loop's (virtual) clock."""

    def __init__(self, d: Director) -> None:
        self.d = d
        self.at: dict[str, float] = {}
        self.state_at_removal: list[tuple[bool, str | None]] = []

    def mark(self, what: str) -> None:
        self.at.setdefault(what, asyncio.get_running_loop().time())


def slow_director(tmp_path: Path, body: str) -> tuple[Director, Timeline]:
    """A director whose VIP listing, health checker and IPVS pass are all slow."""
    d = director(FakeLan(), daemon_toml("a", body, str(tmp_path / "a.sock")), A)
    t = Timeline(d)
    kernel, ports = d.kernel, d.daemon.ports
    present, remove = kernel.present, kernel.remove

    async def slow_present(owned: Any) -> set[VirtualAddress]:
        t.mark("vip-listing")
        await asyncio.sleep(SLOW)
        return await present(owned)

    async def watched_remove(vip: VirtualAddress) -> None:
        inst = d.daemon.driver.instances.get("VI_1")
        t.state_at_removal.append((inst is not None, inst and inst.router.state.value))
        t.mark("stale-removed")
        await remove(vip)

    kernel.present = slow_present  # type: ignore[method-assign]
    kernel.remove = watched_remove  # type: ignore[method-assign]
    receiver = ports.receiver

    def watched_receiver(*args: Any) -> Any:
        r = receiver(*args)
        opened = r.open

        def open_() -> None:
            t.mark("socket")
            opened()

        r.open = open_
        return r

    ports.receiver = watched_receiver

    def health(vs: tuple[VirtualServerConfig, ...], on_change: Any) -> FakeHealth:
        t.mark("health-built")
        return FakeHealth(vs, on_change)

    ports.health = health
    apply = d.ipvs.apply

    async def slow_apply(desired: IpvsTable, role: Any, changed: Any = None) -> list[str]:
        await asyncio.sleep(SLOW)
        done = await apply(desired, role, changed)
        t.mark("ipvs-pass")
        return done

    d.ipvs.apply = slow_apply  # type: ignore[method-assign]
    return d, t


def test_the_vrrp_socket_and_timer_start_before_anything_slow(tmp_path: Path) -> None:
    async def scenario() -> None:
        d, t = slow_director(tmp_path, instance_toml(150) + SERVICE)
        d.kernel.vips.add(VIP)  # left by a kill -9
        t.mark("run")
        d.start()
        await until(lambda: d.daemon.driver.instances and d.state() == "MASTER", 10, 0.001)
        t.mark("master")
        run = t.at["run"]
        # nothing slow came before the socket: not the VIP listing, not health, not IPVS
        assert t.at["socket"] - run < 0.001
        assert t.at["socket"] <= t.at["vip-listing"] <= t.at["health-built"]
        # RFC 3768 6.4.1: Master_Down_Timer from the Startup event, at the socket
        mdi = master_down_interval(1, 150)
        assert abs(t.at["master"] - t.at["socket"] - mdi) < 0.002
        # the stale VIP went while the instance ran as BACKUP, long before it could be master
        assert t.state_at_removal == [(True, "BACKUP")]
        assert t.at["stale-removed"] - t.at["socket"] < 2 * SLOW < mdi
        # READY=1 still waits for the first IPVS pass
        ready_at = next(at for at, line in d.notifier.lines if line == "READY=1")
        assert ready_at >= t.at["ipvs-pass"] > t.at["socket"]
        await until(lambda: VIP in d.kernel.vips, 1)
        await d.stop()

    vclock.run(scenario())


def test_a_backup_holding_a_stale_vip_drops_it_at_once_without_becoming_master(
    tmp_path: Path,
) -> None:
    """Priority 100 beside a live priority-150 master: the stale VIP goes, never comes back."""

    async def scenario() -> None:
        lan = FakeLan()
        master = director(lan, daemon_toml("m", instance_toml(150), str(tmp_path / "m.sock")), A)
        master.start()
        await until(lambda: master.daemon.driver.instances and master.state() == "MASTER", 5)
        b = director(
            lan, daemon_toml("b", instance_toml(100), str(tmp_path / "b.sock")), "192.0.2.12"
        )
        b.kernel.vips.add(VIP)
        b.start()
        took = await until(lambda: VIP not in b.kernel.vips, 1, 0.001)
        assert took < 0.01
        await asyncio.sleep(2 * master_down_interval(1, 100))
        assert b.state() == "BACKUP" and VIP not in b.kernel.vips
        await b.stop()
        await master.stop()

    vclock.run(scenario())


class FakeEarly:
    """The early sockets of runtime/early.py: opened before the daemon, with a queue."""

    def __init__(
        self,
        opened_at: float,
        queued: list[bytes],
        queued6: list[tuple[str, str, int, bytes]] | None = None,
    ) -> None:
        self.opened_at, self.queued, self.queued6 = opened_at, queued, queued6
        self.taken: list[str] = []
        self.taken6: list[str] = []
        self.closed = False

    def take(self, iface: str) -> tuple[float, list[bytes]] | None:
        if iface in self.taken:
            return None
        self.taken.append(iface)
        return self.opened_at, self.queued

    def take6(self, iface: str) -> tuple[float, list[tuple[str, str, int, bytes]]] | None:
        """None unless given IPv6 datagrams: the early sockets of an IPv4-only file."""
        if self.queued6 is None or iface in self.taken6:
            return None
        self.taken6.append(iface)
        return self.opened_at, self.queued6

    def close(self) -> None:
        self.closed = True


def test_startup_counts_from_the_early_socket_and_its_queue_is_replayed(
    tmp_path: Path,
) -> None:
    """RFC 3768 6.4.1 from when the router began to listen, not when the daemon was loaded."""
    auth = pad_password(b"grr02")

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        d = director(FakeLan(), daemon_toml("a", instance_toml(150), str(tmp_path / "s")), A)
        opened = loop.time() - 0.2  # the process listened 0.2 s before the runtime ran
        d.daemon.driver.early = FakeEarly(opened, [])
        d.start()
        await until(lambda: d.daemon.driver.instances and d.state() == "MASTER", 10, 0.001)
        router = d.daemon.driver.instances["VI_1"].router
        assert router.last_transition is not None
        assert abs(router.last_transition[0] - opened - master_down_interval(1, 150)) < 0.002
        early = d.daemon.driver.early
        assert early is None  # handed over and closed
        await d.stop()

        # an advert queued on the early socket reaches the router: a 200 master is heard
        advert = Advertisement(51, 200, 1, ("192.0.2.100",), AUTH_PASS, auth).encode()
        queued = [ipv4_datagram("192.0.2.12", advert)]
        b = director(FakeLan(), daemon_toml("b", instance_toml(150), str(tmp_path / "b")), A)
        fake = FakeEarly(loop.time() - 0.2, queued)
        b.daemon.driver.early = fake
        b.start()
        await until(lambda: b.daemon.driver.instances, 1)
        router = b.daemon.driver.instances["VI_1"].router
        assert router.stats.adverts_received == 1 and fake.closed
        assert fake.taken == ["eth1"]
        await asyncio.sleep(master_down_interval(1, 150) - 0.1)
        assert b.state() == "BACKUP"  # the queued advert restarted its Master_Down_Timer
        await b.stop()

    vclock.run(scenario())
