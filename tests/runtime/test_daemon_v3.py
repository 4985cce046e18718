"""The runtime with VRRPv3 instances, on fakes and the virtual clock (RFC 5798).

IPv4 v3 adverts travel on the FakeLan as IPv4 datagrams; their checksum
covers each destination, which the driver encodes per destination. IPv6
instances use the optional IPv6 ports: a receiver handed (IPv6Header,
payload) as the AF_INET6 socket does, a sender, and the link-local source.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lvsha.config import VirtualAddress
from lvsha.core.packet_v3 import (
    VRRP_MULTICAST_GROUP_V6,
    AdvertisementV3,
    IPv6Header,
    decode_advertisement_v3,
)
from lvsha.core.vrrp_v3 import master_down_interval_v3, skew_time_v3
from lvsha.runtime.ports import Receiver, Sender
from tests.core.test_simulation import ipv4_datagram
from tests.runtime import vclock
from tests.runtime.fakes import Director, FakeLan, daemon_toml, director, until
from tests.runtime.test_start_order import FakeEarly

A, B = "192.0.2.11", "192.0.2.12"
LL_A, LL_B = "fe80::11", "fe80::12"
VIP6 = VirtualAddress("2001:db8::100", 64, "eth1")


def v3_toml(priority: int, vip: str = "192.0.2.100/32", advert_int: float = 0.05) -> str:
    return (
        f'[vrrp.VI_1]\ninterface = "eth1"\nversion = 3\nvirtual_router_id = 51\n'
        f'priority = {priority}\nadvert_int = {advert_int}\nvirtual_ipaddress = ["{vip}"]\n'
    )


def test_ipv4_v3_pair_at_50_ms(tmp_path: Path) -> None:
    async def scenario() -> None:
        lan = FakeLan()
        a = director(lan, daemon_toml("a", v3_toml(150), str(tmp_path / "a.sock")), A)
        b = director(lan, daemon_toml("b", v3_toml(100, advert_int=1.0), str(tmp_path / "b")), B)
        a.start()
        took = await until(lambda: a.daemon.driver.instances and a.state() == "MASTER", 5, 0.001)
        assert abs(took - master_down_interval_v3(150, 0.05)) < 0.002
        b.start()
        await until(lambda: b.daemon.driver.instances and b.state() == "BACKUP", 5)
        router = b.daemon.driver.instances["VI_1"].router
        await until(lambda: router.stats.adverts_received >= 5, 2)
        assert router.stats.discarded == {}  # the checksum over 224.0.0.18 verifies
        assert router.master_adver_int == 0.05  # learned: b is configured at 1 s
        for inst in a.daemon.driver.instances.values():
            assert inst.sender is not None
            inst.sender.close()  # a crash, on the wire
        last = max(t for t, s, _ in lan.sent if s == A)
        await until(lambda: b.state() == "MASTER", 2, step=0.001)
        assert router.last_transition is not None
        assert abs(router.last_transition[0] - last - master_down_interval_v3(100, 0.05)) < 0.003
        await b.stop()

    vclock.run(scenario())


class Lan6:
    """ff02::12 on one link: every IPv6 receiver but the sender's gets each advert."""

    def __init__(self) -> None:
        self.receivers: list[tuple[str, Callable[[IPv6Header, bytes, float], None]]] = []
        self.expected: dict[str, list[tuple[int, int]]] = {}  # link-local -> (VRID, family)
        self.overflow: dict[str, Callable[[int], None]] = {}
        self.sent: list[tuple[float, str, bytes]] = []

    def wire(self, d: Director, link_local: str) -> None:
        lan = self

        class Rx:
            def __init__(self, on: Callable[[IPv6Header, bytes, float], None]) -> None:
                self.on = on

            def open(self) -> None:
                lan.receivers.append((link_local, self.on))

            def expect(self, routers: Any) -> None:
                lan.expected[link_local] = [(r.vrid, r.family) for r in routers]

            def close(self) -> None:
                pass

        class Tx:
            send_errors = 0

            def __init__(self, source: str) -> None:
                self.source = source
                self.up = True

            def open(self) -> None:
                pass

            def send(self, payload: bytes, destinations: tuple[str, ...]) -> bool:
                loop = asyncio.get_running_loop()
                if not self.up:
                    return False
                lan.sent.append((loop.time(), self.source, payload))
                for owner, on in lan.receivers:
                    if owner != self.source:
                        for dest in destinations:
                            loop.call_soon(on, IPv6Header(self.source, dest, 255), payload, 0.0)
                return True

            def close(self) -> None:
                self.up = False

        def receiver6(iface: str, multicast: bool, on: Any, overflow: Any) -> Receiver:
            lan.overflow[link_local] = overflow
            return Rx(on)

        def sender6(iface: str, source: str) -> Sender:
            return Tx(source)

        d.daemon.ports.receiver6 = receiver6
        d.daemon.ports.sender6 = sender6

        async def link_local_of(iface: str) -> str:
            return link_local

        d.daemon.ports.link_local = link_local_of


def test_ipv6_pair_link_local_sources_and_the_vip(tmp_path: Path) -> None:
    async def scenario() -> None:
        lan, lan6 = FakeLan(), Lan6()
        vip = "2001:db8::100/64"
        a = director(lan, daemon_toml("a", v3_toml(150, vip), str(tmp_path / "a")), A)
        b = director(lan, daemon_toml("b", v3_toml(100, vip), str(tmp_path / "b")), B)
        lan6.wire(a, LL_A)
        lan6.wire(b, LL_B)
        a.start()
        await until(lambda: a.daemon.driver.instances and a.state() == "MASTER", 5, 0.001)
        await until(lambda: VIP6 in a.kernel.vips, 1)
        assert a.announcers["eth1"].frames[0][1] == "2001:db8::100"  # NA through the announcer
        b.start()
        await until(lambda: b.daemon.driver.instances and b.state() == "BACKUP", 5)
        router = b.daemon.driver.instances["VI_1"].router
        await until(lambda: router.stats.adverts_received >= 5, 2)
        assert router.primary_address == LL_B
        assert router.master_seen is not None and router.master_seen.address == LL_A
        assert router.stats.discarded == {}
        _, source, payload = lan6.sent[-1]
        advert = decode_advertisement_v3(payload, source, VRRP_MULTICAST_GROUP_V6, 6)
        assert (source, advert.addresses, advert.max_adver_int) == (LL_A, ("2001:db8::100",), 5)
        assert await a.stop() == 0
        zero_at = lan6.sent[-1][0]
        await until(lambda: b.state() == "MASTER", 2, step=0.001)
        assert router.last_transition is not None
        assert abs(router.last_transition[0] - zero_at - skew_time_v3(100, 0.05)) < 0.003
        await until(lambda: VIP6 in b.kernel.vips, 1)
        assert VIP6 not in a.kernel.vips
        await b.stop()

    vclock.run(scenario())


def test_ipv4_and_ipv6_routers_share_a_vrid_on_one_link(tmp_path: Path) -> None:
    """RFC 5798 section 5.2.3: each family's adverts reach only its own router."""

    def both(priority: int) -> str:
        return v3_toml(priority).replace("VI_1", "V4") + v3_toml(
            priority, "2001:db8::100/64"
        ).replace("VI_1", "V6")

    async def scenario() -> None:
        lan, lan6 = FakeLan(), Lan6()
        a = director(lan, daemon_toml("a", both(150), str(tmp_path / "a")), A)
        b = director(lan, daemon_toml("b", both(100), str(tmp_path / "b")), B)
        lan6.wire(a, LL_A)
        lan6.wire(b, LL_B)
        a.start()
        await until(lambda: len(a.daemon.driver.instances) == 2, 5)
        await until(lambda: a.state("V4") == a.state("V6") == "MASTER", 5, 0.001)
        b.start()
        await until(lambda: len(b.daemon.driver.instances) == 2, 5)
        routers = {n: i.router for n, i in b.daemon.driver.instances.items()}
        await until(lambda: all(r.stats.adverts_received >= 5 for r in routers.values()), 2)
        assert b.state("V4") == b.state("V6") == "BACKUP"
        assert all(r.stats.discarded == {} for r in routers.values())
        assert all(not d.discarded for d in b.daemon.driver.interfaces.values())
        assert routers["V4"].master_seen is not None and routers["V4"].master_seen.address == A
        assert routers["V6"].master_seen is not None and routers["V6"].master_seen.address == LL_A
        await a.stop()
        await b.stop()

    vclock.run(scenario())


def test_the_ipv6_receiver_sorts_by_the_routers_of_its_link_and_counts_overflow(
    tmp_path: Path,
) -> None:
    """The IPv6 receiver's two queues (adapters/vrrp_socket6.py) learn the routers, as IPv4's."""

    def both(priority: int) -> str:
        return v3_toml(priority).replace("VI_1", "V4") + v3_toml(
            priority, "2001:db8::100/64"
        ).replace("VI_1", "V6")

    async def scenario() -> None:
        lan, lan6 = FakeLan(), Lan6()
        a = director(lan, daemon_toml("a", both(150), str(tmp_path / "a")), A)
        lan6.wire(a, LL_A)
        a.start()
        await until(lambda: len(a.daemon.driver.instances) == 2, 5)
        assert sorted(lan6.expected[LL_A]) == [(51, 4), (51, 6)]  # the socket keeps family 6
        lan6.overflow[LL_A](7)  # the kernel dropped 7 from a full queue
        assert a.daemon.driver.interfaces["eth1"].discarded["overflow"] == 7
        await a.stop()
        assert lan6.expected[LL_A] == []  # the stopped routers are gone from the filter

    vclock.run(scenario())


def test_a_priority_zero_read_late_counts_skew_time_from_its_arrival(tmp_path: Path) -> None:
    """RFC 5798 6.4.2: Master_Down_Timer = Skew_Time from the advert's arrival, not its reading.

    The receiver hands each datagram over with its age (the kernel's receive
    timestamp, adapters/vrrp_socket.py): a priority-0 advert that waited 20 ms
    for a busy loop still ends in a takeover Skew_Time after it arrived.
    """

    async def scenario() -> None:
        lan = FakeLan()
        a = director(lan, daemon_toml("a", v3_toml(150, advert_int=0.1), str(tmp_path / "a")), A)
        b = director(lan, daemon_toml("b", v3_toml(100, advert_int=0.1), str(tmp_path / "b")), B)
        a.start()
        await until(lambda: a.daemon.driver.instances and a.state() == "MASTER", 5, 0.001)
        b.start()
        await until(lambda: b.daemon.driver.instances and b.state() == "BACKUP", 5)
        for inst in a.daemon.driver.instances.values():
            assert inst.sender is not None
            inst.sender.close()  # a goes quiet on the wire
        zero = AdvertisementV3(51, 0, 10, ("192.0.2.100",)).encode_for(A, "224.0.0.18")
        loop = asyncio.get_running_loop()
        read_at = loop.time()
        b.daemon.driver.datagram("eth1", ipv4_datagram(A, zero), 0.02)  # arrived 20 ms ago
        await until(lambda: b.state() == "MASTER", 2, step=0.001)
        router = b.daemon.driver.instances["VI_1"].router
        assert router.last_transition is not None
        took = router.last_transition[0] - (read_at - 0.02)
        assert abs(took - skew_time_v3(100, 0.1)) < 0.002, took
        await b.stop()

    vclock.run(scenario())


def test_an_ipv6_router_counts_its_startup_from_its_own_socket_not_the_early_ipv4_one(
    tmp_path: Path,
) -> None:
    """Without an early IPv6 socket (none opened, or none taken) an IPv6 router on a
    link with an IPv4 one starts when its own receiver opens: what the IPv4 socket
    queued is no IPv6 advert. Counted from it, the router would become master up to
    the daemon's load time early, before it had listened for a master.
    """
    both = v3_toml(150).replace("VI_1", "V4") + v3_toml(150, "2001:db8::100/64").replace(
        "VI_1", "V6"
    )

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        a = director(FakeLan(), daemon_toml("a", both, str(tmp_path / "a")), A)
        Lan6().wire(a, LL_A)
        opened = loop.time() - 0.1  # the IPv4 early socket, 0.1 s before the runtime
        a.daemon.driver.early = FakeEarly(opened, [])
        a.start()
        await until(lambda: len(a.daemon.driver.instances) == 2, 5)
        await until(lambda: a.state("V4") == a.state("V6") == "MASTER", 5, 0.001)
        routers = {n: i.router for n, i in a.daemon.driver.instances.items()}
        v4, v6 = (routers[n].last_transition for n in ("V4", "V6"))
        assert v4 is not None and v6 is not None
        down = master_down_interval_v3(150, 0.05)
        assert abs(v4[0] - opened - down) < 0.003  # from the early IPv4 socket
        assert v6[0] - opened > down + 0.05  # from its own receiver, which opened later
        await a.stop()

    vclock.run(scenario())


def test_an_ipv6_router_starts_at_its_early_socket_and_hears_what_it_queued(
    tmp_path: Path,
) -> None:
    """The early IPv6 socket (RFC 5798 6.4.1 at process start): its opening time, and
    the queued adverts with the hop limit and destination the kernel gave."""

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        lonely = director(
            FakeLan(), daemon_toml("a", v3_toml(150, "2001:db8::100/64"), str(tmp_path / "a")), A
        )
        Lan6().wire(lonely, LL_A)
        opened = loop.time() - 0.1
        lonely.daemon.driver.early = FakeEarly(opened, [], [])
        lonely.start()
        await until(lambda: lonely.daemon.driver.instances and lonely.state() == "MASTER", 5)
        router = lonely.daemon.driver.instances["VI_1"].router
        assert router.last_transition is not None
        down = master_down_interval_v3(150, 0.05)
        assert abs(router.last_transition[0] - opened - down) < 0.003
        await lonely.stop()

        # a priority-200 master's advert queued before the daemon ran keeps it BACKUP
        advert = AdvertisementV3(51, 200, 5, ("2001:db8::100",)).encode_for(
            LL_B, VRRP_MULTICAST_GROUP_V6
        )
        queued = [(LL_B, VRRP_MULTICAST_GROUP_V6, 255, advert)]
        b = director(
            FakeLan(), daemon_toml("b", v3_toml(150, "2001:db8::100/64"), str(tmp_path / "b")), A
        )
        Lan6().wire(b, LL_A)
        fake = FakeEarly(loop.time() - 0.1, [], queued)
        b.daemon.driver.early = fake
        b.start()
        await until(lambda: b.daemon.driver.instances, 1)
        router = b.daemon.driver.instances["VI_1"].router
        assert fake.taken6 == ["eth1"] and fake.closed
        assert router.stats.adverts_received == 1 and router.stats.discarded == {}
        await asyncio.sleep(down - 0.05)
        assert b.state() == "BACKUP"  # the queued advert restarted its Master_Down_Timer
        await b.stop()

    vclock.run(scenario())
