"""Health checks of IPv6 real servers, against servers on ::1 (no privileges needed).

TCP over both paths (the asyncio probe and the checker's epoll fast path),
HTTP with the Host header in brackets (RFC 3986 section 3.2.2), and the
whole checker taking an IPv6 real server out when it stops answering.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable
from typing import Any

import pytest

from lvsha.adapters.probe import ProbeResult, TcpProber, http_probe, request_bytes, tcp_probe
from lvsha.config import HttpCheck, parse_config
from lvsha.core.desired import DestKey, ServiceKey
from lvsha.runtime.health import HealthChecker

LOCAL6 = "::1"


def run(coro: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await coro

    return asyncio.run(main())


def listener6() -> socket.socket:
    sock = socket.socket(socket.AF_INET6)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOCAL6, 0))
    sock.listen(128)
    return sock


def closed_port6() -> int:
    sock = listener6()
    port: int = sock.getsockname()[1]
    sock.close()
    return port


def test_tcp_probe_connects_over_ipv6_and_hears_a_refusal() -> None:
    server = listener6()
    port = server.getsockname()[1]
    try:
        up = run(tcp_probe(LOCAL6, port, 1.0))
        assert up == ProbeResult(True, up.latency, "connected")
    finally:
        server.close()
    down = run(tcp_probe(LOCAL6, closed_port6(), 1.0))
    assert (down.ok, down.detail) == (False, "connection refused")


def test_tcp_fast_path_connects_over_ipv6() -> None:
    server = listener6()
    port = server.getsockname()[1]
    refused = closed_port6()

    async def go() -> list[ProbeResult]:
        prober = TcpProber()
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in range(2)]
        prober.start(LOCAL6, port, 1.0, futures[0].set_result)
        prober.start(LOCAL6, refused, 1.0, futures[1].set_result)
        try:
            async with asyncio.timeout(5):
                return list(await asyncio.gather(*futures))
        finally:
            prober.close()

    try:
        ok, bad = run(go())
    finally:
        server.close()
    assert (ok.ok, ok.detail) == (True, "connected")
    assert (bad.ok, bad.detail) == (False, "connection refused")


def test_http_probe_over_ipv6_sends_the_address_in_brackets() -> None:
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    async def go() -> ProbeResult:
        server = await asyncio.start_server(handle, LOCAL6, 0)
        try:
            port = server.sockets[0].getsockname()[1]
            result = await http_probe(LOCAL6, port, HttpCheck(path="/health"))
            assert f"\r\nHost: [::1]:{port}\r\n".encode() in seen[0]
            return result
        finally:
            server.close()

    result = run(go())
    assert (result.ok, result.detail) == (True, "HTTP 200")
    assert b"\r\nHost: [2001:db8::21]\r\n" in request_bytes(HttpCheck(), "2001:db8::21", 80)
    assert b"\r\nHost: [2001:db8::21]:8080\r\n" in request_bytes(HttpCheck(), "2001:db8::21", 8080)
    assert b"\r\nHost: [2001:db8::21]\r\n" in request_bytes(
        HttpCheck(tls=True), "2001:db8::21", 443
    )


@pytest.mark.parametrize("check", ["tcp_check", "http_get"])
def test_checker_takes_an_ipv6_real_server_out_when_it_stops_answering(check: str) -> None:
    """The whole engine (inline): healthy while ::1 answers, out once refused."""
    service = ServiceKey("tcp", "2001:db8::100", 80)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    async def go() -> None:
        server = await asyncio.start_server(handle, LOCAL6, 0)
        port = server.sockets[0].getsockname()[1]
        cfg = parse_config(
            f'[[virtual_server]]\naddress = "{service.address}"\nport = 80\ndelay_loop = 0.2\n'
            f'[[virtual_server.real_server]]\naddress = "{LOCAL6}"\nport = {port}\n'
            f"warmup = 0\nretry = 0\n{check} = {{ connect_timeout = 0.5 }}\n"
        )
        key = (service, DestKey(LOCAL6, port))
        checker = HealthChecker(cfg.virtual_servers, lambda: None, isolate=False)
        checker.start()
        try:
            await until(lambda: checker.status()[key].checked_at is not None, 5.0)
            assert checker.status()[key].healthy and checker.status()[key].last_ok
            server.close()
            await server.wait_closed()
            await until(lambda: not checker.status()[key].healthy, 5.0)
            assert checker.status()[key].detail == "connection refused"
        finally:
            server.close()
            checker.stop()
            await checker.wait_stopped()

    asyncio.run(go())


async def until(condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s")
        await asyncio.sleep(0.01)
