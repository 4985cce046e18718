"""Tracking in the running daemon, on fakes and a virtual clock.

Track scripts move the priority and the VIP between two directors; a
weight-0 script, a timeout, a tracked file and a sync group, end to end
through the real Daemon (runtime/tracking.py) with fake processes.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest

from lvsha.adapters.hooks import HookRun
from lvsha.config import VirtualAddress
from lvsha.core.desired import DestKey, service_key
from lvsha.core.packet import decode_advertisement
from lvsha.core.vrrp import master_down_interval
from tests.runtime import vclock
from tests.runtime.fakes import Director, FakeLan, daemon_toml, director, instance_toml, until

A, B = "192.0.2.11", "192.0.2.12"
VIP = VirtualAddress("192.0.2.100", 32, "eth1")
VIP2 = VirtualAddress("198.51.100.100", 32, "eth0")

SCRIPT = """
[vrrp_script.chk]
script = ["/usr/local/bin/chk"]
interval = 1
timeout = 0.5
weight = {weight}
rise = 2
fall = 2
"""


def pair(tmp_path: Path, a_extra: str, top: str = "") -> tuple[FakeLan, Director, Director]:
    lan = FakeLan()
    a = director(
        lan, daemon_toml("a", top + instance_toml(150, extra=a_extra), str(tmp_path / "a")), A
    )
    b = director(lan, daemon_toml("b", instance_toml(100), str(tmp_path / "b")), B)
    return lan, a, b


def priorities(lan: FakeLan, source: str, since: float) -> list[int]:
    return [decode_advertisement(p).priority for t, s, p in lan.sent if s == source and t >= since]


def test_failing_script_hands_the_vip_over_and_takes_it_back(tmp_path: Path) -> None:
    async def scenario() -> None:
        lan, a, b = pair(tmp_path, 'track_script = ["chk"]', SCRIPT.format(weight=-60))
        a.start()
        b.start()
        await until(lambda: a.daemon.driver.instances and a.state() == "MASTER", 10)
        await until(lambda: VIP in a.kernel.vips, 1)
        a.scripts.results["chk"] = 1  # nginx died
        failed_at = asyncio.get_running_loop().time()
        handover = await until(lambda: b.state() == "MASTER", 20, 0.01)
        await until(lambda: a.state() == "BACKUP", 2)
        st = a.daemon.status()["instances"][0]
        assert (st["base_priority"], st["priority"]) == (150, 90)
        (t,) = st["tracked"]
        assert (t["kind"], t["name"], t["state"], t["contribution"]) == (
            "script",
            "chk",
            "failed",
            -60,
        )
        assert 90 in priorities(lan, A, failed_at)
        # fall = 2 runs 1 s apart, then B preempts a lower master after its
        # Master_Down_Interval (RFC 3768 6.4.2: lower priority + preempt = ignore)
        assert 1.0 <= handover <= 2.0 + master_down_interval(1, 100) + 0.2
        await until(lambda: VIP in b.kernel.vips and VIP not in a.kernel.vips, 2)
        a.scripts.results["chk"] = 0  # back
        back = await until(lambda: a.state() == "MASTER", 20, 0.01)
        assert back <= 2.0 + master_down_interval(1, 150) + 0.2
        await until(lambda: b.state() == "BACKUP", 2)
        print(f"fakes: handover {handover:.3f} s, back {back:.3f} s (virtual clock)")
        await a.stop()
        await b.stop()

    vclock.run(scenario())


def test_weight_zero_script_holds_fault_until_it_passes(tmp_path: Path) -> None:
    async def scenario() -> None:
        lan, a, _ = pair(tmp_path, 'track_script = ["chk"]', SCRIPT.format(weight=0))
        a.scripts.results["chk"] = 3
        a.start()
        await until(lambda: a.daemon.driver.instances and a.state() == "FAULT", 5)
        # "unknown" until the first run ends (keepalived holds INIT), then "failed"
        assert a.daemon.status()["instances"][0]["faults"] == ["script chk unknown"]
        faults = lambda: a.daemon.status()["instances"][0]["faults"]  # noqa: E731
        await until(lambda: faults() == ["script chk failed"], 2)
        assert a.state() == "FAULT"
        a.scripts.results["chk"] = 0
        await until(lambda: a.state() == "BACKUP", 5)  # rise = 2 successes
        await until(lambda: a.state() == "MASTER", 10)
        a.scripts.results["chk"] = 1
        await until(lambda: a.state() == "FAULT", 5)
        assert priorities(lan, A, 0)[-1] == 0  # the master said priority 0 on its way out
        await a.stop()

    vclock.run(scenario())


def test_a_hung_script_is_killed_at_its_timeout_and_counts_as_a_failure(tmp_path: Path) -> None:
    async def scenario() -> None:
        _, a, _ = pair(tmp_path, 'track_script = ["chk"]', SCRIPT.format(weight=-60))
        a.scripts.hang.add("chk")
        a.start()
        await until(lambda: len(a.scripts.killed) >= 2, 10)
        (start0, *_), (kill0, _) = a.scripts.started[0], a.scripts.killed[0]
        assert abs(kill0 - start0 - 0.5) < 0.01  # timeout = 0.5 s
        await until(lambda: a.daemon.status()["instances"][0]["priority"] == 90, 5)
        (t,) = a.daemon.status()["instances"][0]["tracked"]
        assert t["timeouts"] >= 2 and t["state"] == "failed"
        await a.stop()

    vclock.run(scenario())


def test_track_file_value_times_weight(tmp_path: Path) -> None:
    async def scenario() -> None:
        extra = 'track_file = [{ path = "/run/prio", weight = -10 }]'
        _, a, _ = pair(tmp_path, extra)
        a.files["/run/prio"] = b"3\n"
        a.start()
        await until(lambda: a.daemon.driver.instances, 1)
        assert a.daemon.status()["instances"][0]["priority"] == 120
        a.files["/run/prio"] = b"30"  # -300: FAULT
        await until(lambda: a.state() == "FAULT", 3)
        a.files.pop("/run/prio")  # missing = 0
        await until(lambda: a.state() == "BACKUP", 3)
        assert a.daemon.status()["instances"][0]["priority"] == 150
        await a.stop()

    vclock.run(scenario())


GROUP = """
[vrrp_sync_group.G1]
group = ["VI_1", "VI_2"]
notify = ["/usr/local/sbin/group-notify"]
"""


def group_director(lan: FakeLan, name: str, priority: int, primary: str, tmp: Path) -> Director:
    body = (
        instance_toml(priority)
        + instance_toml(priority, "VI_2", 52, "198.51.100.100").replace(
            'interface = "eth1"', 'interface = "eth0"'
        )
        + GROUP
    )
    return director(lan, daemon_toml(name, body, str(tmp / name)), primary)


def test_sync_group_one_interface_down_moves_both_vips(tmp_path: Path) -> None:
    async def scenario() -> None:
        lan = FakeLan()
        a = group_director(lan, "a", 150, A, tmp_path)
        b = group_director(lan, "b", 100, B, tmp_path)
        a.start()
        b.start()
        await until(
            lambda: a.daemon.driver.instances and a.state("VI_1") == a.state("VI_2") == "MASTER",
            10,
        )
        await until(lambda: b.daemon.driver.instances and b.state("VI_2") == "BACKUP", 5)
        await until(lambda: {VIP, VIP2} <= a.kernel.vips, 2)
        a.kernel.set_link("eth0", False)
        took = await until(lambda: b.state("VI_1") == b.state("VI_2") == "MASTER", 10, 0.01)
        assert a.state("VI_1") == a.state("VI_2") == "FAULT"
        await until(lambda: {VIP, VIP2} <= b.kernel.vips and not a.kernel.vips & {VIP, VIP2}, 2)
        group_runs = [r for r in a.hooks.runs if isinstance(r, HookRun) and "GROUP" in r.argv]
        assert group_runs[-1].argv == ("/usr/local/sbin/group-notify", "GROUP", "G1", "FAULT", "0")
        # the members' own hooks came first, the group's after both
        kinds = [r.argv[-4] if len(r.argv) > 4 else "" for r in a.hooks.runs[-3:]]
        assert kinds[-1] == "GROUP"
        st = a.daemon.status()["instances"][0]
        assert st["sync_group"] == {"name": "G1", "state": "FAULT", "members": ["VI_1", "VI_2"]}
        print(f"fakes: both VIPs moved {took:.3f} s after eth0 went down (virtual clock)")
        a.kernel.set_link("eth0", True)
        await until(lambda: a.state("VI_1") == a.state("VI_2") == "MASTER", 10)
        await until(lambda: b.state("VI_1") == b.state("VI_2") == "BACKUP", 2)
        await a.stop()
        await b.stop()

    vclock.run(scenario())


def test_scripts_of_a_reload_restart_and_weights_follow(tmp_path: Path) -> None:
    conf = tmp_path / "a.toml"

    async def scenario() -> None:
        top = SCRIPT.format(weight=-60)
        body = daemon_toml(
            "a", top + instance_toml(150, extra='track_script = ["chk"]'), str(tmp_path / "s")
        )
        conf.write_text(body)
        a = director(FakeLan(), body, A, config_path=str(conf))
        a.scripts.results["chk"] = 1
        a.start()
        prio = lambda: a.daemon.status()["instances"][0]["priority"]  # noqa: E731
        await until(lambda: a.daemon.driver.instances and prio() == 90, 5)
        conf.write_text(body.replace("weight = -60", "weight = -20"))
        await a.daemon.reload()
        assert a.daemon.reload_error == []
        await until(lambda: prio() == 130, 5)
        await a.stop()

    vclock.run(scenario())


def test_a_transition_is_mailed_off_the_vrrp_path(tmp_path: Path) -> None:
    controller_mod = pytest.importorskip("aiosmtpd.controller")
    received: list[str] = []

    class Inbox:
        async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
            received.append(envelope.content.decode())
            return "250 OK"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = controller_mod.Controller(Inbox(), hostname="127.0.0.1", port=port)
    controller.start()
    smtp = (
        f'[daemon.smtp]\nserver = "127.0.0.1:{port}"\nfrom = "lvsha@example.net"\n'
        'to = ["ops@example.net"]\n'
    )

    async def scenario() -> None:
        body = smtp + instance_toml(150, extra="smtp_alert = true")
        a = director(FakeLan(), daemon_toml("a", body, str(tmp_path / "a")), A)
        a.start()
        await until(lambda: a.daemon.driver.instances and a.state() == "MASTER", 10)
        assert await a.stop() == 0  # the stop drains the queue (bounded)

    try:
        vclock.run(scenario())
    finally:
        controller.stop()
    subjects = [line for m in received for line in m.splitlines() if line.startswith("Subject")]
    assert subjects == [
        "Subject: [a] VRRP Instance VI_1 - Entering BACKUP state",
        "Subject: [a] VRRP Instance VI_1 - Entering MASTER state",
    ]


def test_excluded_vips_are_held_by_the_master_but_not_advertised(tmp_path: Path) -> None:
    excluded = VirtualAddress("203.0.113.7", 32, "eth1")

    async def scenario() -> None:
        lan = FakeLan()
        extra = 'virtual_ipaddress_excluded = ["203.0.113.7/32"]\ngarp_master_delay = 0'
        a = director(lan, daemon_toml("a", instance_toml(150, extra=extra), str(tmp_path / "a")), A)
        a.start()
        await until(lambda: a.daemon.driver.instances and a.state() == "MASTER", 10)
        await until(lambda: {VIP, excluded} <= a.kernel.vips, 2)
        adverts = [decode_advertisement(p) for _, s, p in lan.sent if s == A]
        assert all(ad.addresses == ("192.0.2.100",) for ad in adverts)
        await until(lambda: "203.0.113.7" in {addr for _, addr in a.announcers["eth1"].frames}, 2)
        assert a.daemon.status()["instances"][0]["vips_excluded"] == ["203.0.113.7/32"]
        await a.stop()
        assert not a.kernel.vips & {VIP, excluded}

    vclock.run(scenario())


def test_real_server_notify_up_and_down_run_on_health_changes(tmp_path: Path) -> None:
    service = """
[[virtual_server]]
address = "192.0.2.100"
port = 80
[[virtual_server.real_server]]
address = "198.51.100.10"
port = 80
tcp_check = {}
notify_up = ["/usr/local/bin/rs-up", "web1"]
notify_down = ["/usr/local/bin/rs-down", "web1"]
"""

    async def scenario() -> None:
        a = director(
            FakeLan(), daemon_toml("a", instance_toml(150) + service, str(tmp_path / "a")), A
        )
        a.start()
        await until(lambda: a.daemon.driver.instances, 5)
        health = a.daemon.health
        (vs,) = a.daemon.config.virtual_servers
        key = (service_key(vs), DestKey("198.51.100.10", 80))
        runs = lambda: [r.argv for r in a.hooks.runs if "web1" in r.argv]  # noqa: E731
        assert runs() == []  # the start sets the baseline: nothing runs
        health.down.add(key)  # type: ignore[attr-defined]
        health.on_change()  # type: ignore[attr-defined]
        assert runs() == [("/usr/local/bin/rs-down", "web1")]
        health.on_change()  # type: ignore[attr-defined]  # no change, nothing more
        health.down.clear()  # type: ignore[attr-defined]
        health.on_change()  # type: ignore[attr-defined]
        assert runs() == [("/usr/local/bin/rs-down", "web1"), ("/usr/local/bin/rs-up", "web1")]
        await a.stop()

    vclock.run(scenario())


def test_a_rebuilt_instance_gets_the_faults_of_its_tracked_objects(tmp_path: Path) -> None:
    conf = tmp_path / "a.toml"

    async def scenario() -> None:
        extra = 'track_script = ["chk"]'
        body = daemon_toml(
            "a", SCRIPT.format(weight=0) + instance_toml(150, extra=extra), str(tmp_path / "s")
        )
        conf.write_text(body)
        a = director(FakeLan(), body, A, config_path=str(conf))
        a.scripts.results["chk"] = 1
        a.start()
        faults = lambda: a.daemon.status()["instances"][0]["faults"]  # noqa: E731
        await until(lambda: a.daemon.driver.instances and faults() == ["script chk failed"], 5)
        old = a.daemon.driver.instances["VI_1"]
        conf.write_text(body.replace("priority = 150", "priority = 160"))
        await a.daemon.reload()
        new = a.daemon.driver.instances["VI_1"]
        assert new is not old and new.router.params.priority == 160
        assert (a.state(), faults()) == ("FAULT", ["script chk failed"])
        await a.stop()

    vclock.run(scenario())
