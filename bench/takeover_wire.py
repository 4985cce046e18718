"""The wire and the kernel as bench/takeover.py sees them: frames on the bridge, VIPs in netlink.

`Sniffer` is an AF_PACKET capture in the bridge's namespace (a thread moved
there with setns(2)): every frame entering the bridge from a director's
port, with the kernel's receive timestamp (SO_TIMESTAMPNS), kept when it is
a VRRP advert of the benchmark's VRID (IPv4 or IPv6) or an announcement of
its VIP (gratuitous ARP, unsolicited Neighbour Advertisement).
`AddressWatcher` follows RTM_NEWADDR / RTM_DELADDR in one director's
namespace: when the VIP was added and removed.
"""

from __future__ import annotations

import ctypes
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

CLONE_NEWNET = 0x40000000
ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
IPPROTO_VRRP = 112
ND_NEIGHBOR_ADVERT = 136
PACKET_OUTGOING = 4
SO_TIMESTAMPNS = 35
NETLINK_ROUTE = 0
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV6_IFADDR = 0x100
RTM_NEWADDR, RTM_DELADDR = 20, 21
IFA_ADDRESS, IFA_LOCAL = 1, 2


# ------------------------------------------------------------- namespaces --

_libc = ctypes.CDLL(None, use_errno=True)


def enter_netns(ns: str) -> None:
    """Move the calling thread (only) into network namespace `ns`."""
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({ns}): {os.strerror(err)}")
    finally:
        os.close(fd)


# ------------------------------------------------------------- the wire --


@dataclass(frozen=True)
class Frame:
    """A VRRP advert or a gratuitous ARP entering the bridge from a director."""

    at: float  # kernel receive time, seconds since the epoch
    host: str  # the director whose port it came in on
    kind: str  # "advert" or "garp"
    priority: int = -1  # adverts only


class Sniffer:
    """AF_PACKET capture of every director port in the bridge's namespace."""

    def __init__(self, switch_ns: str, ports: dict[str, str], vrid: int, vip: str) -> None:
        self.switch_ns, self.vrid, self.vip = switch_ns, vrid, vip
        self.ports = ports  # bridge-side veth name -> host name
        self.frames: list[Frame] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sniffer", daemon=True)

    def add_port(self, port: str, host: str) -> None:
        with self._lock:
            self.ports = {**self.ports, port: host}

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError("sniffer did not start")
        if self.errors:
            raise RuntimeError(f"sniffer: {self.errors[0]}")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            enter_netns(self.switch_ns)
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            sock.settimeout(0.2)
        except OSError as exc:
            self.errors.append(str(exc))
            self._ready.set()
            return
        self._ready.set()
        with sock:
            while not self._stop.is_set():
                try:
                    data, ancdata, _flags, addr = sock.recvmsg(2048, 64)
                except TimeoutError:
                    continue
                except OSError as exc:
                    self.errors.append(str(exc))
                    continue
                at = time.time()
                for level, kind, cdata in ancdata:
                    if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                        sec, nsec = struct.unpack("qq", cdata[:16])
                        at = sec + nsec / 1e9
                ifname, pkttype = addr[0], addr[2]
                host = self.ports.get(ifname)
                if host is None or pkttype == PACKET_OUTGOING:
                    continue  # seen once, as it enters the bridge
                frame = parse_frame(data, at, host, self.vrid, self.vip)
                if frame is not None:
                    with self._lock:
                        self.frames.append(frame)

    def snapshot(self) -> list[Frame]:
        with self._lock:
            return list(self.frames)

    def adverts(self, host: str | None = None, since: float = 0.0) -> list[Frame]:
        return [
            f
            for f in self.snapshot()
            if f.kind == "advert" and f.at >= since and (host is None or f.host == host)
        ]

    def first(
        self, host: str, kind: str, since: float, pred: Callable[[Frame], bool] = lambda f: True
    ) -> Frame | None:
        for f in self.snapshot():
            if f.host == host and f.kind == kind and f.at >= since and pred(f):
                return f
        return None


def parse_frame(data: bytes, at: float, host: str, vrid: int, vip: str) -> Frame | None:
    """An advert of `vrid` or an announcement of `vip` (gratuitous ARP, unsolicited NA)."""
    if len(data) < 14:
        return None
    (ethertype,) = struct.unpack_from("!H", data, 12)
    if ethertype == ETH_P_IPV6:
        found = parse_frame6(data, vrid, vip)
        return None if found is None else Frame(at, host, found[0], found[1])
    if ethertype == ETH_P_IP and len(data) >= 14 + 20:
        ihl = (data[14] & 0x0F) * 4
        if data[14 + 9] != IPPROTO_VRRP or len(data) < 14 + ihl + 3:
            return None
        vrrp = data[14 + ihl :]
        if vrrp[1] != vrid:
            return None
        return Frame(at, host, "advert", vrrp[2])
    if ethertype == ETH_P_ARP and len(data) >= 14 + 28:
        spa = socket.inet_ntoa(data[14 + 14 : 14 + 18])
        tpa = socket.inet_ntoa(data[14 + 24 : 14 + 28])
        if spa == tpa == vip:
            return Frame(at, host, "garp")
    return None


@dataclass(frozen=True)
class AddressEvent:
    at: float
    added: bool
    address: str


class AddressWatcher:
    """Netlink RTMGRP_IPV4_IFADDR and _IPV6_ in one director's namespace: when the VIP moves."""

    def __init__(self, ns: str, vip: str) -> None:
        self.ns, self.vip = ns, vip
        self.events: list[AddressEvent] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"addr-{ns}", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(5) or self.errors:
            raise RuntimeError(f"address watcher in {self.ns}: {self.errors}")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            enter_netns(self.ns)
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
            sock.bind((0, RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR))
            sock.settimeout(0.2)
        except OSError as exc:
            self.errors.append(str(exc))
            self._ready.set()
            return
        self._ready.set()
        with sock:
            while not self._stop.is_set():
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    continue
                except OSError as exc:
                    self.errors.append(str(exc))
                    continue
                at = time.time()
                for added, address in parse_ifaddr(data):
                    with self._lock:
                        self.events.append(AddressEvent(at, added, address))

    def first(self, added: bool, since: float, address: str = "") -> AddressEvent | None:
        address = address or self.vip
        with self._lock:
            for e in self.events:
                if e.added == added and e.address == address and e.at >= since:
                    return e
        return None


def parse_ifaddr(data: bytes) -> Iterator[tuple[bool, str]]:
    offset = 0
    while offset + 16 <= len(data):
        length, kind = struct.unpack_from("=IH", data, offset)
        if length < 16:
            return
        if kind in (RTM_NEWADDR, RTM_DELADDR):
            pos, end = offset + 16 + 8, offset + length  # nlmsghdr + ifaddrmsg
            address = None
            while pos + 4 <= end:
                alen, atype = struct.unpack_from("=HH", data, pos)
                if alen < 4:
                    break
                if atype in (IFA_LOCAL, IFA_ADDRESS) and alen == 8:
                    address = socket.inet_ntoa(data[pos + 4 : pos + 8])
                elif atype == IFA_ADDRESS and alen == 20:
                    address = socket.inet_ntop(socket.AF_INET6, data[pos + 4 : pos + 20])
                    if atype == IFA_LOCAL:
                        break
                pos += (alen + 3) & ~3
            if address is not None:
                yield kind == RTM_NEWADDR, address
        offset += (length + 3) & ~3


def parse_frame6(data: bytes, vrid: int, vip6: str) -> tuple[str, int] | None:
    """An IPv6 Ethernet frame: ("advert", priority) of `vrid`, ("garp", -1) for an NA of the VIP.

    The unsolicited Neighbour Advertisement (RFC 4861 section 7.2.6) is IPv6's
    gratuitous ARP; adverts carry no extension headers (RFC 5798 5.1.2).
    """
    if len(data) < 14 + 40 + 4:
        return None
    nh, payload = data[14 + 6], data[14 + 40 :]
    if nh == IPPROTO_VRRP and len(payload) >= 3 and payload[1] == vrid:
        return "advert", payload[2]
    na = nh == socket.IPPROTO_ICMPV6 and payload[0] == ND_NEIGHBOR_ADVERT and len(payload) >= 24
    if na and socket.inet_ntop(socket.AF_INET6, payload[8:24]) == vip6:
        return "garp", -1
    return None
