"""Gratuitous ARP on one interface (RFC 3768 section 8.1.2, RFC 5227 section 3).

A packet socket bound to the interface sends frames built by the pure
`gratuitous_arp_frame`. A burst of `repeat` frames per address is spread
`interval` seconds apart, as keepalived's garp_master_repeat / garp_interval.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from lvsha.core.packet import ETH_P_ARP, gratuitous_arp_frame
from lvsha.errors import KernelError


def interface_mac(interface: str) -> str:
    """The interface's hardware address, from sysfs."""
    try:
        return Path(f"/sys/class/net/{interface}/address").read_text().strip()
    except OSError as exc:
        raise KernelError(f"cannot read the MAC address of {interface}: {exc}") from exc


class Bursts:
    """`repeat` rounds of packets, `interval` apart, out of one interface; errors counted.

    The schedule both gratuitous ARP and unsolicited Neighbour Advertisements
    follow (keepalived's garp_master_repeat / garp_interval).
    """

    def __init__(self, interface: str) -> None:
        self.interface = interface
        self.sent = 0
        self.send_errors = 0
        self.last_error = ""
        self._sock: socket.socket | None = None

    def _failed(self, exc: Exception) -> None:
        self.send_errors += 1
        self.last_error = str(exc)

    async def _rounds(
        self,
        sock: socket.socket,
        packets: list[bytes],
        target: tuple[str | int, ...],
        repeat: int,
        interval: float,
    ) -> None:
        for round_ in range(repeat):
            if round_ and interval > 0:
                await asyncio.sleep(interval)
            for packet in packets:
                try:
                    sock.sendto(packet, target)
                    self.sent += 1
                except OSError as exc:
                    self._failed(OSError(f"{self.interface}: {exc}"))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class GratuitousArp(Bursts):
    """Sends gratuitous ARP bursts out of one interface.

    The packet socket is opened with protocol 0 and never bound: binding or
    closing a socket that receives makes the kernel wait for an RCU grace
    period (synchronize_net), tens of milliseconds of a blocked event loop.
    """

    async def announce(self, addresses: tuple[str, ...], repeat: int, interval: float) -> None:
        """Send `repeat` rounds of one frame per address; errors are counted."""
        try:
            mac = interface_mac(self.interface)
            frames = [gratuitous_arp_frame(mac, a) for a in addresses]
            if self._sock is None:
                self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
                self._sock.setblocking(False)
        except (OSError, KernelError) as exc:
            self._failed(exc)
            return
        await self._rounds(self._sock, frames, (self.interface, ETH_P_ARP), repeat, interval)
