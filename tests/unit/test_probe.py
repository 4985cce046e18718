"""Probes against real servers on 127.0.0.1: up, refused, reset, blackholed, HTTP 500, TLS.

No privileges needed. The blackhole is a listening socket whose accept queue
(backlog 0) is already full: Linux then drops further SYNs, so a connect
hears nothing until its timeout, as with a firewall DROP rule.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import ssl
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from lvsha.adapters import probe as probe_module
from lvsha.adapters.probe import (
    ProbeResult,
    TcpProber,
    http_probe,
    misc_probe,
    probe_for,
    request_bytes,
    tcp_probe,
)
from lvsha.config import HttpCheck, MiscCheck, RealServerConfig, TcpCheck

LOCAL = "127.0.0.1"


def run(coro: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await coro

    return asyncio.run(main())


def listener(port: int = 0, backlog: int = 128) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOCAL, port))
    sock.listen(backlog)
    return sock


# -------------------------------------------------------------------- TCP --


def test_tcp_up_then_killed_then_restarted() -> None:
    server = listener()
    port = server.getsockname()[1]
    up = run(tcp_probe(LOCAL, port, 1.0))
    assert up.ok and up.detail == "connected" and 0 <= up.latency < 1.0
    server.close()
    down = run(tcp_probe(LOCAL, port, 1.0))
    assert down == ProbeResult(False, down.latency, "connection refused")
    assert down.latency < 0.5  # refused at once, not at the timeout
    server = listener(port)
    try:
        assert run(tcp_probe(LOCAL, port, 1.0)).ok
    finally:
        server.close()


def test_tcp_probe_closes_with_a_reset_and_leaves_no_time_wait() -> None:
    server = listener()
    port = server.getsockname()[1]
    try:
        assert run(tcp_probe(LOCAL, port, 1.0)).ok
        conn, _ = server.accept()
        conn.settimeout(2.0)
        with pytest.raises(ConnectionResetError):
            conn.recv(1)
        conn.close()
        tw = subprocess.run(
            ["ss", "-tanH", "state", "time-wait", f"( sport = :{port} or dport = :{port} )"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert tw.strip() == ""
    finally:
        server.close()


def blackhole() -> tuple[socket.socket, list[socket.socket]]:
    """A listener whose accept queue is full: the kernel drops new SYNs."""
    server = listener(backlog=0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(3):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex((LOCAL, port))
        fillers.append(c)
    time.sleep(0.05)
    return server, fillers


def test_tcp_blackhole_fails_at_the_timeout() -> None:
    server, fillers = blackhole()
    try:
        result = run(tcp_probe(LOCAL, server.getsockname()[1], 0.3))
        assert result.detail == "no answer within 0.3 s" and not result.ok
        assert 0.3 <= result.latency < 1.0
    finally:
        for s in (server, *fillers):
            s.close()


def test_tcp_probe_uses_connect_ip_and_port_overrides() -> None:
    server = listener()
    port = server.getsockname()[1]
    try:
        rs = RealServerConfig("192.0.2.1", 80, tcp_check=TcpCheck(1.0, LOCAL, port))
        check = probe_for(rs, 5.0)
        assert check is not None
        assert run(check()).ok  # 192.0.2.1:80 would never answer
    finally:
        server.close()
    assert probe_for(RealServerConfig("192.0.2.1", 80), 5.0) is None


# ------------------------------------------------------------------- HTTP --

Responder = Callable[[bytes], bytes | None]


@asynccontextmanager
async def http_server(
    respond: Responder, tls: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[int, list[bytes]]]:
    """A one-response-per-connection HTTP server; yields (port, requests seen)."""
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            seen.append(head)
            reply = respond(head)
            if reply is None:  # reset the connection instead of answering
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                return
            writer.write(reply)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, LOCAL, 0, ssl=tls)
    try:
        yield server.sockets[0].getsockname()[1], seen
    finally:
        server.close()


def reply(status: str, body: bytes = b"", headers: str = "") -> bytes:
    return f"HTTP/1.0 {status}\r\nContent-Length: {len(body)}\r\n{headers}\r\n".encode() + body


def http(
    respond: Responder, check: HttpCheck, tls: ssl.SSLContext | None = None
) -> tuple[ProbeResult, list[bytes]]:
    async def go() -> tuple[ProbeResult, list[bytes]]:
        async with http_server(respond, tls) as (port, seen):
            return await http_probe(LOCAL, port, check), seen

    result: tuple[ProbeResult, list[bytes]] = asyncio.run(go())
    return result


def test_http_200_and_500() -> None:
    ok, seen = http(lambda _: reply("200 OK", b"fine"), HttpCheck(path="/health"))
    assert ok.ok and ok.detail == "HTTP 200"
    assert seen[0].startswith(b"GET /health HTTP/1.0\r\n")
    bad, _ = http(lambda _: reply("500 Internal Server Error", b"oops"), HttpCheck())
    assert bad == ProbeResult(False, bad.latency, "HTTP 500, expected 200")
    accepted, _ = http(lambda _: reply("503 Busy"), HttpCheck(status=(200, 503)))
    assert accepted.ok


def test_http_host_header_default_and_configured() -> None:
    _, seen = http(lambda _: reply("200 OK"), HttpCheck())
    assert b"\r\nHost: 127.0.0.1:" in seen[0]
    _, seen = http(lambda _: reply("200 OK"), HttpCheck(host="www.example.test"))
    assert b"\r\nHost: www.example.test\r\n" in seen[0]
    assert b"Host: 192.0.2.1\r\n" in request_bytes(HttpCheck(), "192.0.2.1", 80)


def test_http_body_regex_and_digest() -> None:
    body = b"status: all good\n"
    digest = hashlib.md5(body).hexdigest()
    assert http(lambda _: reply("200 OK", body), HttpCheck(regex=r"all\s+good"))[0].ok
    miss, _ = http(lambda _: reply("200 OK", body), HttpCheck(regex="degraded"))
    assert miss.detail == "body does not match 'degraded'"
    assert http(lambda _: reply("200 OK", body), HttpCheck(digest=digest))[0].ok
    wrong, _ = http(lambda _: reply("200 OK", b"changed"), HttpCheck(digest=digest))
    assert not wrong.ok and wrong.detail.startswith("body digest ")


def test_http_body_chunked_and_unsized() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nall \r\n4\r\ngood\r\n0\r\n\r\n"
    )
    digest = hashlib.md5(b"all good").hexdigest()
    assert http(lambda _: chunked, HttpCheck(digest=digest))[0].ok
    unsized = b"HTTP/1.0 200 OK\r\n\r\nall good"
    assert http(lambda _: unsized, HttpCheck(digest=digest))[0].ok


def test_http_accepts_then_resets() -> None:
    result, _ = http(lambda _: None, HttpCheck())
    assert not result.ok
    assert result.detail in ("connection reset by peer", "connection closed by the server")


def test_tcp_check_passes_a_server_that_accepts_then_resets() -> None:
    """A TCP check proves the handshake only: the reset comes after it (documented)."""

    async def go() -> ProbeResult:
        async with http_server(lambda _: None) as (port, _):
            return await tcp_probe(LOCAL, port, 1.0)

    assert run(go()).ok


def test_http_garbage_refused_and_blackholed() -> None:
    garbage, _ = http(lambda _: b"SSH-2.0-OpenSSH\r\n", HttpCheck())
    assert not garbage.ok and garbage.detail.startswith("_BadResponse: not an HTTP status line")
    server = listener()
    port = server.getsockname()[1]
    server.close()
    refused = run(http_probe(LOCAL, port, HttpCheck()))
    assert refused.detail == "connection refused"
    hole, fillers = blackhole()
    try:
        timed = run(http_probe(LOCAL, hole.getsockname()[1], HttpCheck(connect_timeout=0.3)))
        assert timed.detail == "no answer within 0.3 s" and timed.latency >= 0.3
    finally:
        for s in (hole, *fillers):
            s.close()


def test_http_server_that_answers_nothing_times_out() -> None:
    async def go() -> ProbeResult:
        done = asyncio.Event()

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await done.wait()
            writer.close()

        server = await asyncio.start_server(silent, LOCAL, 0)
        try:
            port = server.sockets[0].getsockname()[1]
            return await http_probe(LOCAL, port, HttpCheck(connect_timeout=0.3))
        finally:
            done.set()
            server.close()
            await asyncio.sleep(0.01)

    result = run(go())
    assert result.detail == "no answer within 0.3 s"


# ------------------------------------------------------------------ HTTPS --


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for www.example.test, made by openssl."""
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "2", "-subj", "/CN=www.example.test",
            "-addext", "subjectAltName=DNS:www.example.test",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def tls_server(cert: Path, key: Path, names: list[str | None]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def record(_sock: Any, name: str | None, _ctx: Any) -> None:
        names.append(name)

    context.sni_callback = record
    return context


def https(certificate: tuple[Path, Path], check: HttpCheck) -> tuple[ProbeResult, list[str | None]]:
    names: list[str | None] = []
    result, _ = http(lambda _: reply("200 OK", b"ok"), check, tls_server(*certificate, names))
    return result, names


def test_https_without_verification_sends_sni(certificate: tuple[Path, Path]) -> None:
    result, names = https(certificate, HttpCheck(tls=True, sni="www.example.test"))
    assert result.ok and names == ["www.example.test"]
    result, names = https(certificate, HttpCheck(tls=True, host="www.example.test"))
    assert result.ok and names == ["www.example.test"]  # SNI defaults to host
    result, names = https(certificate, HttpCheck(tls=True))
    assert result.ok and names == [None]  # no SNI for an IP address


def test_https_verification_rejects_a_self_signed_certificate(
    certificate: tuple[Path, Path],
) -> None:
    check = HttpCheck(tls=True, sni="www.example.test", verify_certificate=True)
    result, _ = https(certificate, check)
    assert not result.ok and result.detail.startswith("certificate: self")


def test_https_verification_accepts_a_trusted_certificate_and_checks_the_name(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    probe_module._tls_context.cache_clear()
    try:
        good, _ = https(
            certificate, HttpCheck(tls=True, sni="www.example.test", verify_certificate=True)
        )
        assert good.ok
        bad, _ = https(
            certificate, HttpCheck(tls=True, sni="other.example.test", verify_certificate=True)
        )
        assert not bad.ok and bad.detail.startswith("certificate: Hostname mismatch")
    finally:
        probe_module._tls_context.cache_clear()


def test_https_against_plain_http_fails() -> None:
    async def go() -> ProbeResult:
        async def plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(reply("400 Bad Request"))  # what a web server says to a ClientHello
            writer.close()

        server = await asyncio.start_server(plain, LOCAL, 0)
        try:
            port = server.sockets[0].getsockname()[1]
            return await http_probe(LOCAL, port, HttpCheck(tls=True, connect_timeout=1.0))
        finally:
            server.close()

    result = run(go())
    assert not result.ok and result.detail.startswith("tls: "), result


# ------------------------------------------------------------------- misc --


def test_misc_exit_status_decides() -> None:
    ok = run(misc_probe(("true",), 5.0))
    assert (ok.ok, ok.detail) == (True, "exit 0") and 0 < ok.latency < 5.0
    assert run(misc_probe(("false",), 5.0)).detail == "exit 1"
    said = run(misc_probe(("sh", "-c", "echo 'backend busy'; exit 3"), 5.0))
    assert not said.ok and said.detail == "exit 3: backend busy"
    quoted = run(misc_probe(("echo", "; rm -rf /tmp/nothing"), 5.0))
    assert quoted.ok and quoted.detail == "; rm -rf /tmp/nothing"  # argv, no shell


def test_misc_missing_command() -> None:
    result = run(misc_probe(("/nonexistent/check",), 5.0))
    assert result.detail == "cannot run /nonexistent/check: no such file or directory"


def test_misc_timeout_kills_the_whole_session(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = f"sleep 30 & echo $$ $! > {pids}; wait"
    started = time.monotonic()
    result = run(misc_probe(("sh", "-c", script), 0.3))
    assert result.detail == "killed after 0.3 s" and not result.ok
    assert time.monotonic() - started < 3.0
    for pid in map(int, pids.read_text().split()):
        assert not alive(pid), pid


def alive(pid: int) -> bool:
    """True if `pid` runs (a zombie waiting for its reaper does not count)."""
    for _ in range(100):  # bounded: an orphan is reaped by init shortly
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return False
        if state == "Z":
            return False
        time.sleep(0.02)
    return True


def test_misc_probe_for_uses_delay_loop_by_default() -> None:
    rs = RealServerConfig(
        "192.0.2.1", 80, misc_check=MiscCheck((sys.executable, "-c", "import time; time.sleep(5)"))
    )
    check = probe_for(rs, 0.3)
    assert check is not None
    assert run(check()).detail == "killed after 0.3 s"


def test_probes_never_raise_on_odd_input() -> None:
    assert not run(tcp_probe(LOCAL, 0, 0.5)).ok
    assert not run(http_probe(LOCAL, 0, HttpCheck(connect_timeout=0.5))).ok


# -------------------------------------------------------------- TcpProber --


def test_tcp_prober_runs_many_checks_with_the_same_verdicts() -> None:
    up = listener()
    gone = listener()
    refused_port = gone.getsockname()[1]
    gone.close()
    hole, fillers = blackhole()

    async def go() -> dict[str, ProbeResult]:
        prober = TcpProber()
        results: dict[str, ProbeResult] = {}
        done = asyncio.Event()

        def record(name: str) -> Callable[[ProbeResult], None]:
            def callback(result: ProbeResult) -> None:
                results[name] = result
                if len(results) == 3:
                    done.set()

            return callback

        prober.start(LOCAL, up.getsockname()[1], 1.0, record("up"))
        prober.start(LOCAL, refused_port, 1.0, record("refused"))
        prober.start(LOCAL, hole.getsockname()[1], 0.2, record("blackhole"))
        cancelled = prober.start(LOCAL, hole.getsockname()[1], 0.2, record("cancelled"))
        prober.cancel(cancelled)
        async with asyncio.timeout(3):
            await done.wait()
        await asyncio.sleep(0.3)  # the cancelled probe's deadline passes: no callback
        assert len(prober) == 0
        prober.close()
        return results

    try:
        results = run(go())
    finally:
        for s in (up, hole, *fillers):
            s.close()
    assert set(results) == {"up", "refused", "blackhole"}
    assert (results["up"].ok, results["up"].detail) == (True, "connected")
    assert (results["refused"].ok, results["refused"].detail) == (False, "connection refused")
    assert results["blackhole"].detail == "no answer within 0.2 s"
    assert 0.2 <= results["blackhole"].latency < 0.2 + 2 * TcpProber.SWEEP + 0.1
