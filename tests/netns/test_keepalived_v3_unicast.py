"""Interop, VRRPv3 with unicast peers (RFC 5798 over unicast, as keepalived does it), IPv4 and IPv6.

keepalived 2.2.7 (`vrrp_version 3`, `unicast_peer`) and lvsha (`version = 3`,
`unicast_peers`) at advert_int 0.05, each naming the other. The v3
checksum covers the unicast destination (section 5.2.8), so a checksum
over the multicast group instead would be dropped (`checksum`) here. Both
namespaces drop VRRP multicast, so only unicast carries the election.

keepalived 2.2.7 sends IPv6 unicast adverts with hop limit 64 unless told
`unicast_ttl 255`; lvsha, like RFC 5798 section 7.1, drops any advert whose
hop limit is not 255 (counted as `ttl`). The keepalived peer here says
`unicast_ttl 255`, and one test shows what happens when it does not.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from keepalived_peer import KEEPALIVED, Keepalived, start_keepalived
from lab import VIP, Director, Host, Lab, wait_for
from test_keepalived_v3_ipv6 import VIP6, has_vip6, link_local_ready

from lvsha.core.vrrp_v3 import master_down_interval_v3

pytestmark = [
    pytest.mark.keepalived,
    pytest.mark.skipif(
        KEEPALIVED is None,
        reason="keepalived is not installed (Debian: apt-get install keepalived)",
    ),
]

ADVERT_INT = 0.05
MARGIN = 0.35
HIGH, LOW = 150, 100
ADDRESSES = {4: ("192.0.2.11", "192.0.2.21"), 6: ("2001:db8::11", "2001:db8::21")}


def drop_multicast(host: Host) -> None:
    host.nft(
        "table inet lvsha_test {\n chain out {\n  type filter hook output priority 0;\n"
        "  ip daddr 224.0.0.18 drop\n  ip6 daddr ff02::12 drop\n }\n}\n"
    )


class UnicastPair:
    def __init__(self, lab: Lab, family: int) -> None:
        self.lab, self.family = lab, family
        self.mine, self.theirs = ADDRESSES[family]
        self.lvsha_host = lab.host("d1", "192.0.2.11")
        self.keepalived_host = lab.host("k1", "192.0.2.21")
        self.peers: list[Keepalived] = []
        for host, address in ((self.lvsha_host, self.mine), (self.keepalived_host, self.theirs)):
            if family == 6:
                host.run("ip", "-6", "addr", "add", f"{address}/64", "dev", "eth1", "nodad")
                wait_for(lambda h=host: link_local_ready(h), timeout=10, interval=0.1)
            drop_multicast(host)
        self.vip = VIP6 if family == 6 else VIP
        self.prefix = 64 if family == 6 else 32

    def lvsha(self, priority: int) -> Director:
        src = f'unicast_src_ip = "{self.mine}"\n' if self.family == 6 else ""
        return self.lab.start(
            self.lvsha_host,
            '[vrrp.VI_1]\ninterface = "eth1"\nversion = 3\nvirtual_router_id = 51\n'
            f"priority = {priority}\nadvert_int = {ADVERT_INT}\n"
            f'virtual_ipaddress = ["{self.vip}/{self.prefix}"]\n'
            f'unicast_peers = ["{self.theirs}"]\n{src}',
        )

    def keepalived(self, priority: int, unicast_ttl: bool = True) -> Keepalived:
        peer = start_keepalived(
            self.lab,
            self.keepalived_host,
            priority,
            password=None,
            unicast_peers=(self.mine,),
            unicast_src=self.theirs,
            advert_int=ADVERT_INT,
            vrrp_version=3,
            vip=self.vip,
            vip_prefix=self.prefix,
            extra="  unicast_ttl 255\n" if unicast_ttl else "",
        )
        self.peers.append(peer)
        return peer

    def has_vip(self, host: Host) -> bool:
        return has_vip6(host) if self.family == 6 else host.has_vip()


@pytest.fixture(params=[4, 6], ids=lambda f: f"ipv{f}")
def pair(lab: Lab, request: pytest.FixtureRequest) -> Iterator[UnicastPair]:
    the_pair = UnicastPair(lab, request.param)
    try:
        yield the_pair
    finally:
        for peer in the_pair.peers:
            peer.stop()


def instance(director: Director) -> dict[str, Any]:
    result: dict[str, Any] = director.status()["instances"][0]
    return result


def test_keepalived_master_over_unicast_then_kill9(pair: UnicastPair) -> None:
    peer = pair.keepalived(HIGH)
    peer.wait_state("MASTER", 5)
    director = pair.lvsha(LOW)
    director.wait_state("BACKUP", 10)
    wait_for(lambda: instance(director)["counters"]["adverts_received"] >= 10, timeout=15)
    status = instance(director)
    assert status["mode"] == "unicast" and status["master"]["address"] == pair.theirs
    assert status["counters"]["discarded"] == {}  # keepalived's unicast v3 checksum verifies
    killed = time.time()
    peer.kill()
    director.wait_state("MASTER", 3)
    took = float(instance(director)["last_transition"]["at"]) - killed
    assert took <= master_down_interval_v3(LOW, ADVERT_INT) + MARGIN
    wait_for(lambda: pair.has_vip(pair.lvsha_host), timeout=3)


def test_lvsha_master_over_unicast_keepalived_obeys_then_takes_over(pair: UnicastPair) -> None:
    director = pair.lvsha(HIGH)
    director.wait_state("MASTER", 5)
    peer = pair.keepalived(LOW)
    assert peer.wait_state("BACKUP", 10)
    sent = instance(director)["counters"]["adverts_sent"]
    wait_for(lambda: instance(director)["counters"]["adverts_sent"] >= sent + 20, timeout=15)
    assert [s for s, _ in peer.transitions()] == ["BACKUP"]  # it accepts our unicast adverts
    stopped = time.time()
    assert director.terminate(timeout=3) == 0
    became = peer.wait_state("MASTER", 3)
    assert became - stopped <= master_down_interval_v3(LOW, ADVERT_INT) + MARGIN
    wait_for(lambda: pair.has_vip(pair.keepalived_host), timeout=3)


def test_keepalived_ipv6_unicast_without_unicast_ttl_is_dropped_as_ttl(lab: Lab) -> None:
    """keepalived's default IPv6 unicast hop limit (64) fails section 7.1: lvsha says so."""
    pair = UnicastPair(lab, 6)
    try:
        peer = pair.keepalived(HIGH, unicast_ttl=False)
        peer.wait_state("MASTER", 5)
        director = pair.lvsha(LOW)
        wait_for(lambda: instance(director)["counters"]["discarded"].get("ttl", 0) >= 5, timeout=10)
        assert instance(director)["counters"]["adverts_received"] == 0
    finally:
        for peer in pair.peers:
            peer.stop()
