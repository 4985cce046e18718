"""The speaker adapters against real routers: ExaBGP and BIRD directors, BIRD and FRR routers.

Two namespaces on a bridge: `r`, a router with dynamic neighbours (any
director on 192.0.2.0/24 may peer, as in docs/scale-out.md), BIRD 2 or FRR
(zebra + bgpd, `bgp listen range`), and `d`,
the director, where tests/netns/bgp_driver.py stands in for lvsha with one
adapter. The proof is the router's kernel table: the route is there after
set_routes, gone after set_routes([]), after close(), after kill -9 of
"lvsha", after SIGSTOP of it (within the liveness and a slack), and back
after the speaker child is killed and run() is called again. Every wait is
a bounded poll; everything in the namespaces is killed before they go.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bgp_rig import (
    DIRECTOR,
    DIRECTOR6,
    LIVENESS,
    ROUTERS,
    SPEAKERS,
    VIP,
    VIP6,
    Lvsha,
    Rig,
    have_daemons,
    rig_for,
)
from lab import sh, wait_for

KILL_SLACK = 3.0  # s for a helper to start, withdraw and stop its speaker on a loaded host

pytestmark = pytest.mark.skipif(
    not have_daemons(), reason="needs Debian's bird2 and exabgp (scripts/bootstrap installs them)"
)


@pytest.fixture(params=ROUTERS)
def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    with rig_for(request.param) as the_rig:
        yield the_rig


def up(rig: Rig, lvsha: Lvsha) -> None:
    lvsha.ask(f"routes {VIP}/32")  # before run(): kept and sent once the speaker is up
    lvsha.ask("run")
    try:
        wait_for(rig.announced, 30, interval=0.05)
    except TimeoutError:
        raise AssertionError(f"no route at the router:\n{lvsha.log_text()}") from None


@pytest.mark.parametrize("speaker", SPEAKERS)
def test_route_follows_set_routes_and_close(rig: Rig, speaker: str) -> None:
    lvsha = Lvsha(rig, speaker, "a")
    up(rig, lvsha)
    wait_for(lambda: lvsha.status()["sessions"][0]["state"] == "established", 10)
    assert lvsha.status()["status"]["announced"] == [f"{VIP}/32"]
    lvsha.ask("routes")
    wait_for(rig.withdrawn, 10)
    lvsha.ask(f"routes {VIP}/32")
    wait_for(rig.announced, 10)
    lvsha.ask("close 5")  # withdraws, then stops the speaker; the router's FIB follows
    wait_for(rig.withdrawn, 5)
    status = lvsha.status()
    assert status["ended"] == "returned" and status["status"]["pid"] is None
    wait_for(lambda: len(rig.speaker_pids()) == 1, 5)  # only the driver is left


@pytest.mark.parametrize("speaker", SPEAKERS)
def test_route_dies_with_a_killed_lvsha(rig: Rig, speaker: str) -> None:
    lvsha = Lvsha(rig, speaker, "b")
    up(rig, lvsha)
    lvsha.proc.kill()  # kill -9: no close(), only the tether's socket closing
    lvsha.proc.wait(10)
    # the helper's withdraw (the rig: ~0.1 s); ExaBGP respawning a helper that
    # cannot connect, 5 times before it gives up, would take over 5 s
    wait_for(rig.withdrawn, KILL_SLACK)
    wait_for(lambda: rig.speaker_pids() == [], 10)  # and the speaker does not linger


@pytest.mark.parametrize("speaker", SPEAKERS)
def test_route_dies_with_a_hung_lvsha(rig: Rig, speaker: str) -> None:
    lvsha = Lvsha(rig, speaker, "c")
    up(rig, lvsha)
    os.kill(lvsha.proc.pid, signal.SIGSTOP)  # a hung daemon: its socket stays open
    try:
        start = time.monotonic()
        wait_for(rig.withdrawn, LIVENESS + KILL_SLACK)
        assert time.monotonic() - start >= LIVENESS * 0.5  # not before it went silent
    finally:
        os.kill(lvsha.proc.pid, signal.SIGCONT)
    # lvsha is back: its run() saw the speaker die; the supervisor's restart brings the route back
    wait_for(lambda: lvsha.status()["ended"] not in (None, "returned"), 10)
    lvsha.ask("run")
    wait_for(rig.announced, 30, interval=0.05)
    lvsha.ask("close 5")


@pytest.mark.parametrize("speaker", SPEAKERS)
def test_route_comes_back_after_the_speaker_is_killed(rig: Rig, speaker: str) -> None:
    lvsha = Lvsha(rig, speaker, "d")
    up(rig, lvsha)
    pid = lvsha.status()["status"]["speaker_pid"]  # ExaBGP, or BIRD itself
    os.kill(pid, signal.SIGKILL)
    wait_for(rig.withdrawn, 10)  # the session closed with the speaker
    wait_for(lambda: lvsha.status()["ended"] not in (None, "returned"), 10)
    assert "exited" in lvsha.status()["ended"]
    lvsha.ask("run")  # what the supervisor does: the whole set is sent again
    wait_for(rig.announced, 30, interval=0.05)
    status = lvsha.status()["status"]
    assert status["restarts"] == 1 and status["speaker_pid"] != pid
    lvsha.ask("close 5")
    wait_for(rig.withdrawn, 5)


def test_bird_goes_with_its_keeper(rig: Rig) -> None:
    lvsha = Lvsha(rig, "bird", "e")
    up(rig, lvsha)
    os.kill(lvsha.status()["status"]["pid"], signal.SIGKILL)  # the keeper, not BIRD
    wait_for(rig.withdrawn, 10)
    wait_for(lambda: lvsha.status()["ended"] not in (None, "returned"), 10)
    lvsha.ask("close 5")


@pytest.mark.parametrize("speaker", SPEAKERS)
def test_prefixes_added_and_removed_at_run_time(rig: Rig, speaker: str) -> None:
    other = "203.0.113.101"
    lvsha = Lvsha(rig, speaker, "f")
    up(rig, lvsha)
    lvsha.ask(f"routes {VIP}/32 {other}/32")  # BIRD: a new static, a new config, `configure`
    wait_for(lambda: rig.nexthops(other) == [DIRECTOR], 10)
    assert rig.announced()  # the first one stayed
    lvsha.ask(f"routes {other}/32")
    wait_for(rig.withdrawn, 10)
    assert rig.nexthops(other) == [DIRECTOR]
    assert lvsha.status()["status"]["announced"] == [f"{other}/32"]
    lvsha.ask("close 5")
    wait_for(lambda: rig.nexthops(other) == [], 5)


@pytest.mark.parametrize("speaker", SPEAKERS)
def test_ipv6_prefix_goes_to_the_ipv6_peer(rig: Rig, speaker: str) -> None:
    lvsha = Lvsha(rig, speaker, "g", v6=True)
    lvsha.ask(f"routes {VIP}/32 {VIP6}/128")
    lvsha.ask("run")
    # RFC 2545 section 3: FRR installs the link-local next hop BIRD also sends
    mine = {DIRECTOR6, wait_for(lambda: rig.link_local(rig.director), 10)}
    wait_for(lambda: rig.announced() and rig.nexthops6() and set(rig.nexthops6()) <= mine, 30)
    assert len(rig.nexthops6()) == 1
    lvsha.ask(f"routes {VIP}/32")
    wait_for(lambda: rig.nexthops6() == [], 10)
    assert rig.announced()
    lvsha.ask("close 5")
    wait_for(rig.withdrawn, 5)


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


@pytest.mark.parametrize("speaker", SPEAKERS)
def test_a_speaker_left_by_a_killed_lvsha_is_stopped_at_the_next_start(
    rig: Rig, speaker: str
) -> None:
    first = Lvsha(rig, speaker, "h")
    up(rig, first)
    child = first.status()["status"]["pid"]  # ExaBGP, or the keeper
    helper = children(child)[0] if speaker == "exabgp" else child  # the relay, or the keeper
    os.kill(helper, signal.SIGSTOP)  # the helper cannot act: the speaker outlives lvsha
    try:
        first.proc.kill()
        first.proc.wait(10)
        time.sleep(LIVENESS * 2)  # bounded: what the helper would have had to act
        assert rig.announced()  # the stale speaker still announces
        second = Lvsha(rig, speaker, "h")  # the same state directory
        second.ask(f"routes {VIP}/32")
        second.ask("run")
        wait_for(lambda: not Path(f"/proc/{child}").exists(), 10)  # stopped by the pid file
        wait_for(lambda: second.status()["sessions"][0]["state"] == "established", 30)
        wait_for(rig.announced, 10)  # the new speaker's route (FRR's FIB follows ~70 ms later)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(helper, signal.SIGCONT)
    second.ask("close 5")
    wait_for(rig.withdrawn, 5)


def test_bird_runs_bfd_and_a_silent_director_goes_before_the_hold_time() -> None:
    with rig_for("bird", bfd=True) as rig:
        lvsha = Lvsha(rig, "bird", "i", extra={"bfd": True, "bfd_interval": 0.1})
        up(rig, lvsha)
        wait_for(lambda: rig.bfd_sessions().get(DIRECTOR) == "Up", 10)
        # the director's switch port stops forwarding: no FIN, no NOTIFICATION
        sh("ip", "-n", rig.lab.switch, "link", "set", rig.director.port, "down")
        wait_for(rig.withdrawn, 1.5)  # BFD: 3 x 100 ms; the hold timer would take 2-3 s
        lvsha.proc.kill()


def test_a_relay_exabgp_respawns_reconnects_and_gets_the_state(rig: Rig) -> None:
    lvsha = Lvsha(rig, "exabgp", "j")
    up(rig, lvsha)
    exabgp = lvsha.status()["status"]["pid"]
    relay = children(exabgp)[0]
    os.kill(relay, signal.SIGKILL)  # the helper alone dies; ExaBGP keeps its RIB and respawns it
    wait_for(lambda: [p for p in children(exabgp) if p != relay], 10)
    wait_for(lambda: lvsha.status()["status"]["relay_connected"], 10)
    assert rig.announced() and lvsha.status()["status"]["pid"] == exabgp
    lvsha.ask("routes")  # the new relay carries lvsha's commands
    wait_for(rig.withdrawn, 10)
    lvsha.ask(f"routes {VIP}/32")
    wait_for(rig.announced, 10)
    lvsha.proc.kill()  # and it withdraws with lvsha like the first one
    wait_for(rig.withdrawn, KILL_SLACK)
