"""What a client sees of a VRRP takeover, and a busy machine: helpers of bench/takeover.py.

`ClientProbe` is a client on the LAN (its own namespace) that pings the VIP
every `interval` seconds from one thread and timestamps the echo replies in
the kernel (SO_TIMESTAMPNS) in another: a takeover's client outage is the
longest gap between two replies around it, to within the probe interval.
ICMP echo needs no server on the directors, and the director's kernel answers
it only while the VIP is on its interface and the client's neighbour entry
points at it, which is what a client of the VIP needs.

`CpuLoad` is N busy-loop processes at ordinary priority, each bounded by a
deadline of its own, so that a forgotten one ends anyway.

Only 192.0.2.0/24 is probed, inside namespaces the benchmark made.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

SO_TIMESTAMPNS = 35
ICMP_ECHO, ICMP_ECHOREPLY = 8, 0
ICMP6_ECHO, ICMP6_ECHOREPLY = 128, 129


def link_local_ready(host: Any) -> bool:
    """The host's eth1 has a link-local address past Duplicate Address Detection."""
    out = host.run("ip", "-j", "-6", "addr", "show", "dev", "eth1", "scope", "link").stdout
    infos = [a for link in json.loads(out or "[]") for a in link.get("addr_info", [])]
    return any(not a.get("tentative") for a in infos)


def _checksum(data: bytes) -> int:
    """RFC 1071 one's-complement sum."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int, family: int = 4) -> bytes:
    """ICMP echo; for ICMPv6 the kernel fills in the checksum (RFC 3542 section 3.1)."""
    if family == 6:
        return struct.pack("!BBHHH", ICMP6_ECHO, 0, 0, ident, seq)
    head = struct.pack("!BBHHH", ICMP_ECHO, 0, 0, ident, seq)
    return struct.pack("!BBHHH", ICMP_ECHO, 0, _checksum(head), ident, seq)


class ClientProbe:
    """Pings `target` every `interval` s from namespace `ns`; keeps each reply's kernel time."""

    def __init__(
        self,
        ns: str,
        target: str,
        enter_netns: Callable[[str], None],
        interval: float = 0.002,
        family: int = 4,
    ) -> None:
        self.ns, self.target, self.interval, self.family = ns, target, interval, family
        self.enter_netns = enter_netns
        self.ident = os.getpid() & 0xFFFF
        self.replies: list[float] = []
        self.sent = 0
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._ready = threading.Event()
        self._threads = [
            threading.Thread(target=self._receive, name="probe-rx", daemon=True),
            threading.Thread(target=self._send, name="probe-tx", daemon=True),
        ]

    def start(self) -> None:
        self._threads[0].start()
        if not self._ready.wait(5) or self.errors:
            raise RuntimeError(f"client probe in {self.ns}: {self.errors}")
        self._threads[1].start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            if t.is_alive():
                t.join(timeout=5)
        if self._sock is not None:
            self._sock.close()

    def _receive(self) -> None:
        try:
            self.enter_netns(self.ns)  # this thread only; the socket stays in ns
            if self.family == 6:
                sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
            else:
                sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            sock.settimeout(0.2)
        except OSError as exc:
            self.errors.append(str(exc))
            self._ready.set()
            return
        self._sock = sock
        self._ready.set()
        while not self._stop.is_set():
            try:
                data, ancdata, _flags, addr = sock.recvmsg(2048, 64)
            except TimeoutError:
                continue
            except OSError as exc:
                self.errors.append(str(exc))
                return
            at = time.time()
            for level, kind, cdata in ancdata:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", cdata[:16])
                    at = sec + nsec / 1e9
            ihl = 0 if self.family == 6 else (data[0] & 0x0F) * 4 if data else 0
            if addr[0].split("%")[0] != self.target or len(data) < ihl + 8:
                continue
            kind_, _code, _sum, ident, _seq = struct.unpack_from("!BBHHH", data, ihl)
            reply = ICMP6_ECHOREPLY if self.family == 6 else ICMP_ECHOREPLY
            if kind_ == reply and ident == self.ident:
                with self._lock:
                    self.replies.append(at)

    def _send(self) -> None:
        sock = self._sock
        assert sock is not None
        seq = 0
        next_at = time.monotonic()
        while not self._stop.is_set():
            seq = (seq + 1) & 0xFFFF
            with contextlib.suppress(OSError):  # no neighbour yet, unreachable: keep going
                sock.sendto(echo_request(self.ident, seq, self.family), (self.target, 0))
                self.sent += 1
            next_at += self.interval
            time.sleep(max(0.0, next_at - time.monotonic()))

    def reply_after(self, since: float) -> float | None:
        with self._lock:
            return next((r for r in self.replies if r >= since), None)

    def outage(self, since: float, until: float) -> float:
        """The longest gap between consecutive replies that overlaps [since, until]."""
        with self._lock:
            replies = list(self.replies)
        before = [r for r in replies if r < since]
        inside = [r for r in replies if since <= r <= until]
        after = [r for r in replies if r > until]
        points = before[-1:] + inside + after[:1]
        if len(points) < 2:
            return float("nan")
        return max(b - a for a, b in itertools.pairwise(points))


class CpuLoad:
    """`count` processes that spin at ordinary priority until stopped or `limit` s passed."""

    def __init__(self, count: int, limit: float) -> None:
        self.count, self.limit = count, limit
        self.procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> CpuLoad:
        code = (
            "import time\nend = time.monotonic() + float(__import__('sys').argv[1])\n"
            "while time.monotonic() < end:\n    pass\n"
        )
        for _ in range(self.count):
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", code, str(self.limit)], stdin=subprocess.DEVNULL
                )
            )
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
