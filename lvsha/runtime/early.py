"""Listen for VRRP before the daemon is loaded: the Startup event at process start.

RFC 3768 section 6.4.1: on Startup a backup sets Master_Down_Timer and
listens. Loading the daemon (asyncio, the config parser, the logs, the
runtime) takes ~0.2 s of CPU before its VRRP sockets would open, so a
restarted priority-150 node preempted 0.2 s later than keepalived, and in a
mixed cold start keepalived (100) became master alongside lvsha (150)
(issue 13). `lvsha run` calls `EarlyListener.open` first, with nothing
else loaded: one raw IPPROTO_VRRP socket per configured interface and
family, bound to it and joined to 224.0.0.18 (IPv4) or ff02::12 (IPv6,
RFC 5798 section 5.1.2, with the hop limit and destination asked for as
ancillary data), so that the kernel queues every advert from then on.
When the daemon opens the interface's real receiver it takes the queued
datagrams and the moment the socket opened (`take`, `take6`): the routers
of that family on that interface start (Startup) at that moment, so
Master_Down_Interval counts from when it began to listen, and the queued
adverts are handed to the routers as if they had just arrived (a backup
only waits longer for that; RFC 3768 section 6.4.2).

It runs before argparse and tomllib too (together ~15 ms of CPU at start):
`for_argv` finds the config path in `lvsha run`'s arguments, and `scan`
reads only the `interface`, `unicast_peers` and `virtual_ipaddress` lines of
the `[vrrp.NAME]` tables, leniently. What it misreads costs nothing but the head start: an
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

TYPE_CHECKING = False  # typing costs ~3 ms to import; mypy reads this name as True
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    T = TypeVar("T")

IPPROTO_VRRP = 112
VRRP_GROUP = "224.0.0.18"
VRRP_GROUP6 = "ff02::12"
ANCILLARY6 = 64  # room for IPV6_PKTINFO (20) and IPV6_HOPLIMIT (4), each with its cmsghdr
RCVBUF = 1 << 20
MAX_QUEUED = 4096  # datagrams taken from one early socket, at most


def scan(text: str) -> dict[tuple[str, int], bool]:
    """(interface, family) -> join the multicast group, from `[vrrp.NAME]` tables (leniently).

    An instance without `unicast_peers` (or with an empty list) is multicast;
    it is IPv6 when its `virtual_ipaddress` holds an address with a colon
    (the runtime's own rule), on one line or spread over several.
    """
    found: dict[tuple[str, int], bool] = {}
    iface: str | None = None
    unicast = ipv6 = in_vips = False

    def flush() -> None:
        if iface:
            key = (iface, 6 if ipv6 else 4)
            found[key] = found.get(key, False) or not unicast

    for raw in text.splitlines():
        line = raw.strip()
        if in_vips:  # inside a virtual_ipaddress array spread over lines
            value = line.split("#", 1)[0]
            ipv6 = ipv6 or ":" in value
            in_vips = "]" not in value
        elif line.startswith("["):
            flush()
            name = line.split("]", 1)[0].strip("[ ")
            parts = [p.strip().strip('"') for p in name.split(".")]
            in_instance = not line.startswith("[[") and len(parts) == 2 and parts[0] == "vrrp"
            iface, unicast, ipv6 = ("" if in_instance else None), False, False
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
            elif key == "virtual_ipaddress":
                ipv6 = ":" in value
                in_vips = value.startswith("[") and "]" not in value
    flush()
    return found


Queued6 = tuple[str, str, int, bytes]  # source, destination, hop limit (-1: unknown), payload


class EarlyListener:
    """Raw VRRP sockets opened at process start, per interface and family."""

    def __init__(self) -> None:
        self._sockets: dict[tuple[str, int], tuple[_socket.socket, float]] = {}

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
        for (iface, family), multicast in scan(text).items():
            listener._listen(iface, family, multicast)
        return listener

    def _listen(self, iface: str, family: int, multicast: bool) -> None:
        if not iface or len(iface) > 15:  # IFNAMSIZ
            return
        af = _socket.AF_INET6 if family == 6 else _socket.AF_INET
        try:
            sock = _socket.socket(af, _socket.SOCK_RAW | _socket.SOCK_NONBLOCK, IPPROTO_VRRP)
        except OSError:
            return
        try:
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_BINDTODEVICE, iface.encode() + b"\0")
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_RCVBUF, RCVBUF)
            if family == 6:  # RFC 5798 7.1's hop limit and destination come as ancillary data
                sock.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_RECVHOPLIMIT, 1)
                sock.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_RECVPKTINFO, 1)
            if multicast:
                index = _socket.if_nametoindex(iface).to_bytes(4, sys.byteorder)
                if family == 6:  # struct ipv6_mreq
                    mreq = _socket.inet_pton(_socket.AF_INET6, VRRP_GROUP6) + index
                    sock.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_JOIN_GROUP, mreq)
                else:  # struct ip_mreqn, int imr_ifindex
                    mreqn = _socket.inet_aton(VRRP_GROUP) + _socket.inet_aton("0.0.0.0") + index
                    sock.setsockopt(_socket.IPPROTO_IP, _socket.IP_ADD_MEMBERSHIP, mreqn)
        except (OSError, UnicodeError):
            sock.close()
            return
        self._sockets[(iface, family)] = (sock, time.monotonic())

    @property
    def interfaces(self) -> list[str]:
        return [iface for iface, family in self._sockets if family == 4]

    @property
    def interfaces6(self) -> list[str]:
        return [iface for iface, family in self._sockets if family == 6]

    def take(self, iface: str) -> tuple[float, list[bytes]] | None:
        """When `iface`'s IPv4 socket opened (time.monotonic) and what it queued; closes it."""
        return self._drain((iface, 4), lambda sock: sock.recv(65535))

    def take6(self, iface: str) -> tuple[float, list[Queued6]] | None:
        """The same for `iface`'s IPv6 socket; each datagram with its header's fields."""

        def read(sock: _socket.socket) -> Queued6:
            data, ancdata, _, address = sock.recvmsg(65535, ANCILLARY6)
            return (*_header6(address[0], ancdata), data)

        return self._drain((iface, 6), read)

    def _drain(
        self, key: tuple[str, int], read: Callable[[_socket.socket], T]
    ) -> tuple[float, list[T]] | None:
        entry = self._sockets.pop(key, None)
        if entry is None:
            return None
        sock, opened_at = entry
        queued: list[T] = []
        try:
            for _ in range(MAX_QUEUED):
                queued.append(read(sock))
        except OSError:  # BlockingIOError: the queue is empty
            pass
        finally:
            sock.close()
        return opened_at, queued

    def close(self) -> None:
        for sock, _ in self._sockets.values():
            sock.close()
        self._sockets.clear()


def _header6(source: str, ancdata: list[tuple[int, int, bytes]]) -> tuple[str, str, int]:
    """Source (zone dropped), destination and hop limit, as adapters/vrrp_socket6.py reads them."""
    af = _socket.AF_INET6
    destination, hops = "::", -1
    for level, kind, data in ancdata:
        if level != _socket.IPPROTO_IPV6:
            continue
        if kind == _socket.IPV6_PKTINFO and len(data) >= 16:
            destination = _socket.inet_ntop(af, data[:16])
        elif kind == _socket.IPV6_HOPLIMIT and len(data) >= 4:
            hops = int.from_bytes(data[:4], sys.byteorder, signed=True)
    host = _socket.inet_ntop(af, _socket.inet_pton(af, source.split("%", 1)[0]))
    return host, destination, hops
