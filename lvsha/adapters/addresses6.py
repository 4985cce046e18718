"""IPv6 addresses over rtnetlink, stdlib only: the VIPs of VRRPv3 instances and link-locals.

A small, separate path until the IPv4 rtnetlink client (adapters/addresses.py)
learns AF_INET6: dump (RTM_GETADDR), add (RTM_NEWADDR with IFA_F_NODAD: a VIP
that moves between directors must not sit tentative through Duplicate
Address Detection, RFC 4862 section 5.4, while the old master still answers
for it), and remove (RTM_DELADDR). `DualStack` wraps the IPv4 Netlink and
sends every IPv6 VIP here, so the runtime sees one Netlink.

The interface's link-local address is the source of IPv6 adverts (RFC 5798
section 5.1.2.1) and the tie-break of section 6.4.3.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
from collections.abc import Iterable
from typing import Any

from lvsha.config import VirtualAddress
from lvsha.errors import KernelError

NETLINK_ROUTE = 0
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE, NLM_F_DUMP = 1, 4, 0x200, 0x400, 0x300
IFA_ADDRESS, IFA_LOCAL, IFA_CACHEINFO, IFA_FLAGS = 1, 2, 6, 8
INFINITY_LIFE_TIME = 0xFFFFFFFF
IFA_F_NODAD, IFA_F_DADFAILED, IFA_F_TENTATIVE = 0x02, 0x08, 0x40
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK = 0, 253
TIMEOUT = 2.0

_NLMSG = struct.Struct("=IHHII")
_IFADDR = struct.Struct("=BBBBI")


def _attr(kind: int, data: bytes) -> bytes:
    length = 4 + len(data)
    return struct.pack("=HH", length, kind) + data + b"\0" * (-length % 4)


def _attrs(data: bytes) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    offset = 0
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        if length < 4:
            break
        out[kind] = data[offset + 4 : offset + length]
        offset += (length + 3) & ~3
    return out


class Rtnl6:
    """One request at a time on a NETLINK_ROUTE socket, answered or timed out."""

    def __init__(self) -> None:
        self._seq = 0

    def _talk(self, kind: int, flags: int, body: bytes) -> list[tuple[int, bytes]]:
        self._seq += 1
        seq = self._seq
        msg = _NLMSG.pack(_NLMSG.size + len(body), kind, flags, seq, 0) + body
        try:
            with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE) as sock:
                sock.settimeout(TIMEOUT)
                sock.bind((0, 0))
                sock.send(msg)
                return self._replies(sock, seq)
        except OSError as exc:
            raise KernelError(f"rtnetlink (IPv6 addresses): {exc}") from exc

    @staticmethod
    def _replies(sock: socket.socket, seq: int) -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytes]] = []
        for _ in range(10_000):  # bounded: a dump of a huge table still ends
            data = sock.recv(1 << 16)
            offset = 0
            while offset + _NLMSG.size <= len(data):
                length, kind, _, got_seq, _ = _NLMSG.unpack_from(data, offset)
                if length < _NLMSG.size:
                    return out
                payload = data[offset + _NLMSG.size : offset + length]
                offset += (length + 3) & ~3
                if got_seq != seq:
                    continue
                if kind == NLMSG_DONE:
                    return out
                if kind == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", payload)[0]
                    if code:
                        raise OSError(code, errno.errorcode.get(code, str(code)))
                    return out
                out.append((kind, payload))
        return out

    def dump(self) -> list[tuple[str, int, int, int, int]]:
        """(address, prefixlen, ifindex, scope, flags) of every IPv6 address."""
        replies = self._talk(
            RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, _IFADDR.pack(socket.AF_INET6, 0, 0, 0, 0)
        )
        out = []
        for kind, payload in replies:
            if kind != RTM_NEWADDR or len(payload) < _IFADDR.size:
                continue
            family, prefixlen, flags, scope, index = _IFADDR.unpack_from(payload)
            attrs = _attrs(payload[_IFADDR.size :])
            raw = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
            if family != socket.AF_INET6 or raw is None or len(raw) != 16:
                continue
            if IFA_FLAGS in attrs and len(attrs[IFA_FLAGS]) == 4:
                flags = struct.unpack("=I", attrs[IFA_FLAGS])[0]
            out.append((str(ipaddress.IPv6Address(raw)), prefixlen, index, scope, flags))
        return out

    def change(self, add: bool, address: str, prefixlen: int, ifindex: int) -> None:
        packed = ipaddress.IPv6Address(address).packed
        body = _IFADDR.pack(socket.AF_INET6, prefixlen, IFA_F_NODAD, RT_SCOPE_UNIVERSE, ifindex)
        body += _attr(IFA_LOCAL, packed) + _attr(IFA_ADDRESS, packed)
        if add:
            body += _attr(IFA_FLAGS, struct.pack("=I", IFA_F_NODAD))
            # preferred_lft 0, valid forever: a deprecated address, still
            # answered for and delivered to, is never picked as a source
            # (RFC 6724 section 5, rule 3). Else the master's own connections
            # to the LAN (health checks of DR real servers, which hold the
            # VIP on lo and would answer themselves) leave from the VIP.
            # keepalived does the same for /128 VIPs (keepalived.conf(5)).
            body += _attr(IFA_CACHEINFO, struct.pack("=IIII", 0, INFINITY_LIFE_TIME, 0, 0))
            self._talk(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body)
        else:
            self._talk(RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK, body)


def _ifindex(name: str) -> int:
    try:
        return socket.if_nametoindex(name)
    except OSError as exc:
        raise KernelError(f"no interface {name}: {exc}") from exc


def link_local(interface: str, rtnl: Rtnl6 | None = None) -> str | None:
    """The interface's usable link-local address (not tentative, DAD not failed)."""
    index = _ifindex(interface)
    for address, _, ifindex, scope, flags in (rtnl or Rtnl6()).dump():
        usable = not flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED)
        if ifindex == index and scope == RT_SCOPE_LINK and usable:
            return address
    return None


def _is_v6(vip: VirtualAddress) -> bool:
    return ipaddress.ip_address(vip.address).version == 6


class DualStack:
    """The runtime's Netlink: IPv4 to the wrapped client, IPv6 VIPs and link-locals here."""

    def __init__(self, ipv4: Any) -> None:
        self.ipv4 = ipv4
        self.rtnl = Rtnl6()

    async def open(self) -> None:
        await self.ipv4.open()

    def close(self) -> None:
        self.ipv4.close()

    async def primary_address(
        self, interface: str, exclude: Iterable[str], family: int = 4
    ) -> str | None:
        if family == 6:
            return link_local(interface, self.rtnl)
        result: str | None = await self.ipv4.primary_address(interface, exclude)
        return result

    async def link_up(self, interface: str) -> bool:
        result: bool = await self.ipv4.link_up(interface)
        return result

    async def present(self, owned: Iterable[VirtualAddress]) -> set[VirtualAddress]:
        owned = list(owned)
        v6 = [v for v in owned if _is_v6(v)]
        found: set[VirtualAddress] = set(
            await self.ipv4.present([v for v in owned if not _is_v6(v)])
        )
        if v6:
            by_index = {(a, p, i) for a, p, i, _, _ in self.rtnl.dump()}
            for vip in v6:
                try:
                    index = socket.if_nametoindex(vip.device)
                except OSError:
                    continue
                if (vip.address, vip.prefixlen, index) in by_index:
                    found.add(vip)
        return found

    async def add(self, vip: VirtualAddress) -> None:
        if not _is_v6(vip):
            await self.ipv4.add(vip)
            return
        try:
            self.rtnl.change(True, vip.address, vip.prefixlen, _ifindex(vip.device))
        except KernelError as exc:
            if "EEXIST" not in str(exc) and "exists" not in str(exc):
                raise

    async def remove(self, vip: VirtualAddress) -> None:
        if not _is_v6(vip):
            await self.ipv4.remove(vip)
            return
        try:
            self.rtnl.change(False, vip.address, vip.prefixlen, _ifindex(vip.device))
        except KernelError as exc:
            if "EADDRNOTAVAIL" not in str(exc) and "ENODEV" not in str(exc):
                raise

    async def watch(self, on_event: Any) -> None:
        await self.ipv4.watch(on_event)
