"""Listen for VRRP before the daemon is loaded: the Startup event at process start.

RFC 3768 section 6.4.1: on Startup a backup sets Master_Down_Timer and
listens. Loading the daemon (asyncio, the config parser, the logs, the
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

It runs before argparse and tomllib too (together ~15 ms of CPU at start):
`for_argv` finds the config path in `lvsha run`'s arguments, and `scan`
reads only the `interface` and `unicast_peers` lines of the `[vrrp.NAME]`
tables, leniently. What it misreads costs nothing but the head start: an
interface it missed is opened by the daemon as before, a socket it opened
for no instance is closed once the daemon runs, and the real parser reports
every problem of the file. A listener that cannot open (no root, no such
interface) is simply not there. It imports only the C `_socket` module (and
the built-in time and sys), not even `socket.py`: that one costs ~9 ms at
start on a quiet machine (selectors, enum and its IntEnum conversions),
which is most of what lvsha paid before its first socket beyond the
interpreter's own start; cli.py imports nothing before it.
"""

from __future__ import annotations

import _socket
import sys
import time

IPPROTO_VRRP = 112
VRRP_GROUP = "224.0.0.18"
RCVBUF = 1 << 20
MAX_QUEUED = 4096  # datagrams taken from one early socket, at most


def scan(text: str) -> dict[str, bool]:
    """Interface -> join the multicast group, from `[vrrp.NAME]` tables (TOML, leniently).

    An instance without `unicast_peers` (or with an empty list) is multicast.
    """
    found: dict[str, bool] = {}
    iface: str | None = None
    unicast = False

    def flush() -> None:
        if iface:
            found[iface] = found.get(iface, False) or not unicast

    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("["):
            flush()
            name = line.split("]", 1)[0].strip("[ ")
            parts = [p.strip().strip('"') for p in name.split(".")]
            in_instance = not line.startswith("[[") and len(parts) == 2 and parts[0] == "vrrp"
            iface, unicast = ("" if in_instance else None), False
        elif iface is not None and "=" in line:
            key, _, value = line.partition("=")
            key, value = key.strip(), value.split("#", 1)[0].strip()
            if (
                key == "interface"
                and len(value) >= 2
                and value[0] == value[-1]
                and value[0] in "\"'"
            ):
                iface = value[1:-1]
            elif key == "unicast_peers":
                unicast = value.replace(" ", "") != "[]"
    flush()
    return found


class EarlyListener:
    """Raw VRRP sockets opened at process start, per interface."""

    def __init__(self) -> None:
        self._sockets: dict[str, tuple[_socket.socket, float]] = {}

    @classmethod
    def for_argv(cls, argv: list[str], default_config: str) -> EarlyListener | None:
        """For `lvsha run [--config PATH]`, before argparse; None for any other command."""
        if not argv or argv[0] != "run":
            return None
        path = default_config
        for i, arg in enumerate(argv[1:], 1):
            if arg == "--config" and i + 1 < len(argv):
                path = argv[i + 1]
            elif arg.startswith("--config="):
                path = arg.removeprefix("--config=")
        return cls.open(path)

    @classmethod
    def open(cls, config_path: str) -> EarlyListener:
        """Listen on every interface of the file's [vrrp.*] instances; never raises."""
        listener = cls()
        try:
            with open(config_path, encoding="utf-8", errors="replace") as f:
                text = f.read(1 << 20)
        except OSError:
            return listener
        for iface, multicast in scan(text).items():
            listener._listen(iface, multicast)
        return listener

    def _listen(self, iface: str, multicast: bool) -> None:
        if not iface or len(iface) > 15:  # IFNAMSIZ
            return
        try:
            sock = _socket.socket(
                _socket.AF_INET, _socket.SOCK_RAW | _socket.SOCK_NONBLOCK, IPPROTO_VRRP
            )
        except OSError:
            return
        try:
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_BINDTODEVICE, iface.encode() + b"\0")
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_RCVBUF, RCVBUF)
            if multicast:
                mreqn = (
                    _socket.inet_aton(VRRP_GROUP)
                    + _socket.inet_aton("0.0.0.0")
                    + _socket.if_nametoindex(iface).to_bytes(4, sys.byteorder)  # int imr_ifindex
                )
                sock.setsockopt(_socket.IPPROTO_IP, _socket.IP_ADD_MEMBERSHIP, mreqn)
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
