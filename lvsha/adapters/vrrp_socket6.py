"""Raw IPv6 VRRP sockets (RFC 5798 sections 5.1.2, 7.1): ff02::12, hop limit 255.

An AF_INET6 raw socket hands over the VRRP message without its IP header,
so what section 7.1 checks in the header comes as ancillary data: the hop
limit (IPV6_RECVHOPLIMIT; it must be 255) and the destination
(IPV6_RECVPKTINFO; the v3 checksum covers it). The receiver builds an
`IPv6Header` of them and hands it with the payload to `on_datagram`.

The sender binds the interface's link-local address (or unicast_src_ip),
sends with hop limit 255 to ff02::12 or each unicast peer, and does not
loop multicast back. The checksum is the core's (`encode_for`): the kernel
computes none for protocol 112 unless IPV6_CHECKSUM is set, and it is not.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
from collections.abc import Callable, Iterable

from lvsha.adapters.vrrp_socket import VrrpSender, bind_to_device
from lvsha.core.packet import IPPROTO_VRRP, VRRP_TTL
from lvsha.core.packet_v3 import VRRP_MULTICAST_GROUP_V6, IPv6Header
from lvsha.core.vrrp import RouterParams
from lvsha.errors import KernelError

RECV_BUFFER = 65535
MAX_READS_PER_WAKEUP = 64
ANCILLARY = socket.CMSG_SPACE(20) + socket.CMSG_SPACE(4)  # in6_pktinfo + hop limit
IPV6_TCLASS_CS6 = 0xC0  # network control, as the IPv4 adverts' TOS


def _host(address: str) -> str:
    """recvfrom's `fe80::1%eth1` without its zone."""
    return str(ipaddress.IPv6Address(address.split("%", 1)[0]))


def header_from(source: str, ancdata: list[tuple[int, int, bytes]]) -> IPv6Header:
    """The header fields of section 7.1 from recvmsg's ancillary data (-1: not given)."""
    destination, hops = "::", -1
    for level, kind, data in ancdata:
        if level != socket.IPPROTO_IPV6:
            continue
        if kind == socket.IPV6_PKTINFO and len(data) >= 16:
            destination = str(ipaddress.IPv6Address(data[:16]))
        elif kind == socket.IPV6_HOPLIMIT and len(data) >= 4:
            hops = struct.unpack("=i", data[:4])[0]
    return IPv6Header(_host(source), destination, hops)


class VrrpReceiver6:
    """The IPv6 VRRP datagrams of one interface, with their header fields, to a callback."""

    def __init__(
        self,
        interface: str,
        multicast: bool,
        on_datagram: Callable[[IPv6Header, bytes], None],
        on_overflow: Callable[[int], None] | None = None,
    ) -> None:
        self.interface = interface
        self.multicast = multicast
        self.on_datagram = on_datagram
        self.on_overflow = on_overflow
        self.read_errors = 0
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def open(self) -> None:
        try:
            ifindex = socket.if_nametoindex(self.interface)
            sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_VRRP)
        except OSError as exc:
            raise KernelError(
                f"cannot open an IPv6 VRRP socket on {self.interface}: {exc}"
            ) from exc
        try:
            bind_to_device(sock, self.interface)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
            if self.multicast:
                mreq = socket.inet_pton(socket.AF_INET6, VRRP_MULTICAST_GROUP_V6)
                sock.setsockopt(
                    socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq + struct.pack("@I", ifindex)
                )
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise KernelError(
                f"cannot set up the IPv6 VRRP socket on {self.interface}: {exc}"
            ) from exc
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._readable)

    def expect(self, routers: Iterable[RouterParams]) -> None:
        """One queue on IPv6 (no kernel filter yet): every datagram reaches the core."""

    def _readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        for _ in range(MAX_READS_PER_WAKEUP):
            try:
                data, ancdata, _, address = sock.recvmsg(RECV_BUFFER, ANCILLARY)
            except BlockingIOError:
                break
            except OSError:
                self.read_errors += 1
                break
            self.on_datagram(header_from(address[0], ancdata), data)

    def close(self) -> None:
        if self._sock is not None:
            if self._loop is not None:
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None


class VrrpSender6(VrrpSender):
    """Sends VRRP payloads from one IPv6 source (link-local or unicast) out of one interface."""

    def __init__(self, interface: str, source: str) -> None:
        super().__init__(interface, source)
        self._ifindex = 0

    def open(self) -> None:
        try:
            self._ifindex = socket.if_nametoindex(self.interface)
            sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_VRRP)
        except OSError as exc:
            raise KernelError(
                f"cannot open an IPv6 VRRP socket on {self.interface}: {exc}"
            ) from exc
        try:
            bind_to_device(sock, self.interface)
            sock.bind((self.source, 0, 0, self._ifindex))
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, VRRP_TTL)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, VRRP_TTL)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, self._ifindex)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, IPV6_TCLASS_CS6)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise KernelError(
                f"cannot set up the IPv6 VRRP sender {self.source} on {self.interface}: {exc}"
            ) from exc
        self._sock = sock

    def _address(self, destination: str) -> tuple[str | int, ...]:
        return (destination, 0, 0, self._ifindex)
