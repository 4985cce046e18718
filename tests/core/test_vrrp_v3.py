"""The VirtualRouter with version 3 (RFC 5798 sections 6 and 7.1), on a walked clock.

The expected figures are the RFC's formulas (section 6.1), restated here:

    Skew_Time            = ((256 - Priority) * Master_Adver_Interval) / 256
    Master_Down_Interval = (3 * Master_Adver_Interval) + Skew_Time

computed in whole centiseconds, as on the wire, and compared to 1 us.
"""

from __future__ import annotations

import pytest

from lvsha.core import drops
from lvsha.core.packet import AUTH_PASS, Advertisement, IPv4Header, pad_password
from lvsha.core.packet_v3 import VRRP_MULTICAST_GROUP_V6, AdvertisementV3, IPv6Header
from lvsha.core.vrrp import (
    Discarded,
    RouterParams,
    SendAdvert,
    SendGratuitousArp,
    State,
    StateChanged,
    VirtualRouter,
)

VIP, ME, PEER, LOWER = "192.0.2.100", "192.0.2.10", "192.0.2.20", "192.0.2.9"
VIP6, ME6, PEER6 = "2001:db8::100", "fe80::10", "fe80::20"
GROUP = "224.0.0.18"
EPS = 1e-9


def rfc_skew(priority: int, centis: int) -> float:
    return (256 - priority) * centis / 256 / 100


def rfc_mdi(priority: int, centis: int) -> float:
    return 3 * centis / 100 + rfc_skew(priority, centis)


def params(**overrides: object) -> RouterParams:
    fields: dict[str, object] = {
        "name": "VI_1",
        "vrid": 51,
        "priority": 100,
        "adver_int": 0.05,
        "addresses": (VIP,),
        "version": 3,
        "garp_master_delay": 0.0,
    }
    fields.update(overrides)
    return RouterParams(**fields)  # type: ignore[arg-type]


def v4(source: str, advert: AdvertisementV3, ttl: int = 255) -> tuple[IPv4Header, bytes]:
    wire = advert.encode_for(source, GROUP)
    return IPv4Header(source, GROUP, ttl, 112, 20, 20 + len(wire)), wire


def v6(source: str, advert: AdvertisementV3, ttl: int = 255) -> tuple[IPv6Header, bytes]:
    wire = advert.encode_for(source, VRRP_MULTICAST_GROUP_V6)
    return IPv6Header(source, VRRP_MULTICAST_GROUP_V6, ttl), wire


def backup(p: RouterParams | None = None, me: str = ME) -> VirtualRouter:
    router = VirtualRouter(p or params(), me)
    router.startup(0.0)
    assert router.state is State.BACKUP
    return router


def test_rfc_figures_at_50_ms_and_at_1_s() -> None:
    r = backup()
    assert r.skew_time == pytest.approx(0.03046875, abs=EPS)  # 156 * 5 / 256 cs
    assert r.master_down_interval == pytest.approx(0.18046875, abs=EPS)
    r = backup(params(adver_int=1.0))
    assert r.master_down_interval == pytest.approx(3.609375, abs=EPS)  # as VRRPv2


def test_startup_arms_master_down_from_our_own_interval() -> None:
    """Section 6.4.1: Master_Adver_Interval starts as Advertisement_Interval."""
    r = backup()
    assert r.master_down_at == pytest.approx(rfc_mdi(100, 5), abs=EPS)


def test_backup_learns_the_masters_interval() -> None:
    """Section 6.4.2: an accepted advert sets Master_Adver_Interval; no drop in v3."""
    r = backup(params(adver_int=1.0))
    now = 0.5
    header, wire = v4(PEER, AdvertisementV3(51, 150, 5, (VIP,)))
    assert r.receive(now, header, wire) == []
    assert r.master_adver_int == 0.05
    assert r.master_down_at == pytest.approx(now + rfc_mdi(100, 5), abs=EPS)
    assert r.stats.discarded == {}
    # ... and the takeover comes exactly then, sending our own interval.
    actions = r.timer_fired(now + rfc_mdi(100, 5))
    assert r.state is State.MASTER
    sent = [a.advert for a in actions if isinstance(a, SendAdvert)]
    assert sent == [AdvertisementV3(51, 100, 100, (VIP,))]


def test_a_v2_router_still_drops_a_differing_interval() -> None:
    """RFC 3768 section 7.1 is unchanged for version 2."""
    r = backup(params(version=2, adver_int=1, auth_type=AUTH_PASS, auth_data=pad_password(b"x")))
    advert = Advertisement(51, 150, 2, (VIP,), AUTH_PASS, pad_password(b"x")).encode()
    header = IPv4Header(PEER, GROUP, 255, 112, 20, 20 + len(advert))
    actions = r.receive(0.1, header, advert)
    assert [a.reason for a in actions if isinstance(a, Discarded)] == [drops.ADVERT_INTERVAL]


def test_priority_zero_hands_over_after_the_masters_skew_time() -> None:
    r = backup(params(adver_int=1.0))
    r.receive(0.1, *v4(PEER, AdvertisementV3(51, 150, 5, (VIP,))))
    r.receive(0.2, *v4(PEER, AdvertisementV3(51, 0, 5, (VIP,))))
    assert r.master_down_at == pytest.approx(0.2 + rfc_skew(100, 5), abs=EPS)


def test_master_sends_every_interval_on_the_walked_clock() -> None:
    r = VirtualRouter(params(priority=255), ME)
    actions = r.startup(0.0)
    assert r.state is State.MASTER
    assert any(isinstance(a, SendGratuitousArp) for a in actions)
    times = []
    now = 0.0
    for _ in range(200):  # 10 s of adverts at 50 ms
        assert r.deadline is not None
        now = r.deadline
        if any(isinstance(a, SendAdvert) for a in r.timer_fired(now)):
            times.append(now)
    assert len(times) == 200
    assert times[-1] == pytest.approx(200 * 0.05, abs=1e-6)  # no drift over 200 adverts


def test_master_steps_down_and_learns_the_interval() -> None:
    """Section 6.4.3: a higher priority; Master_Adver_Interval from its advert."""
    r = VirtualRouter(params(priority=100), ME)
    r.startup(0.0)
    r.timer_fired(r.master_down_at or 0.0)
    assert r.state is State.MASTER
    actions = r.receive(1.0, *v4(PEER, AdvertisementV3(51, 200, 20, (VIP,))))
    assert next(a for a in actions if isinstance(a, StateChanged)).new is State.BACKUP
    assert r.master_adver_int == 0.2
    assert r.master_down_at == pytest.approx(1.0 + rfc_mdi(100, 20), abs=EPS)


def test_no_authentication_is_checked_in_v3() -> None:
    """RFC 5798 section 5.2 removed authentication: a v3 router has none to compare."""
    r = backup(params(auth_type=AUTH_PASS, auth_data=pad_password(b"grr02")))
    assert r.receive(0.1, *v4(PEER, AdvertisementV3(51, 150, 5, (VIP,)))) == []


@pytest.mark.parametrize(
    ("advert", "header_ttl", "reason"),
    [
        (AdvertisementV3(51, 150, 5, ("192.0.2.7",)), 255, drops.ADDRESS_LIST),
        (AdvertisementV3(51, 150, 0, (VIP,)), 255, drops.ADVERT_INTERVAL),
        (AdvertisementV3(51, 150, 5, (VIP,)), 254, drops.TTL),
        (AdvertisementV3(52, 150, 5, (VIP,)), 255, drops.OTHER_VRID),
    ],
)
def test_v3_receive_checks(advert: AdvertisementV3, header_ttl: int, reason: str) -> None:
    r = backup()
    deadline = r.master_down_at
    actions = r.receive(0.1, *v4(PEER, advert, header_ttl))
    assert [a.reason for a in actions if isinstance(a, Discarded)] == [reason]
    assert r.master_down_at == deadline  # a dropped advert resets nothing


def test_versions_do_not_mix() -> None:
    """A v3 router drops v2 adverts and a v2 router v3 adverts (counter `version`)."""
    r = backup()
    v2 = Advertisement(51, 150, 1, (VIP,)).encode()
    actions = r.receive(0.1, IPv4Header(PEER, GROUP, 255, 112, 20, 40), v2)
    assert [a.reason for a in actions if isinstance(a, Discarded)] == [drops.VERSION]
    r2 = backup(params(version=2, adver_int=1))
    actions = r2.receive(0.1, *v4(PEER, AdvertisementV3(51, 150, 100, (VIP,))))
    assert [a.reason for a in actions if isinstance(a, Discarded)] == [drops.VERSION]


def test_ipv6_router_from_link_local_addresses() -> None:
    p = params(addresses=(VIP6,))
    assert p.family == 6
    r = backup(p, ME6)
    # the address list compares as addresses, not as text
    actions = r.receive(0.1, *v6(PEER6, AdvertisementV3(51, 100, 5, ("2001:0db8:0::100",))))
    assert actions == []
    assert r.master_seen is not None and r.master_seen.address == PEER6
    # equal priority: the higher link-local address stays master (section 6.4.3)
    r.timer_fired(r.master_down_at or 0.0)
    assert r.state is State.MASTER
    actions = r.receive(1.0, *v6(PEER6, AdvertisementV3(51, 100, 5, (VIP6,))))
    assert r.state is State.BACKUP, actions
    r.timer_fired(r.master_down_at or 0.0)
    assert r.state is State.MASTER
    r.receive(2.0, *v6("fe80::1", AdvertisementV3(51, 100, 5, (VIP6,))))
    assert r.state is State.MASTER  # a lower address: we stay


def test_ipv6_checksum_binds_the_advert_to_its_datagram() -> None:
    r = backup(params(addresses=(VIP6,)), ME6)
    header, wire = v6(PEER6, AdvertisementV3(51, 150, 5, (VIP6,)))
    forged = IPv6Header("fe80::99", header.destination, 255)
    actions = r.receive(0.1, forged, wire)
    assert [a.reason for a in actions if isinstance(a, Discarded)] == [drops.CHECKSUM]


def test_shutdown_sends_priority_zero_with_our_interval() -> None:
    r = VirtualRouter(params(priority=255), ME)
    r.startup(0.0)
    sent = [a.advert for a in r.shutdown(1.0) if isinstance(a, SendAdvert)]
    assert sent == [AdvertisementV3(51, 0, 5, (VIP,))]


def test_restart_forgets_the_learned_interval() -> None:
    """Section 6.4.1 again: a new Startup begins from our own interval."""
    r = backup(params(adver_int=1.0))
    r.receive(0.1, *v4(PEER, AdvertisementV3(51, 150, 5, (VIP,))))
    r.shutdown(0.2)
    r.startup(0.3)
    assert r.master_adver_int == 1.0
    assert r.master_down_at == pytest.approx(0.3 + rfc_mdi(100, 100), abs=EPS)


def test_lower_priority_with_preempt_is_ignored_and_not_learned() -> None:
    """Section 6.4.2: a lower priority with preempt is discarded; the timer runs on."""
    r = backup(params(adver_int=1.0, priority=200))
    deadline = r.master_down_at
    assert r.receive(0.1, *v4(LOWER, AdvertisementV3(51, 100, 5, (VIP,)))) == []
    assert r.master_adver_int == 1.0
    assert r.master_down_at == deadline
