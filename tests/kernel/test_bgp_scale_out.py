"""Active/active directors over BGP + ECMP: three real `lvsha run`, BIRD and FRR routers.

Issue 14's "Must show", in the UML kernel (bgplab.py draws the topology):
the router's route has a next hop per director; flows spread over all
three; every director picks the same real server for a flow (IPVS mh with
mh-port); a real server failing on one director keeps its route and the
last one failing withdraws it; `lvsha drain` and the drain file withdraw;
kill -9, SIGTERM and SIGSTOP of lvsha withdraw; long-lived connections keep
their real server through each event (mh + sloppy_tcp on identical
real-server sets). One topology per router kind, shared by the module's
tests: each test leaves every director announcing again (`restore`).
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from bgplab import DIRECTORS, REAL_SERVERS, VIP, BgpLab, bgp_lab, wait_until

from lvsha.config.model import BgpConfig

ALL = frozenset(DIRECTORS.values())
D1, D2, D3 = (DIRECTORS[n] for n in ("d1", "d2", "d3"))
HOLD = 3
LIVENESS = BgpConfig(local_as=64513, router_id=D1, peers=()).liveness
SLACK = 3.0  # UML runs every process on one CPU: protocol bounds get this much room


@pytest.fixture(scope="module", params=["bird", "frr"])
def net(request: pytest.FixtureRequest) -> Iterator[BgpLab]:
    """The router, three directors running lvsha, two real servers, a client."""
    with bgp_lab(request.param, hold=HOLD) as lab:
        for name in DIRECTORS:
            lab.start(name)
        lab.wait_hops(ALL, 90)
        yield lab


@pytest.fixture
def bgp(net: BgpLab) -> Iterator[BgpLab]:
    """The shared topology, every director announcing; restored after the test."""
    net.wait_hops(ALL, 60)
    yield net
    net.restore()


def real_servers_in_ipvs(lab: BgpLab, name: str) -> set[str]:
    """The real servers that take new flows on this director (in IPVS, weight > 0)."""
    out = lab.hosts[name].run("ipvsadm", "-Ln", "-t", f"{VIP}:80", check=False).stdout
    rows = [line.split() for line in out.splitlines() if line.strip().startswith("->")]
    return {w[1].split(":")[0] for w in rows if w[1][0].isdigit() and int(w[3]) > 0}


def prefix_status(lab: BgpLab, name: str) -> tuple[bool, str]:
    """(announced, reason) of the VIP's prefix in the director's `lvsha status --json`."""
    (prefix,) = lab.directors[name].status()["bgp"]["prefixes"]
    assert prefix["prefix"] == f"{VIP}/32", prefix
    return bool(prefix["announced"]), str(prefix["reason"])


def test_route_has_a_next_hop_per_director_and_each_holds_the_vip(bgp: BgpLab) -> None:
    assert bgp.route.hops() == ALL
    for name in DIRECTORS:
        status = bgp.directors[name].status()["bgp"]
        assert [s["state"] for s in status["sessions"]] == ["established"], status
        assert prefix_status(bgp, name) == (True, "healthy")
        assert VIP in bgp.hosts[name].run("ip", "-4", "-o", "addr", "show", "dev", "lo").stdout
        assert real_servers_in_ipvs(bgp, name) == set(REAL_SERVERS.values())
        listed = bgp.hosts[name].run("ipvsadm", "-Ln", "-t", f"{VIP}:80").stdout
        assert " mh " in listed and "mh-port" in listed, listed


def test_flows_spread_over_all_three_directors(bgp: BgpLab) -> None:
    base, n = bgp.ports(), 90
    answered = bgp.flows(base, n)
    assert set(answered.values()) == set(REAL_SERVERS), answered
    # Each flow went through exactly one director: its IPVS table holds the entry.
    through = {name: set(bgp.conns(name)) & set(answered) for name in DIRECTORS}
    assert sum(len(ports) for ports in through.values()) == n, through
    assert all(through.values()), {name: len(ports) for name, ports in through.items()}


def test_every_director_picks_the_same_real_server_for_a_flow(bgp: BgpLab) -> None:
    base, n = bgp.ports(), 40
    chosen: dict[str, dict[int, str]] = {}
    for alone in DIRECTORS:
        for name in DIRECTORS:
            if name == alone:
                bgp.drain_file(name).unlink(missing_ok=True)
            else:
                bgp.drain_file(name).touch()
        bgp.wait_hops({DIRECTORS[alone]}, 30)
        chosen[alone] = bgp.flows(base, n)  # the same source ports each time
        assert set(bgp.conns(alone)) >= set(chosen[alone])
    assert chosen["d1"] == chosen["d2"] == chosen["d3"], chosen
    assert set(Counter(chosen["d1"].values())) == set(REAL_SERVERS)


def test_one_real_server_failing_keeps_the_route_the_last_one_withdraws_it(bgp: BgpLab) -> None:
    sessions = bgp.sessions()
    try:
        bgp.block_checks("d1", "rs1")
        t = bgp.route.samples[-1][0]
        assert wait_until(lambda: real_servers_in_ipvs(bgp, "d1") == {REAL_SERVERS["rs2"]}, 15)
        bgp.route.steady(lambda hops: hops == ALL, 2.0)
        assert bgp.route.samples[-1][0] == t, "the route changed while one real server was left"

        bgp.block_checks("d1", "rs1", "rs2")
        bgp.wait_hops(ALL - {D1}, 15)
        assert prefix_status(bgp, "d1") == (False, "below quorum")
        sessions.assert_kept()
        bgp.block_checks("d1")
        bgp.wait_hops(ALL, 30)
        sessions.assert_kept()
    finally:
        sessions.stop()


def test_lvsha_drain_and_the_drain_file_withdraw_undrain_announces_again(bgp: BgpLab) -> None:
    sessions = bgp.sessions()
    try:
        done = bgp.lvsha("d2", "drain")
        assert done.returncode == 0, done.stderr
        bgp.wait_hops(ALL - {D2}, 15)
        assert prefix_status(bgp, "d2") == (False, "drained")
        sessions.assert_kept()
        done = bgp.lvsha("d2", "undrain")
        assert done.returncode == 0, done.stderr
        bgp.wait_hops(ALL, 30)

        bgp.drain_file("d3").touch()
        bgp.wait_hops(ALL - {D3}, 15)
        bgp.drain_file("d3").unlink()
        bgp.wait_hops(ALL, 30)
        sessions.assert_kept()
    finally:
        sessions.stop()


def test_kill_9_of_lvsha_withdraws_and_a_restart_announces_again(bgp: BgpLab) -> None:
    sessions = bgp.sessions()
    try:
        bgp.directors["d1"].kill()
        # The speaker's helper loses its connection to lvsha and withdraws at
        # once; its liveness (lvsha silent) is the upper bound.
        bgp.wait_hops(ALL - {D1}, LIVENESS + SLACK)
        sessions.assert_kept()
        bgp.start("d1")
        bgp.wait_hops(ALL, 60)
        sessions.assert_kept()
    finally:
        sessions.stop()


def test_sigterm_withdraws_then_stops(bgp: BgpLab) -> None:
    sessions = bgp.sessions()
    try:
        signalled = time.monotonic()
        assert bgp.directors["d2"].terminate(timeout=30) == 0
        exited = time.monotonic()
        # Withdrawn first: the router dropped the route while lvsha was still
        # stopping (had it just died, the speaker's helper would withdraw after).
        withdrawn = bgp.route.wait(lambda hops: hops == ALL - {D2}, SLACK, since=signalled)
        assert withdrawn <= exited, f"withdrawn {withdrawn - exited:.3f} s after lvsha exited"
        assert VIP not in bgp.hosts["d2"].run("ip", "-4", "-o", "addr", "show", "dev", "lo").stdout
        sessions.assert_kept()
    finally:
        sessions.stop()


def test_sigstop_of_lvsha_withdraws_within_its_liveness(bgp: BgpLab) -> None:
    sessions = bgp.sessions()
    try:
        bgp.directors["d3"].signal(signal.SIGSTOP)
        # Hung, not dead: its sockets stay open, so only the liveness check notices.
        bgp.wait_hops(ALL - {D3}, LIVENESS + SLACK)
        sessions.assert_kept()
        bgp.directors["d3"].signal(signal.SIGCONT)
        bgp.wait_hops(ALL, 30)
        sessions.assert_kept()
    finally:
        sessions.stop()


def test_silent_director_leaves_on_the_hold_timer_or_bfd_with_speaker_bird(bgp: BgpLab) -> None:
    """A director whose switch port stops forwarding: no FIN, no NOTIFICATION.

    Without BFD the router's hold timer (3 s) drops it; d3 on BIRD with BFD
    (100 ms x 3, RFC 5880 section 6.8.4) is dropped by the BFD session,
    which the router's log names.
    """
    bgp.switch_port("d2", up=False)
    bgp.wait_hops(ALL - {D2}, HOLD + SLACK)
    bgp.switch_port("d2", up=True)
    bgp.wait_hops(ALL, 30)

    bgp.directors["d3"].terminate(timeout=30)
    bgp.start("d3", speaker="bird", bfd=True)
    bgp.wait_hops(ALL, 60)
    assert wait_until(lambda: bgp.bfd_up(D3), 30), bgp.bfd_sessions()
    bgp.switch_port("d3", up=False)
    bgp.wait_hops(ALL - {D3}, HOLD + SLACK)
    assert wait_until(lambda: bgp.router_says_bfd_dropped(D3), 5), bgp.router_log()
    bgp.switch_port("d3", up=True)
    bgp.wait_hops(ALL, 60)
