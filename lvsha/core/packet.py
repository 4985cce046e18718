"""VRRPv2 advertisement codec (RFC 3768 section 5) and the IPv4 header around it.

Pure: bytes in, dataclasses out, and back. Decoding untrusted bytes raises
only `PacketError`, whose `reason` is the counter key of the drop.

Authentication follows RFC 2338 section 5.3.6 as keepalived does: type 0
(none) and type 1 (simple text password of at most 8 octets, zero padded).
RFC 3768 section 5.3.6 keeps the 8 octets of Authentication Data on the wire
for backward compatibility, so every advertisement carries them.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from lvsha.core import drops
from lvsha.errors import PacketError

VRRP_VERSION = 2
VRRP_TYPE_ADVERTISEMENT = 1
IPPROTO_VRRP = 112
VRRP_MULTICAST_GROUP = "224.0.0.18"
VRRP_TTL = 255
AUTH_NONE = 0
AUTH_PASS = 1
AUTH_DATA_LEN = 8
HEADER_LEN = 8
MAX_ADDRESSES = 255

_HEADER = struct.Struct("!BBBBBBH")


def internet_checksum(data: bytes) -> int:
    """The 16-bit one's complement of the one's complement sum (RFC 1071)."""
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def pad_password(password: bytes) -> bytes:
    """Authentication Data for type 1: the password, zero padded to 8 octets."""
    if len(password) > AUTH_DATA_LEN:
        raise ValueError(f"a PASS password has at most {AUTH_DATA_LEN} octets")
    return password.ljust(AUTH_DATA_LEN, b"\x00")


@dataclass(frozen=True, slots=True)
class Advertisement:
    """One VRRPv2 ADVERTISEMENT (RFC 3768 section 5.1), checksum excluded."""

    vrid: int
    priority: int
    adver_int: int
    addresses: tuple[str, ...]
    auth_type: int = AUTH_NONE
    auth_data: bytes = b"\x00" * AUTH_DATA_LEN

    def encode(self) -> bytes:
        """The packet with its checksum (section 5.3.8) filled in."""
        body = _HEADER.pack(
            (VRRP_VERSION << 4) | VRRP_TYPE_ADVERTISEMENT,
            self.vrid,
            self.priority,
            len(self.addresses),
            self.auth_type,
            self.adver_int,
            0,
        )
        body += b"".join(ipaddress.IPv4Address(a).packed for a in self.addresses)
        body += self.auth_data.ljust(AUTH_DATA_LEN, b"\x00")[:AUTH_DATA_LEN]
        checksum = internet_checksum(body)
        return body[:6] + struct.pack("!H", checksum) + body[8:]


def decode_advertisement(data: bytes) -> Advertisement:
    """Parse and verify one VRRP packet (RFC 3768 section 7.1, first checks).

    Checks what needs no local configuration: length, version, type and
    checksum. Fields that depend on the receiving router (VRID, priority use,
    authentication, advert interval, address list) are checked by the state
    machine, which knows its configuration.
    """
    if len(data) < HEADER_LEN:
        raise PacketError(drops.LENGTH, f"{len(data)} octets, shorter than the VRRP header")
    ver_type, vrid, priority, count, auth_type, adver_int, _ = _HEADER.unpack_from(data)
    version, ptype = ver_type >> 4, ver_type & 0x0F
    if version != VRRP_VERSION:
        raise PacketError(drops.VERSION, f"version {version}, expected {VRRP_VERSION}")
    if ptype != VRRP_TYPE_ADVERTISEMENT:
        raise PacketError(drops.TYPE, f"type {ptype}, expected {VRRP_TYPE_ADVERTISEMENT}")
    expected_len = HEADER_LEN + 4 * count + AUTH_DATA_LEN
    if len(data) < expected_len:
        raise PacketError(
            drops.LENGTH, f"{len(data)} octets, {count} addresses need {expected_len}"
        )
    packet = data[:expected_len]
    if internet_checksum(packet) != 0:
        raise PacketError(drops.CHECKSUM, "checksum does not verify")
    addresses = tuple(
        str(ipaddress.IPv4Address(packet[HEADER_LEN + 4 * i : HEADER_LEN + 4 * i + 4]))
        for i in range(count)
    )
    auth_data = packet[HEADER_LEN + 4 * count :]
    return Advertisement(vrid, priority, adver_int, addresses, auth_type, bytes(auth_data))


@dataclass(frozen=True, slots=True)
class IPv4Header:
    """The fields of a received IPv4 header that VRRP checks (section 7.1)."""

    source: str
    destination: str
    ttl: int
    protocol: int
    header_len: int
    total_len: int


def decode_ipv4(datagram: bytes) -> tuple[IPv4Header, bytes]:
    """Split a raw-socket datagram into its IPv4 header and its payload."""
    if len(datagram) < 20:
        raise PacketError(drops.LENGTH, f"{len(datagram)} octets, shorter than an IPv4 header")
    version_ihl = datagram[0]
    if version_ihl >> 4 != 4:
        raise PacketError(drops.IP_VERSION, f"IP version {version_ihl >> 4}")
    ihl = (version_ihl & 0x0F) * 4
    total_len = struct.unpack_from("!H", datagram, 2)[0]
    if ihl < 20 or len(datagram) < ihl:
        raise PacketError(drops.LENGTH, f"IPv4 header length {ihl} in {len(datagram)} octets")
    header = IPv4Header(
        source=str(ipaddress.IPv4Address(datagram[12:16])),
        destination=str(ipaddress.IPv4Address(datagram[16:20])),
        ttl=datagram[8],
        protocol=datagram[9],
        header_len=ihl,
        total_len=total_len,
    )
    end = min(len(datagram), total_len) if total_len >= ihl else len(datagram)
    return header, datagram[ihl:end]


ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
BROADCAST_MAC = b"\xff" * 6


def mac_bytes(mac: str) -> bytes:
    """`02:00:5e:00:53:01` -> six octets."""
    parts = mac.split(":")
    if len(parts) != 6:
        raise ValueError(f"not a MAC address: {mac!r}")
    return bytes(int(p, 16) for p in parts)


def gratuitous_arp_frame(mac: str, address: str) -> bytes:
    """An Ethernet frame carrying a gratuitous ARP request for `address`.

    RFC 3768 section 8.1.2: broadcast an ARP request with the virtual address
    as both sender and target protocol address, so that every host on the
    link updates its neighbour entry to `mac` (RFC 5227 section 3 calls this
    an ARP Announcement).
    """
    src = mac_bytes(mac)
    ip = ipaddress.IPv4Address(address).packed
    ethernet = BROADCAST_MAC + src + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, ETH_P_IP, 6, 4, 1) + src + ip + b"\x00" * 6 + ip
    return ethernet + arp
