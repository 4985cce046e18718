"""The VRRPv2 codec of lvsha.core.packet (RFC 3768 section 5).

Expected bytes are built here from the RFC's field layout, and every packet is
also checked against scapy's VRRP, IP, Ether and ARP layers: an independent
decoder and packet forge.
"""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, IPOption_Router_Alert
from scapy.layers.l2 import ARP, Ether
from scapy.layers.vrrp import VRRP
from scapy.utils import checksum as scapy_checksum

from lvsha.core.packet import (
    AUTH_NONE,
    AUTH_PASS,
    IPPROTO_VRRP,
    VRRP_MULTICAST_GROUP,
    Advertisement,
    decode_advertisement,
    decode_ipv4,
    gratuitous_arp_frame,
    internet_checksum,
    mac_bytes,
    pad_password,
)
from lvsha.errors import PacketError

# The reference "lvs01" instance (DESIGN.md), on a documentation address.
VIP = "203.0.113.84"
MAC = "02:00:5e:00:53:01"
GRR02 = b"grr02\x00\x00\x00"  # keepalived auth_type PASS, auth_pass grr02


def fold_checksum(data: bytes) -> int:
    """RFC 1071 section 4.1, written out again so the test does not trust the code."""
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def raw_vrrp(
    *,
    version: int = 2,
    ptype: int = 1,
    vrid: int = 51,
    priority: int = 100,
    count: int | None = None,
    auth_type: int = AUTH_PASS,
    adver_int: int = 1,
    addresses: tuple[str, ...] = (VIP,),
    auth_data: bytes = GRR02,
    checksum: int | None = None,
) -> bytes:
    """A VRRP packet laid out field by field from RFC 3768 section 5.1."""
    if count is None:
        count = len(addresses)
    body = bytes([(version << 4) | ptype, vrid, priority, count, auth_type, adver_int, 0, 0])
    body += b"".join(ipaddress.IPv4Address(a).packed for a in addresses) + auth_data
    if checksum is None:
        checksum = fold_checksum(body)
    return body[:6] + struct.pack("!H", checksum) + body[8:]


def lvs01_advert(**overrides: object) -> Advertisement:
    fields: dict[str, object] = {
        "vrid": 51,
        "priority": 100,
        "adver_int": 1,
        "addresses": (VIP,),
        "auth_type": AUTH_PASS,
        "auth_data": GRR02,
    }
    fields.update(overrides)
    return Advertisement(**fields)  # type: ignore[arg-type]


# ---------------------------------------------------------------- checksum --


def test_checksum_matches_rfc1071_worked_example() -> None:
    # RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to 2ddf0, which
    # folds to ddf2; the checksum is its complement.
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert internet_checksum(data) == ~0xDDF2 & 0xFFFF == 0x220D


def test_checksum_folds_every_carry() -> None:
    # ffff + ffff = 1fffe -> fffe + 1 = ffff -> complement 0.
    assert internet_checksum(b"\xff\xff\xff\xff") == 0
    # A zero sum complements to all ones.
    assert internet_checksum(b"\x00\x00") == 0xFFFF


def test_checksum_pads_odd_length_with_a_zero_octet() -> None:
    # RFC 1071 section 4.1: a trailing odd octet is the high byte of a word.
    assert internet_checksum(b"\x01") == ~0x0100 & 0xFFFF
    assert internet_checksum(b"\x12\x34\x56") == internet_checksum(b"\x12\x34\x56\x00")


@given(st.binary(max_size=600))
def test_checksum_agrees_with_independent_implementations(data: bytes) -> None:
    expected = fold_checksum(data)
    assert internet_checksum(data) == expected
    assert scapy_checksum(data) == expected


def test_encoded_packet_checksum_verifies_to_zero() -> None:
    wire = lvs01_advert().encode()
    # Summing the packet with its checksum in place gives all ones (RFC 1071).
    assert internet_checksum(wire) == 0
    stored = struct.unpack_from("!H", wire, 6)[0]
    assert stored == fold_checksum(wire[:6] + b"\x00\x00" + wire[8:])


# ---------------------------------------------------------------- encoding --


def test_encode_lvs01_advert_matches_rfc_layout() -> None:
    wire = lvs01_advert().encode()
    assert wire == raw_vrrp()
    # Spelled out: version 2 / type 1, VRID 51, priority 100, 1 address,
    # auth type 1, advert interval 1, checksum, 203.0.113.84, "grr02" padded.
    assert wire[:6] == bytes([0x21, 51, 100, 1, 1, 1])
    assert wire[8:12] == bytes([203, 0, 113, 84])
    assert wire[12:] == b"grr02\x00\x00\x00"
    assert len(wire) == 8 + 4 + 8


def test_auth_none_keeps_eight_zero_octets_of_auth_data() -> None:
    # RFC 3768 section 5.3.6: the 8 octets stay on the wire, set to zero.
    wire = Advertisement(7, 200, 3, ("192.0.2.1",)).encode()
    assert wire[4] == AUTH_NONE
    assert wire[-8:] == b"\x00" * 8
    assert len(wire) == 20
    assert decode_advertisement(wire) == Advertisement(7, 200, 3, ("192.0.2.1",))


def test_pad_password_zero_pads_to_eight_octets() -> None:
    assert pad_password(b"grr02") == GRR02
    assert pad_password(b"") == b"\x00" * 8
    assert pad_password(b"12345678") == b"12345678"
    with pytest.raises(ValueError):
        pad_password(b"123456789")


def test_encode_pads_short_auth_data() -> None:
    short = lvs01_advert(auth_data=b"grr02").encode()
    assert short == lvs01_advert().encode()


@pytest.mark.parametrize("count", [0, 1, 2, 3, 16, 255])
def test_address_list_round_trip(count: int) -> None:
    net = ipaddress.IPv4Network("198.51.100.0/24")
    addresses = tuple(str(net[i]) for i in range(count))
    advert = lvs01_advert(addresses=addresses)
    wire = advert.encode()
    assert wire[3] == count
    assert len(wire) == 8 + 4 * count + 8
    for i, address in enumerate(addresses):
        assert wire[8 + 4 * i : 12 + 4 * i] == ipaddress.IPv4Address(address).packed
    assert decode_advertisement(wire) == advert


def test_round_trip_lvs01() -> None:
    advert = lvs01_advert()
    assert decode_advertisement(advert.encode()) == advert


def test_decode_ignores_octets_after_the_packet() -> None:
    # The length check of section 7.1 asks for at least the complete packet;
    # the payload length comes from the IP header, which decode_ipv4 applies.
    advert = lvs01_advert()
    assert decode_advertisement(advert.encode() + b"\x00\x00") == advert


# --------------------------------------------------------- decode failures --


def _flip_checksum(wire: bytes) -> bytes:
    return wire[:6] + bytes([wire[6] ^ 0x01]) + wire[7:]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param(b"", "length", id="empty"),
        pytest.param(raw_vrrp()[:7], "length", id="shorter-than-header"),
        pytest.param(raw_vrrp()[:8], "length", id="header-only"),
        pytest.param(raw_vrrp()[:-1], "length", id="auth-data-cut"),
        pytest.param(raw_vrrp(count=2), "length", id="count-exceeds-addresses"),
        pytest.param(raw_vrrp(version=3), "version", id="version-3"),
        pytest.param(raw_vrrp(version=1), "version", id="version-1"),
        pytest.param(raw_vrrp(version=0), "version", id="version-0"),
        pytest.param(raw_vrrp(ptype=0), "type", id="type-0"),
        pytest.param(raw_vrrp(ptype=2), "type", id="type-2"),
        pytest.param(raw_vrrp(ptype=15), "type", id="type-15"),
        pytest.param(_flip_checksum(raw_vrrp()), "checksum", id="checksum-bit"),
        pytest.param(raw_vrrp(checksum=0), "checksum", id="checksum-zero"),
        pytest.param(
            raw_vrrp()[:9] + bytes([raw_vrrp()[9] ^ 0x80]) + raw_vrrp()[10:],
            "checksum",
            id="address-corrupted",
        ),
    ],
)
def test_decode_failure_reason(data: bytes, reason: str) -> None:
    with pytest.raises(PacketError) as info:
        decode_advertisement(data)
    assert type(info.value) is PacketError
    assert info.value.reason == reason
    assert str(info.value).startswith(reason)


def valid_adverts() -> st.SearchStrategy[Advertisement]:
    octet = st.integers(0, 255)
    address = st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
    return st.builds(
        Advertisement,
        vrid=octet,
        priority=octet,
        adver_int=octet,
        addresses=st.lists(address, max_size=255).map(tuple),
        auth_type=octet,
        auth_data=st.binary(min_size=8, max_size=8),
    )


@settings(max_examples=300)
@given(valid_adverts())
def test_property_decode_inverts_encode(advert: Advertisement) -> None:
    wire = advert.encode()
    assert len(wire) == 16 + 4 * len(advert.addresses)
    assert internet_checksum(wire) == 0
    assert decode_advertisement(wire) == advert


@settings(max_examples=500)
@given(st.binary(max_size=1100))
def test_property_decode_advertisement_raises_only_packet_error(data: bytes) -> None:
    try:
        advert = decode_advertisement(data)
    except PacketError as exc:
        assert exc.reason in {"length", "version", "type", "checksum"}
    else:
        # Whatever decodes must be a verified VRRPv2 advertisement.
        assert data[0] == 0x21
        assert internet_checksum(data[: 16 + 4 * data[3]]) == 0
        assert advert.encode() == data[: 16 + 4 * data[3]]


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_property_decode_advertisement_on_vrrp_looking_bytes(tail: bytes) -> None:
    # Random bytes rarely pass the version check; start them with 0x21.
    data = b"\x21" + tail
    try:
        decode_advertisement(data)
    except PacketError as exc:
        assert exc.reason in {"length", "checksum"}


@settings(max_examples=300)
@given(valid_adverts(), st.data())
def test_property_any_single_octet_change_is_detected(
    advert: Advertisement, data: st.DataObject
) -> None:
    # A one-octet change moves one 16-bit word by d or d*256 with 0 < d < 256,
    # never a multiple of 0xffff, so the one's complement sum always sees it.
    # The address count (octet 3) is left out: it also moves the packet's end.
    wire = advert.encode()
    index = data.draw(st.integers(0, len(wire) - 1).filter(lambda i: i != 3))
    new = data.draw(st.integers(0, 255).filter(lambda b: b != wire[index]))
    mutated = wire[:index] + bytes([new]) + wire[index + 1 :]
    with pytest.raises(PacketError) as info:
        decode_advertisement(mutated)
    assert info.value.reason in ({"version", "type"} if index == 0 else {"checksum"})


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_property_decode_ipv4_raises_only_packet_error(data: bytes) -> None:
    try:
        header, payload = decode_ipv4(data)
    except PacketError as exc:
        assert exc.reason in {"length", "ip_version"}
    else:
        assert data[0] >> 4 == 4
        assert header.header_len == (data[0] & 0x0F) * 4 >= 20
        assert payload == data[header.header_len : header.header_len + len(payload)]


@settings(max_examples=500)
@given(st.binary(min_size=19, max_size=80))
def test_property_decode_ipv4_on_ipv4_looking_bytes(tail: bytes) -> None:
    data = bytes([0x45]) + tail
    try:
        decode_ipv4(data)
    except PacketError as exc:
        assert exc.reason == "length"


# -------------------------------------------------------------------- IPv4 --


def test_decode_ipv4_of_a_scapy_datagram() -> None:
    vrrp = lvs01_advert().encode()
    datagram = bytes(
        IP(src="198.51.100.1", dst=VRRP_MULTICAST_GROUP, ttl=255, proto=IPPROTO_VRRP) / vrrp
    )
    header, payload = decode_ipv4(datagram)
    assert header.source == "198.51.100.1"
    assert header.destination == VRRP_MULTICAST_GROUP
    assert header.ttl == 255
    assert header.protocol == IPPROTO_VRRP
    assert header.header_len == 20
    assert header.total_len == 20 + len(vrrp)
    assert payload == vrrp


def test_decode_ipv4_skips_options_and_trims_link_padding() -> None:
    vrrp = lvs01_advert().encode()
    ip = IP(src="198.51.100.2", dst=VRRP_MULTICAST_GROUP, ttl=255, proto=IPPROTO_VRRP)
    ip.options = [IPOption_Router_Alert()]
    datagram = bytes(ip / vrrp)
    assert datagram[0] & 0x0F == 6  # a 24-octet header
    # Ethernet pads short frames; the IP total length says where data ends.
    header, payload = decode_ipv4(datagram + b"\x00" * 10)
    assert header.header_len == 24
    assert payload == vrrp


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param(b"\x45" + b"\x00" * 18, "length", id="19-octets"),
        pytest.param(b"\x65" + b"\x00" * 39, "ip_version", id="ipv6-nibble"),
        pytest.param(b"\x44" + b"\x00" * 39, "length", id="ihl-4"),
        pytest.param(b"\x4f" + b"\x00" * 39, "length", id="ihl-15-in-40"),
    ],
)
def test_decode_ipv4_failure_reason(data: bytes, reason: str) -> None:
    with pytest.raises(PacketError) as info:
        decode_ipv4(data)
    assert type(info.value) is PacketError
    assert info.value.reason == reason


# --------------------------------------------------- scapy as a second opinion --


def _scapy_auth(auth_data: bytes) -> tuple[int, int]:
    return int.from_bytes(auth_data[:4], "big"), int.from_bytes(auth_data[4:], "big")


@pytest.mark.parametrize(
    "advert",
    [
        lvs01_advert(),
        lvs01_advert(priority=0),
        lvs01_advert(priority=255, vrid=1, adver_int=255),
        Advertisement(200, 150, 3, ("192.0.2.1", "192.0.2.2", "198.51.100.7")),
        Advertisement(9, 1, 1, ()),
    ],
    ids=["lvs01", "priority-0", "owner", "auth-none-3-addresses", "no-address"],
)
def test_scapy_decodes_what_lvsha_encodes(advert: Advertisement) -> None:
    wire = advert.encode()
    pkt = VRRP(wire)
    assert pkt.version == 2
    assert pkt.type == 1
    assert pkt.vrid == advert.vrid
    assert pkt.priority == advert.priority
    assert pkt.ipcount == len(advert.addresses)
    assert pkt.authtype == advert.auth_type
    assert pkt.adv == advert.adver_int
    assert pkt.chksum == struct.unpack_from("!H", wire, 6)[0]
    assert list(pkt.addrlist) == list(advert.addresses)
    assert (pkt.auth1, pkt.auth2) == _scapy_auth(advert.auth_data)
    # scapy computes the same checksum when asked to fill it in.
    pkt.chksum = None
    assert bytes(pkt) == wire


def test_lvsha_decodes_what_scapy_builds() -> None:
    auth1, auth2 = _scapy_auth(GRR02)
    pkt = VRRP(
        vrid=51,
        priority=100,
        authtype=1,
        adv=1,
        addrlist=[VIP, "203.0.113.85"],
        auth1=auth1,
        auth2=auth2,
    )
    advert = decode_advertisement(bytes(pkt))
    assert advert == Advertisement(51, 100, 1, (VIP, "203.0.113.85"), AUTH_PASS, GRR02)


def test_lvsha_decodes_scapy_datagram_end_to_end() -> None:
    pkt = IP(src="198.51.100.9", dst=VRRP_MULTICAST_GROUP, ttl=255) / VRRP(
        vrid=51, priority=0, addrlist=[VIP]
    )
    header, payload = decode_ipv4(bytes(pkt))
    assert header.protocol == IPPROTO_VRRP  # scapy binds VRRP to protocol 112
    assert decode_advertisement(payload) == Advertisement(51, 0, 1, (VIP,))


@settings(max_examples=100)
@given(valid_adverts())
def test_property_scapy_agrees_on_every_field(advert: Advertisement) -> None:
    pkt = VRRP(advert.encode())
    assert (pkt.vrid, pkt.priority, pkt.adv, pkt.authtype) == (
        advert.vrid,
        advert.priority,
        advert.adver_int,
        advert.auth_type,
    )
    assert list(pkt.addrlist) == list(advert.addresses)
    assert (pkt.auth1, pkt.auth2) == _scapy_auth(advert.auth_data)


def test_scapy_forged_checksums_good_and_bad() -> None:
    # The checksum scapy builds for a forged packet is the one lvsha expects;
    # a forged wrong one is refused by lvsha with the checksum reason.
    good = bytes(VRRP(vrid=51, priority=100, addrlist=[VIP]))
    bad = bytes(VRRP(vrid=51, priority=100, addrlist=[VIP], chksum=0x1234))
    assert decode_advertisement(good).vrid == 51
    with pytest.raises(PacketError) as info:
        decode_advertisement(bad)
    assert info.value.reason == "checksum"


# ----------------------------------------------------------- gratuitous ARP --


def test_gratuitous_arp_frame_decoded_by_scapy() -> None:
    frame = gratuitous_arp_frame(MAC, VIP)
    assert len(frame) == 14 + 28  # Ethernet header + ARP for IPv4 over Ethernet
    eth = Ether(frame)
    assert eth.dst == "ff:ff:ff:ff:ff:ff"
    assert eth.src == MAC
    assert eth.type == 0x0806
    arp = eth[ARP]
    assert arp.hwtype == 1
    assert arp.ptype == 0x0800
    assert arp.hwlen == 6
    assert arp.plen == 4
    assert arp.op == 1  # who-has: an ARP Announcement is a request (RFC 5227)
    assert arp.hwsrc == MAC
    assert arp.psrc == VIP
    assert arp.pdst == VIP
    assert arp.hwdst == "00:00:00:00:00:00"


def test_gratuitous_arp_frame_equals_scapy_forged_frame() -> None:
    forged = Ether(dst="ff:ff:ff:ff:ff:ff", src=MAC) / ARP(
        op=1, hwsrc=MAC, psrc=VIP, hwdst="00:00:00:00:00:00", pdst=VIP
    )
    assert gratuitous_arp_frame(MAC, VIP) == bytes(forged)


def test_mac_bytes() -> None:
    assert mac_bytes(MAC) == bytes([0x02, 0x00, 0x5E, 0x00, 0x53, 0x01])
    assert mac_bytes("FF:ff:00:00:00:0A") == b"\xff\xff\x00\x00\x00\x0a"
    for bad in ("02:00:5e:00:53", "02:00:5e:00:53:01:07", "not-a-mac"):
        with pytest.raises(ValueError):
            mac_bytes(bad)
