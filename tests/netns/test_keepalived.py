"""Interop: keepalived 2.2 (Debian) as the other director of the lvs01 pair.

Each test runs one `lvsha run` and one keepalived on the lab's bridge with
the lvs01 instance (VI_1, VRID 51, advert_int 1, PASS grr02, the VIP /32), in
multicast and in unicast mode. In unicast mode both namespaces drop VRRP
multicast with nftables, so that only unicast can carry the election.

keepalived's state and the instant of each transition come from its notify
script (`STATE wall-time` lines); lvsha's from `lvsha status`. Bounds are the
RFC 3768 section 6.1 timers plus a margin for polling, process start and the
fork of the notify script, and each assertion names its bound.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from keepalived_peer import KEEPALIVED, Keepalived, start_keepalived
from lab import Director, Lab, instance_toml, wait_for

from lvsha.core.vrrp import master_down_interval, skew_time

pytestmark = [
    pytest.mark.keepalived,
    pytest.mark.skipif(
        KEEPALIVED is None,
        reason="keepalived is not installed (Debian: apt-get install keepalived)",
    ),
]

LVSHA_ADDRESS = "192.0.2.11"
KEEPALIVED_ADDRESS = "192.0.2.21"
MDI_100 = master_down_interval(1, 100)  # 3.609375 s
SKEW_100 = skew_time(100)  # 0.609375 s
MARGIN = 0.35  # polling, signal delivery, the notify script's fork: not protocol time
START_TIMEOUT = MDI_100 + 3
MODES = ["multicast", "unicast"]


@dataclass
class MixedPair:
    """One lvsha and one keepalived director on the lab's LAN, in one mode."""

    lab: Lab
    mode: str
    keepaliveds: list[Keepalived] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lvsha_host = self.lab.host("d1", LVSHA_ADDRESS)
        self.keepalived_host = self.lab.host("k1", KEEPALIVED_ADDRESS)
        if self.mode == "unicast":
            for host in (self.lvsha_host, self.keepalived_host):
                host.drop_vrrp_multicast()

    def lvsha(self, priority: int = 100, password: str = "grr02") -> Director:
        extra = f'unicast_peers = ["{KEEPALIVED_ADDRESS}"]\n' if self.mode == "unicast" else ""
        director = self.lab.start(
            self.lvsha_host, instance_toml(priority, password=password, extra=extra)
        )
        if self.mode == "unicast":
            assert instance(director)["mode"] == "unicast"
        return director

    def keepalived(self, priority: int = 100, password: str = "grr02") -> Keepalived:
        peers = (LVSHA_ADDRESS,) if self.mode == "unicast" else ()
        peer = start_keepalived(
            self.lab, self.keepalived_host, priority, password, unicast_peers=peers
        )
        self.keepaliveds.append(peer)
        if self.mode == "unicast":
            assert f"unicast, address({KEEPALIVED_ADDRESS})" in peer.log_text()
        return peer

    def close(self) -> None:
        for peer in self.keepaliveds:
            peer.stop()


@pytest.fixture(params=MODES)
def pair(lab: Lab, request: pytest.FixtureRequest) -> Iterator[MixedPair]:
    the_pair = MixedPair(lab, request.param)
    try:
        yield the_pair
    finally:
        the_pair.close()  # before the lab deletes the namespaces


def instance(director: Director) -> dict[str, Any]:
    result: dict[str, Any] = director.status()["instances"][0]
    return result


def counters(director: Director) -> dict[str, Any]:
    result: dict[str, Any] = instance(director)["counters"]
    return result


def lvsha_master_keepalived_backup(
    pair: MixedPair, settle: bool = True
) -> tuple[Director, Keepalived]:
    """lvsha starts first and is master; keepalived joins and stays backup.

    `settle`: watch the pair past keepalived's Master_Down_Interval first.
    """
    director = pair.lvsha()
    director.wait_state("MASTER", START_TIMEOUT)
    peer = pair.keepalived()
    assert peer.wait_state("BACKUP", 5)
    if not settle:
        return director, peer
    # Outlive keepalived's Master_Down_Interval while lvsha's adverts flow.
    sent = counters(director)["adverts_sent"]
    wait_for(lambda: counters(director)["adverts_sent"] >= sent + 5, timeout=8)
    assert peer.state() == "BACKUP" and [s for s, _ in peer.transitions()] == ["BACKUP"]
    assert director.host.has_vip() and not peer.host.has_vip()
    assert director.state() == "MASTER"
    # A backup keepalived is silent: nothing received, nothing dropped.
    c = counters(director)
    assert (c["adverts_received"], c["discarded"], c["send_errors"]) == (0, {}, 0)
    return director, peer


def keepalived_master_lvsha_backup(
    pair: MixedPair, settle: bool = True
) -> tuple[Director, Keepalived]:
    """keepalived starts first and is master; lvsha joins and stays backup.

    `settle`: watch the pair past lvsha's Master_Down_Interval first.
    """
    peer = pair.keepalived()
    peer.wait_state("MASTER", START_TIMEOUT)
    director = pair.lvsha()
    director.wait_state("BACKUP", 5)
    if not settle:
        wait_for(lambda: counters(director)["adverts_received"] >= 1, timeout=3)
        return director, peer
    wait_for(lambda: counters(director)["adverts_received"] >= 5, timeout=8)
    status = instance(director)
    assert status["state"] == "BACKUP"
    assert status["master"]["address"] == KEEPALIVED_ADDRESS
    assert status["master"]["priority"] == 100
    assert status["master"]["self"] is False and status["master"]["seen_ago"] < 1.5
    assert status["counters"]["discarded"] == {}
    assert status["counters"]["adverts_sent"] == 0
    assert peer.host.has_vip() and not director.host.has_vip()
    assert peer.state() == "MASTER"
    return director, peer


def takeover_after(director: Director, since_wall: float) -> float:
    """Seconds from `since_wall` to the director's last transition."""
    return float(instance(director)["last_transition"]["at"]) - since_wall


# ------------------------------------------- lvsha master, keepalived backup --


def test_lvsha_master_sigterm_keepalived_takes_over_after_skew(pair: MixedPair) -> None:
    director, peer = lvsha_master_keepalived_backup(pair)
    stopped_at = time.time()
    assert director.terminate(timeout=3) == 0
    # keepalived honours the priority-0 advert: Skew_Time, not Master_Down_Interval.
    became_master = peer.wait_state("MASTER", 3)
    assert became_master - stopped_at <= SKEW_100 + MARGIN
    wait_for(peer.host.has_vip, timeout=2)
    assert not director.host.has_vip()


def test_lvsha_master_kill9_keepalived_takes_over_after_master_down(pair: MixedPair) -> None:
    director, peer = lvsha_master_keepalived_backup(pair, settle=False)
    killed_at = time.time()
    director.kill()
    became_master = peer.wait_state("MASTER", MDI_100 + 2)
    # The last advert left lvsha at most one interval before the kill, so
    # keepalived's Master_Down_Interval ran out at most MDI after the kill ...
    assert became_master - killed_at <= MDI_100 + MARGIN
    # ... and not before the adverts stopped: at least MDI - Advertisement_Interval.
    assert became_master - killed_at >= MDI_100 - 1 - MARGIN
    wait_for(peer.host.has_vip, timeout=2)


# ------------------------------------------- keepalived master, lvsha backup --


def test_keepalived_master_sigterm_lvsha_takes_over_after_skew(pair: MixedPair) -> None:
    director, peer = keepalived_master_lvsha_backup(pair)
    stopped_at = time.time()
    assert peer.terminate() == 0
    director.wait_state("MASTER", 3)
    assert takeover_after(director, stopped_at) <= SKEW_100 + MARGIN
    c = counters(director)
    assert c["priority_zero_received"] == 1 and c["discarded"] == {}
    wait_for(director.host.has_vip, timeout=2)
    assert not peer.host.has_vip()
    assert "(VI_1) sent 0 priority" in peer.log_text()


def test_keepalived_master_kill9_lvsha_takes_over_after_master_down(pair: MixedPair) -> None:
    director, peer = keepalived_master_lvsha_backup(pair, settle=False)
    killed_at = time.time()
    peer.kill()
    director.wait_state("MASTER", MDI_100 + 2)
    assert takeover_after(director, killed_at) <= MDI_100 + MARGIN
    assert takeover_after(director, killed_at) >= MDI_100 - 1 - MARGIN
    reason = instance(director)["last_transition"]["reason"]
    assert reason == "master down timer expired"
    assert counters(director)["priority_zero_received"] == 0
    wait_for(director.host.has_vip, timeout=2)


# ------------------------------------------------------------ preemption --


def test_higher_priority_lvsha_preempts_keepalived(pair: MixedPair) -> None:
    peer = pair.keepalived(priority=100)
    peer.wait_state("MASTER", START_TIMEOUT)
    started = time.time()
    director = pair.lvsha(priority=150)
    # A preempting backup ignores the lower master and its own timer runs out.
    director.wait_state("MASTER", master_down_interval(1, 150) + 3)
    assert takeover_after(director, started) <= master_down_interval(1, 150) + 1.5
    assert instance(director)["counters"]["adverts_received"] >= 3  # it heard, and preempted
    assert instance(director)["counters"]["discarded"] == {}
    peer.wait_state("BACKUP", 3)
    wait_for(lambda: director.host.has_vip() and not peer.host.has_vip(), timeout=3)
    # keepalived, the lower one, stays backup while lvsha's adverts flow.
    sent = counters(director)["adverts_sent"]
    wait_for(lambda: counters(director)["adverts_sent"] >= sent + 5, timeout=8)
    assert (director.state(), peer.state()) == ("MASTER", "BACKUP")


def test_higher_priority_keepalived_preempts_lvsha(pair: MixedPair) -> None:
    director = pair.lvsha(priority=100)
    director.wait_state("MASTER", START_TIMEOUT)
    started = time.time()
    peer = pair.keepalived(priority=150)
    became_master = peer.wait_state("MASTER", master_down_interval(1, 150) + 3)
    assert became_master - started <= master_down_interval(1, 150) + 1.5
    director.wait_state("BACKUP", 3)
    status = instance(director)
    assert status["last_transition"]["reason"] == (
        f"advert from {KEEPALIVED_ADDRESS} (higher priority)"
    )
    # lvsha stepped down on keepalived's first advert: within one interval.
    assert status["last_transition"]["at"] - became_master <= 1 + MARGIN
    wait_for(lambda: peer.host.has_vip() and not director.host.has_vip(), timeout=3)
    wait_for(lambda: counters(director)["adverts_received"] >= 5, timeout=8)
    status = instance(director)
    assert status["state"] == "BACKUP"
    assert (status["master"]["address"], status["master"]["priority"]) == (KEEPALIVED_ADDRESS, 150)
    assert status["counters"]["discarded"] == {}


# -------------------------------------------------------- authentication --


def test_password_mismatch_is_dropped_counted_and_not_obeyed(pair: MixedPair) -> None:
    """keepalived with auth_pass "wrong": two masters, and lvsha says why.

    keepalived's side: it logs "(VI_1) received an invalid passwd!" for each
    of lvsha's adverts, drops them, and stays master (as a backup it would
    likewise let its timer run out). It also
    restarts its own advert timer on every packet of its VRID it reads, even
    a dropped one (vrrp_dispatcher_read resets `sands` unless
    `lower_prio_no_advert`), so while lvsha is master too, keepalived's
    adverts come only when its timer beats lvsha's next advert: about one in
    two seconds here. lvsha keeps its own schedule (RFC 3768 section 6.4.3).
    """
    peer = pair.keepalived(password="wrong")
    peer.wait_state("MASTER", START_TIMEOUT)
    started = time.time()
    director = pair.lvsha()
    director.wait_state("BACKUP", 5)
    # Obeying keepalived's adverts would hold lvsha in BACKUP; dropping them
    # lets its Master_Down_Interval run out.
    director.wait_state("MASTER", MDI_100 + 2)
    assert takeover_after(director, started) <= MDI_100 + 1.5
    status = instance(director)
    assert status["last_transition"]["reason"] == "master down timer expired"
    assert status["counters"]["adverts_received"] == 0
    assert set(status["counters"]["discarded"]) == {"auth_password"}
    assert status["counters"]["discarded"]["auth_password"] >= 3  # one a second while backup
    assert status["master"]["self"] is True
    # Both masters, both holding the VIP: the mismatch splits the pair.
    dropped = status["counters"]["discarded"]["auth_password"]
    # keepalived sends only when its timer beats our next advert (above): a
    # coin toss each second that a loaded machine can lose ten times running
    wait_for(lambda: counters(director)["discarded"].get("auth_password", 0) > dropped, 30)
    assert director.state() == "MASTER" and peer.state() == "MASTER"
    assert director.host.has_vip() and peer.host.has_vip()
    assert counters(director)["adverts_received"] == 0
    assert "received an invalid passwd!" in peer.log_text()
    assert [s for s, _ in peer.transitions()] == ["BACKUP", "MASTER"]
