"""The IPv6 kernel filter that gives expected VRRPv3 adverts a receive queue of their own.

`expected_advert_filter6` is classic BPF for an AF_INET6 raw socket: it sees
the VRRP message from offset 0 and the IPv6 header at SKF_NET_OFF. The IPv4
filter's test interpreter (Documentation/networking/filter.rst) runs it
on (payload, IPv6 header) pairs. The properties are those of the IPv4
filter (tests/unit/test_vrrp_filter.py): it never aborts, so with ACCEPT
and REJECT swapped it is the exact complement; every advert the core
accepts is expected; what a flood can forge without the right hop limit,
version, VRID or source is not.
"""

from __future__ import annotations

import ipaddress
import struct

from hypothesis import event, given, settings
from hypothesis import strategies as st
from test_vrrp_filter import run

from lvsha.adapters.vrrp_socket import ACCEPT, BPF_MAXINSNS, REJECT
from lvsha.adapters.vrrp_socket6 import MAX_PEERS_CHECKED, expected_advert_filter6
from lvsha.core.packet_v3 import VRRP_MULTICAST_GROUP_V6, AdvertisementV3, IPv6Header
from lvsha.core.vrrp import Discarded, RouterParams, VirtualRouter

VIP6 = "2001:db8::100"
PEER, ME, OTHER = "fe80::11", "fe80::12", "fe80::66"
GLOBAL_PEER = "2001:db8::11"

MULTICAST = RouterParams("VI_6", 51, 100, 0.1, (VIP6,), version=3)
UNICAST = RouterParams(
    "VI_7", 53, 100, 0.1, ("2001:db8::102",), version=3, unicast_peers=(GLOBAL_PEER, PEER)
)
IPV4 = RouterParams("VI_4", 52, 100, 0.1, ("192.0.2.100",), version=3)
ROUTERS = (MULTICAST, UNICAST, IPV4)


def ipv6_header(payload: bytes, src: str, hops: int = 255) -> bytes:
    return struct.pack(
        "!IHBB16s16s",
        0x6 << 28,
        len(payload),
        112,
        hops,
        ipaddress.IPv6Address(src).packed,
        ipaddress.IPv6Address(VRRP_MULTICAST_GROUP_V6).packed,
    )


def expected(
    payload: bytes, src: str = PEER, hops: int = 255, routers: tuple[RouterParams, ...] = ROUTERS
) -> bool:
    net = ipv6_header(payload, src, hops)
    accept = run(expected_advert_filter6(routers), payload, net)
    reject = run(expected_advert_filter6(routers, REJECT, ACCEPT), payload, net)
    assert {accept, reject} == {ACCEPT, REJECT}, "exactly one socket gets each datagram"
    return accept == ACCEPT


def advert(router: RouterParams, src: str = PEER, **changes: object) -> bytes:
    fields: dict[str, object] = {
        "vrid": router.vrid,
        "priority": 100,
        "max_adver_int": round(router.adver_int * 100),
        "addresses": router.addresses,
        **changes,
    }
    return AdvertisementV3(**fields).encode_for(src, VRRP_MULTICAST_GROUP_V6)  # type: ignore[arg-type]


def test_real_ipv6_adverts_are_expected() -> None:
    assert expected(advert(MULTICAST))
    assert expected(advert(MULTICAST, priority=0))  # a master that leaves
    assert expected(advert(MULTICAST, src=OTHER), src=OTHER)  # multicast: any source
    for peer in UNICAST.unicast_peers:
        assert expected(advert(UNICAST, src=peer), src=peer)


def test_what_a_flood_can_forge_is_not_expected() -> None:
    good = advert(MULTICAST)
    assert not expected(good, hops=64)
    assert not expected(good, hops=254)
    assert not expected(advert(MULTICAST, vrid=99))
    assert not expected(bytes([0x21]) + good[1:])  # version 2
    assert not expected(bytes([0x32]) + good[1:])  # type 2
    assert not expected(good[:7])  # no whole VRRP header
    assert not expected(b"")
    assert not expected(advert(UNICAST, src=OTHER), src=OTHER)  # not a unicast peer
    assert not expected(advert(IPV4))  # an IPv4 router's VRID is not on this socket


def test_no_router_expects_nothing_and_many_fit() -> None:
    assert not expected(advert(MULTICAST), routers=())
    many = tuple(
        RouterParams(f"VI_{v}", v, 100, 0.1, (VIP6,), version=3, unicast_peers=(PEER,))
        for v in range(1, 256)
    )
    assert len(expected_advert_filter6(many)) <= BPF_MAXINSNS
    assert expected(advert(many[0]), routers=many)
    crowded = RouterParams(
        "VI_8",
        54,
        100,
        0.1,
        (VIP6,),
        version=3,
        unicast_peers=tuple(f"fe80::{i + 1:x}" for i in range(MAX_PEERS_CHECKED + 1)),
    )  # too many peers for the jumps: taken by its VRID alone, the core checks the source
    assert expected(advert(crowded, src=OTHER), src=OTHER, routers=(crowded,))


@settings(max_examples=500)
@given(
    body=st.binary(max_size=64),
    hops=st.sampled_from([255, 255, 64, 1]),
    src=st.sampled_from([PEER, GLOBAL_PEER, OTHER]),
)
def test_every_datagram_goes_to_exactly_one_queue(body: bytes, hops: int, src: str) -> None:
    expected(body, src, hops)  # asserts that the program never aborts and the two complement


@settings(max_examples=300)
@given(
    router=st.sampled_from((MULTICAST, UNICAST)),
    priority=st.sampled_from([0, 1, 100, 254, 255]),
    broken=st.sampled_from([None, "source", "hops", "vrid", "addresses", "checksum", "length"]),
)
def test_every_advert_the_core_accepts_is_expected(
    router: RouterParams, priority: int, broken: str | None
) -> None:
    """Each example breaks at most one field of an advert for one of the routers."""
    src, hops, vrid, addresses = PEER, 255, router.vrid, router.addresses
    if broken == "source":
        src = OTHER
    elif broken == "hops":
        hops = 64
    elif broken == "vrid":
        vrid = 99
    elif broken == "addresses":
        addresses = ("2001:db8::999",)
    payload = advert(router, src, vrid=vrid, priority=priority, addresses=addresses)
    if broken == "checksum":
        payload = payload[:6] + bytes([payload[6] ^ 0xFF]) + payload[7:]
    elif broken == "length":
        payload = payload[:-1]
    header = IPv6Header(src, VRRP_MULTICAST_GROUP_V6, hops)
    actions = VirtualRouter(router, ME).receive(0.0, header, payload)
    if any(isinstance(a, Discarded) for a in actions):
        event("the core drops it")
        return
    event("the core accepts it")
    assert expected(payload, src, hops)
