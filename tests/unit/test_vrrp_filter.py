"""The kernel filter that gives expected adverts a receive queue of their own.

`expected_advert_filter` is classic BPF; a small interpreter written here from
Documentation/networking/filter.rst runs it on datagrams. Three properties
make the two-queue receiver safe:

* the program never aborts (an out-of-bounds load would make the kernel drop
  the datagram), so with ACCEPT and REJECT swapped it is the exact
  complement: each datagram goes to exactly one of the two sockets;
* every advert the core accepts is expected (it never waits behind a flood);
* what a flood without the password can forge is not expected.
"""

from __future__ import annotations

import ipaddress
import struct

from hypothesis import event, given, settings
from hypothesis import strategies as st

from lvsha.adapters.vrrp_socket import (
    ACCEPT,
    BPF_MAXINSNS,
    REJECT,
    Insn,
    expected_advert_filter,
)
from lvsha.adapters.vrrp_socket6 import SKF_NET_OFF
from lvsha.core.packet import AUTH_NONE, AUTH_PASS, Advertisement, decode_ipv4, pad_password
from lvsha.core.vrrp import Discarded, RouterParams, VirtualRouter

VIP = "192.0.2.100"
PEER = "192.0.2.11"
ME = "192.0.2.12"
OTHER = "192.0.2.66"
GRR02 = pad_password(b"grr02")

LVS01 = RouterParams("VI_1", 51, 100, 1, (VIP,), auth_type=AUTH_PASS, auth_data=GRR02)
OPEN = RouterParams("VI_2", 52, 100, 1, ("192.0.2.101",))
UNICAST = RouterParams(
    "VI_3",
    53,
    100,
    1,
    ("192.0.2.102",),
    auth_type=AUTH_PASS,
    auth_data=GRR02,
    unicast_peers=(PEER,),
)
ROUTERS = (LVS01, OPEN, UNICAST)


class Aborted(Exception):
    """A load past the end of the datagram: the kernel would drop it."""


def run(prog: list[Insn], pkt: bytes, net: bytes = b"") -> int:
    """Classic BPF, the instructions the IPv4 and IPv6 filters use; bounded by the length.

    `net`: the network header that loads at SKF_NET_OFF read (an AF_INET6 raw
    socket's filter sees the datagram from the VRRP header on).
    """
    a = x = pc = 0
    mask = 0xFFFFFFFF
    for _ in range(len(prog)):  # no backward jumps: each instruction runs at most once
        code, jt, jf, k = prog[pc]
        pc += 1

        def load(offset: int, size: int) -> int:
            data, at = (net, offset - SKF_NET_OFF) if offset >= SKF_NET_OFF else (pkt, offset)
            if at + size > len(data):
                raise Aborted
            return int.from_bytes(data[at : at + size], "big")

        if code == 0x30:
            a = load(k, 1)
        elif code == 0x20:
            a = load(k, 4)
        elif code == 0x80:
            a = len(pkt)
        elif code == 0x50:
            a = load(x + k, 1)
        elif code == 0x40:
            a = load(x + k, 4)
        elif code == 0xB1:
            x = 4 * (load(k, 1) & 0x0F)
        elif code == 0x64:
            a = (a << k) & mask
        elif code == 0x04:
            a = (a + k) & mask
        elif code == 0x0C:
            a = (a + x) & mask
        elif code == 0x14:
            a = (a - k) & mask
        elif code == 0x07:
            x = a
        elif code == 0x15:
            pc += jt if a == k else jf
        elif code == 0x35:
            pc += jt if a >= k else jf
        elif code == 0x3D:
            pc += jt if a >= x else jf
        elif code == 0x06:
            return k
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
    raise AssertionError("fell off the end of the program")


def ipv4(payload: bytes, src: str = PEER, ttl: int = 255, options: bytes = b"") -> bytes:
    """An IPv4 header (checksum left 0: the filter does not read it) and payload."""
    ihl = (20 + len(options)) // 4
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x40 | ihl,
        0xC0,
        4 * ihl + len(payload),
        0,
        0,
        ttl,
        112,
        0,
        ipaddress.IPv4Address(src).packed,
        ipaddress.IPv4Address("224.0.0.18").packed,
    )
    return header + options + payload


def expected(pkt: bytes, routers: tuple[RouterParams, ...] = ROUTERS) -> bool:
    accept = run(expected_advert_filter(routers), pkt)
    reject = run(expected_advert_filter(routers, REJECT, ACCEPT), pkt)
    assert {accept, reject} == {ACCEPT, REJECT}, "exactly one socket gets each datagram"
    return accept == ACCEPT


def advert(router: RouterParams, **changes: object) -> bytes:
    fields: dict[str, object] = {
        "vrid": router.vrid,
        "priority": 100,
        "adver_int": router.adver_int,
        "addresses": router.addresses,
        "auth_type": router.auth_type,
        "auth_data": router.auth_data,
        **changes,
    }
    return Advertisement(**fields).encode()  # type: ignore[arg-type]


def test_real_adverts_are_expected() -> None:
    for router in ROUTERS:
        assert expected(ipv4(advert(router)))
        assert expected(ipv4(advert(router, priority=0)))  # a master that leaves
        assert expected(ipv4(advert(router), options=b"\x94\x04\x00\x00"))  # router alert


def test_what_a_flood_without_the_password_can_forge_is_not_expected() -> None:
    good = advert(LVS01)
    assert not expected(ipv4(good, ttl=64))
    assert not expected(ipv4(advert(LVS01, vrid=99)))
    assert not expected(ipv4(advert(LVS01, auth_data=pad_password(b"wrong"))))
    assert not expected(ipv4(advert(LVS01, auth_data=pad_password(b"grr0"))))
    assert not expected(ipv4(advert(LVS01, auth_type=AUTH_NONE, auth_data=bytes(8))))
    assert not expected(ipv4(bytes([0x31]) + good[1:]))  # version 3
    assert not expected(ipv4(bytes([0x22]) + good[1:]))  # type 2
    assert not expected(ipv4(good[:7]))  # no whole VRRP header
    assert not expected(ipv4(good[:-1]))  # the password cut short
    assert not expected(ipv4(good[:3] + b"\xff" + good[4:]))  # count 255, 20 octets
    assert not expected(ipv4(advert(UNICAST), src=OTHER))  # not a unicast peer
    assert not expected(ipv4(advert(OPEN, auth_type=AUTH_PASS, auth_data=GRR02)))


def test_no_router_expects_nothing_and_too_many_are_left_out() -> None:
    assert not expected(ipv4(advert(LVS01)), routers=())
    many = tuple(
        RouterParams(f"VI_{v}", v, 100, 1, (VIP,), auth_type=AUTH_PASS, auth_data=GRR02)
        for v in range(1, 256)
    )
    prog = expected_advert_filter(many)
    assert len(prog) <= BPF_MAXINSNS
    assert expected(ipv4(advert(many[0])), routers=many)
    assert not expected(ipv4(advert(many[-1])), routers=many)  # shares the other queue


ipv4_datagrams = st.builds(
    lambda ihl, ttl, body: ipv4(body, ttl=ttl, options=bytes(4 * ihl - 20)),
    st.integers(5, 15),
    st.sampled_from([255, 255, 64]),
    st.binary(max_size=64),
)


@settings(max_examples=500)
@given(ipv4_datagrams)
def test_every_datagram_goes_to_exactly_one_queue(pkt: bytes) -> None:
    expected(pkt)  # asserts that the program never aborts and the two complement


@settings(max_examples=500)
@given(
    router=st.sampled_from(ROUTERS),
    priority=st.sampled_from([0, 1, 100, 254, 255]),
    broken=st.sampled_from(
        [None, "source", "ttl", "vrid", "interval", "addresses", "auth_type", "password", "length"]
    ),
)
def test_every_advert_the_core_accepts_is_expected(
    router: RouterParams, priority: int, broken: str | None
) -> None:
    """Each example breaks at most one field of an advert for one of the routers."""
    src, ttl, vrid, interval = PEER, 255, router.vrid, router.adver_int
    addresses, auth_type, auth_data, cut = router.addresses, router.auth_type, router.auth_data, 0
    match broken:
        case "source":
            src = OTHER
        case "ttl":
            ttl = 254
        case "vrid":
            vrid = 99
        case "interval":
            interval = 2
        case "addresses":
            addresses = ("198.51.100.1",)
        case "auth_type":
            auth_type, auth_data = AUTH_NONE, bytes(8)
        case "password":
            auth_type, auth_data = AUTH_PASS, pad_password(b"wrong")
        case "length":
            cut = 1
    body = Advertisement(vrid, priority, interval, addresses, auth_type, auth_data).encode()
    pkt = ipv4(body[: len(body) - cut], src, ttl)
    header, payload = decode_ipv4(pkt)
    actions = VirtualRouter(router, ME).receive(0.0, header, payload)
    if any(isinstance(a, Discarded) for a in actions):
        event("the core drops it")
        return
    event("the core accepts it")
    assert expected(pkt)
