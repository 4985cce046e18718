"""The IPv6 half of `lvsha doctor`'s arp check: who answers a Neighbour Solicitation for a VIP.

For each IPv6 VIP a Neighbour Solicitation is sent as Duplicate Address
Detection sends one (RFC 4862 section 5.4.2: source `::`, to the target's
solicited-node group, no source link-layer option), so that no neighbour
cache changes anywhere; a host holding the VIP on that link answers with a
Neighbour Advertisement to all-nodes (RFC 4861 section 7.2.4), and every
MAC that does is listed. A DR real server with the VIP on `lo` stays
silent (see tools/realserver6.py); one with the VIP on its LAN interface
answers, and the check names it.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable

from lvsha.core.packet import mac_bytes
from lvsha.tools.doctor.linkprobe import link_probe

ETH_P_IPV6 = 0x86DD
IPPROTO_ICMPV6 = 58
ICMPV6_NS, ICMPV6_NA = 135, 136
ND_HOP_LIMIT = 255  # RFC 4861 section 7.1.1: receivers drop any other
ROUNDS = 3  # probes per target over the wait: one lost frame is no answer lost
UNSPECIFIED = bytes(16)


def solicited_node(target: str) -> ipaddress.IPv6Address:
    """ff02::1:ffXX:XXXX, the group a host joins for each of its addresses (RFC 4291 2.7.1)."""
    low = int(ipaddress.IPv6Address(target)) & 0xFFFFFF
    return ipaddress.IPv6Address(int(ipaddress.IPv6Address("ff02::1:ff00:0")) | low)


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return int(~total & 0xFFFF)


def ns_probe_frame(mac: str, target: str) -> bytes:
    """An Ethernet frame with a DAD-style NS for `target` (ICMPv6 checksum filled in)."""
    group = solicited_node(target)
    body = struct.pack("!BBHI", ICMPV6_NS, 0, 0, 0) + ipaddress.IPv6Address(target).packed
    pseudo = UNSPECIFIED + group.packed + struct.pack("!I3xB", len(body), IPPROTO_ICMPV6)
    body = body[:2] + struct.pack("!H", _checksum(pseudo + body)) + body[4:]
    ipv6 = struct.pack("!IHBB", 6 << 28, len(body), IPPROTO_ICMPV6, ND_HOP_LIMIT)
    ipv6 += UNSPECIFIED + group.packed
    ethernet = b"\x33\x33" + group.packed[-4:] + mac_bytes(mac) + struct.pack("!H", ETH_P_IPV6)
    return ethernet + ipv6 + body


def parse_na(frame: bytes) -> tuple[str, str] | None:
    """(target, sender MAC) of a Neighbour Advertisement frame, else None."""
    if len(frame) < 14 + 40 + 24 or frame[12:14] != struct.pack("!H", ETH_P_IPV6):
        return None
    if frame[20] != IPPROTO_ICMPV6 or frame[21] != ND_HOP_LIMIT or frame[54] != ICMPV6_NA:
        return None
    mac = ":".join(f"{b:02x}" for b in frame[6:12])
    return str(ipaddress.IPv6Address(frame[62:78])), mac


def nd_probe(interface: str, targets: Iterable[str], wait: float) -> dict[str, set[str]]:
    """Ask who has each IPv6 target; every MAC that answers within `wait` seconds, by target."""
    wanted = [str(ipaddress.IPv6Address(t)) for t in targets]
    return link_probe(interface, ETH_P_IPV6, wanted, ns_probe_frame, parse_na, wait, ROUNDS)
