"""Interop, VRRPv3 over IPv4: keepalived 2.2 with `vrrp_version 3` and lvsha `version = 3`.

One `lvsha run` and one keepalived on the lab's bridge, VI_1 (VRID 51, the
VIP /32, no authentication: RFC 5798 has none), at advert_int 1 and 0.05,
the master at priority 150 and the backup at 100. The takeover bounds are
RFC 5798 section 6.1's with the master's interval: Skew_Time after a
priority-0 advert (SIGTERM), Master_Down_Interval after the last advert
(kill -9), plus the same margin as the v2 interop tests for polling, signal
delivery and the notify script's fork.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from keepalived_peer import KEEPALIVED, Keepalived, start_keepalived
from lab import VIP, Director, Lab, wait_for

from lvsha.core.vrrp_v3 import master_down_interval_v3, skew_time_v3

pytestmark = [
    pytest.mark.keepalived,
    pytest.mark.skipif(
        KEEPALIVED is None,
        reason="keepalived is not installed (Debian: apt-get install keepalived)",
    ),
]

LVSHA_ADDRESS = "192.0.2.11"
KEEPALIVED_ADDRESS = "192.0.2.21"
MARGIN = 0.35
INTERVALS = [1.0, 0.05]
HIGH, LOW = 150, 100


def lvsha_toml(priority: int, advert_int: float) -> str:
    return (
        "[vrrp.VI_1]\n"
        'interface = "eth1"\n'
        "version = 3\n"
        "virtual_router_id = 51\n"
        f"priority = {priority}\n"
        f"advert_int = {advert_int}\n"
        f'virtual_ipaddress = ["{VIP}/32"]\n'
    )


@dataclass
class V3Pair:
    lab: Lab
    advert_int: float
    keepaliveds: list[Keepalived] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lvsha_host = self.lab.host("d1", LVSHA_ADDRESS)
        self.keepalived_host = self.lab.host("k1", KEEPALIVED_ADDRESS)

    @property
    def start_timeout(self) -> float:
        return master_down_interval_v3(LOW, self.advert_int) + 3

    def lvsha(self, priority: int) -> Director:
        return self.lab.start(self.lvsha_host, lvsha_toml(priority, self.advert_int))

    def keepalived(self, priority: int) -> Keepalived:
        peer = start_keepalived(
            self.lab,
            self.keepalived_host,
            priority,
            password=None,
            advert_int=self.advert_int,
            vrrp_version=3,
        )
        self.keepaliveds.append(peer)
        return peer

    def close(self) -> None:
        for peer in self.keepaliveds:
            peer.stop()


@pytest.fixture(params=INTERVALS, ids=lambda v: f"advert_int={v:g}")
def pair(lab: Lab, request: pytest.FixtureRequest) -> Iterator[V3Pair]:
    the_pair = V3Pair(lab, request.param)
    try:
        yield the_pair
    finally:
        the_pair.close()


def instance(director: Director) -> dict[str, Any]:
    result: dict[str, Any] = director.status()["instances"][0]
    return result


def lvsha_master(pair: V3Pair) -> tuple[Director, Keepalived]:
    director = pair.lvsha(HIGH)
    director.wait_state("MASTER", pair.start_timeout)
    peer = pair.keepalived(LOW)
    assert peer.wait_state("BACKUP", 5)
    # keepalived stays backup past several of its Master_Down_Intervals
    sent = instance(director)["counters"]["adverts_sent"]
    wait_for(lambda: instance(director)["counters"]["adverts_sent"] >= sent + 10, timeout=15)
    assert [s for s, _ in peer.transitions()] == ["BACKUP"]
    assert director.host.has_vip() and not peer.host.has_vip()
    status = instance(director)
    assert (status["state"], status["version"], status["advert_int"]) == (
        "MASTER",
        3,
        pair.advert_int,
    )
    return director, peer


def keepalived_master(pair: V3Pair) -> tuple[Director, Keepalived]:
    peer = pair.keepalived(HIGH)
    peer.wait_state("MASTER", pair.start_timeout)
    director = pair.lvsha(LOW)
    director.wait_state("BACKUP", 5)
    wait_for(lambda: instance(director)["counters"]["adverts_received"] >= 10, timeout=15)
    status = instance(director)
    assert status["state"] == "BACKUP"
    assert status["master"]["address"] == KEEPALIVED_ADDRESS
    assert status["master"]["priority"] == HIGH
    assert status["master_advert_int"] == pair.advert_int  # learned from keepalived
    assert status["counters"]["discarded"] == {}  # keepalived's v3 checksum verifies
    assert status["counters"]["adverts_sent"] == 0
    assert peer.host.has_vip() and not director.host.has_vip()
    assert peer.state() == "MASTER"
    return director, peer


def takeover_after(director: Director, since_wall: float) -> float:
    return float(instance(director)["last_transition"]["at"]) - since_wall


def test_lvsha_master_sigterm_keepalived_takes_over_after_skew(pair: V3Pair) -> None:
    director, peer = lvsha_master(pair)
    stopped_at = time.time()
    assert director.terminate(timeout=3) == 0
    became_master = peer.wait_state("MASTER", 3)
    assert became_master - stopped_at <= skew_time_v3(LOW, pair.advert_int) + MARGIN
    wait_for(peer.host.has_vip, timeout=2)
    assert not director.host.has_vip()


def test_lvsha_master_kill9_keepalived_takes_over_after_master_down(pair: V3Pair) -> None:
    director, peer = lvsha_master(pair)
    mdi = master_down_interval_v3(LOW, pair.advert_int)
    killed_at = time.time()
    director.kill()
    became_master = peer.wait_state("MASTER", mdi + 2)
    assert became_master - killed_at <= mdi + MARGIN
    assert became_master - killed_at >= mdi - pair.advert_int - MARGIN
    wait_for(peer.host.has_vip, timeout=2)


def test_keepalived_master_sigterm_lvsha_takes_over_after_skew(pair: V3Pair) -> None:
    director, peer = keepalived_master(pair)
    stopped_at = time.time()
    assert peer.terminate() == 0
    director.wait_state("MASTER", 3)
    assert takeover_after(director, stopped_at) <= skew_time_v3(LOW, pair.advert_int) + MARGIN
    c = instance(director)["counters"]
    assert c["priority_zero_received"] == 1 and c["discarded"] == {}
    wait_for(director.host.has_vip, timeout=2)
    assert not peer.host.has_vip()


def test_keepalived_master_kill9_lvsha_takes_over_after_master_down(pair: V3Pair) -> None:
    director, peer = keepalived_master(pair)
    mdi = master_down_interval_v3(LOW, pair.advert_int)
    killed_at = time.time()
    peer.kill()
    director.wait_state("MASTER", mdi + 2)
    assert takeover_after(director, killed_at) <= mdi + MARGIN
    assert takeover_after(director, killed_at) >= mdi - pair.advert_int - MARGIN
    assert instance(director)["last_transition"]["reason"] == "master down timer expired"
    wait_for(director.host.has_vip, timeout=2)


def test_started_together_they_elect_one_master(pair: V3Pair) -> None:
    """Both start at once; the higher priority (keepalived here) wins, and stays."""
    peer = pair.keepalived(HIGH)
    director = pair.lvsha(LOW)
    peer.wait_state("MASTER", pair.start_timeout)
    director.wait_state("BACKUP", pair.start_timeout)
    wait_for(lambda: instance(director)["counters"]["adverts_received"] >= 10, timeout=15)
    assert peer.state() == "MASTER" and director.state() == "BACKUP"
    assert peer.host.has_vip() and not director.host.has_vip()
