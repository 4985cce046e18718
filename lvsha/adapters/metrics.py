"""Prometheus `/metrics` (off unless configured), never at the VRRP timers' expense.

At most once per REFRESH_INTERVAL, however many clients scrape, and only
while someone scrapes, a forked child takes the status document (the same
as `lvsha status --json`) from its copy-on-write image of the daemon,
renders the text exposition and pipes it back; every scrape gets the last
cached bytes at once. The event loop that sends the adverts pays only for
the fork. Rendering in a thread
instead (`render_in = "thread"`, the fallback when fork fails) still takes
the document on the loop (40 ms at 10,000 real servers) and makes the loop
wait for the GIL whenever the render thread holds it and is not running,
which on a busy machine delayed adverts by 200-300 ms
(docs/benchmarks-metrics.md); on the loop, as before, it was 450 ms a
scrape, past Master_Down_Interval (RFC 3768 section 6.1) with 10 clients.
Connections are capped, each bounded in time (request in, answer out) and
in request size. prometheus-client is optional (extra `metrics`); without
it a configured endpoint is an error at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import os
import signal
import socket
import struct
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NoReturn

from lvsha import logs
from lvsha.core.desired import host_port
from lvsha.errors import KernelError

log = logs.get("lvsha.metrics")

STATES = ("INIT", "BACKUP", "MASTER", "FAULT")
StatusSource = Callable[[], dict[str, Any]]
Renderer = Callable[[dict[str, Any]], bytes]

REFRESH_INTERVAL = 1.0  # seconds: the status document is taken at most this often
MAX_CLIENTS = 32  # connections at once; beyond, 503 and close
CLIENT_TIMEOUT = 5.0  # seconds for one connection: request in, answer out
MAX_LINE = 8192  # bytes of the request line or of one header line
MAX_HEADERS = 64  # header lines
REFUSED_LINGER = 1.0  # seconds a refused connection stays open for its 503 to be read
RENDER_TIMEOUT = 30.0  # seconds for the child to take and render the document
MAX_BODY = 256 << 20  # bytes of exposition accepted from the child
MAX_FD = 1 << 20  # closerange bound in the child (close_range(2): cheap whatever it is)
F_SETPIPE_SZ = 1031  # fcntl.h: fewer, larger reads of the child's pipe
SELF_KEY = "metrics_server"  # the server's own counters, added to the snapshot


def render(status: dict[str, Any]) -> bytes:
    """The text exposition of one status document."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(lambda: status))
    data: bytes = generate_latest(registry)
    return data


class _Collector:
    def __init__(self, source: StatusSource) -> None:
        self.source = source

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        status = self.source()
        state = GaugeMetricFamily(
            "lvsha_vrrp_state",
            "1 for the instance's current VRRP state",
            labels=["instance", "state"],
        )
        priority = GaugeMetricFamily(
            "lvsha_vrrp_priority", "configured priority", labels=["instance"]
        )
        counters = {
            "adverts_sent": "advertisements sent",
            "adverts_received": "advertisements accepted",
            "became_master": "transitions to MASTER",
            "priority_zero_sent": "priority-0 advertisements sent",
            "priority_zero_received": "priority-0 advertisements accepted",
            "garp_sent": "gratuitous ARP frames sent",
            "send_errors": "advertisements the kernel refused",
        }
        families = {
            key: CounterMetricFamily(f"lvsha_vrrp_{key}", text, labels=["instance"])
            for key, text in counters.items()
        }
        discarded = CounterMetricFamily(
            "lvsha_vrrp_discarded",
            "datagrams dropped by reason (RFC 3768 section 7.1)",
            labels=["instance", "reason"],
        )
        for inst in status["instances"]:
            name = inst["name"]
            for s in STATES:
                state.add_metric([name, s], 1.0 if inst["state"] == s else 0.0)
            priority.add_metric([name], inst["priority"])
            for key, family in families.items():
                family.add_metric([name], inst["counters"][key])
            for reason, count in inst["counters"]["discarded"].items():
                discarded.add_metric([name, reason], count)
        healthy = GaugeMetricFamily(
            "lvsha_real_server_healthy",
            "1 when the real server passes its checks",
            labels=["virtual_server", "real_server"],
        )
        weight = GaugeMetricFamily(
            "lvsha_real_server_weight",
            "configured weight",
            labels=["virtual_server", "real_server"],
        )
        latency = GaugeMetricFamily(
            "lvsha_real_server_check_latency_seconds",
            "duration of the last health check",
            labels=["virtual_server", "real_server"],
        )
        kernel = {
            name: CounterMetricFamily(
                f"lvsha_ipvs_{name}",
                f"kernel IPVS counter ({name}), at the last IPVS pass",
                labels=["virtual_server", "real_server"],
            )
            for name in ("connections", "packets_in", "packets_out", "bytes_in", "bytes_out")
        }
        conns = GaugeMetricFamily(
            "lvsha_ipvs_real_server_connections",
            "kernel IPVS connections now, at the last IPVS pass",
            labels=["virtual_server", "real_server", "state"],
        )
        for vs in status["virtual_servers"]:
            vname = (
                f"fwmark:{vs['fwmark']}"
                if vs.get("fwmark")
                else host_port(vs["address"], vs["port"])  # IPv6 in brackets
            )
            vlabel = f"{vs['protocol']}/{vname}"
            for name, value in (vs.get("kernel") or {}).items():
                kernel[name].add_metric([vlabel, ""], value)
            for rs in vs["real_servers"]:
                labels = [vlabel, host_port(rs["address"], rs["port"])]
                healthy.add_metric(labels, 1.0 if rs["healthy"] else 0.0)
                weight.add_metric(labels, rs["weight"])
                check = rs.get("check") or {}
                if check.get("latency") is not None:
                    latency.add_metric(labels, check["latency"])
                measured: dict[str, int] = dict(rs.get("kernel") or {})
                for conn_state in ("active", "inactive"):
                    now = measured.pop(f"{conn_state}_connections", None)
                    if now is not None:
                        conns.add_metric([*labels, conn_state], now)
                for counter, amount in measured.items():
                    kernel[counter].add_metric(labels, amount)
        yield from (state, priority, *families.values(), discarded, healthy, weight, latency)
        yield from (*kernel.values(), conns)
        yield from _bgp_metrics(status.get("bgp"))
        yield from _self_metrics(status.get(SELF_KEY))


def _bgp_metrics(bgp: dict[str, Any] | None) -> Iterator[Any]:
    """Each BGP session and each announced prefix (docs/scale-out.md)."""
    if bgp is None:
        return
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    session = GaugeMetricFamily(
        "lvsha_bgp_session_established",
        "1 while the BGP session with the peer is Established (RFC 4271 section 8)",
        labels=["peer"],
    )
    for s in bgp.get("sessions", []):
        session.add_metric([str(s.get("peer"))], 1.0 if s.get("state") == "established" else 0.0)
    announced = GaugeMetricFamily(
        "lvsha_bgp_announced",
        "1 while lvsha announces the prefix; the reason says why or why not",
        labels=["prefix", "reason"],
    )
    for p in bgp.get("prefixes", []):
        announced.add_metric([str(p["prefix"]), str(p["reason"])], 1.0 if p["announced"] else 0.0)
    drained = GaugeMetricFamily("lvsha_bgp_drained", "1 while the drain file exists")
    drained.add_metric([], 1.0 if bgp.get("drained") else 0.0)
    restarts = CounterMetricFamily(
        "lvsha_bgp_speaker_restarts", "times the speaker was started again"
    )
    restarts.add_metric([], float((bgp.get("speaker") or {}).get("restarts", 0)))
    yield from (session, announced, drained, restarts)


def _self_metrics(own: dict[str, Any] | None) -> Iterator[Any]:
    """The endpoint's own counters: what the cap and the timeouts did, and the cost."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    if not own:
        return
    for key, text in (
        ("scrapes", "scrapes answered with the metrics"),
        ("refreshes", "status documents taken for the metrics"),
        ("refused", "connections refused beyond the connection cap"),
        ("timeouts", "connections cut at the client timeout"),
        ("bad_requests", "requests too long or malformed"),
    ):
        family = CounterMetricFamily(f"lvsha_metrics_{key}", text)
        family.add_metric([], own[key])
        yield family
    for key, text in (
        ("loop_seconds", "event-loop time of the previous refresh (the fork, or the document)"),
        ("source_seconds", "time to take the previous status document"),
        ("render_seconds", "time to render the previous status document"),
    ):
        gauge = GaugeMetricFamily(f"lvsha_metrics_{key}", text)
        gauge.add_metric([], own[key])
        yield gauge


class MetricsServer:
    """A minimal HTTP/1.0 server for GET /metrics: cached bytes, rendered off the loop."""

    def __init__(self, listen: str, source: StatusSource) -> None:
        host, _, port = listen.rpartition(":")
        self.host = host.strip("[]") or "127.0.0.1"
        self.port = int(port)
        self.source = source
        # tunables as attributes, so the daemon's wiring stays `MetricsServer(listen, source)`
        self.refresh_interval = REFRESH_INTERVAL
        self.max_clients = MAX_CLIENTS
        self.timeout = CLIENT_TIMEOUT
        self.clock: Callable[[], float] = time.monotonic
        self.render: Renderer = render
        self.render_in = "process"  # or "thread"; a failed fork falls back to a thread
        self.scrapes = 0
        self.refreshes = 0
        self.refused = 0
        self.timeouts = 0
        self.bad_requests = 0
        self.loop_seconds = 0.0
        self.source_seconds = 0.0
        self.render_seconds = 0.0
        self.active = 0  # connections being served now
        self._body: bytes | None = None
        self._fresh_until = float("-inf")
        self._refreshing: asyncio.Future[bytes] | None = None
        self._child: int | None = None  # the render child's pid while it runs
        self._executor: ThreadPoolExecutor | None = None
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        try:
            import prometheus_client  # noqa: F401
        except ImportError as exc:
            raise KernelError(
                "metrics needs prometheus-client: pip install 'lvsha[metrics]'"
            ) from exc
        try:
            self._server = await asyncio.start_server(
                self._client, self.host, self.port, limit=MAX_LINE
            )
        except OSError as exc:
            raise KernelError(
                f"cannot listen for metrics on {self.host}:{self.port}: {exc}"
            ) from exc
        self.port = self._server.sockets[0].getsockname()[1]  # the real one when 0 was asked
        # one thread: renders never pile up, and never take the loop's default executor
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lvsha-metrics")

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._child is not None:  # a render in flight: not worth waiting for
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._child, signal.SIGKILL)
        if self._refreshing is not None:
            self._refreshing.cancel()
            with contextlib.suppress(BaseException):
                await self._refreshing  # it reaps the child
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    # ------------------------------------------------------------ the body --

    async def body(self) -> bytes:
        """The exposition: the cached bytes, refreshed behind the scrapes once stale.

        Only the very first scrapes wait, all for the same refresh; later ones
        get the last bytes at once while (at most) one refresh runs.
        """
        if self._refreshing is None and self.clock() >= self._fresh_until:
            self._refreshing = asyncio.ensure_future(self._refresh())
        if self._body is not None:
            return self._body
        assert self._refreshing is not None
        return await asyncio.shield(self._refreshing)

    async def _refresh(self) -> bytes:
        started = self.clock()
        self._fresh_until = started + self.refresh_interval  # even if it fails: at most once
        try:
            self.refreshes += 1
            body = None
            if self.render_in == "process":
                body = await self._render_in_child()
            if body is None:
                body = await self._render_in_thread()
        except Exception as exc:
            log.error("metrics render failed", error=repr(exc))
            if self._body is None:
                raise
            return self._body  # the last good one, rather than nothing
        finally:
            self._refreshing = None
        self._body = body
        return body

    async def _render_in_thread(self) -> bytes:
        """The document on the loop (consistent with the machines), the text in a thread."""
        taken = time.perf_counter()
        snapshot = dict(self.source())
        self.source_seconds = self.loop_seconds = time.perf_counter() - taken
        snapshot[SELF_KEY] = self._own_counters()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._timed_render, snapshot)

    def _timed_render(self, snapshot: dict[str, Any]) -> bytes:
        """In the render thread: the heavy part, off the event loop."""
        taken = time.perf_counter()
        body = self.render(snapshot)
        self.render_seconds = time.perf_counter() - taken
        return body

    async def _render_in_child(self) -> bytes | None:
        """Fork: the child's copy of the daemon is the snapshot. None if fork fails."""
        counters = self._own_counters()
        taken = time.perf_counter()
        r, w = os.pipe()
        try:
            pid = os.fork()
        except OSError as exc:
            os.close(r)
            os.close(w)
            log.warning("metrics: cannot fork, rendering in a thread", error=str(exc))
            return None
        if pid == 0:
            _child(r, w, self.source, self.render, counters)
        self.loop_seconds = time.perf_counter() - taken
        self._child = pid
        os.close(w)
        try:
            async with asyncio.timeout(RENDER_TIMEOUT):
                data = await _read_all(r)
        finally:
            code = await _reap(pid)
            self._child = None
        if code != 0 or len(data) < 16:
            raise RuntimeError(f"metrics render child exited {code}")
        self.source_seconds, self.render_seconds = struct.unpack("dd", data[:16])
        return data[16:]

    def _own_counters(self) -> dict[str, Any]:
        return {
            "loop_seconds": self.loop_seconds,
            "scrapes": self.scrapes,
            "refreshes": self.refreshes,
            "refused": self.refused,
            "timeouts": self.timeouts,
            "bad_requests": self.bad_requests,
            "source_seconds": self.source_seconds,
            "render_seconds": self.render_seconds,
        }

    # ---------------------------------------------------------- a client --

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.active >= self.max_clients:
            self.refused += 1
            writer.write(b"HTTP/1.0 503 Service Unavailable\r\nRetry-After: 1\r\n\r\n")
            writer.write_eof()  # a few bytes: they fit the socket buffer, nothing waits
            # closing now, with the request unread, would reset the 503 away
            asyncio.get_running_loop().call_later(REFUSED_LINGER, writer.transport.abort)
            return
        self.active += 1
        clean = False
        try:
            async with asyncio.timeout(self.timeout):  # request in and answer out, both
                writer.write(await self._answer(reader))
                await writer.drain()
            clean = True
        except TimeoutError:
            self.timeouts += 1
        except (ValueError, asyncio.IncompleteReadError):  # a line over MAX_LINE, or cut
            self.bad_requests += 1
        except Exception as exc:
            if not isinstance(exc, (ConnectionError, OSError)):
                log.error("metrics client failed", error=repr(exc))
        finally:
            self.active -= 1
            if clean:
                writer.close()  # everything is written: closing is immediate
            else:
                _reset(writer)

    async def _answer(self, reader: asyncio.StreamReader) -> bytes:
        request = await reader.readline()
        for _ in range(MAX_HEADERS):  # skip the headers, bounded in number and size
            if not (await reader.readline()).strip():
                break
        else:
            raise ValueError("too many header lines")
        parts = request.decode("latin-1").split()
        if len(parts) >= 2 and parts[0] == "GET" and parts[1].split("?")[0] == "/metrics":
            try:
                body = await self.body()
            except Exception:
                return b"HTTP/1.0 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"
            self.scrapes += 1
            head = "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
        else:
            body = b"not found: try /metrics\n"
            head = "HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\n"
        return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset: drop what a slow reader did not take, in the kernel too.

    A plain close would leave the unsent answer queued behind the client's
    zero window (an orphaned socket holding megabytes until it gives up).
    """
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _child(
    r: int, w: int, source: StatusSource, renderer: Renderer, counters: dict[str, Any]
) -> NoReturn:
    """In the forked child: document, render, write, exit; never back into the daemon."""
    code = 1
    try:
        gc.disable()  # no finalizer may run on the daemon's objects (or close their fds)
        os.close(r)
        # let go of every descriptor of the daemon but stdio and our pipe: a pipe the
        # daemon closes to stop its health worker must reach EOF while we render
        os.closerange(3, w)
        os.closerange(w + 1, MAX_FD)
        with contextlib.suppress(ValueError, OSError):
            signal.set_wakeup_fd(-1)  # the daemon's signal pipe is not ours
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        with contextlib.suppress(OSError):  # never real-time, even without reset-on-fork
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
        with contextlib.suppress(OSError):
            os.nice(10)
        taken = time.perf_counter()
        snapshot = dict(source())
        rendering = time.perf_counter()
        snapshot[SELF_KEY] = counters
        body = renderer(snapshot)
        done = time.perf_counter()
        view = memoryview(struct.pack("dd", rendering - taken, done - rendering) + body)
        while view:
            view = view[os.write(w, view) :]
        code = 0
    except BaseException:
        pass
    finally:
        os._exit(code)


async def _read_all(fd: int) -> bytes:
    """Everything the child writes, read on the loop (one callback per chunk)."""
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, F_SETPIPE_SZ, 1 << 20)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_BODY)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
    )
    try:
        chunks, size = [], 0
        while chunk := await reader.read(1 << 20):
            size += len(chunk)
            if size > MAX_BODY:
                raise RuntimeError(f"metrics exposition over {MAX_BODY} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        transport.close()


async def _reap(pid: int) -> int:
    """The child's exit code; killed if it has not exited within about a second."""
    for attempt in range(100):
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return 0  # someone else reaped it; the data decides
        if done:
            return os.waitstatus_to_exitcode(status)
        if attempt == 0:
            await asyncio.sleep(0)
        else:
            await asyncio.sleep(0.01)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    return -signal.SIGKILL
