"""The runtime on fakes and a virtual clock: election, takeover, VIPs, stop.

No root and no sockets: tests/runtime/fakes.py stands in for the kernel,
and tests/runtime/vclock.py moves time only when the loop is idle, so the
RFC 3768 timings are exact (section 6.4).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lvsha.adapters import vip_record
from lvsha.config import VirtualAddress
from lvsha.core.packet import decode_advertisement
from lvsha.core.vrrp import master_down_interval, skew_time
from tests.runtime import vclock
from tests.runtime.fakes import FakeLan, daemon_toml, director, instance_toml, until

VIP = VirtualAddress("192.0.2.100", 32, "eth1")
A, B = "192.0.2.11", "192.0.2.12"


def adverts_from(lan: FakeLan, source: str) -> list[tuple[float, int]]:
    """(time, priority) of every advert `source` put on the LAN."""
    return [(t, decode_advertisement(p).priority) for t, s, p in lan.sent if s == source]


def test_pair_elects_the_higher_priority_and_hands_over_on_stop(tmp_path: Path) -> None:
    async def scenario() -> None:
        lan = FakeLan()
        a = director(lan, daemon_toml("a", instance_toml(150), str(tmp_path / "a.sock")), A)
        b = director(lan, daemon_toml("b", instance_toml(100), str(tmp_path / "b.sock")), B)
        a.start()  # the fakes never sleep: the Startup event happens now
        took = await until(lambda: a.daemon.driver.instances and a.state() == "MASTER", 5, 0.001)
        assert abs(took - master_down_interval(1, 150)) < 0.002
        b.start()
        await until(lambda: b.daemon.driver.instances and b.state() == "BACKUP", 5)
        await until(lambda: VIP in a.kernel.vips, 1)
        assert VIP not in b.kernel.vips
        assert await a.stop() == 0
        assert a.hooks.drained_within == pytest.approx(1.2)  # the STOP hooks' budget after SIGTERM
        priority_zero_at, priority = adverts_from(lan, A)[-1]
        assert priority == 0  # section 6.4.3: a stopping master sends priority 0
        assert VIP not in a.kernel.vips
        await until(lambda: b.state() == "MASTER", 5, step=0.001)
        router = b.daemon.driver.instances["VI_1"].router
        assert router.last_transition is not None
        assert abs(router.last_transition[0] - priority_zero_at - skew_time(100)) < 0.002
        await until(lambda: VIP in b.kernel.vips, 1)
        await b.stop()

    vclock.run(scenario())


def test_a_silent_master_is_replaced_after_master_down_interval(tmp_path: Path) -> None:
    async def scenario() -> None:
        lan = FakeLan()
        a = director(lan, daemon_toml("a", instance_toml(150), str(tmp_path / "a.sock")), A)
        b = director(lan, daemon_toml("b", instance_toml(100), str(tmp_path / "b.sock")), B)
        a.start()
        await until(lambda: a.daemon.driver.instances and a.state() == "MASTER", 5)
        b.start()
        await until(lambda: b.daemon.driver.instances and b.state() == "BACKUP", 5)
        router = b.daemon.driver.instances["VI_1"].router
        await until(lambda: router.stats.adverts_received >= 1, 2)
        a.kernel.fail_socket = OSError("gone")
        for inst in a.daemon.driver.instances.values():
            assert inst.sender is not None
            inst.sender.close()  # a crash, on the wire: no more adverts
        last = adverts_from(lan, A)[-1][0]
        await until(lambda: b.state() == "MASTER", 5, step=0.001)
        assert router.last_transition is not None
        took_over = router.last_transition[0] - last
        assert abs(took_over - master_down_interval(1, 100)) < 0.003
        await b.stop()

    vclock.run(scenario())


def test_a_vip_deleted_by_hand_is_put_back_and_the_record_follows(tmp_path: Path) -> None:
    sock = tmp_path / "a.sock"
    record = vip_record.record_path(str(sock))

    async def scenario() -> None:
        a = director(FakeLan(), daemon_toml("a", instance_toml(150), str(sock)), A)
        a.start()
        await until(lambda: VIP in a.kernel.vips, 5)
        assert vip_record.read(record) == {VIP}
        await until(lambda: a.kernel.watching.is_set(), 1)
        a.kernel.delete_vip(VIP)
        await until(lambda: VIP in a.kernel.vips, 0.5)
        await a.stop()
        assert vip_record.read(record) == set()
        assert json.loads(record.read_text())["vips"] == []

    vclock.run(scenario())


def test_stale_vips_of_a_crash_are_removed_before_the_election(tmp_path: Path) -> None:
    async def scenario() -> None:
        a = director(FakeLan(), daemon_toml("a", instance_toml(150), str(tmp_path / "s")), A)
        a.kernel.vips.add(VIP)  # left by a kill -9
        a.start()
        await until(lambda: a.daemon.driver.instances, 1)
        assert a.state() == "BACKUP"
        assert VIP not in a.kernel.vips
        await a.stop()

    vclock.run(scenario())


def test_a_stopping_master_sends_no_gratuitous_arp_after_its_priority_zero(
    tmp_path: Path,
) -> None:
    extra = "garp_master_delay = 0\ngarp_master_repeat = 20\ngarp_interval = 0.5"

    async def scenario() -> None:
        lan = FakeLan()
        toml = daemon_toml("a", instance_toml(150, extra=extra), str(tmp_path / "a.sock"))
        a = director(lan, toml, A)
        a.start()
        await until(lambda: a.daemon.driver.instances and a.state() == "MASTER", 5)
        await until(lambda: a.announcers["eth1"].sent >= 2, 2)
        await a.stop()
        priority_zero_at = adverts_from(lan, A)[-1][0]
        frames = a.announcers["eth1"].frames
        assert frames and all(t <= priority_zero_at for t, _ in frames)

    vclock.run(scenario())


def test_a_link_down_is_fault_and_the_vip_goes(tmp_path: Path) -> None:
    async def scenario() -> None:
        a = director(FakeLan(), daemon_toml("a", instance_toml(150), str(tmp_path / "a")), A)
        a.start()
        await until(lambda: VIP in a.kernel.vips, 5)
        await until(lambda: a.kernel.watching.is_set(), 1)
        a.kernel.set_link("eth1", False)
        assert a.state() == "FAULT"
        await until(lambda: VIP not in a.kernel.vips, 0.5)
        a.kernel.set_link("eth1", True)
        await until(lambda: a.state() == "MASTER", 5)
        await a.stop()

    vclock.run(scenario())
