"""The VRRPv3 codec of lvsha.core.packet_v3 (RFC 5798 section 5), IPv4 and IPv6.

Expected bytes are laid out here from the RFC's field layout, with the
pseudo-header checksum written out again; every packet is also checked
against scapy's VRRPv3 over IP and IPv6, an independent encoder whose
checksum covers the pseudo-header of its underlayer.
"""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.layers.vrrp import VRRPv3

from lvsha.core import drops
from lvsha.core.packet import Advertisement
from lvsha.core.packet_v3 import (
    VRRP_MULTICAST_GROUP_V6,
    AdvertisementV3,
    decode_advertisement_v3,
)
from lvsha.errors import PacketError

V4_SRC, V4_DST, V4_VIP = "192.0.2.1", "224.0.0.18", "192.0.2.100"
V6_SRC, V6_VIP = "fe80::1", "2001:db8::100"


def fold(data: bytes) -> int:
    """RFC 1071, again, so the test does not trust the code."""
    if len(data) % 2:
        data += b"\0"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def raw_v3(
    src: str,
    dst: str,
    addresses: tuple[str, ...],
    *,
    version: int = 3,
    ptype: int = 1,
    vrid: int = 51,
    priority: int = 100,
    interval: int = 5,
    reserved: int = 0,
) -> bytes:
    """RFC 5798 section 5.1 field by field, checksum over section 5.2.8's pseudo-header."""
    body = bytes([(version << 4) | ptype, vrid, priority, len(addresses)])
    body += struct.pack("!HH", (reserved << 12) | interval, 0)
    body += b"".join(ipaddress.ip_address(a).packed for a in addresses)
    s, d = ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed
    if len(s) == 4:
        pseudo = s + d + bytes([0, 112]) + struct.pack("!H", len(body))
    else:
        pseudo = s + d + struct.pack("!I", len(body)) + bytes([0, 0, 0, 112])
    return body[:6] + struct.pack("!H", fold(pseudo + body)) + body[8:]


def test_ipv4_advert_is_laid_out_as_section_5_1() -> None:
    advert = AdvertisementV3(51, 100, 5, (V4_VIP,))
    assert advert.encode_for(V4_SRC, V4_DST) == raw_v3(V4_SRC, V4_DST, (V4_VIP,))
    assert advert.encode_for(V4_SRC, V4_DST).hex() == "31336401000505d1c0000264"


def test_ipv6_advert_is_laid_out_as_section_5_1() -> None:
    advert = AdvertisementV3(51, 100, 5, (V6_VIP,))
    wire = advert.encode_for(V6_SRC, VRRP_MULTICAST_GROUP_V6)
    assert wire == raw_v3(V6_SRC, VRRP_MULTICAST_GROUP_V6, (V6_VIP,))
    assert len(wire) == 8 + 16


@pytest.mark.parametrize(
    ("src", "dst", "vips", "ip"),
    [
        (V4_SRC, V4_DST, (V4_VIP, "192.0.2.101"), IP),
        (V4_SRC, "192.0.2.2", (V4_VIP,), IP),  # unicast: the peer's address in the checksum
        (V6_SRC, VRRP_MULTICAST_GROUP_V6, (V6_VIP, "2001:db8::101"), IPv6),
        ("2001:db8::1", "2001:db8::2", (V6_VIP,), IPv6),
    ],
)
def test_scapy_builds_the_same_bytes_and_decodes_ours(
    src: str, dst: str, vips: tuple[str, ...], ip: type
) -> None:
    ours = AdvertisementV3(51, 150, 5, vips).encode_for(src, dst)
    under = ip(src=src, dst=dst)
    theirs = bytes(under / VRRPv3(vrid=51, priority=150, adv=5, addrlist=list(vips)))
    assert ours == theirs[-len(ours) :]
    parsed = VRRPv3(ours, _underlayer=under)
    assert (parsed.version, parsed.type, parsed.vrid, parsed.priority) == (3, 1, 51, 150)
    assert (parsed.ipcount, parsed.adv) == (len(vips), 5)
    assert [str(a) for a in parsed.addrlist] == list(vips)


def test_decode_reads_scapy_adverts() -> None:
    """scapy's own bytes, checksum and all, decode to what it was told."""
    under = IPv6(src=V6_SRC, dst=VRRP_MULTICAST_GROUP_V6)
    wire = bytes(under / VRRPv3(vrid=7, priority=200, adv=4095, addrlist=[V6_VIP]))[40:]
    advert = decode_advertisement_v3(wire, V6_SRC, VRRP_MULTICAST_GROUP_V6, 6)
    assert advert == AdvertisementV3(7, 200, 4095, (V6_VIP,))
    assert advert.adver_int == 40.95
    under4 = IP(src=V4_SRC, dst=V4_DST)
    wire = bytes(under4 / VRRPv3(vrid=7, priority=1, adv=1, addrlist=[V4_VIP]))[20:]
    assert decode_advertisement_v3(wire, V4_SRC, V4_DST, 4).addresses == (V4_VIP,)


@given(
    vrid=st.integers(1, 255),
    priority=st.integers(0, 255),
    interval=st.integers(1, 4095),
    v6=st.booleans(),
    count=st.integers(0, 20),
)
@settings(max_examples=200, deadline=None)
def test_round_trip(vrid: int, priority: int, interval: int, v6: bool, count: int) -> None:
    if v6:
        src, dst = V6_SRC, VRRP_MULTICAST_GROUP_V6
        vips = tuple(str(ipaddress.IPv6Address("2001:db8::") + i) for i in range(count))
    else:
        src, dst = V4_SRC, V4_DST
        vips = tuple(str(ipaddress.IPv4Address("192.0.2.0") + i) for i in range(count))
    advert = AdvertisementV3(vrid, priority, interval, vips)
    wire = advert.encode_for(src, dst)
    assert wire == raw_v3(src, dst, vips, vrid=vrid, priority=priority, interval=interval)
    assert decode_advertisement_v3(wire, src, dst, 6 if v6 else 4) == advert


def test_checksum_covers_the_pseudo_header() -> None:
    """Section 5.2.8: the same message from another source or to another peer fails."""
    wire = AdvertisementV3(51, 100, 5, (V4_VIP,)).encode_for(V4_SRC, V4_DST)
    assert decode_advertisement_v3(wire, V4_SRC, V4_DST, 4).priority == 100
    for src, dst in ((("192.0.2.9"), V4_DST), (V4_SRC, "192.0.2.2")):
        with pytest.raises(PacketError) as exc:
            decode_advertisement_v3(wire, src, dst, 4)
        assert exc.value.reason == drops.CHECKSUM


def test_reserved_bits_are_ignored_on_receive() -> None:
    """Section 5.2.6: Rsvd MUST be zero when sent and ignored when received."""
    wire = raw_v3(V4_SRC, V4_DST, (V4_VIP,), reserved=0xF, interval=100)
    assert decode_advertisement_v3(wire, V4_SRC, V4_DST, 4).max_adver_int == 100


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (raw_v3(V4_SRC, V4_DST, (V4_VIP,))[:7], drops.LENGTH),
        (raw_v3(V4_SRC, V4_DST, (V4_VIP,))[:10], drops.LENGTH),
        (raw_v3(V4_SRC, V4_DST, (V4_VIP,), version=2), drops.VERSION),
        (raw_v3(V4_SRC, V4_DST, (V4_VIP,), ptype=2), drops.TYPE),
        (Advertisement(51, 100, 1, (V4_VIP,)).encode(), drops.VERSION),
    ],
)
def test_bad_packets_are_dropped_with_a_reason(wire: bytes, reason: str) -> None:
    with pytest.raises(PacketError) as exc:
        decode_advertisement_v3(wire, V4_SRC, V4_DST, 4)
    assert exc.value.reason == reason


def test_an_ipv6_count_reads_sixteen_octets_each() -> None:
    wire = raw_v3(V4_SRC, V4_DST, (V4_VIP,) * 4)  # 16 octets of addresses, count 4
    with pytest.raises(PacketError) as exc:
        decode_advertisement_v3(wire, V4_SRC, V4_DST, 6)
    assert exc.value.reason == drops.LENGTH


def test_mixed_families_are_a_drop_not_a_crash() -> None:
    wire = raw_v3(V4_SRC, V4_DST, (V4_VIP,))
    with pytest.raises(PacketError):
        decode_advertisement_v3(wire, V6_SRC, V4_DST, 4)


def test_an_interval_beyond_12_bits_is_refused_on_encode() -> None:
    with pytest.raises(ValueError, match="12 bits"):
        AdvertisementV3(51, 100, 4096, (V4_VIP,)).body()
