"""Probes: one health check of one real server each, on asyncio, never raising.

Every probe returns `ProbeResult(ok, latency, detail)`; an error of the
network, of TLS or of a command is a failed result with a short reason, never
an exception (cancellation, when the checker stops, still propagates). Each
probe enforces its own timeout over the whole check.

* `tcp_probe`: a TCP handshake, keepalived's TCP_CHECK. It proves only that
  the kernel completed the handshake; the socket is closed with a reset
  (SO_LINGER 0, as haproxy's checks) so that thousands of checks a second
  leave no TIME_WAIT behind on either side.
* `http_probe`: keepalived's HTTP_GET / SSL_GET: an HTTP/1.0 GET on asyncio
  streams (no extra dependency), status code in a set, optional body regex
  or MD5 digest, Host header, TLS with SNI and optional verification.
* `misc_probe`: keepalived's MISC_CHECK: argv without a shell, exit 0 = up;
  at the timeout the command's whole session is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import hashlib
import heapq
import itertools
import os
import re
import select
import signal
import socket
import ssl
import struct
from collections.abc import Callable, Coroutine
from functools import cache
from typing import Any, NamedTuple

from lvsha import __version__
from lvsha.config import HttpCheck, MiscCheck, RealServerConfig, TcpCheck

MAX_HEADER_LINE = 8192
MAX_HEADERS = 100
MAX_BODY = 1 << 20  # read at most this much for a regex or digest
OUTPUT_KEPT = 200  # characters of a command's output kept for the detail
LINGER_RESET = struct.pack("ii", 1, 0)


class ProbeResult(NamedTuple):
    """What one probe found: up or not, how long it took, and why."""

    ok: bool
    latency: float
    detail: str


Probe = Callable[[], Coroutine[Any, Any, ProbeResult]]


def _reason(exc: BaseException) -> str:
    """A short, stable reason for a failed check ("connection refused")."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"tls: {exc.reason or exc}"
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno).lower()  # asyncio's strerror carries the address
    if isinstance(exc, asyncio.IncompleteReadError):
        return "connection closed by the server"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _family(address: str) -> socket.AddressFamily:
    """The socket family for a real server's address (an IPv6 address has a colon)."""
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def _close_with_reset(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
    sock.close()


# -------------------------------------------------------------------- TCP --


async def tcp_probe(address: str, port: int, timeout: float) -> ProbeResult:
    """Connect and close: keepalived's TCP_CHECK. Binds nothing."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        sock = socket.socket(_family(address), socket.SOCK_STREAM)
    except OSError as exc:
        return ProbeResult(False, 0.0, f"socket: {_reason(exc)}")
    try:
        sock.setblocking(False)
        async with asyncio.timeout(timeout):
            await loop.sock_connect(sock, (address, port))
        return ProbeResult(True, loop.time() - start, "connected")
    except TimeoutError:
        return ProbeResult(False, loop.time() - start, f"no answer within {timeout:g} s")
    except Exception as exc:  # a probe never raises: any error is a failed check
        return ProbeResult(False, loop.time() - start, _reason(exc))
    finally:
        _close_with_reset(sock)


class TcpProber:
    """Many TCP checks at once on one epoll: the checker's fast path.

    The same check as `tcp_probe`, without a task, a future and a timer per
    probe: each connect is registered once (EPOLLONESHOT) on a private epoll
    whose descriptor the event loop watches, and timeouts are swept every
    `SWEEP` seconds from a heap. At thousands of checks a second this costs a
    third of the asyncio path (docs/benchmarks-health.md).
    """

    SWEEP = 0.05  # a timeout is noticed at most this late

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._epoll = select.epoll()
        self._loop.add_reader(self._epoll.fileno(), self._ready)
        self._pending: dict[int, tuple[socket.socket, float, float, Callable[[ProbeResult], None]]]
        self._pending = {}
        self._deadlines: list[tuple[float, int, int, socket.socket]] = []
        self._order = itertools.count()
        self._sweep: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._pending)

    def start(
        self, address: str, port: int, timeout: float, done: Callable[[ProbeResult], None]
    ) -> int:
        """Begin a connect; `done(result)` is called once, unless cancelled. Returns a handle."""
        now = self._loop.time()
        try:
            sock = socket.socket(_family(address), socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        except OSError as exc:
            self._loop.call_soon(done, ProbeResult(False, 0.0, f"socket: {_reason(exc)}"))
            return -1
        fd = sock.fileno()
        try:
            err = sock.connect_ex((address, port))
        except OSError as exc:
            err = exc.errno or errno.EINVAL
        if err not in (0, errno.EINPROGRESS):
            _close_with_reset(sock)
            result = ProbeResult(False, self._loop.time() - now, os.strerror(err).lower())
            self._loop.call_soon(done, result)
            return -1
        self._pending[fd] = (sock, now, timeout, done)
        self._epoll.register(fd, select.EPOLLOUT | select.EPOLLONESHOT)
        heapq.heappush(self._deadlines, (now + timeout, next(self._order), fd, sock))
        if self._sweep is None:
            self._sweep = self._loop.call_later(self.SWEEP, self._expire)
        return fd

    def cancel(self, handle: int) -> None:
        entry = self._pending.pop(handle, None)
        if entry is not None:
            _close_with_reset(entry[0])

    def close(self) -> None:
        for handle in list(self._pending):
            self.cancel(handle)
        self._loop.remove_reader(self._epoll.fileno())
        self._epoll.close()
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None

    def _ready(self) -> None:
        now = self._loop.time()
        for fd, _ in self._epoll.poll(0, 1024):
            entry = self._pending.pop(fd, None)
            if entry is None:
                continue
            sock, started, _, done = entry
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            _close_with_reset(sock)
            if err == 0:
                done(ProbeResult(True, now - started, "connected"))
            else:
                done(ProbeResult(False, now - started, os.strerror(err).lower()))

    def _expire(self) -> None:
        self._sweep = None
        self._ready()  # answers that came while the loop was busy are not timeouts
        now = self._loop.time()
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            _, _, fd, sock = heapq.heappop(heap)
            entry = self._pending.get(fd)
            if entry is None or entry[0] is not sock:
                continue  # finished or cancelled; the descriptor may be reused
            del self._pending[fd]
            _close_with_reset(sock)
            _, started, timeout, done = entry
            done(ProbeResult(False, now - started, f"no answer within {timeout:g} s"))
        if heap:
            self._sweep = self._loop.call_later(self.SWEEP, self._expire)


# ------------------------------------------------------------------- HTTP --


@cache
def _tls_context(verify: bool) -> ssl.SSLContext:
    """One context per mode, built once: loading the CA store costs milliseconds."""
    if verify:
        return ssl.create_default_context()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@cache
def _compiled(pattern: str) -> re.Pattern[bytes]:
    return re.compile(pattern.encode())


def request_bytes(check: HttpCheck, address: str, port: int) -> bytes:
    """The GET keepalived sends (HTTP/1.0, so no chunked reply is expected).

    Without a configured `host`, the Host header is the address (an IPv6
    one in brackets, RFC 3986 section 3.2.2) and the port unless default.
    """
    default_port = 443 if check.tls else 80
    name = f"[{address}]" if ":" in address else address
    host = check.host or (name if port == default_port else f"{name}:{port}")
    return (
        f"GET {check.path} HTTP/1.0\r\n"
        f"Host: {host}\r\n"
        f"User-Agent: lvsha/{__version__}\r\n"
        "Accept: */*\r\n"
        "Connection: close\r\n\r\n"
    ).encode("ascii")


async def http_probe(address: str, port: int, check: HttpCheck) -> ProbeResult:
    """GET `check.path` and judge status and body: keepalived's HTTP_GET / SSL_GET."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(check.connect_timeout):
            tls = _tls_context(check.verify_certificate) if check.tls else None
            server_hostname = (check.sni or check.host or address) if tls else None
            reader, writer = await asyncio.open_connection(
                address,
                port,
                ssl=tls,
                server_hostname=server_hostname,
                limit=MAX_HEADER_LINE,
            )
            writer.write(request_bytes(check, address, port))
            code, headers = await _read_head(reader)
            verdict = None
            if code not in check.status:
                wanted = ", ".join(map(str, check.status))
                verdict = f"HTTP {code}, expected {wanted}"
            elif check.regex is not None or check.digest is not None:
                body = await _read_body(reader, headers)
                verdict = _judge_body(check, body)
        latency = loop.time() - start
        if verdict is not None:
            return ProbeResult(False, latency, verdict)
        return ProbeResult(True, latency, f"HTTP {code}")
    except TimeoutError:
        return ProbeResult(
            False, loop.time() - start, f"no answer within {check.connect_timeout:g} s"
        )
    except Exception as exc:  # a probe never raises: any error is a failed check
        return ProbeResult(False, loop.time() - start, _reason(exc))
    finally:
        if writer is not None:
            writer.transport.abort()


async def every_url_probe(address: str, port: int, check: HttpCheck) -> ProbeResult:
    """Each URL in turn; healthy only when all pass (keepalived's HTTP_GET with several urls)."""
    total = 0.0
    for url in check.urls:
        one = dataclasses.replace(
            check, path=url.path, status=url.status, regex=url.regex, digest=url.digest
        )
        result = await http_probe(address, port, one)
        total += result.latency
        if not result.ok:
            return ProbeResult(False, total, f"{url.path}: {result.detail}")
    return ProbeResult(True, total, f"{len(check.urls)} URLs OK")


class _BadResponse(Exception):
    pass


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    line = await reader.readline()
    if not line:
        raise _BadResponse("connection closed before a status line")
    parts = line.decode("latin-1").split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise _BadResponse(f"not an HTTP status line: {line[:60]!r}")
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS):
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            return int(parts[1]), headers
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    raise _BadResponse(f"more than {MAX_HEADERS} header lines")


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return await _read_chunked(reader)
    length = headers.get("content-length", "")
    if length.isdigit():
        return await reader.readexactly(min(int(length), MAX_BODY))
    body = b""
    while len(body) < MAX_BODY:  # HTTP/1.0: the body ends with the connection
        data = await reader.read(MAX_BODY - len(body))
        if not data:
            break
        body += data
    return body


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = b""
    while len(body) < MAX_BODY:
        size_line = await reader.readline()
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            break
        body += await reader.readexactly(min(size, MAX_BODY - len(body)))
        if len(body) < MAX_BODY:
            await reader.readline()  # the CRLF after the chunk
    return body


def _judge_body(check: HttpCheck, body: bytes) -> str | None:
    if check.regex is not None and _compiled(check.regex).search(body) is None:
        return f"body does not match {check.regex!r}"
    if check.digest is not None:
        digest = hashlib.md5(body, usedforsecurity=False).hexdigest()
        if digest != check.digest:
            return f"body digest {digest}, expected {check.digest}"
    return None


# ------------------------------------------------------------------- misc --


async def misc_probe(argv: tuple[str, ...], timeout: float) -> ProbeResult:
    """Run `argv` without a shell; exit status 0 = up; killed at `timeout`."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # its own group: a timeout kills its children too
        )
    except Exception as exc:  # a probe never raises: any error is a failed check
        return ProbeResult(False, loop.time() - start, f"cannot run {argv[0]}: {_reason(exc)}")
    try:
        async with asyncio.timeout(timeout):
            assert proc.stdout is not None
            output = await _tail(proc.stdout)
            code = await proc.wait()
    except TimeoutError:
        _kill_session(proc.pid)
        await proc.wait()
        return ProbeResult(False, loop.time() - start, f"killed after {timeout:g} s")
    except BaseException:  # cancelled: leave no child behind
        _kill_session(proc.pid)
        raise
    latency = loop.time() - start
    text = output.decode(errors="replace").strip()[-OUTPUT_KEPT:]
    if code == 0:
        return ProbeResult(True, latency, text or "exit 0")
    detail = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit {code}"
    return ProbeResult(False, latency, f"{detail}: {text}" if text else detail)


async def _tail(stream: asyncio.StreamReader) -> bytes:
    """Read a command's output to the end, keeping only its last bytes."""
    kept = b""
    while data := await stream.read(65536):
        kept = (kept + data)[-4 * OUTPUT_KEPT :]
    return kept


def _kill_session(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


# -------------------------------------------------------------- dispatch --


def probe_for(rs: RealServerConfig, default_timeout: float) -> Probe | None:
    """The probe configured for a real server, bound to its target; None if unchecked.

    `default_timeout` is the misc_check timeout when none is given (keepalived:
    the service's delay_loop).
    """
    check = rs.check
    if isinstance(check, TcpCheck):
        address = check.connect_ip or rs.address
        port = check.connect_port or rs.port
        timeout = check.connect_timeout
        return lambda: tcp_probe(address, port, timeout)
    if isinstance(check, HttpCheck):
        http = check
        address = http.connect_ip or rs.address
        port = http.connect_port or rs.port
        if http.more_urls:
            return lambda: every_url_probe(address, port, http)
        return lambda: http_probe(address, port, http)
    if isinstance(check, MiscCheck):
        argv = check.argv
        misc_timeout = check.timeout or default_timeout
        return lambda: misc_probe(argv, misc_timeout)
    return None


def check_kind(rs: RealServerConfig) -> str | None:
    """The check's name as the configuration spells it, for status."""
    for name in ("tcp_check", "http_get", "ssl_get", "misc_check"):
        if getattr(rs, name) is not None:
            return name
    return None
