"""VRRPv3 advertisement codec (RFC 5798 section 5), for IPv4 and IPv6.

Pure: bytes in, dataclasses out, and back. Decoding untrusted bytes raises
only `PacketError`, whose `reason` is the counter key of the drop.

Against VRRPv2 (lvsha.core.packet): version 3; no authentication fields
(section 5.2 removed them); the advert interval is 12 bits of centiseconds
(Max Adver Int, section 5.2.7) after 4 reserved bits; and the checksum
covers an IPv4 or IPv6 pseudo-header as well (section 5.2.8), so it
depends on the source and destination addresses of each datagram.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from lvsha.core import drops
from lvsha.core.packet import (
    HEADER_LEN,
    IPPROTO_VRRP,
    VRRP_TYPE_ADVERTISEMENT,
    internet_checksum,
)
from lvsha.errors import PacketError

VRRP_VERSION_3 = 3
VRRP_MULTICAST_GROUP_V6 = "ff02::12"  # section 5.1.2.2
MAX_ADVER_INT = 0x0FFF  # section 5.2.7: 12 bits of centiseconds (40.95 s)
CENTISECONDS = 100

_HEADER = struct.Struct("!BBBBHH")


def pseudo_header(source: str, destination: str, length: int) -> bytes:
    """The pseudo-header of section 5.2.8 for a VRRP message of `length` octets.

    IPv4: RFC 768's (source, destination, zero, protocol, length); IPv6:
    RFC 8200 section 8.1's (source, destination, 32-bit length, three
    zero octets, next header).
    """
    src = ipaddress.ip_address(source)
    dst = ipaddress.ip_address(destination)
    if src.version != dst.version:
        raise ValueError(f"source {source} and destination {destination} differ in family")
    if src.version == 4:
        return src.packed + dst.packed + struct.pack("!BBH", 0, IPPROTO_VRRP, length)
    return src.packed + dst.packed + struct.pack("!I3xB", length, IPPROTO_VRRP)


@dataclass(frozen=True, slots=True)
class AdvertisementV3:
    """One VRRPv3 ADVERTISEMENT (RFC 5798 section 5.2), checksum excluded.

    `max_adver_int` is in centiseconds, as on the wire; `addresses` are all
    IPv4 or all IPv6 (section 5.2.5: the family of the virtual router).
    """

    vrid: int
    priority: int
    max_adver_int: int
    addresses: tuple[str, ...]

    @property
    def adver_int(self) -> float:
        """The interval in seconds."""
        return self.max_adver_int / CENTISECONDS

    def body(self) -> bytes:
        """The message with a zero checksum."""
        if not 0 <= self.max_adver_int <= MAX_ADVER_INT:
            raise ValueError(f"Max Adver Int {self.max_adver_int} does not fit in 12 bits")
        return _HEADER.pack(
            (VRRP_VERSION_3 << 4) | VRRP_TYPE_ADVERTISEMENT,
            self.vrid,
            self.priority,
            len(self.addresses),
            self.max_adver_int,
            0,
        ) + b"".join(ipaddress.ip_address(a).packed for a in self.addresses)

    def encode_for(self, source: str, destination: str) -> bytes:
        """The message with its checksum over the pseudo-header of this datagram."""
        body = self.body()
        checksum = internet_checksum(pseudo_header(source, destination, len(body)) + body)
        return body[:6] + struct.pack("!H", checksum) + body[8:]


def decode_advertisement_v3(
    data: bytes, source: str, destination: str, family: int
) -> AdvertisementV3:
    """Parse and verify one VRRPv3 packet (section 7.1, the checks that need no config).

    Length, version, type, and the checksum over the pseudo-header of the
    datagram it came in (`source`, `destination`); `family` (4 or 6) says
    how long each address is. The rest is the router's to check.
    """
    if len(data) < HEADER_LEN:
        raise PacketError(drops.LENGTH, f"{len(data)} octets, shorter than the VRRP header")
    ver_type, vrid, priority, count, rsvd_interval, _ = _HEADER.unpack_from(data)
    version, ptype = ver_type >> 4, ver_type & 0x0F
    if version != VRRP_VERSION_3:
        raise PacketError(drops.VERSION, f"version {version}, expected {VRRP_VERSION_3}")
    if ptype != VRRP_TYPE_ADVERTISEMENT:
        raise PacketError(drops.TYPE, f"type {ptype}, expected {VRRP_TYPE_ADVERTISEMENT}")
    size = 4 if family == 4 else 16
    expected_len = HEADER_LEN + size * count
    if len(data) < expected_len:
        raise PacketError(
            drops.LENGTH, f"{len(data)} octets, {count} addresses need {expected_len}"
        )
    packet = data[:expected_len]
    try:
        pseudo = pseudo_header(source, destination, expected_len)
    except ValueError as exc:
        raise PacketError(drops.LENGTH, str(exc)) from None
    if internet_checksum(pseudo + packet) != 0:
        raise PacketError(drops.CHECKSUM, "checksum does not verify")
    addresses = tuple(
        str(ipaddress.ip_address(packet[HEADER_LEN + size * i : HEADER_LEN + size * (i + 1)]))
        for i in range(count)
    )
    return AdvertisementV3(vrid, priority, rsvd_interval & MAX_ADVER_INT, addresses)


@dataclass(frozen=True, slots=True)
class IPv6Header:
    """What the shell learned about a received IPv6 datagram (section 7.1).

    An AF_INET6 raw socket hands over no IP header: the source comes from
    recvfrom, the destination from IPV6_PKTINFO, `ttl` is the hop limit from
    IPV6_HOPLIMIT (the name matches IPv4Header so the checks read alike).
    """

    source: str
    destination: str
    ttl: int
