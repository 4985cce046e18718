"""Interfaces and VIPs through rtnetlink (pyroute2's AsyncIPRoute).

The runtime decides which VIPs should be present (core/vips.py); this
module reads what the kernel holds and adds or removes single addresses.
`watch` follows link and address events so that a VIP deleted by hand is
put back and a link going down is noticed.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pyroute2 import AsyncIPRoute

from lvsha.config import VirtualAddress
from lvsha.errors import KernelError

IFF_UP = 0x1
IFF_RUNNING = 0x40
IFA_F_SECONDARY = 0x01
RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10


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
    progress (EBUSY): without the lock, a reload asking for an interface's
    address while the VIP reconciler listed addresses failed one or the
    other (a VIP added a retry later, or an instance not started again).
    """

    def __init__(self) -> None:
        self._ipr: Any = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        self._ipr = AsyncIPRoute()

    def close(self) -> None:
        if self._ipr is not None:
            self._ipr.close()
            self._ipr = None

    async def _addresses(self) -> list[tuple[str, str, int, int]]:
        """(ifname, address, prefixlen, flags) of every IPv4 address."""
        out = []
        try:
            async with self._lock:
                async for msg in await self._ipr.addr("dump", family=socket.AF_INET):
                    ifname = _ifname(msg["index"])
                    if ifname:
                        out.append((ifname, msg.get("address"), msg["prefixlen"], msg["flags"]))
        except Exception as exc:  # NetlinkError, OSError: the caller retries
            raise KernelError(f"cannot list IPv4 addresses: {exc}") from exc
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
            async with self._lock:
                for msg in await self._ipr.link("get", index=index):
                    return _link_is_up(msg)
        except Exception as exc:  # the link vanished between the two calls
            if getattr(exc, "code", None) == errno.ENODEV:
                return False
            raise KernelError(f"cannot read the state of {interface}: {exc}") from exc
        return False

    async def present(self, owned: Iterable[VirtualAddress]) -> set[VirtualAddress]:
        """Which of the `owned` VIPs the kernel holds now."""
        held = {(ifname, address, plen) for ifname, address, plen, _ in await self._addresses()}
        return {v for v in owned if (v.device, v.address, v.prefixlen) in held}

    async def watch(self, on_event: Callable[[NetlinkEvent], None]) -> None:
        """Forward link and address events until cancelled (on a socket of its own)."""
        await watch(on_event)

    async def add(self, vip: VirtualAddress) -> None:
        await self._change("add", vip)

    async def remove(self, vip: VirtualAddress) -> None:
        await self._change("del", vip)

    async def _change(self, command: str, vip: VirtualAddress) -> None:
        try:
            index = socket.if_nametoindex(vip.device)
            async with self._lock:
                extra: dict[str, str] = {}
                if command == "add" and vip.label is not None:
                    extra["label"] = vip.label  # IFA_LABEL
                if command == "add" and vip.broadcast is not None:
                    extra["broadcast"] = vip.broadcast  # IFA_BROADCAST
                await self._ipr.addr(
                    command, index=index, address=vip.address, prefixlen=vip.prefixlen, **extra
                )
        except Exception as exc:  # pyroute2 raises NetlinkError and OSError alike
            code = getattr(exc, "code", None)
            if (command, code) in (("add", errno.EEXIST), ("del", errno.EADDRNOTAVAIL)):
                return  # already as wanted: someone raced us
            verb = "add" if command == "add" else "remove"
            raise KernelError(
                f"cannot {verb} {vip.address}/{vip.prefixlen} on {vip.device}: {exc}"
            ) from exc


def _ifname(index: int) -> str:
    try:
        return socket.if_indextoname(index)
    except OSError:
        return ""


def _link_is_up(msg: Any) -> bool:
    flags = msg["flags"]
    return bool(flags & IFF_UP and flags & IFF_RUNNING)


async def watch(on_event: Callable[[NetlinkEvent], None]) -> None:
    """Forward link and IPv4 address events until cancelled."""
    monitor: Any = AsyncIPRoute()
    try:
        await monitor.bind(groups=RTMGRP_LINK | RTMGRP_IPV4_IFADDR)
        while True:
            async for msg in monitor.get():
                event = _event(msg)
                if event is not None:
                    on_event(event)
            await asyncio.sleep(0)
    finally:
        monitor.close()


def _event(msg: Any) -> NetlinkEvent | None:
    kind = msg.get("event")
    if kind in ("RTM_NEWLINK", "RTM_DELLINK"):
        ifname = msg.get("ifname")
        if not ifname:
            return None
        return LinkEvent(ifname, kind == "RTM_NEWLINK" and _link_is_up(msg))
    if kind in ("RTM_NEWADDR", "RTM_DELADDR") and msg.get("family") == socket.AF_INET:
        return AddressEvent(_ifname(msg["index"]), msg.get("address"), kind == "RTM_NEWADDR")
    return None
