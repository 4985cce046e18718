"""Interop, VRRPv3 over IPv6: keepalived 2.2 (`vrrp_version 3`) and lvsha, a client beside them.

VI_1 (VRID 51) holds the IPv6 VIP 2001:db8::100/64. Adverts go from each
director's link-local address to ff02::12 with hop limit 255 (RFC 5798
section 5.1.2). A client in a third namespace (2001:db8::50/64) reaches the
VIP before and after the takeover, and its neighbour entry for the VIP
moves to the new master's MAC without the client asking: the unsolicited
Neighbour Advertisement with the Override flag (RFC 4861 section 7.2.6)
did that. Both directions, kill -9 and SIGTERM, at advert_int 1 and 0.05.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from keepalived_peer import KEEPALIVED, Keepalived, start_keepalived
from lab import Director, Host, Lab, wait_for

from lvsha.core.vrrp_v3 import master_down_interval_v3, skew_time_v3

pytestmark = [
    pytest.mark.keepalived,
    pytest.mark.skipif(
        KEEPALIVED is None,
        reason="keepalived is not installed (Debian: apt-get install keepalived)",
    ),
]

VIP6 = "2001:db8::100"
CLIENT6 = "2001:db8::50"
MARGIN = 0.35
HIGH, LOW = 150, 100


def lvsha_toml(priority: int, advert_int: float) -> str:
    return (
        "[vrrp.VI_1]\n"
        'interface = "eth1"\n'
        "version = 3\n"
        "virtual_router_id = 51\n"
        f"priority = {priority}\n"
        f"advert_int = {advert_int}\n"
        f'virtual_ipaddress = ["{VIP6}/64"]\n'
    )


def addresses6(host: Host) -> list[dict[str, Any]]:
    out = host.run("ip", "-j", "-6", "addr", "show", "dev", "eth1").stdout
    return [a for link in json.loads(out) for a in link.get("addr_info", [])]


def has_vip6(host: Host) -> bool:
    return any(a["local"] == VIP6 for a in addresses6(host))


def link_local_ready(host: Host) -> bool:
    return any(a["scope"] == "link" and not a.get("tentative") for a in addresses6(host))


def neighbour6(client: Host) -> str | None:
    out = client.run("ip", "-j", "-6", "neigh", "show", VIP6, "dev", "eth1").stdout
    entries = json.loads(out or "[]")
    return entries[0].get("lladdr") if entries else None


def client_reaches_vip(client: Host) -> bool:
    return client.run("ping", "-6", "-c", "1", "-W", "1", VIP6, check=False).returncode == 0


@dataclass
class V6Lab:
    lab: Lab
    advert_int: float
    keepaliveds: list[Keepalived] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lvsha_host = self.lab.host("d1", "192.0.2.11")
        self.keepalived_host = self.lab.host("k1", "192.0.2.21")
        self.client = self.lab.host("c1", "192.0.2.50")
        self.client.run("ip", "-6", "addr", "add", f"{CLIENT6}/64", "dev", "eth1", "nodad")
        for host in (self.lvsha_host, self.keepalived_host, self.client):
            wait_for(lambda h=host: link_local_ready(h), timeout=10, interval=0.1)

    @property
    def start_timeout(self) -> float:
        return master_down_interval_v3(LOW, self.advert_int) + 5

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
            vip=VIP6,
            vip_prefix=64,
        )
        self.keepaliveds.append(peer)
        return peer

    def close(self) -> None:
        for peer in self.keepaliveds:
            peer.stop()


@pytest.fixture(params=[1.0, 0.05], ids=lambda v: f"advert_int={v:g}")
def v6(lab: Lab, request: pytest.FixtureRequest) -> Iterator[V6Lab]:
    the_lab = V6Lab(lab, request.param)
    try:
        yield the_lab
    finally:
        the_lab.close()


def instance(director: Director) -> dict[str, Any]:
    result: dict[str, Any] = director.status()["instances"][0]
    return result


def bound(v6: V6Lab, how: str) -> float:
    """RFC 5798 section 6.1 with the master's interval: Skew_Time or Master_Down_Interval."""
    if how == "sigterm":
        return skew_time_v3(LOW, v6.advert_int) + MARGIN
    return master_down_interval_v3(LOW, v6.advert_int) + MARGIN


@pytest.mark.parametrize("how", ["kill9", "sigterm"])
def test_keepalived_master_lvsha_takes_over_the_ipv6_vip(v6: V6Lab, how: str) -> None:
    peer = v6.keepalived(HIGH)
    peer.wait_state("MASTER", v6.start_timeout)
    wait_for(lambda: has_vip6(v6.keepalived_host), timeout=5)
    director = v6.lvsha(LOW)
    director.wait_state("BACKUP", 10)
    wait_for(lambda: instance(director)["counters"]["adverts_received"] >= 10, timeout=15)
    status = instance(director)
    assert status["state"] == "BACKUP" and status["version"] == 3
    assert status["master"]["address"].startswith("fe80::")  # the link-local source
    assert status["master"]["priority"] == HIGH
    assert status["master_advert_int"] == v6.advert_int
    assert status["counters"]["discarded"] == {}  # hop limit 255, v3 checksum verifies
    assert status["primary_address"].startswith("fe80::")
    assert wait_for(lambda: client_reaches_vip(v6.client), timeout=5)
    assert neighbour6(v6.client) == v6.keepalived_host.mac

    since = time.time()
    if how == "kill9":
        peer.kill()
    else:
        assert peer.terminate() == 0
    director.wait_state("MASTER", bound(v6, how) + 3)
    took = float(instance(director)["last_transition"]["at"]) - since
    assert took <= bound(v6, how), f"{how}: {took:.3f} s"
    wait_for(lambda: has_vip6(v6.lvsha_host), timeout=3)
    # the unsolicited NA moved the client's entry: the client did not ask
    wait_for(lambda: neighbour6(v6.client) == v6.lvsha_host.mac, timeout=3)
    assert client_reaches_vip(v6.client)
    assert not has_vip6(v6.keepalived_host) or how == "kill9"  # kill -9 leaves it behind


@pytest.mark.parametrize("how", ["kill9", "sigterm"])
def test_lvsha_master_keepalived_takes_over_the_ipv6_vip(v6: V6Lab, how: str) -> None:
    director = v6.lvsha(HIGH)
    director.wait_state("MASTER", v6.start_timeout)
    wait_for(lambda: has_vip6(v6.lvsha_host), timeout=5)
    peer = v6.keepalived(LOW)
    assert peer.wait_state("BACKUP", 10)
    sent = instance(director)["counters"]["adverts_sent"]
    wait_for(lambda: instance(director)["counters"]["adverts_sent"] >= sent + 10, timeout=15)
    assert [s for s, _ in peer.transitions()] == ["BACKUP"]  # it accepts our IPv6 adverts
    assert wait_for(lambda: client_reaches_vip(v6.client), timeout=5)
    assert neighbour6(v6.client) == v6.lvsha_host.mac

    since = time.time()
    if how == "kill9":
        director.kill()
    else:
        assert director.terminate(timeout=3) == 0
        assert not has_vip6(v6.lvsha_host)  # removed on the way out
    became_master = peer.wait_state("MASTER", bound(v6, how) + 3)
    assert became_master - since <= bound(v6, how), f"{how}: {became_master - since:.3f} s"
    wait_for(lambda: has_vip6(v6.keepalived_host), timeout=3)
    wait_for(lambda: neighbour6(v6.client) == v6.keepalived_host.mac, timeout=3)
    assert client_reaches_vip(v6.client)
