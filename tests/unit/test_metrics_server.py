"""The /metrics endpoint never holds the event loop, however its clients behave.

Issue 10 #1: every scrape took the status document and rendered it on the
loop that runs the VRRP timers (450 ms at 10,000 real servers), a client
that never read held its handler for ever, and nothing capped connections.
Both ways of rendering off the loop are tested: a forked child (the
default) and a thread (the fallback).
Loopback only, no privileges; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from lvsha.adapters import metrics
from lvsha.adapters.metrics import MetricsServer

STATUS: dict[str, Any] = {
    "instances": [
        {
            "name": "VI_1",
            "state": "MASTER",
            "priority": 100,
            "counters": {
                "adverts_sent": 7,
                "adverts_received": 0,
                "became_master": 1,
                "priority_zero_sent": 0,
                "priority_zero_received": 0,
                "garp_sent": 5,
                "send_errors": 0,
                "discarded": {"bad_ttl": 2},
            },
        }
    ],
    "virtual_servers": [],
}


def run(test: Callable[[MetricsServer], Awaitable[None]], server: MetricsServer) -> None:
    async def go() -> None:
        await server.start()
        try:
            async with asyncio.timeout(30):  # no test may hang
                await test(server)
        finally:
            await server.close()

    asyncio.run(go())


def port_of(server: MetricsServer) -> int:
    assert server._server is not None
    port: int = server._server.sockets[0].getsockname()[1]
    return port


async def get(server: MetricsServer, request: bytes = b"GET /metrics HTTP/1.0\r\n\r\n") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
    writer.write(request)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    return answer


def counting_source(calls: Path) -> Callable[[], dict[str, Any]]:
    """A source that counts its calls in a file: it may run in a forked child."""

    def source() -> dict[str, Any]:
        with calls.open("a") as f:
            f.write("1")
        return STATUS

    return source


def count(calls: Path) -> int:
    return len(calls.read_text()) if calls.exists() else 0


MODES = pytest.mark.parametrize("render_in", ["process", "thread"])


def test_a_scrape_renders_the_status_document() -> None:
    async def check(server: MetricsServer) -> None:
        answer = await get(server)
        assert answer.startswith(b"HTTP/1.0 200 OK\r\n")
        assert b'lvsha_vrrp_state{instance="VI_1",state="MASTER"} 1.0' in answer
        assert b'lvsha_vrrp_discarded_total{instance="VI_1",reason="bad_ttl"} 2.0' in answer
        assert b"lvsha_metrics_refreshes_total 1.0" in answer
        assert (await get(server, b"GET /other HTTP/1.0\r\n\r\n")).startswith(b"HTTP/1.0 404")

    run(check, MetricsServer("127.0.0.1:0", lambda: STATUS))


@MODES
def test_concurrent_scrapes_take_the_status_once_per_interval(
    tmp_path: Path, render_in: str
) -> None:
    calls = tmp_path / "calls"
    now = [100.0]
    server = MetricsServer("127.0.0.1:0", counting_source(calls))
    server.clock = lambda: now[0]
    server.render_in = render_in

    async def check(server: MetricsServer) -> None:
        answers = await asyncio.gather(*(get(server) for _ in range(10)))
        assert all(a.startswith(b"HTTP/1.0 200") for a in answers)
        assert len({a.split(b"\r\n\r\n", 1)[1] for a in answers}) == 1  # the same bytes
        assert count(calls) == 1
        now[0] += 0.9
        await asyncio.gather(*(get(server) for _ in range(5)))
        assert count(calls) == 1  # still fresh: cached bytes
        now[0] += 0.1
        stale = await asyncio.gather(*(get(server) for _ in range(5)))
        assert stale == answers[:5]  # served at once, while one refresh runs behind them
        for _ in range(500):  # bounded: 5 s for that refresh
            if count(calls) == 2 and server._refreshing is None:
                break
            await asyncio.sleep(0.01)
        await asyncio.gather(*(get(server) for _ in range(5)))
        assert count(calls) == 2

    run(check, server)


@MODES
def test_the_render_runs_off_the_loop_while_loop_timers_fire(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, render_in: str
) -> None:
    """A render that only ends once a loop timer has fired: proof the loop stayed free."""
    fired = tmp_path / "timer-fired"
    seen = tmp_path / "seen.json"

    def slow_render(status: dict[str, Any]) -> bytes:
        for _ in range(500):  # bounded: 5 s
            if fired.exists():
                break
            time.sleep(0.01)
        where = {"pid": os.getpid(), "thread": threading.get_ident(), "fired": fired.exists()}
        seen.write_text(json.dumps(where))
        return b"x 1\n"

    monkeypatch.setattr(metrics, "render", slow_render)
    server = MetricsServer("127.0.0.1:0", lambda: STATUS)
    server.render_in = render_in

    async def check(server: MetricsServer) -> None:
        asyncio.get_running_loop().call_later(0.05, fired.touch)
        answer = await get(server)
        assert answer.endswith(b"\r\n\r\nx 1\n")
        where = json.loads(seen.read_text())
        assert where["fired"], "the loop timer did not fire while the render ran"
        if render_in == "process":
            assert where["pid"] != os.getpid()
        else:
            assert where["thread"] != threading.get_ident()

    run(check, server)


def hung_up(sock: socket.socket) -> bool:
    """The server reset or closed our connection (without our reading anything)."""
    poller = select.poll()
    gone = select.POLLHUP | select.POLLERR | select.POLLRDHUP
    poller.register(sock, gone)
    return any(ev & gone for _, ev in poller.poll(0))


def test_a_client_that_never_reads_is_cut_at_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "render", lambda status: b"#" * (32 << 20))  # fills any buffer
    server = MetricsServer("127.0.0.1:0", lambda: STATUS)
    server.timeout = 0.5

    async def check(server: MetricsServer) -> None:
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.setblocking(False)
        await asyncio.get_running_loop().sock_connect(slow, ("127.0.0.1", port_of(server)))
        slow.send(b"GET /metrics HTTP/1.0\r\n\r\n")
        try:
            for _ in range(100):  # bounded: 5 s, ten times the timeout
                if hung_up(slow):
                    break
                await asyncio.sleep(0.05)
            assert hung_up(slow), "the server still holds a client that never reads"
        finally:
            slow.close()
        assert server.timeouts == 1 and server.active == 0

    run(check, server)


def test_a_client_that_sends_nothing_is_cut_at_the_timeout() -> None:
    server = MetricsServer("127.0.0.1:0", lambda: STATUS)
    server.timeout = 0.3

    async def check(server: MetricsServer) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
        async with asyncio.timeout(5):
            with contextlib.suppress(ConnectionResetError):  # reset or closed: not held
                assert await reader.read() == b""  # and no answer
        writer.close()
        assert server.timeouts == 1

    run(check, server)


def test_connections_beyond_the_cap_get_503_at_once() -> None:
    server = MetricsServer("127.0.0.1:0", lambda: STATUS)
    server.max_clients = 2

    async def check(server: MetricsServer) -> None:
        idle = [await asyncio.open_connection("127.0.0.1", port_of(server)) for _ in range(2)]
        for _ in range(100):  # bounded: both accepted and counted
            if server.active == 2:
                break
            await asyncio.sleep(0.01)
        async with asyncio.timeout(2):  # well before the idle ones time out (5 s)
            answer = await get(server)
        assert answer.startswith(b"HTTP/1.0 503")
        assert server.refused == 1
        for _, writer in idle:
            writer.close()
        for _ in range(100):
            if server.active == 0:
                break
            await asyncio.sleep(0.01)
        assert (await get(server)).startswith(b"HTTP/1.0 200")  # room again

    run(check, server)


def test_oversized_requests_get_no_answer_and_the_server_lives(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    server = MetricsServer("127.0.0.1:0", counting_source(calls))

    async def check(server: MetricsServer) -> None:
        long_line = b"GET /metrics" + b"x" * 100_000 + b" HTTP/1.0\r\n\r\n"
        many_headers = b"GET /metrics HTTP/1.0\r\n" + b"X: y\r\n" * 1000 + b"\r\n"
        for request in (long_line, many_headers):
            with pytest.raises(ConnectionError):  # reset, or closed without a word
                answer = await get(server, request)
                if not answer:
                    raise ConnectionResetError
        assert server.bad_requests == 2 and not count(calls)
        assert (await get(server)).startswith(b"HTTP/1.0 200")

    run(check, server)


@MODES
def test_a_failing_source_gives_500_then_the_last_good_body(render_in: str) -> None:
    now = [0.0]
    fail = [True]

    def source() -> dict[str, Any]:
        if fail[0]:
            raise RuntimeError("boom")
        return STATUS

    server = MetricsServer("127.0.0.1:0", source)
    server.clock = lambda: now[0]
    server.render_in = render_in

    async def check(server: MetricsServer) -> None:
        assert (await get(server)).startswith(b"HTTP/1.0 500")
        fail[0] = False
        now[0] += 1.0
        good = await get(server)
        assert good.startswith(b"HTTP/1.0 200")
        fail[0] = True
        now[0] += 1.0
        assert await get(server) == good  # stale rather than nothing

    run(check, server)


def test_when_fork_fails_the_render_runs_in_a_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_fork() -> int:
        raise OSError(11, "Resource temporarily unavailable")

    seen: list[int] = []

    def render_here(status: dict[str, Any]) -> bytes:
        seen.append(threading.get_ident())
        return b"x 1\n"

    monkeypatch.setattr(metrics.os, "fork", no_fork)
    monkeypatch.setattr(metrics, "render", render_here)

    async def check(server: MetricsServer) -> None:
        assert (await get(server)).endswith(b"\r\n\r\nx 1\n")
        assert seen and seen[0] != threading.get_ident()

    run(check, MetricsServer("127.0.0.1:0", lambda: STATUS))


def test_a_render_child_that_hangs_is_killed_and_reaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid_file = tmp_path / "child"

    def hang(status: dict[str, Any]) -> bytes:
        pid_file.write_text(str(os.getpid()))
        time.sleep(60)
        return b""

    monkeypatch.setattr(metrics, "render", hang)
    monkeypatch.setattr(metrics, "RENDER_TIMEOUT", 0.5)

    async def check(server: MetricsServer) -> None:
        assert (await get(server)).startswith(b"HTTP/1.0 500")
        child = int(pid_file.read_text())
        with pytest.raises(ChildProcessError):  # killed and reaped: no zombie left
            os.waitpid(child, os.WNOHANG)
        assert not Path(f"/proc/{child}").exists()

    run(check, MetricsServer("127.0.0.1:0", lambda: STATUS))


def test_the_render_child_holds_no_descriptor_of_the_daemon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pipe the daemon closes (its health worker's stdin) must reach EOF mid-render."""
    seen = tmp_path / "fds"

    def list_fds(status: dict[str, Any]) -> bytes:
        seen.write_text(json.dumps(sorted(int(fd) for fd in os.listdir("/proc/self/fd"))))
        return b"x 1\n"

    monkeypatch.setattr(metrics, "render", list_fds)
    r, w = os.pipe()  # stands for the worker's stdin

    async def check(server: MetricsServer) -> None:
        assert (await get(server)).endswith(b"x 1\n")

    try:
        run(check, MetricsServer("127.0.0.1:0", lambda: STATUS))
    finally:
        os.close(r)
        os.close(w)
    fds = json.loads(seen.read_text())
    assert r not in fds and w not in fds
    assert len([fd for fd in fds if fd > 2]) <= 2  # its pipe, and the listing's own


def test_close_kills_a_render_in_flight(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pid_file = tmp_path / "child"

    def hang(status: dict[str, Any]) -> bytes:
        pid_file.write_text(str(os.getpid()))
        time.sleep(60)
        return b""

    monkeypatch.setattr(metrics, "render", hang)

    async def go() -> None:
        server = MetricsServer("127.0.0.1:0", lambda: STATUS)
        await server.start()
        scrape = asyncio.ensure_future(get(server))
        for _ in range(500):  # bounded: the child has started
            if pid_file.exists() and pid_file.read_text():
                break
            await asyncio.sleep(0.01)
        async with asyncio.timeout(5):
            await server.close()
        scrape.cancel()
        child = int(pid_file.read_text())
        assert not Path(f"/proc/{child}").exists()

    asyncio.run(go())
