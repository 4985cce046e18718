"""Reload as a transaction, on fakes (issue 10, defects 2, 3 and 6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lvsha.runtime import daemon as daemon_module
from tests.runtime import vclock
from tests.runtime.fakes import (
    KERNEL_ERROR,
    Director,
    FakeLan,
    daemon_toml,
    director,
    instance_toml,
    until,
)

A = "192.0.2.11"
VI_2 = instance_toml(150, name="VI_2", vrid=52, vip="192.0.2.101")


def started(tmp_path: Path, body: str) -> tuple[Director, Path]:
    path = tmp_path / "lvsha.toml"
    toml = daemon_toml("a", body, str(tmp_path / "a.sock"))
    path.write_text(toml)
    return director(FakeLan(), toml, A, config_path=str(path)), path


def ready_follows_reloading(d: Director) -> bool:
    lines = [line for _, line in d.notifier.lines if line in ("RELOADING=1", "READY=1")]
    return lines[-1] == "READY=1" and "RELOADING=1" in lines


def test_an_instance_whose_setup_fails_on_reload_is_fault_then_retried(tmp_path: Path) -> None:
    """Defect 2: a reload that failed half-way left an instance dead for good."""

    async def scenario() -> None:
        d, path = started(tmp_path, instance_toml(150))
        d.start()
        await until(lambda: d.daemon.driver.instances and d.state() == "MASTER", 5)
        path.write_text(daemon_toml("a", instance_toml(150) + VI_2, str(tmp_path / "a.sock")))
        d.kernel.fail_primary = KERNEL_ERROR
        reply = await d.daemon._control({"command": "reload"})
        assert reply["reloaded"] is True
        assert reply["errors"] == ["vrrp.VI_2: no socket on eth1 (retrying)"]
        assert d.state("VI_2") == "FAULT"
        assert d.state("VI_1") == "MASTER"  # unchanged: kept its state
        assert ready_follows_reloading(d)
        d.kernel.fail_primary = None  # the kernel answers again: no second reload needed
        await until(lambda: d.state("VI_2") == "MASTER", 6)
        first = d.daemon.driver.instances["VI_1"]
        reply = await d.daemon._control({"command": "reload"})  # the same file again
        assert reply == {"reloaded": True, "errors": []}
        assert d.daemon.driver.instances["VI_1"] is first
        await d.stop()

    vclock.run(scenario())


def test_a_reload_that_raises_keeps_the_running_config_and_says_ready(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defect 3: any exception but ConfigError left systemd in RELOADING."""

    def broken(path: str) -> None:
        raise RuntimeError("injected")

    async def scenario() -> None:
        d, _ = started(tmp_path, instance_toml(150))
        d.start()
        await until(lambda: d.daemon.driver.instances and d.state() == "MASTER", 5)
        before = d.daemon.driver.instances["VI_1"]
        monkeypatch.setattr(daemon_module, "load_config", broken)
        reply = await d.daemon._control({"command": "reload"})
        assert reply == {"reloaded": False, "errors": ["reload failed: RuntimeError('injected')"]}
        assert ready_follows_reloading(d)
        assert d.daemon.driver.instances["VI_1"] is before
        assert d.daemon.status()["daemon"]["reload_error"] == reply["errors"]
        await d.stop()

    vclock.run(scenario())


def test_a_bad_file_is_refused_with_its_problems(tmp_path: Path) -> None:
    async def scenario() -> None:
        d, path = started(tmp_path, instance_toml(150))
        d.start()
        await until(lambda: d.daemon.driver.instances and d.state() == "MASTER", 5)
        path.write_text(daemon_toml("a", instance_toml(300), str(tmp_path / "a.sock")))
        reply = await d.daemon._control({"command": "reload"})
        assert reply["reloaded"] is False
        assert any("vrrp.VI_1.priority" in e for e in reply["errors"])
        assert ready_follows_reloading(d)
        assert d.state() == "MASTER"
        await d.stop()

    vclock.run(scenario())


def test_a_reload_during_shutdown_starts_nothing(tmp_path: Path) -> None:
    """Defect 6: SIGHUP while stopping restarted the instances."""

    async def scenario() -> None:
        d, path = started(tmp_path, instance_toml(150))
        d.start()
        await until(lambda: d.daemon.driver.instances and d.state() == "MASTER", 5)
        path.write_text(daemon_toml("a", instance_toml(140) + VI_2, str(tmp_path / "a.sock")))
        d.daemon.stop()
        d.daemon._sighup()  # arrives while the stop sequence runs
        assert d.task is not None
        assert await d.task == 0
        assert d.daemon.driver.instances == {}
        assert d.kernel.vips == set()
        reply = await d.daemon._control({"command": "reload"})
        assert reply == {"reloaded": False, "errors": ["the daemon is stopping"]}

    vclock.run(scenario())
