"""The daemon's BGP wiring on fakes (issue 14): lo VIP, decision inputs, drain, stop order.

The decision itself is tested in tests/core/test_announce.py; the speakers
against real ExaBGP and BIRD in tests/netns/test_bgp_speakers.py; the whole
thing with routers and ECMP in tests/kernel/test_bgp_scale_out.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from lvsha.adapters.metrics import render
from lvsha.core.desired import DestKey, ServiceKey
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

A = "192.0.2.11"
VIP = "203.0.113.100"
PREFIX = f"{VIP}/32"
SERVICE = ServiceKey("tcp", VIP, 80)


def bgp_toml(tmp_path: Path, extra: str = "", vrrp: bool = False) -> str:
    body = instance_toml(150) if vrrp else ""
    body += f"""
[bgp]
local_as = 64513
router_id = "{A}"
hold_time = 3
drain_file = "{tmp_path / "drain"}"
state_dir = "{tmp_path / "bgp"}"
{extra}
[[bgp.peer]]
address = "192.0.2.1"
peer_as = 64512

[[virtual_server]]
address = "{VIP}"
port = 80
protocol = "tcp"
scheduler = "mh"
forwarding = "dr"
announce = "bgp"
[[virtual_server.real_server]]
address = "192.0.2.21"
port = 80
[[virtual_server.real_server]]
address = "192.0.2.22"
port = 80
"""
    return daemon_toml("a", body, str(tmp_path / "a.sock"))


def announced(d: Director) -> list[str]:
    return [r.prefix for r in d.speaker.routes] if d.speakers else []


def fake_proc_sys(tmp_path: Path) -> Path:
    vs = tmp_path / "proc" / "net" / "ipv4" / "vs"
    vs.mkdir(parents=True, exist_ok=True)
    for name in ("sloppy_tcp", "sloppy_sctp"):
        (vs / name).write_text("0\n")
    return tmp_path / "proc"


def started(tmp_path: Path, vrrp: bool = False) -> Director:
    d = director(FakeLan(), bgp_toml(tmp_path, vrrp=vrrp), A, proc_sys=fake_proc_sys(tmp_path))
    d.start()
    return d


def test_a_bgp_only_director_holds_the_vip_on_lo_before_it_announces(tmp_path: Path) -> None:
    async def scenario() -> None:
        d = started(tmp_path)
        await until(lambda: announced(d) == [PREFIX], 1)
        assert d.events.index(f"added {VIP} on lo") < d.events.index(f"routes {PREFIX}")
        assert not d.daemon.driver.instances  # no [vrrp] at all
        assert d.ipvs.table is not None and SERVICE in d.ipvs.table
        await d.stop()
        assert d.events[-2:] == ["speaker closed", f"removed {VIP} from lo"]

    vclock.run(scenario())


def test_nothing_is_announced_while_the_ipvs_table_is_not_programmed(tmp_path: Path) -> None:
    async def scenario() -> None:
        d = director(FakeLan(), bgp_toml(tmp_path), A)
        d.ipvs.fail = [OSError(2, "ip_vs is not loaded")]
        d.start()
        await until(lambda: d.daemon.bgp is not None, 1)
        await asyncio.sleep(2.0)  # the IPVS retry comes RETRY = 5 s after the failure
        assert announced(d) == []
        prefix = d.daemon.status()["bgp"]["prefixes"][0]
        assert prefix["announced"] is False and "IPVS" in prefix["reason"]
        await until(lambda: announced(d) == [PREFIX], 5)  # the retry programs it
        await d.stop()

    vclock.run(scenario())


def test_nothing_is_announced_before_every_real_server_has_a_first_result(
    tmp_path: Path,
) -> None:
    """The seeded health (initial_state) is a guess: the route waits for measurements."""

    async def scenario() -> None:
        d = director(FakeLan(), bgp_toml(tmp_path), A)

        def pending(*args: Any) -> FakeHealth:
            health = FakeHealth(*args)
            health.first_results = False
            return health

        d.daemon.ports.health = pending
        d.start()
        await asyncio.sleep(1.0)
        assert announced(d) == []
        assert d.daemon.status()["bgp"]["prefixes"][0]["reason"].startswith("waiting")
        d.daemon.health.first_results = True  # type: ignore[attr-defined]
        await until(lambda: announced(d) == [PREFIX], 0.21)
        await d.stop()

    vclock.run(scenario())


def test_one_real_server_down_keeps_the_route_the_last_one_withdraws_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        d = started(tmp_path)
        await until(lambda: announced(d) == [PREFIX], 1)
        health = d.daemon.health
        health.down.add((SERVICE, DestKey("192.0.2.21", 80)))  # type: ignore[attr-defined]
        health.on_change()  # type: ignore[attr-defined]
        await asyncio.sleep(1.0)
        assert announced(d) == [PREFIX]
        health.down.add((SERVICE, DestKey("192.0.2.22", 80)))  # type: ignore[attr-defined]
        health.on_change()  # type: ignore[attr-defined]
        took = await until(lambda: announced(d) == [], 1, step=0.001)
        assert took < 0.01  # on the change itself, not on the next poll
        health.down.clear()  # type: ignore[attr-defined]
        health.on_change()  # type: ignore[attr-defined]
        await until(lambda: announced(d) == [PREFIX], 5)
        await d.stop()

    vclock.run(scenario())


def test_drain_and_undrain_over_the_control_socket_and_the_file_stays(tmp_path: Path) -> None:
    async def scenario() -> None:
        d = started(tmp_path)
        await until(lambda: announced(d) == [PREFIX], 1)
        answer = await d.daemon._control({"command": "drain", "reason": "kernel upgrade"})
        assert answer["drained"] is True and announced(d) == []  # at once
        assert (tmp_path / "drain").read_text().startswith("kernel upgrade\n")
        assert answer["bgp"]["prefixes"][0]["reason"] == "drained"
        assert d.daemon.status()["bgp"]["drained"] is True
        await d.stop()

        again = started(tmp_path)  # a restart stays drained
        await until(lambda: again.daemon.bgp is not None, 1)
        await asyncio.sleep(1.0)
        assert announced(again) == []
        answer = await again.daemon._control({"command": "undrain"})
        assert answer["drained"] is False and announced(again) == [PREFIX]
        assert not (tmp_path / "drain").exists()
        await again.stop()

    vclock.run(scenario())


def test_a_drain_file_from_automation_withdraws_within_the_poll(tmp_path: Path) -> None:
    async def scenario() -> None:
        d = started(tmp_path)
        await until(lambda: announced(d) == [PREFIX], 1)
        (tmp_path / "drain").write_text("")
        took = await until(lambda: announced(d) == [], 1, step=0.001)
        assert took <= 0.21
        (tmp_path / "drain").unlink()
        await until(lambda: announced(d) == [PREFIX], 1)
        await d.stop()

    vclock.run(scenario())


def test_sigterm_withdraws_before_vrrp_and_the_vips_stop(tmp_path: Path) -> None:
    """VRRP and BGP on one director: the route goes first, then everything else."""

    async def scenario() -> None:
        d = started(tmp_path, vrrp=True)
        await until(lambda: announced(d) == [PREFIX] and d.state() == "MASTER", 5)
        await d.stop()
        assert "speaker run cancelled" not in d.events  # closed (withdrawn), not killed
        assert d.speaker.runs == 1  # and not started again
        closed = d.events.index("speaker closed")
        assert closed < d.events.index("removed 192.0.2.100 from eth1")
        assert closed < d.events.index(f"removed {VIP} from lo")

    vclock.run(scenario())


def test_a_speaker_that_dies_is_started_again(tmp_path: Path) -> None:
    async def scenario() -> None:
        d = started(tmp_path)
        await until(lambda: announced(d) == [PREFIX] and d.speaker.runs == 1, 1)
        d.speaker.died.set()
        await until(lambda: d.speaker.runs == 2, 1)
        record = d.daemon.supervisor.records["bgp-speaker"]
        assert record.restarts == 1 and "exited with status 1" in str(record.last_error)
        assert announced(d) == [PREFIX]  # the adapter re-sends what it holds
        await d.stop()

    vclock.run(scenario())


def test_status_and_metrics_show_each_session_and_prefix(tmp_path: Path) -> None:
    async def scenario() -> None:
        d = started(tmp_path)
        await until(lambda: announced(d) == [PREFIX], 1)
        bgp = d.daemon.status()["bgp"]
        assert bgp["sessions"] == [{"peer": "192.0.2.1", "peer_as": 64512, "state": "established"}]
        [prefix] = bgp["prefixes"]
        assert prefix["prefix"] == PREFIX and prefix["announced"] is True
        text = render(d.daemon.status()).decode()
        assert 'lvsha_bgp_session_established{peer="192.0.2.1"} 1.0' in text
        assert f'lvsha_bgp_announced{{prefix="{PREFIX}",reason="{prefix["reason"]}"}} 1.0' in text
        await d.stop()

    vclock.run(scenario())


def test_reload_with_new_peers_replaces_the_speaker_in_turn(tmp_path: Path) -> None:
    async def scenario() -> None:
        path = tmp_path / "lvsha.toml"
        path.write_text(bgp_toml(tmp_path))
        d = director(FakeLan(), path.read_text(), A, str(path))
        d.start()
        await until(lambda: announced(d) == [PREFIX], 1)
        first = d.speaker
        path.write_text(
            bgp_toml(tmp_path).replace('address = "192.0.2.1"', 'address = "192.0.2.2"')
        )
        await d.daemon.reload()
        await until(lambda: len(d.speakers) == 2 and announced(d) == [PREFIX], 1)
        assert first.closed and d.speaker.cfg.peers[0].address == "192.0.2.2"
        after_close = d.events[d.events.index("speaker closed") :]
        assert f"routes {PREFIX}" in after_close  # the new one announced after the old closed
        await d.daemon.reload()  # the same file again: nothing restarts
        assert len(d.speakers) == 2
        await d.stop()

    vclock.run(scenario())


def test_sloppy_tcp_is_set_for_flows_that_ecmp_moves_mid_stream(tmp_path: Path) -> None:
    async def scenario() -> None:
        d = started(tmp_path)
        await until(lambda: announced(d) == [PREFIX], 1)
        vs = tmp_path / "proc" / "net" / "ipv4" / "vs"
        assert (vs / "sloppy_tcp").read_text() == "1\n"
        assert (vs / "sloppy_sctp").read_text() == "0\n"  # no SCTP service announced
        assert d.daemon.status()["bgp"]["sysctl_error"] is None
        await d.stop()

    vclock.run(scenario())


def test_a_sysctl_that_cannot_be_set_is_shown_and_the_route_still_goes_out(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        d = director(FakeLan(), bgp_toml(tmp_path), A, proc_sys=tmp_path / "missing")
        d.start()
        await until(lambda: announced(d) == [PREFIX], 1)
        error = d.daemon.status()["bgp"]["sysctl_error"]
        assert error.startswith("cannot set net.ipv4.vs.sloppy_tcp = 1")
        await d.stop()

    vclock.run(scenario())


def test_bgp_directors_run_both_connection_sync_daemons(tmp_path: Path) -> None:
    async def scenario() -> None:
        toml = bgp_toml(tmp_path, extra='sync_daemon_interface = "eth1"\nsync_daemon_id = 7')
        d = director(FakeLan(), toml, A, proc_sys=fake_proc_sys(tmp_path))
        d.start()
        await until(lambda: announced(d) == [PREFIX], 1)
        role = d.ipvs.role
        assert (role.state, role.interface, role.syncid) == ("both", "eth1", 7)
        await d.stop()

    vclock.run(scenario())
