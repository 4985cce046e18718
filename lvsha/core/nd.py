"""Unsolicited Neighbour Advertisements: the IPv6 gratuitous ARP (RFC 4861 section 7.2.6).

Pure: the ICMPv6 message a new master sends to all-nodes (ff02::1) for each
IPv6 VIP (RFC 5798 section 8.2.1 asks for one per address), with the
Override flag so that every neighbour cache replaces the old master's link
address at once, and the Target Link-Layer Address option carrying ours.
The Router flag stays clear: a director's VIP is a host address. The
checksum is left 0: the kernel fills it in on an ICMPv6 raw socket (RFC 3542
section 3.1).
"""

from __future__ import annotations

import ipaddress
import struct

from lvsha.core.packet import mac_bytes

ICMPV6_NEIGHBOUR_ADVERTISEMENT = 136
ND_NA_FLAG_OVERRIDE = 0x20000000
ND_OPT_TARGET_LINKADDR = 2
ALL_NODES = "ff02::1"
ND_HOP_LIMIT = 255  # RFC 4861 section 7.1.2: receivers drop any other


def neighbour_advertisement(mac: str, target: str) -> bytes:
    """The ICMPv6 NA for `target` at `mac`: Override set, Solicited and Router clear."""
    return (
        struct.pack("!BBHI", ICMPV6_NEIGHBOUR_ADVERTISEMENT, 0, 0, ND_NA_FLAG_OVERRIDE)
        + ipaddress.IPv6Address(target).packed
        + struct.pack("!BB", ND_OPT_TARGET_LINKADDR, 1)  # length in units of 8 octets
        + mac_bytes(mac)
    )
