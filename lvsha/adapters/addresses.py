"""Interfaces and VIPs through rtnetlink (the stdlib client in rtnetlink.py).

The runtime decides which VIPs should be present (core/vips.py); this
module reads what the kernel holds and adds or removes single addresses.
`watch` follows link and address events so that a VIP deleted by hand is
put back and a link going down is noticed. No pyroute2 here: a VRRP-only
director never imports it (docs/benchmarks-vrrp.md, "Lean start").
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from lvsha.adapters import rtnetlink
from lvsha.adapters.rtnetlink import (
    IFA_F_SECONDARY,
    IFF_RUNNING,
    IFF_UP,
    RTM_DELADDR,
    RTM_NEWADDR,
    RTMGRP_IPV4_IFADDR,
    RTMGRP_LINK,
    Address,
    Link,
    NetlinkError,
    Rtnl,
)
from lvsha.config import VirtualAddress
from lvsha.errors import KernelError

__all__ = [
    "IFA_F_SECONDARY",
    "IFF_RUNNING",
    "IFF_UP",
    "RTMGRP_IPV4_IFADDR",
    "RTMGRP_LINK",
    "AddressEvent",
    "LinkEvent",
    "Netlink",
    "NetlinkEvent",
    "watch",
]


@dataclass(frozen=True, slots=True)
class LinkEvent:
    """A link appeared, changed or vanished; `up` is admin up and carrier."""

    ifname: str
    up: bool


@dataclass(frozen=True, slots=True)
class AddressEvent:
    """An IPv4 address was added or deleted."""

    ifname: str
    address: str
    added: bool


NetlinkEvent = LinkEvent | AddressEvent


class Netlink:
    """One request socket for queries and changes, one request at a time.

    The kernel refuses a second dump on a netlink socket while one is in
    progress (EBUSY): `Rtnl` serialises requests, so a reload asking for an
    interface's address while the VIP reconciler lists addresses waits its
    turn instead of failing.
    """

    def __init__(self) -> None:
        self._rtnl = Rtnl()

    async def open(self) -> None:
        try:
            self._rtnl.open()
        except OSError as exc:
            raise KernelError(f"cannot open an rtnetlink socket: {exc}") from exc

    def close(self) -> None:
        self._rtnl.close()

    async def _addresses(self) -> list[tuple[str, str, int, int]]:
        """(ifname, address, prefixlen, flags) of every IPv4 address."""
        try:
            dump = await self._rtnl.request(
                lambda seq: rtnetlink.encode_dump_addresses(seq, socket.AF_INET),
                "RTM_GETADDR",
            )
        except OSError as exc:  # the caller retries
            raise KernelError(f"cannot list IPv4 addresses: {exc}") from exc
        names: dict[int, str] = {}
        out = []
        for msg in dump:
            if isinstance(msg, Address) and msg.family == socket.AF_INET:
                if msg.index not in names:
                    names[msg.index] = _ifname(msg.index)
                if names[msg.index]:
                    out.append((names[msg.index], msg.address, msg.prefixlen, msg.flags))
        return out

    async def primary_address(self, interface: str, exclude: Iterable[str]) -> str | None:
        """The interface's primary IPv4 address, not counting our own VIPs."""
        skip = set(exclude)
        candidates = [
            (flags & IFA_F_SECONDARY, address)
            for ifname, address, _, flags in await self._addresses()
            if ifname == interface and address not in skip
        ]
        return min(candidates)[1] if candidates else None

    async def link_up(self, interface: str) -> bool:
        try:
            index = socket.if_nametoindex(interface)
        except OSError:
            return False
        try:
            reply = await self._rtnl.request(
                lambda seq: rtnetlink.encode_get_link(seq, index), f"RTM_GETLINK {interface}"
            )
        except NetlinkError as exc:  # the link vanished between the two calls
            if exc.errno == errno.ENODEV:
                return False
            raise KernelError(f"cannot read the state of {interface}: {exc}") from exc
        except OSError as exc:
            raise KernelError(f"cannot read the state of {interface}: {exc}") from exc
        return any(isinstance(m, Link) and m.up for m in reply)

    async def present(self, owned: Iterable[VirtualAddress]) -> set[VirtualAddress]:
        """Which of the `owned` VIPs the kernel holds now."""
        held = {(ifname, address, plen) for ifname, address, plen, _ in await self._addresses()}
        return {v for v in owned if (v.device, v.address, v.prefixlen) in held}

    async def watch(self, on_event: Callable[[NetlinkEvent], None]) -> None:
        """Forward link and address events until cancelled (on a socket of its own)."""
        await watch(on_event)

    async def add(self, vip: VirtualAddress) -> None:
        await self._change(RTM_NEWADDR, vip)

    async def remove(self, vip: VirtualAddress) -> None:
        await self._change(RTM_DELADDR, vip)

    async def _change(self, kind: int, vip: VirtualAddress) -> None:
        verb = "add" if kind == RTM_NEWADDR else "remove"
        try:
            index = socket.if_nametoindex(vip.device)
            await self._rtnl.request(
                lambda seq: rtnetlink.encode_address(
                    kind,
                    seq,
                    index,
                    vip.address,
                    vip.prefixlen,
                    label=vip.label if kind == RTM_NEWADDR else None,
                    broadcast=vip.broadcast if kind == RTM_NEWADDR else None,
                ),
                f"{verb} {vip.address}/{vip.prefixlen}",
            )
        except OSError as exc:
            if (kind, exc.errno) in (
                (RTM_NEWADDR, errno.EEXIST),
                (RTM_DELADDR, errno.EADDRNOTAVAIL),
            ):
                return  # already as wanted: someone raced us
            raise KernelError(
                f"cannot {verb} {vip.address}/{vip.prefixlen} on {vip.device}: {exc}"
            ) from exc


def _ifname(index: int) -> str:
    try:
        return socket.if_indextoname(index)
    except OSError:
        return ""


async def watch(on_event: Callable[[NetlinkEvent], None]) -> None:
    """Forward link and IPv4 address events until cancelled.

    Raises KernelError when the kernel dropped events (ENOBUFS: the socket
    overflowed) or the socket failed: the supervisor restarts the watch,
    which reads every watched link and the VIPs again (a resync).
    """
    loop = asyncio.get_running_loop()
    try:
        sock = rtnetlink.open_socket(RTMGRP_LINK | RTMGRP_IPV4_IFADDR)
    except OSError as exc:
        raise KernelError(f"cannot open the rtnetlink monitor: {exc}") from exc
    failed: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        try:
            while True:
                for msg in rtnetlink.parse(sock.recv(rtnetlink.RECV_SIZE)):
                    event = _event(msg.body)
                    if event is not None:
                        on_event(event)
        except BlockingIOError:
            return
        except Exception as exc:  # ENOBUFS, a closed socket, a handler's bug
            loop.remove_reader(sock.fileno())
            if not failed.done():
                reason = "events lost" if getattr(exc, "errno", None) == errno.ENOBUFS else "failed"
                error = KernelError(f"rtnetlink monitor {reason}: {exc}")
                error.__cause__ = exc
                failed.set_exception(error)

    loop.add_reader(sock.fileno(), readable)
    try:
        await failed
    finally:
        loop.remove_reader(sock.fileno())
        sock.close()


def _event(body: object) -> NetlinkEvent | None:
    if isinstance(body, Link):
        return LinkEvent(body.ifname, body.up) if body.ifname else None
    if isinstance(body, Address) and body.family == socket.AF_INET:
        # a link deleted with its addresses: the index may already be gone
        ifname = _ifname(body.index) or body.label.split(":", 1)[0]
        return AddressEvent(ifname, body.address, body.kind == RTM_NEWADDR)
    return None
