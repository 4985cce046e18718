"""No task dies silently (issue 10: supervision, defect 4, defect 11's counting)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lvsha.runtime.supervisor import CRITICAL_FAILURES
from tests.core.test_simulation import ipv4_datagram
from tests.runtime import vclock
from tests.runtime.fakes import Director, FakeLan, daemon_toml, director, instance_toml, until

A = "192.0.2.11"


def test_the_ipvs_loop_survives_any_exception_and_retries(tmp_path: Path) -> None:
    """Defect 4: an OSError killed the IPVS reconciler for good."""
    body = instance_toml(150) + (
        '[[virtual_server]]\naddress = "192.0.2.100"\nport = 80\n'
        '[[virtual_server.real_server]]\naddress = "192.0.2.21"\nport = 80\n'
    )

    async def scenario() -> None:
        d = director(FakeLan(), daemon_toml("a", body, str(tmp_path / "a.sock")), A)
        d.ipvs.fail = [OSError(105, "No buffer space available"), ValueError("a bug")]
        d.start()
        await until(lambda: d.daemon.driver.instances, 1)
        assert d.ipvs.table is None and d.daemon.ipvs_loop.failures == 1
        d.daemon.ipvs_loop.kick()
        await until(lambda: d.daemon.ipvs_loop.failures == 2, 1)
        await until(lambda: d.ipvs.table is not None, 6)  # the retry, RETRY s later
        assert d.ipvs.error is None
        assert d.daemon.supervisor.records["ipvs-reconciler"].restarts == 0
        await d.stop()

    vclock.run(scenario())


def test_a_dying_task_is_restarted_counted_and_then_starves_the_watchdog(
    tmp_path: Path,
) -> None:
    async def scenario() -> Director:
        d = director(
            FakeLan(), daemon_toml("a", instance_toml(150), str(tmp_path / "a.sock")), A, None, 1.0
        )

        async def broken_watch(on_event: object) -> None:
            raise OSError(105, "ENOBUFS")

        d.kernel.watch = broken_watch  # type: ignore[method-assign]
        d.start()
        await until(lambda: d.daemon.driver.instances, 1)
        record = d.daemon.supervisor.records["netlink-watch"]
        await until(lambda: record.restarts >= 2, 5)
        assert record.last_error == "OSError(105, 'ENOBUFS')"
        assert d.daemon.status()["daemon"]["tasks"]["supervised"]["netlink-watch"]["restarts"] >= 2
        assert d.daemon.supervisor.healthy
        await until(lambda: record.restarts >= CRITICAL_FAILURES, 30)
        assert not d.daemon.supervisor.healthy
        fed = len(d.notifier.said("WATCHDOG=1"))
        await asyncio.sleep(3.0)  # three watchdog intervals
        assert len(d.notifier.said("WATCHDOG=1")) == fed  # systemd will restart the unit
        assert d.state() == "MASTER"  # VRRP itself goes on meanwhile
        await d.stop()
        return d

    d = vclock.run(scenario())
    # /metrics takes the document in a forked child, where no event loop runs
    assert d.daemon.status()["daemon"]["tasks"]["healthy"] is False


def test_datagrams_no_router_takes_are_counted_once_on_the_interface(tmp_path: Path) -> None:
    """Defect 11: an unknown VRID was counted on every instance of the interface."""
    body = instance_toml(150) + instance_toml(150, name="VI_2", vrid=52, vip="192.0.2.101")

    async def scenario() -> None:
        d = director(FakeLan(), daemon_toml("a", body, str(tmp_path / "a.sock")), A)
        d.start()
        await until(lambda: len(d.daemon.driver.instances) == 2, 1)
        unknown = bytes([0x21, 99, 100, 1, 0, 1, 0, 0]) + bytes(4)
        d.daemon.driver.datagram("eth1", ipv4_datagram("192.0.2.30", unknown))
        d.daemon.driver.datagram("eth1", b"\x45")
        status = d.daemon.status()
        assert status["interfaces"] == [{"name": "eth1", "discarded": {"length": 1, "vrid": 1}}]
        for inst in status["instances"]:
            assert inst["counters"]["discarded"] == {}
        await d.stop()

    vclock.run(scenario())
