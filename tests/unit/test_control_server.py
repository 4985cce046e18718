"""The control socket: who may ask what, and no request can hurt the server.

Issue 10 #7: the request was parsed before the peer's credentials were
checked (60,000 '[' raised RecursionError, unhandled, no answer), nothing
capped connections, the answer was drained without a timeout, and any
control_group member could `reload`. The peer's credentials are faked here
(the tests run as root, who may do everything); the socket is real.
"""

from __future__ import annotations

import asyncio
import grp
import json
import os
import select
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from lvsha.adapters import control
from lvsha.adapters.control import MAX_REQUEST, ControlServer

GROUP = "nogroup"
MEMBER = (4242, 4242)  # uid, gid: not root, not us
Test = Callable[[ControlServer, list[dict[str, Any]]], Awaitable[None]]


def as_peer(monkeypatch: pytest.MonkeyPatch, uid: int, gid: int) -> None:
    monkeypatch.setattr(control, "peer_credentials", lambda sock: (1, uid, gid))


def member(monkeypatch: pytest.MonkeyPatch) -> None:
    as_peer(monkeypatch, MEMBER[0], grp.getgrnam(GROUP).gr_gid)


def run(tmp_path: Path, test: Test, handler_reply: dict[str, Any] | None = None) -> None:
    seen: list[dict[str, Any]] = []

    async def handler(request: dict[str, Any]) -> dict[str, Any]:
        seen.append(request)
        return handler_reply if handler_reply is not None else {"ok": request["command"]}

    async def go() -> None:
        server = ControlServer(str(tmp_path / "ctl.sock"), handler, GROUP)
        await server.start()
        try:
            async with asyncio.timeout(30):  # no test may hang
                await test(server, seen)
        finally:
            await server.close()

    asyncio.run(go())


async def ask(server: ControlServer, line: bytes) -> dict[str, Any]:
    reader, writer = await asyncio.open_unix_connection(server.path)
    writer.write(line)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    assert answer, "no answer"
    result: dict[str, Any] = json.loads(answer)
    return result


def command(name: str) -> bytes:
    return json.dumps({"command": name}).encode() + b"\n"


def test_members_may_read_status_but_not_reload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    member(monkeypatch)

    async def check(server: ControlServer, seen: list[dict[str, Any]]) -> None:
        assert await ask(server, command("status")) == {"ok": "status"}
        refused = await ask(server, command("reload"))
        assert refused["error"].startswith(f"permission denied for uid {MEMBER[0]}: 'reload'")
        assert [r["command"] for r in seen] == ["status"]  # reload never reached the daemon
        assert server.refused == 1

    run(tmp_path, check)


def test_root_and_the_daemons_own_user_may_reload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def check(server: ControlServer, seen: list[dict[str, Any]]) -> None:
        for uid in (0, os.geteuid()):
            as_peer(monkeypatch, uid, 12345)
            assert await ask(server, command("reload")) == {"ok": "reload"}
        assert len(seen) == 2

    run(tmp_path, check)


def test_outsiders_are_refused_before_their_request_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_peer(monkeypatch, 4243, 4243)
    parsed: list[bytes] = []

    class Recording:  # the server's json module only, not the test's
        dumps = staticmethod(json.dumps)

        @staticmethod
        def loads(text: bytes) -> Any:
            parsed.append(text)
            return json.loads(text)

    monkeypatch.setattr(control, "json", Recording)

    async def check(server: ControlServer, seen: list[dict[str, Any]]) -> None:
        answer = await ask(server, b"[" * 60_000 + b"\n")
        assert answer == {"error": "permission denied for uid 4243"}
        assert not parsed and not seen

    run(tmp_path, check)


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (b"[" * 60_000 + b"\n", "not JSON (RecursionError)"),
        (b"{" * 30_000 + b"\n", "not JSON"),
        (b"x" * (4 * MAX_REQUEST) + b"\n", f"longer than {MAX_REQUEST} bytes"),
        (b"not json\n", "not JSON (JSONDecodeError)"),
        (b"\xff\xfe\n", "not JSON"),
        (b"[1, 2]\n", "a request is a JSON object"),
        (b'{"command": 7}\n', "no command"),
    ],
)
def test_bad_requests_get_an_error_and_the_server_lives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: bytes, why: str
) -> None:
    member(monkeypatch)

    async def check(server: ControlServer, seen: list[dict[str, Any]]) -> None:
        answer = await ask(server, line)
        assert answer["error"].startswith("bad request: ") and why in answer["error"]
        assert await ask(server, command("status")) == {"ok": "status"}
        assert [r["command"] for r in seen] == ["status"]

    run(tmp_path, check)


def test_connections_beyond_the_cap_get_busy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    member(monkeypatch)

    async def check(server: ControlServer, seen: list[dict[str, Any]]) -> None:
        server.max_clients = 2
        idle = [await asyncio.open_unix_connection(server.path) for _ in range(2)]
        for _ in range(100):  # bounded: both accepted
            if server.active == 2:
                break
            await asyncio.sleep(0.01)
        async with asyncio.timeout(2):  # long before the idle ones time out
            answer = await ask(server, command("status"))
        assert answer["error"].startswith("busy")
        for _, writer in idle:
            writer.close()
        for _ in range(100):
            if server.active == 0:
                break
            await asyncio.sleep(0.01)
        assert await ask(server, command("status")) == {"ok": "status"}

    run(tmp_path, check)


def hung_up(sock: socket.socket) -> bool:
    poller = select.poll()
    gone = select.POLLHUP | select.POLLERR | select.POLLRDHUP
    poller.register(sock, gone)
    return any(ev & gone for _, ev in poller.poll(0))


def test_a_client_that_never_reads_its_answer_is_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    member(monkeypatch)

    async def check(server: ControlServer, seen: list[dict[str, Any]]) -> None:
        server.timeout = 0.3
        slow = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        slow.setblocking(False)
        await asyncio.get_running_loop().sock_connect(slow, server.path)
        slow.send(command("status"))
        try:
            for _ in range(100):  # bounded: 5 s
                if hung_up(slow):
                    break
                await asyncio.sleep(0.05)
            assert hung_up(slow), "the server still holds a client that never reads"
        finally:
            slow.close()
        assert server.timeouts == 1

    run(tmp_path, check, handler_reply={"big": "x" * (16 << 20)})  # more than any buffer


def test_a_failing_command_is_an_error_reply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    member(monkeypatch)

    async def check(server: ControlServer, seen: list[dict[str, Any]]) -> None:
        async def broken(request: dict[str, Any]) -> dict[str, Any]:
            raise RuntimeError("boom")

        server.handler = broken
        assert await ask(server, command("status")) == {
            "error": "internal error: RuntimeError('boom')"
        }

    run(tmp_path, check)
