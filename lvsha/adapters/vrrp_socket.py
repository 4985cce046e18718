"""Raw IPPROTO_VRRP (112) sockets for one interface (RFC 3768 sections 5.2, 7.1).

The receiver of an interface gets every VRRP datagram (multicast to
224.0.0.18 and unicast to us) with its IPv4 header, so that the core can
check the TTL, through two sockets bound to the device: one for the adverts
its routers expect, one for everything else, so that a flood of forged
adverts cannot crowd out the real ones (`VrrpReceiver`). Sending uses a
socket per source address, bound to it, with TTL 255, multicast loop off,
and the IP precedence of network control (TOS 0xc0) that keepalived puts on
its adverts, so that QoS policies queue them with other control traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import ipaddress
import socket
import struct
import time
from collections.abc import Callable, Iterable, Sequence

from lvsha.core.packet import AUTH_PASS, IPPROTO_VRRP, VRRP_MULTICAST_GROUP, VRRP_TTL
from lvsha.core.vrrp import RouterParams
from lvsha.errors import KernelError

RECV_BUFFER = 65535
MAX_READS_PER_WAKEUP = 64  # bounded work per event-loop wakeup, even under a flood
SO_TIMESTAMPNS = 35  # <asm-generic/socket.h>: the kernel's receive time, as ancillary data
TIMESTAMP_SPACE = socket.CMSG_SPACE(16)  # struct timespec
IPTOS_PREC_INTERNETCONTROL = 0xC0  # RFC 791 precedence 6; DSCP CS6 (RFC 2474)


def datagram_age(ancdata: list[tuple[int, int, bytes]]) -> float:
    """How long ago the kernel received the datagram (SO_TIMESTAMPNS), 0 when not given.

    A backup resets Master_Down_Timer when the advert arrives (RFC 5798
    section 6.4.2), not when a busy loop gets round to reading it: the
    driver counts from the arrival.
    """
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack("=qq", data[:16])
            age: float = time.time() - (sec + nsec / 1e9)
            return max(0.0, age)
    return 0.0


def bind_to_device(sock: socket.socket, interface: str) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode() + b"\x00")


def _mreqn(group: str, ifindex: int) -> bytes:
    """struct ip_mreqn: multicast group, local address (any), interface index."""
    return socket.inet_aton(group) + socket.inet_aton("0.0.0.0") + struct.pack("@i", ifindex)


# ------------------------------------------------------- kernel filters --
#
# Classic BPF (Documentation/networking/filter.rst). On a raw IPv4 socket the
# program sees the datagram from its IP header on; it returns how many octets
# to keep, 0 to drop.

SO_ATTACH_FILTER = 26  # <asm-generic/socket.h>; the socket module has no name for it
SO_MEMINFO = 55  # u32[SK_MEMINFO_VARS], SK_MEMINFO_DROPS counts receive-queue drops
SK_MEMINFO_VARS = 9
SK_MEMINFO_DROPS = 8
BPF_MAXINSNS = 4096
ACCEPT = 0x40000  # more than any datagram: keep it whole
REJECT = 0

_LDB_ABS, _LDW_ABS, _LDW_LEN = 0x30, 0x20, 0x80  # A = u8 [k], u32 [k], datagram length
_LDB_IND, _LDW_IND = 0x50, 0x40  # A = u8 [X + k], u32 [X + k]
_LDX_MSH = 0xB1  # X = 4 * ([k] & 0xf): the IP header length
_LSH_K, _ADD_K, _ADD_X, _SUB_K = 0x64, 0x04, 0x0C, 0x14
_TAX = 0x07  # X = A
_JEQ_K, _JGE_X = 0x15, 0x3D  # if A == k / A >= X: skip jt instructions, else jf
_RET_K = 0x06

Insn = tuple[int, int, int, int]  # code, jt, jf, k


def expected_advert_filter(
    routers: Sequence[RouterParams], accept: int = ACCEPT, reject: int = REJECT
) -> list[Insn]:
    """`accept` for a datagram that may be a real advert of one of `routers`, else `reject`.

    "May be real": TTL 255, a VRRPv2 ADVERTISEMENT, the VRID of one of the
    routers, from one of its unicast peers if it has any, with its
    authentication type and, for PASS, its password. For a version 3
    router (RFC 5798: no authentication), a VRRPv3 ADVERTISEMENT of its VRID
    from one of its peers; with no v3 router the program is the v2 one.
    IPv6 routers are not on this IPv4 socket and are left out. The core still checks
    everything (section 7.1); this only sorts datagrams into two queues.
    Every load is guarded by a length check, so the program never aborts
    (which would drop the datagram): with `accept` and `reject` swapped it
    is the exact complement, and each datagram goes to exactly one socket.
    Routers that do not fit in BPF_MAXINSNS are left out (their adverts
    then share the other queue).
    """
    routers = [r for r in routers if r.family == 4]
    mixed = any(r.version == 3 for r in routers)
    prog: list[Insn] = [
        (_LDB_ABS, 0, 0, 8),  # TTL
        (_JEQ_K, 1, 0, VRRP_TTL),
        (_RET_K, 0, 0, reject),
        (_LDX_MSH, 0, 0, 0),  # X = IP header length
        (_LDW_LEN, 0, 0, 0),
        (_SUB_K, 0, 0, 8),  # the 8 octets of the VRRP header are there
        (_JGE_X, 1, 0, 0),
        (_RET_K, 0, 0, reject),
        (_LDB_IND, 0, 0, 0),  # version and type
        *([(_JEQ_K, 2, 0, _V3_ADVERT)] if mixed else []),  # each block checks which
        (_JEQ_K, 1, 0, _V2_ADVERT),
        (_RET_K, 0, 0, reject),
        (_LDB_IND, 0, 0, 1),  # A = VRID, kept until a router's block is entered
    ]
    return with_router_blocks(
        prog, routers, lambda r: _router_block(r, accept, reject, mixed), reject
    )


def with_router_blocks(
    prog: list[Insn],
    routers: Iterable[RouterParams],
    block_for: Callable[[RouterParams], list[Insn]],
    reject: int,
) -> list[Insn]:
    """After `prog` (A = the VRID): each router's block behind a VRID test, then reject.

    Shared by the IPv4 and IPv6 filters; routers beyond BPF_MAXINSNS are left out.
    """
    for router in routers:
        block = block_for(router)
        if len(prog) + 1 + len(block) + 1 > BPF_MAXINSNS:
            break
        prog.append((_JEQ_K, 0, len(block), router.vrid))  # not this VRID: skip the block
        prog += block  # every path through a block returns
    prog.append((_RET_K, 0, 0, reject))
    return prog


_V2_ADVERT, _V3_ADVERT = 0x21, 0x31  # version << 4 | type ADVERTISEMENT


def _router_block(router: RouterParams, accept: int, reject: int, mixed: bool) -> list[Insn]:
    block: list[Insn] = []
    if mixed:  # the prefix let both versions through: this router's only
        block += [
            (_LDB_IND, 0, 0, 0),
            (_JEQ_K, 1, 0, _V3_ADVERT if router.version == 3 else _V2_ADVERT),
            (_RET_K, 0, 0, reject),
        ]
    peers = [int(ipaddress.IPv4Address(p)) for p in router.unicast_peers][:200]
    if peers:
        block.append((_LDW_ABS, 0, 0, 12))  # source address
        block += [(_JEQ_K, len(peers) - i, 0, peer) for i, peer in enumerate(peers)]
        block.append((_RET_K, 0, 0, reject))
    if router.version == 3:  # RFC 5798 section 5.2: nothing more to check here
        block.append((_RET_K, 0, 0, accept))
        return block
    block += [
        (_LDB_IND, 0, 0, 4),  # authentication type
        (_JEQ_K, 1, 0, router.auth_type),
        (_RET_K, 0, 0, reject),
    ]
    if router.auth_type == AUTH_PASS:
        high, low = struct.unpack("!II", router.auth_data)
        block += [
            (_LDB_IND, 0, 0, 3),  # X = IP header + 8 + 4 * count: the Authentication Data
            (_LSH_K, 0, 0, 2),
            (_ADD_X, 0, 0, 0),
            (_ADD_K, 0, 0, 8),
            (_TAX, 0, 0, 0),
            (_LDW_LEN, 0, 0, 0),
            (_SUB_K, 0, 0, 8),  # its 8 octets are there
            (_JGE_X, 1, 0, 0),
            (_RET_K, 0, 0, reject),
            (_LDW_IND, 0, 0, 0),
            (_JEQ_K, 1, 0, high),
            (_RET_K, 0, 0, reject),
            (_LDW_IND, 0, 0, 4),
            (_JEQ_K, 1, 0, low),
            (_RET_K, 0, 0, reject),
        ]
    block.append((_RET_K, 0, 0, accept))
    return block


def _attach_filter(sock: socket.socket, prog: list[Insn]) -> None:
    """SO_ATTACH_FILTER: the kernel copies the program; the buffer may go after."""
    code = b"".join(struct.pack("=HBBI", *insn) for insn in prog)
    buffer = ctypes.create_string_buffer(code, len(code))
    fprog = struct.pack("@HP", len(prog), ctypes.addressof(buffer))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def _kernel_drops(sock: socket.socket) -> int | None:
    """Datagrams the kernel dropped because the receive queue was full (SO_MEMINFO)."""
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, 4 * SK_MEMINFO_VARS)
    except OSError:  # before Linux 4.6
        return None
    drops: int = struct.unpack(f"={SK_MEMINFO_VARS}I", raw)[SK_MEMINFO_DROPS]
    return drops


class TwoQueueReceiver:
    """Receives VRRP datagrams on one interface through two kernel-filtered queues.

    Two raw sockets share the interface's datagrams through complementary
    kernel filters (`_program`, e.g. `expected_advert_filter`): the first gets
    those that may be real adverts of the routers named with `expect()`, the
    second gets all the rest. A flood of forged adverts (wrong TTL, VRID or
    password) then fills only the second socket's queue, and the master's
    adverts, in a queue of their own, still reach a backup: without this the
    flood crowds them out of one shared queue and the backup takes over. Both
    queues are read on every wakeup, at most MAX_READS_PER_WAKEUP datagrams
    each, and every datagram is handed on (`_deliver`), so the core still
    checks and counts each one; what the kernel drops from a full queue goes
    to `on_overflow`. The family's socket, filter, set-up and read are the
    subclass's (`VrrpReceiver` here, `VrrpReceiver6` for IPv6).
    """

    def __init__(
        self, interface: str, multicast: bool, on_overflow: Callable[[int], None] | None
    ) -> None:
        self.interface = interface
        self.multicast = multicast
        self.on_overflow = on_overflow
        self.read_errors = 0
        self._socks: list[socket.socket] = []  # [expected adverts, everything else]
        self._drops: list[int | None] = []
        self._expected: list[RouterParams] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    # the family's parts
    def _socket(self) -> socket.socket:
        raise NotImplementedError

    def _program(self, routers: Sequence[RouterParams], accept: int, reject: int) -> list[Insn]:
        raise NotImplementedError

    def _configure(self, sock: socket.socket, ifindex: int) -> None:
        """Buffer, membership, ancillary data: whatever the family needs on each socket."""
        raise NotImplementedError

    def _deliver(self, sock: socket.socket) -> None:
        """Read one datagram (BlockingIOError when none is left) and hand it on."""
        raise NotImplementedError

    def _filter(self, routers: Sequence[RouterParams], expected: bool) -> list[Insn]:
        return (
            self._program(routers, ACCEPT, REJECT)
            if expected
            else self._program(routers, REJECT, ACCEPT)
        )

    def open(self) -> None:
        socks: list[socket.socket] = []
        try:
            ifindex = socket.if_nametoindex(self.interface)
            # The catch-all socket first: the expected socket starts with a
            # reject-all filter, and whatever reached it before that filter
            # was attached has reached the catch-all socket too.
            for expected in (False, True):
                sock = self._socket()
                socks.append(sock)
                _attach_filter(sock, self._filter((), expected))
        except OSError as exc:
            for sock in socks:
                sock.close()
            raise KernelError(f"cannot open a VRRP socket on {self.interface}: {exc}") from exc
        catch_all, expected_sock = socks
        try:
            for sock in (expected_sock, catch_all):
                bind_to_device(sock, self.interface)
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                self._configure(sock, ifindex)
                sock.setblocking(False)
            for _ in range(MAX_READS_PER_WAKEUP * 16):  # the duplicates, bounded
                expected_sock.recv(RECV_BUFFER)
        except BlockingIOError:
            pass
        except OSError as exc:
            for sock in socks:
                sock.close()
            raise KernelError(f"cannot set up the VRRP socket on {self.interface}: {exc}") from exc
        self._socks = [expected_sock, catch_all]
        self._drops = [_kernel_drops(sock) for sock in self._socks]
        self._loop = asyncio.get_running_loop()
        for index, sock in enumerate(self._socks):
            self._loop.add_reader(sock.fileno(), self._readable, index)

    def expect(self, routers: Iterable[RouterParams]) -> None:
        """Give the adverts of these routers (those on this interface) their own queue.

        The expected socket's filter changes first: a datagram that arrives
        between the two calls may be read twice, or not at all if it matched
        only the old list (an advert of a router that is going away).
        """
        if not self._socks:
            return
        listed = list(routers)
        try:
            _attach_filter(self._socks[0], self._filter(listed, True))
        except OSError as exc:
            raise KernelError(f"cannot filter the VRRP socket on {self.interface}: {exc}") from exc
        try:
            _attach_filter(self._socks[1], self._filter(listed, False))
        except OSError as exc:  # put the pair back as it was: complementary
            with contextlib.suppress(OSError):
                _attach_filter(self._socks[0], self._filter(self._expected, True))
            raise KernelError(f"cannot filter the VRRP socket on {self.interface}: {exc}") from exc
        self._expected = listed

    def _readable(self, index: int) -> None:
        if index >= len(self._socks):
            return
        sock = self._socks[index]
        for _ in range(MAX_READS_PER_WAKEUP):
            try:
                self._deliver(sock)
            except BlockingIOError:
                break
            except OSError:
                self.read_errors += 1
                break
        before = self._drops[index]
        if before is not None and index < len(self._socks):
            now = _kernel_drops(sock)
            if now is not None and now != before:
                self._drops[index] = now
                if self.on_overflow is not None:
                    self.on_overflow((now - before) % (1 << 32))

    def close(self) -> None:
        for sock in self._socks:
            if self._loop is not None:
                self._loop.remove_reader(sock.fileno())
            sock.close()
        self._socks = []
        self._drops = []


class VrrpReceiver(TwoQueueReceiver):
    """IPv4: each datagram with its IP header (the core checks the TTL) and age to `on_datagram`."""

    def __init__(
        self,
        interface: str,
        multicast: bool,
        on_datagram: Callable[[bytes, float], None],
        on_overflow: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(interface, multicast, on_overflow)
        self.on_datagram = on_datagram

    def _socket(self) -> socket.socket:
        return socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_VRRP)

    def _program(self, routers: Sequence[RouterParams], accept: int, reject: int) -> list[Insn]:
        return expected_advert_filter(routers, accept, reject)

    def _configure(self, sock: socket.socket, ifindex: int) -> None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        if self.multicast:
            sock.setsockopt(
                socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, _mreqn(VRRP_MULTICAST_GROUP, ifindex)
            )

    def _deliver(self, sock: socket.socket) -> None:
        data, ancdata, _, _ = sock.recvmsg(RECV_BUFFER, TIMESTAMP_SPACE)
        self.on_datagram(data, datagram_age(ancdata))


class VrrpSender:
    """Sends VRRP payloads from one source address out of one interface."""

    def __init__(self, interface: str, source: str) -> None:
        self.interface = interface
        self.source = source
        self.send_errors = 0
        self.last_error = ""
        self._sock: socket.socket | None = None

    def open(self) -> None:
        try:
            ifindex = socket.if_nametoindex(self.interface)
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_VRRP)
        except OSError as exc:
            raise KernelError(f"cannot open a VRRP socket on {self.interface}: {exc}") from exc
        try:
            bind_to_device(sock, self.interface)
            sock.bind((self.source, 0))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, VRRP_TTL)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, IPTOS_PREC_INTERNETCONTROL)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, VRRP_TTL)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, _mreqn("0.0.0.0", ifindex))
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise KernelError(
                f"cannot set up the VRRP sender {self.source} on {self.interface}: {exc}"
            ) from exc
        self._sock = sock

    def _address(self, destination: str) -> tuple[str | int, ...]:
        return (destination, 0)

    def send(self, payload: bytes, destinations: tuple[str, ...]) -> bool:
        """Send to each destination; a failure is counted, never raised."""
        ok = True
        for destination in destinations:
            try:
                if self._sock is None:
                    raise OSError(errno.EBADF, "socket is closed")
                self._sock.sendto(payload, self._address(destination))
            except OSError as exc:
                self.send_errors += 1
                self.last_error = f"{destination}: {exc.strerror or exc}"
                ok = False
        return ok

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
