"""Raw IPPROTO_VRRP (112) sockets for one interface (RFC 3768 sections 5.2, 7.1).

One receiving socket per interface, bound to the device, gets every VRRP
datagram (multicast to 224.0.0.18 and unicast to us) with its IPv4 header, so
that the core can check the TTL. Sending uses a socket per source address,
bound to it, with TTL 255, multicast loop off, and the IP precedence of
network control (TOS 0xc0) that keepalived puts on its adverts, so that QoS
policies queue them with other control traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import struct
from collections.abc import Callable

from lvsha.core.packet import IPPROTO_VRRP, VRRP_MULTICAST_GROUP, VRRP_TTL
from lvsha.errors import KernelError

RECV_BUFFER = 65535
MAX_READS_PER_WAKEUP = 64  # bounded work per event-loop wakeup, even under a flood
IPTOS_PREC_INTERNETCONTROL = 0xC0  # RFC 791 precedence 6; DSCP CS6 (RFC 2474)


def _bind_to_device(sock: socket.socket, interface: str) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode() + b"\x00")


def _mreqn(group: str, ifindex: int) -> bytes:
    """struct ip_mreqn: multicast group, local address (any), interface index."""
    return socket.inet_aton(group) + socket.inet_aton("0.0.0.0") + struct.pack("@i", ifindex)


class VrrpReceiver:
    """Receives VRRP datagrams on one interface and hands them to `on_datagram`."""

    def __init__(
        self, interface: str, multicast: bool, on_datagram: Callable[[bytes], None]
    ) -> None:
        self.interface = interface
        self.multicast = multicast
        self.on_datagram = on_datagram
        self.read_errors = 0
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def open(self) -> None:
        try:
            ifindex = socket.if_nametoindex(self.interface)
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_VRRP)
        except OSError as exc:
            raise KernelError(f"cannot open a VRRP socket on {self.interface}: {exc}") from exc
        try:
            _bind_to_device(sock, self.interface)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            if self.multicast:
                sock.setsockopt(
                    socket.IPPROTO_IP,
                    socket.IP_ADD_MEMBERSHIP,
                    _mreqn(VRRP_MULTICAST_GROUP, ifindex),
                )
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise KernelError(f"cannot set up the VRRP socket on {self.interface}: {exc}") from exc
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        for _ in range(MAX_READS_PER_WAKEUP):
            try:
                data = sock.recv(RECV_BUFFER)
            except BlockingIOError:
                return
            except OSError:
                self.read_errors += 1
                return
            self.on_datagram(data)

    def close(self) -> None:
        if self._sock is not None:
            if self._loop is not None:
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None


class VrrpSender:
    """Sends VRRP payloads from one source address out of one interface."""

    def __init__(self, interface: str, source: str) -> None:
        self.interface = interface
        self.source = source
        self.send_errors = 0
        self.last_error = ""
        self._sock: socket.socket | None = None

    def open(self) -> None:
        try:
            ifindex = socket.if_nametoindex(self.interface)
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_VRRP)
        except OSError as exc:
            raise KernelError(f"cannot open a VRRP socket on {self.interface}: {exc}") from exc
        try:
            _bind_to_device(sock, self.interface)
            sock.bind((self.source, 0))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, VRRP_TTL)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, IPTOS_PREC_INTERNETCONTROL)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, VRRP_TTL)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, _mreqn("0.0.0.0", ifindex))
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise KernelError(
                f"cannot set up the VRRP sender {self.source} on {self.interface}: {exc}"
            ) from exc
        self._sock = sock

    def send(self, payload: bytes, destinations: tuple[str, ...]) -> bool:
        """Send to each destination; a failure is counted, never raised."""
        ok = True
        for destination in destinations:
            try:
                if self._sock is None:
                    raise OSError(errno.EBADF, "socket is closed")
                self._sock.sendto(payload, (destination, 0))
            except OSError as exc:
                self.send_errors += 1
                self.last_error = f"{destination}: {exc.strerror or exc}"
                ok = False
        return ok

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
