"""Interfaces and VIPs through rtnetlink (the stdlib client in rtnetlink.py).

The runtime decides which VIPs should be present (core/vips.py); this
module reads what the kernel holds and adds or removes single addresses.
`watch` follows link and address events so that a VIP deleted by hand is
put back and a link going down is noticed. No pyroute2 here: a VRRP-only
director never imports it (docs/benchmarks-vrrp.md, "Lean start").

IPv4 and IPv6 share the path: an IPv6 VIP (of a VRRPv3 instance) is added
with IFA_F_NODAD, and `link_local` finds the source of IPv6 adverts (RFC
5798 section 5.1.2.1).
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from lvsha.adapters import rtnetlink
from lvsha.adapters.rtnetlink import (
    IFA_F_DADFAILED,
    IFA_F_SECONDARY,
    IFA_F_TENTATIVE,
    IFF_RUNNING,
    IFF_UP,
    RT_SCOPE_LINK,
    RTM_DELADDR,
    RTM_NEWADDR,
    RTMGRP_IPV4_IFADDR,
    RTMGRP_IPV6_IFADDR,
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
    """An IPv4 or IPv6 address was added, changed (an IPv6 one leaving DAD) or deleted."""

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

    async def _dump(self, family: int) -> list[Address]:
        """Every address of one family."""
        name = "IPv6" if family == socket.AF_INET6 else "IPv4"
        try:
            dump = await self._rtnl.request(
                lambda seq: rtnetlink.encode_dump_addresses(seq, family), "RTM_GETADDR"
            )
        except OSError as exc:  # the caller retries
            raise KernelError(f"cannot list {name} addresses: {exc}") from exc
        return [m for m in dump if isinstance(m, Address) and m.family == family]

    async def _addresses(self, family: int = socket.AF_INET) -> list[tuple[str, str, int, int]]:
        """(ifname, address, prefixlen, flags) of every address of one family."""
        names: dict[int, str] = {}
        out = []
        for msg in await self._dump(family):
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

    async def link_local(self, interface: str) -> str | None:
        """The interface's usable IPv6 link-local address (not tentative, DAD not failed)."""
        try:
            index = socket.if_nametoindex(interface)
        except OSError as exc:
            raise KernelError(f"no interface {interface}: {exc}") from exc
        for a in await self._dump(socket.AF_INET6):
            usable = not a.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED)
            if a.index == index and a.scope == RT_SCOPE_LINK and usable:
                return a.address
        return None

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
        owned = list(owned)
        families = {_family(v.address) for v in owned} or {socket.AF_INET}
        held = {
            (ifname, address, prefixlen)
            for family in sorted(families)
            for ifname, address, prefixlen, _ in await self._addresses(family)
        }
        return {v for v in owned if (v.device, _canonical(v.address), v.prefixlen) in held}

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
            family = _family(vip.address)
            adding = kind == RTM_NEWADDR
            await self._rtnl.request(
                lambda seq: rtnetlink.encode_address(
                    kind,
                    seq,
                    index,
                    vip.address,
                    vip.prefixlen,
                    family,
                    label=vip.label if adding else None,
                    broadcast=vip.broadcast if adding else None,
                    nodad=adding and family == socket.AF_INET6,
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


def _family(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def _canonical(address: str) -> str:
    """The kernel's spelling of an address (inet_ntop), to compare with a dump's."""
    family = _family(address)
    try:
        return socket.inet_ntop(family, socket.inet_pton(family, address))
    except OSError:
        return address


def _ifname(index: int) -> str:
    try:
        return socket.if_indextoname(index)
    except OSError:
        return ""


async def watch(on_event: Callable[[NetlinkEvent], None]) -> None:
    """Forward link and address events (IPv4 and IPv6) until cancelled.

    Raises KernelError when the kernel dropped events (ENOBUFS: the socket
    overflowed) or the socket failed: the supervisor restarts the watch,
    which reads every watched link and the VIPs again (a resync).
    """
    loop = asyncio.get_running_loop()
    try:
        sock = rtnetlink.open_socket(RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR)
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
    if isinstance(body, Address) and body.family in (socket.AF_INET, socket.AF_INET6):
        # a link deleted with its addresses: the index may already be gone
        ifname = _ifname(body.index) or body.label.split(":", 1)[0]
        return AddressEvent(ifname, body.address, body.kind == RTM_NEWADDR)
    return None
