"""Raw IPv6 VRRP sockets (RFC 5798 sections 5.1.2, 7.1): ff02::12, hop limit 255.

An AF_INET6 raw socket hands over the VRRP message without its IP header,
so what section 7.1 checks in the header comes as ancillary data: the hop
limit (IPV6_RECVHOPLIMIT; it must be 255) and the destination
(IPV6_RECVPKTINFO; the v3 checksum covers it). The receiver builds an
`IPv6Header` of them and hands it with the payload to `on_datagram`. As on
IPv4, two sockets with complementary kernel filters keep the adverts the
routers expect in a queue of their own, safe from a flood of forged ones.

The sender binds the interface's link-local address (or unicast_src_ip),
sends with hop limit 255 to ff02::12 or each unicast peer, and does not
loop multicast back. The checksum is the core's (`encode_for`): the kernel
computes none for protocol 112 unless IPV6_CHECKSUM is set, and it is not.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Callable, Sequence

from lvsha.adapters.vrrp_socket import (
    _JEQ_K,
    _LDB_ABS,
    _LDW_ABS,
    _LDW_LEN,
    _RET_K,
    _V3_ADVERT,
    ACCEPT,
    RECV_BUFFER,
    REJECT,
    TIMESTAMP_SPACE,
    Insn,
    TwoQueueReceiver,
    VrrpSender,
    bind_to_device,
    datagram_age,
    with_router_blocks,
)
from lvsha.core.packet import IPPROTO_VRRP, VRRP_TTL
from lvsha.core.packet_v3 import VRRP_MULTICAST_GROUP_V6, IPv6Header
from lvsha.core.vrrp import RouterParams
from lvsha.errors import KernelError

ANCILLARY = socket.CMSG_SPACE(20) + socket.CMSG_SPACE(4) + TIMESTAMP_SPACE  # pktinfo, hops, time
IPV6_TCLASS_CS6 = 0xC0  # network control, as the IPv4 adverts' TOS


def _host(address: str) -> str:
    """recvfrom's `fe80::1%eth1` without its zone."""
    return str(ipaddress.IPv6Address(address.split("%", 1)[0]))


def header_from(source: str, ancdata: list[tuple[int, int, bytes]]) -> IPv6Header:
    """The header fields of section 7.1 from recvmsg's ancillary data (-1: not given)."""
    destination, hops = "::", -1
    for level, kind, data in ancdata:
        if level != socket.IPPROTO_IPV6:
            continue
        if kind == socket.IPV6_PKTINFO and len(data) >= 16:
            destination = str(ipaddress.IPv6Address(data[:16]))
        elif kind == socket.IPV6_HOPLIMIT and len(data) >= 4:
            hops = struct.unpack("=i", data[:4])[0]
    return IPv6Header(_host(source), destination, hops)


# Classic BPF on an IPv6 raw socket sees the datagram from the VRRP header
# on (the kernel pulled the IPv6 header before raw delivery); the header
# itself is at SKF_NET_OFF (linux/filter.h), always all 40 octets of it.
SKF_NET_OFF = 0xFFF00000  # -0x100000 as the u32 of an instruction's k
_JGE_K = 0x35
MAX_PEERS_CHECKED = 27  # 9 instructions each: a router's block stays in a jump's 255


def expected_advert_filter6(
    routers: Sequence[RouterParams], accept: int = ACCEPT, reject: int = REJECT
) -> list[Insn]:
    """`accept` for a datagram that may be a real IPv6 advert of one of `routers`, else `reject`.

    The IPv6 counterpart of `expected_advert_filter` (RFC 5798 section 7.1):
    hop limit 255, a VRRPv3 ADVERTISEMENT, the VRID of one of the IPv6
    routers, from one of its unicast peers if it has any (a router with more
    than MAX_PEERS_CHECKED peers is taken by its VRID alone). The core still
    checks everything; with `accept` and `reject` swapped the program is the
    exact complement (every load is in bounds: the VRRP header's by a length
    check, the IPv6 header's always), so each datagram goes to one socket.
    """
    routers = [r for r in routers if r.family == 6]
    prog: list[Insn] = [
        (_LDB_ABS, 0, 0, SKF_NET_OFF + 7),  # hop limit
        (_JEQ_K, 1, 0, VRRP_TTL),
        (_RET_K, 0, 0, reject),
        (_LDW_LEN, 0, 0, 0),  # the 8 octets of the VRRP header are there
        (_JGE_K, 1, 0, 8),
        (_RET_K, 0, 0, reject),
        (_LDB_ABS, 0, 0, 0),  # version and type
        (_JEQ_K, 1, 0, _V3_ADVERT),
        (_RET_K, 0, 0, reject),
        (_LDB_ABS, 0, 0, 1),  # A = VRID, kept until a router's block is entered
    ]
    return with_router_blocks(prog, routers, lambda r: _router_block6(r, accept, reject), reject)


def _router_block6(router: RouterParams, accept: int, reject: int) -> list[Insn]:
    peers = router.unicast_peers
    if not peers or len(peers) > MAX_PEERS_CHECKED:
        return [(_RET_K, 0, 0, accept)]
    block: list[Insn] = []
    for peer in peers:  # the source address, four words, each a chance to try the next peer
        words = struct.unpack("!4I", ipaddress.IPv6Address(peer).packed)
        for i, word in enumerate(words):
            block += [(_LDW_ABS, 0, 0, SKF_NET_OFF + 8 + 4 * i), (_JEQ_K, 0, 7 - 2 * i, word)]
        block.append((_RET_K, 0, 0, accept))
    block.append((_RET_K, 0, 0, reject))
    return block


class VrrpReceiver6(TwoQueueReceiver):
    """The IPv6 VRRP datagrams of one interface, with their header fields, to a callback.

    Two kernel-filtered queues as on IPv4 (`TwoQueueReceiver`), sorted by
    `expected_advert_filter6`.
    """

    def __init__(
        self,
        interface: str,
        multicast: bool,
        on_datagram: Callable[[IPv6Header, bytes, float], None],
        on_overflow: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(interface, multicast, on_overflow)
        self.on_datagram = on_datagram

    def _socket(self) -> socket.socket:
        return socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_VRRP)

    def _program(self, routers: Sequence[RouterParams], accept: int, reject: int) -> list[Insn]:
        return expected_advert_filter6(routers, accept, reject)

    def _configure(self, sock: socket.socket, ifindex: int) -> None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        if self.multicast:
            mreq = socket.inet_pton(socket.AF_INET6, VRRP_MULTICAST_GROUP_V6)
            sock.setsockopt(
                socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq + struct.pack("@I", ifindex)
            )

    def _deliver(self, sock: socket.socket) -> None:
        data, ancdata, _, address = sock.recvmsg(RECV_BUFFER, ANCILLARY)
        self.on_datagram(header_from(address[0], ancdata), data, datagram_age(ancdata))


class VrrpSender6(VrrpSender):
    """Sends VRRP payloads from one IPv6 source (link-local or unicast) out of one interface."""

    def __init__(self, interface: str, source: str) -> None:
        super().__init__(interface, source)
        self._ifindex = 0

    def open(self) -> None:
        try:
            self._ifindex = socket.if_nametoindex(self.interface)
            sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_VRRP)
        except OSError as exc:
            raise KernelError(
                f"cannot open an IPv6 VRRP socket on {self.interface}: {exc}"
            ) from exc
        try:
            bind_to_device(sock, self.interface)
            sock.bind((self.source, 0, 0, self._ifindex))
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, VRRP_TTL)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, VRRP_TTL)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, self._ifindex)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, IPV6_TCLASS_CS6)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise KernelError(
                f"cannot set up the IPv6 VRRP sender {self.source} on {self.interface}: {exc}"
            ) from exc
        self._sock = sock

    def _address(self, destination: str) -> tuple[str | int, ...]:
        return (destination, 0, 0, self._ifindex)
