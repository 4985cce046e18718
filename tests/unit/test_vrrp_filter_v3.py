"""The kernel filter with VRRPv3 routers (RFC 5798) beside VRRPv2 ones.

Run on the interpreter of test_vrrp_filter.py: v3 adverts of a v3 router
are expected, with no authentication to match; a v2 router still expects
only v2 adverts with its password; the two queues still complement; and
with no v3 router the program is exactly the v2 one.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import event, given, settings
from hypothesis import strategies as st

from lvsha.adapters.vrrp_socket import expected_advert_filter
from lvsha.core.packet import decode_ipv4
from lvsha.core.packet_v3 import AdvertisementV3
from lvsha.core.vrrp import Discarded, RouterParams, VirtualRouter
from tests.unit.test_vrrp_filter import LVS01, ME, OTHER, PEER, ROUTERS, advert, expected, ipv4

V3 = RouterParams("VI_4", 54, 100, 0.05, ("192.0.2.104",), version=3)
V3_UNICAST = RouterParams("VI_5", 55, 100, 0.05, ("192.0.2.105",), version=3, unicast_peers=(PEER,))
V3_IPV6 = RouterParams("VI_6", 56, 100, 0.05, ("2001:db8::106",), version=3)
MIXED = (*ROUTERS, V3, V3_UNICAST)


def v3(router: RouterParams, src: str = PEER, **changes: object) -> bytes:
    fields: dict[str, object] = {
        "vrid": router.vrid,
        "priority": 100,
        "max_adver_int": 5,
        "addresses": router.addresses,
        **changes,
    }
    return AdvertisementV3(**fields).encode_for(src, "224.0.0.18")  # type: ignore[arg-type]


def test_v2_only_program_is_unchanged() -> None:
    assert expected_advert_filter(ROUTERS) == expected_advert_filter((*ROUTERS, V3_IPV6))


def test_v3_adverts_are_expected_for_v3_routers() -> None:
    for router in (V3, V3_UNICAST):
        assert expected(ipv4(v3(router)), MIXED)
        assert expected(ipv4(v3(router, priority=0)), MIXED)
        assert expected(ipv4(v3(router, max_adver_int=100)), MIXED)  # another interval


def test_versions_are_held_apart() -> None:
    assert not expected(ipv4(v3(LVS01)), MIXED)  # a v3 advert for a v2 router
    v2_for_v3 = advert(LVS01, vrid=V3.vrid, addresses=V3.addresses)
    assert not expected(ipv4(v2_for_v3), MIXED)  # a v2 advert for a v3 router
    assert expected(ipv4(advert(LVS01)), MIXED)  # v2 still works beside v3
    assert not expected(ipv4(v3(V3_UNICAST), src=OTHER), MIXED)  # not its peer
    assert not expected(ipv4(v3(V3), ttl=64), MIXED)


@settings(max_examples=300)
@given(st.binary(max_size=48), st.sampled_from([0x21, 0x31, 0x32]))
def test_every_datagram_goes_to_exactly_one_queue(body: bytes, first: int) -> None:
    expected(ipv4(bytes([first]) + body), MIXED)


@settings(max_examples=300)
@given(
    router=st.sampled_from([V3, V3_UNICAST]),
    priority=st.sampled_from([0, 1, 100, 255]),
    interval=st.sampled_from([1, 5, 100, 4095]),
    broken=st.sampled_from([None, "source", "ttl", "vrid", "addresses"]),
)
def test_every_v3_advert_the_core_accepts_is_expected(
    router: RouterParams, priority: int, interval: int, broken: str | None
) -> None:
    src, ttl, changes = PEER, 255, {}
    match broken:
        case "source":
            src = OTHER
        case "ttl":
            ttl = 254
        case "vrid":
            changes = {"vrid": 99}
        case "addresses":
            changes = {"addresses": ("198.51.100.1",)}
    pkt = ipv4(v3(router, src, priority=priority, max_adver_int=interval, **changes), src, ttl)
    header, payload = decode_ipv4(pkt)
    actions = VirtualRouter(replace(router), ME).receive(0.0, header, payload)
    if any(isinstance(a, Discarded) for a in actions):
        event("the core drops it")
        return
    event("the core accepts it")
    assert expected(pkt, MIXED)
