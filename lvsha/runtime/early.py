"""Listen for VRRP before the daemon is loaded: the Startup event at process start.

RFC 3768 section 6.4.1: on Startup a backup sets Master_Down_Timer and
listens. Loading the daemon (asyncio, the config parser, structlog, the
runtime) takes ~0.2 s of CPU before its VRRP sockets would open, so a
restarted priority-150 node preempted 0.2 s later than keepalived, and in a
mixed cold start keepalived (100) became master alongside lvsha (150)
(issue 13). `lvsha run` calls `EarlyListener.open` first, with nothing but
the standard library's socket and tomllib loaded: one raw IPPROTO_VRRP
socket per configured interface, bound to it and joined to 224.0.0.18, so
that the kernel queues every advert from then on. When the daemon opens
the interface's real receiver it takes the queued datagrams and the moment
the socket opened (`take`): the router's Startup happens at that moment, so
Master_Down_Interval counts from when it began to listen, and the queued
adverts are handed to the routers as if they had just arrived (a backup
only waits longer for that; RFC 3768 section 6.4.2).

This reads the file leniently: whatever it cannot use is skipped, and the
real parser reports it; a listener that cannot open (no root, no such
interface) is simply not there.
"""

from __future__ import annotations

import socket
import struct
import time
import tomllib

IPPROTO_VRRP = 112
VRRP_GROUP = "224.0.0.18"
RCVBUF = 1 << 20
MAX_QUEUED = 4096  # datagrams taken from one early socket, at most


class EarlyListener:
    """Raw VRRP sockets opened at process start, per interface."""

    def __init__(self) -> None:
        self._sockets: dict[str, tuple[socket.socket, float]] = {}

    @classmethod
    def open(cls, config_path: str) -> EarlyListener:
        """Listen on every interface of the file's [vrrp.*] instances; never raises."""
        listener = cls()
        try:
            with open(config_path, "rb") as f:
                raw = tomllib.load(f)
        except (OSError, ValueError, RecursionError):
            return listener
        instances = raw.get("vrrp")
        if not isinstance(instances, dict):
            return listener
        multicast: dict[str, bool] = {}
        for table in instances.values():
            if isinstance(table, dict) and isinstance(table.get("interface"), str):
                iface = table["interface"]
                wants = not table.get("unicast_peers")
                multicast[iface] = multicast.get(iface, False) or wants
        for iface, join in multicast.items():
            listener._listen(iface, join)
        return listener

    def _listen(self, iface: str, multicast: bool) -> None:
        try:
            sock = socket.socket(
                socket.AF_INET, socket.SOCK_RAW | socket.SOCK_NONBLOCK, IPPROTO_VRRP
            )
        except OSError:
            return
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode() + b"\0")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
            if multicast:
                mreqn = (
                    socket.inet_aton(VRRP_GROUP)
                    + socket.inet_aton("0.0.0.0")
                    + struct.pack("@i", socket.if_nametoindex(iface))
                )
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
        except (OSError, UnicodeError):
            sock.close()
            return
        self._sockets[iface] = (sock, time.monotonic())

    @property
    def interfaces(self) -> list[str]:
        return list(self._sockets)

    def take(self, iface: str) -> tuple[float, list[bytes]] | None:
        """When `iface`'s socket opened (time.monotonic) and what it queued; closes it."""
        entry = self._sockets.pop(iface, None)
        if entry is None:
            return None
        sock, opened_at = entry
        queued: list[bytes] = []
        try:
            for _ in range(MAX_QUEUED):
                queued.append(sock.recv(65535))
        except OSError:  # BlockingIOError: the queue is empty
            pass
        finally:
            sock.close()
        return opened_at, queued

    def close(self) -> None:
        for sock, _ in self._sockets.values():
            sock.close()
        self._sockets.clear()
