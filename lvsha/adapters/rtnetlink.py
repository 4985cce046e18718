"""A small rtnetlink client on the standard library: links and addresses.

Replaces pyroute2 on the VRRP path: importing pyroute2 costs 0.2-0.5 s and
~20 MB of RSS (docs/benchmarks-vrrp.md), a VRRP-only director needs four
requests and a monitor. Messages are struct-packed as in
<linux/netlink.h> and <linux/rtnetlink.h> (RFC 3549 describes the
protocol): an `nlmsghdr`, then an `ifaddrmsg` or `ifinfomsg`, then
`rtattr`s, each padded to 4 octets.

The codec (`encode_*`, `parse`) is pure and tested on recorded bytes; the
`Rtnl` class is the request socket, one request at a time. The address
family is a parameter of the codec (AF_INET6 carries its 16-octet address in
the same IFA_ADDRESS attribute): IPv4 and the IPv6 VIPs of VRRPv3 instances
go through this one path, IPv6 VIPs added with IFA_F_NODAD.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

# <linux/netlink.h>
NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSG_OVERRUN = 4
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_DUMP_INTR = 0x10
NLM_F_DUMP = 0x300  # NLM_F_ROOT | NLM_F_MATCH
NLM_F_EXCL = 0x200  # with NEW: fail with EEXIST if it exists
NLM_F_CREATE = 0x400
# <linux/rtnetlink.h>
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_NEWADDR = 20
RTM_DELADDR = 21
RTM_GETADDR = 22
RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV6_IFADDR = 0x100
# <linux/if_addr.h>
IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_LABEL = 3
IFA_BROADCAST = 4
IFA_FLAGS = 8
IFA_CACHEINFO = 6  # struct ifa_cacheinfo: preferred, valid, cstamp, tstamp
INFINITY_LIFE_TIME = 0xFFFFFFFF
IFA_F_SECONDARY = 0x01
IFA_F_NODAD = 0x02
IFA_F_DADFAILED = 0x08
IFA_F_TENTATIVE = 0x40
RT_SCOPE_LINK = 253
# <linux/if_link.h>, <linux/if.h>
IFLA_IFNAME = 3
IFF_UP = 0x1
IFF_RUNNING = 0x40

NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
NLMSGERR = struct.Struct("=i")  # error (negative errno, 0 = ack), then the request's header
IFADDRMSG = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
IFINFOMSG = struct.Struct("=BxHiII")  # family, pad, type, index, flags, change
RTATTR = struct.Struct("=HH")  # len, type
ADDRESS_LENGTH = {socket.AF_INET: 4, socket.AF_INET6: 16}

RECV_SIZE = 65536  # a dump skb is at most 32 KiB (netlink_recvmsg's cap)
MONITOR_RCVBUF = 1 << 20
DUMP_ATTEMPTS = 3  # a dump the kernel marks interrupted (NLM_F_DUMP_INTR) is asked again


def _align(n: int) -> int:
    return (n + 3) & ~3


class NetlinkError(OSError):
    """The kernel answered a request with NLMSG_ERROR (errno in `.errno`)."""

    def __init__(self, code: int, what: str) -> None:
        super().__init__(code, f"{what}: {os.strerror(code)}")


@dataclass(frozen=True, slots=True)
class Address:
    """One RTM_NEWADDR / RTM_DELADDR: an address on an interface index."""

    kind: int  # RTM_NEWADDR or RTM_DELADDR
    family: int
    index: int
    address: str
    prefixlen: int
    flags: int  # IFA_FLAGS when present (32 bits), else ifa_flags
    label: str  # IFA_LABEL (IPv4 only), "" when absent
    scope: int = 0  # ifa_scope: RT_SCOPE_LINK for a link-local address


@dataclass(frozen=True, slots=True)
class Link:
    """One RTM_NEWLINK / RTM_DELLINK."""

    kind: int
    index: int
    ifname: str
    flags: int

    @property
    def up(self) -> bool:
        """Administratively up and carrier (what a VRRP instance needs)."""
        return self.kind == RTM_NEWLINK and self.flags & (IFF_UP | IFF_RUNNING) == (
            IFF_UP | IFF_RUNNING
        )


@dataclass(frozen=True, slots=True)
class Done:
    """NLMSG_DONE: the end of a dump."""


@dataclass(frozen=True, slots=True)
class Error:
    """NLMSG_ERROR: `code` 0 is an acknowledgement, else an errno."""

    code: int


@dataclass(frozen=True, slots=True)
class Message:
    """One decoded netlink message with its header fields."""

    type: int
    flags: int
    seq: int
    body: Address | Link | Done | Error | None  # None: a type we do not decode


# ------------------------------------------------------------- encoding --


def _attr(kind: int, value: bytes) -> bytes:
    length = RTATTR.size + len(value)
    return RTATTR.pack(length, kind) + value + b"\0" * (_align(length) - length)


def _message(kind: int, flags: int, seq: int, payload: bytes) -> bytes:
    return NLMSGHDR.pack(NLMSGHDR.size + len(payload), kind, flags, seq, 0) + payload


def encode_dump_addresses(seq: int, family: int = socket.AF_INET) -> bytes:
    """RTM_GETADDR dump of every address of one family."""
    return _message(
        RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq, IFADDRMSG.pack(family, 0, 0, 0, 0)
    )


def encode_address(
    kind: int,
    seq: int,
    index: int,
    address: str,
    prefixlen: int,
    family: int = socket.AF_INET,
    label: str | None = None,
    broadcast: str | None = None,
    nodad: bool = False,
) -> bytes:
    """RTM_NEWADDR (exclusive create) or RTM_DELADDR of one address, acknowledged.

    IFA_LOCAL and IFA_ADDRESS both carry the address, as `ip addr add`
    sends them for a link without a peer; IPv6 uses IFA_ADDRESS only.
    `label` (IFA_LABEL, NUL-terminated) and `broadcast` (IFA_BROADCAST) are
    IPv4's, as `ip addr add ... brd B label L` sends them. `nodad` (IPv6,
    `ip addr add ... nodad`) sets IFA_F_NODAD in ifa_flags and IFA_FLAGS: a
    VIP that moves between directors must not sit tentative through
    Duplicate Address Detection (RFC 4862 section 5.4) while the old master
    still answers for it. The VIP is also deprecated (IFA_CACHEINFO,
    preferred lifetime 0), so that it is never a source address.
    """
    packed = socket.inet_pton(family, address)
    flags = NLM_F_REQUEST | NLM_F_ACK
    if kind == RTM_NEWADDR:
        flags |= NLM_F_CREATE | NLM_F_EXCL
    attrs = _attr(IFA_ADDRESS, packed)
    ifa_flags = 0
    if family == socket.AF_INET:
        attrs = _attr(IFA_LOCAL, packed) + attrs
        if broadcast is not None:
            attrs += _attr(IFA_BROADCAST, socket.inet_pton(family, broadcast))
        if label is not None:
            attrs += _attr(IFA_LABEL, label.encode() + b"\0")
    elif nodad:
        ifa_flags = IFA_F_NODAD
        attrs += _attr(IFA_FLAGS, struct.pack("=I", IFA_F_NODAD))
        # preferred_lft 0, valid forever: a deprecated address, still answered
        # for and delivered to, is never picked as a source (RFC 6724 section
        # 5, rule 3). Else the master's own connections to the LAN (health
        # checks of DR real servers, which hold the VIP on lo and would answer
        # themselves) leave from the VIP; keepalived does the same for /128 VIPs.
        attrs += _attr(IFA_CACHEINFO, struct.pack("=IIII", 0, INFINITY_LIFE_TIME, 0, 0))
    header = IFADDRMSG.pack(family, prefixlen, ifa_flags, 0, index)
    return _message(kind, flags, seq, header + attrs)


def encode_get_link(seq: int, index: int) -> bytes:
    """RTM_GETLINK for one interface index (the answer is one RTM_NEWLINK)."""
    return _message(
        RTM_GETLINK, NLM_F_REQUEST, seq, IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, 0, 0)
    )


# ------------------------------------------------------------- decoding --


def _attrs(data: bytes, offset: int, end: int) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    while offset + RTATTR.size <= end:
        length, kind = RTATTR.unpack_from(data, offset)
        if length < RTATTR.size or offset + length > end:
            break  # malformed: keep what was whole
        out.setdefault(kind & 0x3FFF, data[offset + RTATTR.size : offset + length])
        offset += _align(length)
    return out


def _cstring(value: bytes | None) -> str:
    return "" if value is None else value.split(b"\0", 1)[0].decode(errors="replace")


def _address(kind: int, data: bytes, offset: int, end: int) -> Address | None:
    if end - offset < IFADDRMSG.size:
        return None
    family, prefixlen, flags, scope, index = IFADDRMSG.unpack_from(data, offset)
    attrs = _attrs(data, offset + IFADDRMSG.size, end)
    raw = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)  # ADDRESS is the peer on p-t-p
    if raw is None or len(raw) != ADDRESS_LENGTH.get(family):
        return None
    if IFA_FLAGS in attrs and len(attrs[IFA_FLAGS]) == 4:
        flags = struct.unpack("=I", attrs[IFA_FLAGS])[0]
    address = socket.inet_ntop(family, raw)
    label = _cstring(attrs.get(IFA_LABEL))
    return Address(kind, family, index, address, prefixlen, flags, label, scope)


def _link(kind: int, data: bytes, offset: int, end: int) -> Link | None:
    if end - offset < IFINFOMSG.size:
        return None
    _family, _type, index, flags, _change = IFINFOMSG.unpack_from(data, offset)
    attrs = _attrs(data, offset + IFINFOMSG.size, end)
    return Link(kind, index, _cstring(attrs.get(IFLA_IFNAME)), flags)


def parse(data: bytes) -> Iterator[Message]:
    """Every netlink message in one datagram; a truncated tail is dropped."""
    offset = 0
    while offset + NLMSGHDR.size <= len(data):
        length, kind, flags, seq, _pid = NLMSGHDR.unpack_from(data, offset)
        if length < NLMSGHDR.size or offset + length > len(data):
            return
        start, end = offset + NLMSGHDR.size, offset + length
        body: Address | Link | Done | Error | None = None
        if kind == NLMSG_DONE:
            body = Done()
        elif kind == NLMSG_ERROR and end - start >= NLMSGERR.size:
            body = Error(-NLMSGERR.unpack_from(data, start)[0])
        elif kind in (RTM_NEWADDR, RTM_DELADDR):
            body = _address(kind, data, start, end)
        elif kind in (RTM_NEWLINK, RTM_DELLINK):
            body = _link(kind, data, start, end)
        yield Message(kind, flags, seq, body)
        offset += _align(length)


# --------------------------------------------------------------- socket --


def open_socket(groups: int = 0) -> socket.socket:
    """A non-blocking NETLINK_ROUTE socket, subscribed to `groups`."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)
    try:
        if groups:
            try:  # a burst of events must not overflow it (ENOBUFS = resync)
                sock.setsockopt(socket.SOL_SOCKET, 33, MONITOR_RCVBUF)  # SO_RCVBUFFORCE
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, MONITOR_RCVBUF)
        sock.bind((0, groups))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class Rtnl:
    """The request socket: one request at a time, answers matched by sequence.

    A request cut short (cancelled, or a reply that makes no sense) leaves
    the kernel mid-dump, and the next dump would fail with EBUSY: the socket
    is then closed and a fresh one opened for the next request.
    """

    def __init__(self) -> None:
        self._sock: socket.socket | None = None
        self._seq = 0
        self._lock = asyncio.Lock()

    def open(self) -> None:
        if self._sock is None:
            self._sock = open_socket()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _next_seq(self) -> int:
        self._seq = self._seq % 0x7FFFFFFF + 1
        return self._seq

    async def request(self, build: Callable[[int], bytes], what: str) -> list[Address | Link]:
        """Send one request; every answer up to DONE, the ack or the reply.

        Raises NetlinkError with the kernel's errno, OSError from the socket.
        """
        async with self._lock:
            for attempt in range(DUMP_ATTEMPTS):
                self.open()
                sock = self._sock
                assert sock is not None
                seq = self._next_seq()
                try:
                    return await self._exchange(sock, build(seq), seq, what)
                except NetlinkError as exc:
                    if exc.errno != errno.EINTR or attempt == DUMP_ATTEMPTS - 1:
                        raise
                except BaseException:
                    self.close()  # whatever is left in it belongs to no one
                    raise
            raise AssertionError("unreachable")

    @staticmethod
    async def _exchange(
        sock: socket.socket, data: bytes, seq: int, what: str
    ) -> list[Address | Link]:
        loop = asyncio.get_running_loop()
        await loop.sock_sendall(sock, data)
        flags = NLMSGHDR.unpack_from(data)[2]
        dump = flags & NLM_F_DUMP == NLM_F_DUMP
        out: list[Address | Link] = []
        interrupted = False
        while True:
            for msg in parse(await loop.sock_recv(sock, RECV_SIZE)):
                if msg.seq != seq:
                    continue  # a late answer to an earlier request
                interrupted |= bool(msg.flags & NLM_F_DUMP_INTR)
                if isinstance(msg.body, Error):
                    if msg.body.code:
                        raise NetlinkError(msg.body.code, what)
                    return out  # the acknowledgement
                if isinstance(msg.body, Done):
                    if interrupted:  # the table changed under the dump: not a snapshot
                        raise NetlinkError(errno.EINTR, f"{what} (dump interrupted)")
                    return out
                if isinstance(msg.body, Address | Link):
                    out.append(msg.body)
                    if not dump and not flags & NLM_F_ACK:
                        return out  # a plain get: the one reply is the answer
