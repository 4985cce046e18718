"""Unsolicited Neighbour Advertisements out of one interface (RFC 4861 section 7.2.6).

An ICMPv6 raw socket, hop limit 255, bound to the interface, sends the pure
`neighbour_advertisement` to ff02::1 from the interface's link-local
address (the kernel picks it and fills in the checksum). Bursts follow the
gratuitous ARP schedule (`repeat` rounds, `interval` apart). `Announcer`
puts both behind the runtime's one Announcer: IPv4 VIPs get gratuitous
ARP, IPv6 VIPs unsolicited NAs.
"""

from __future__ import annotations

import ipaddress
import socket

from lvsha.adapters.arp import Bursts, GratuitousArp, interface_mac
from lvsha.adapters.vrrp_socket import bind_to_device
from lvsha.core.nd import ALL_NODES, ND_HOP_LIMIT, neighbour_advertisement
from lvsha.errors import KernelError


class NeighbourAdvertiser(Bursts):
    """Sends unsolicited NA bursts for IPv6 addresses out of one interface."""

    def _open(self) -> socket.socket:
        if self._sock is None:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
            try:
                bind_to_device(sock, self.interface)
                index = socket.if_nametoindex(self.interface)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, ND_HOP_LIMIT)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ND_HOP_LIMIT)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
                sock.setblocking(False)
            except OSError:
                sock.close()
                raise
            self._sock = sock
        return self._sock

    async def announce(self, addresses: tuple[str, ...], repeat: int, interval: float) -> None:
        """`repeat` rounds of one NA per address; errors are counted, never raised."""
        try:
            mac = interface_mac(self.interface)
            messages = [neighbour_advertisement(mac, a) for a in addresses]
            sock = self._open()
            index = socket.if_nametoindex(self.interface)
        except (OSError, KernelError) as exc:
            self._failed(exc)
            return
        await self._rounds(sock, messages, (ALL_NODES, 0, 0, index), repeat, interval)


class Announcer:
    """Gratuitous ARP for IPv4 VIPs, unsolicited NAs for IPv6 ones, on one interface."""

    def __init__(self, interface: str) -> None:
        self.arp = GratuitousArp(interface)
        self.nd = NeighbourAdvertiser(interface)
        self.sent = 0  # frames of both kinds, for `lvsha status` (garp_sent)

    async def announce(self, addresses: tuple[str, ...], repeat: int, interval: float) -> None:
        v6 = tuple(a for a in addresses if ipaddress.ip_address(a).version == 6)
        v4 = tuple(a for a in addresses if a not in v6)
        if v4:
            await self.arp.announce(v4, repeat, interval)
        if v6:
            await self.nd.announce(v6, repeat, interval)
        self.sent = self.arp.sent + self.nd.sent

    def close(self) -> None:
        self.arp.close()
        self.nd.close()
