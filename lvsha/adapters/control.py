"""The control socket: one JSON request line in, one JSON document out.

The server runs in the daemon's event loop; the client
(control_client.py) is plain blocking stdlib so that `lvsha status` starts
fast. Who may ask what (docs/status.md): the peer's credentials (SO_PEERCRED)
are checked before a byte of the request is read; root, the daemon's own
user and members of `control_group` may ask the read-only commands
(`status`); everything else (`reload`) needs root or the daemon's own user.
A request is bounded in size and time, a malformed one gets a JSON error,
connections are capped, and every answer is written under a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import json
import os
import socket
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from lvsha import logs

log = logs.get("lvsha.control")

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
MAX_REQUEST = 64 * 1024  # bytes of one request line
MAX_CLIENTS = 16  # connections at once; beyond, an error and close
CLIENT_TIMEOUT = 5.0  # seconds to read a request, and again to write an answer
REFUSED_LINGER = 1.0  # seconds a refused connection stays open for its answer to be read
READ_ONLY = frozenset({"status"})  # what control_group members may ask


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end of a unix socket."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return pid, uid, gid


def _give_to_group(path: str, group: str) -> str | None:
    """Make `group` the socket's group; None when done, else why not."""
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        return f"control_group {group!r} does not exist"
    if os.stat(path).st_gid == gid:
        return None  # created so already: the daemon runs with that group (Group=)
    try:
        os.chown(path, -1, gid)
    except OSError as exc:
        return (
            f"cannot give {path} to group {group!r}: {exc.strerror}; run the daemon with "
            f"that group (systemd: Group={group}) so the socket is created with it"
        )
    return None


def peer_privileged(uid: int) -> bool:
    """Root or the daemon's own user: may ask anything, `reload` included."""
    return uid in (0, os.geteuid())


def peer_allowed(uid: int, gid: int, group: str | None) -> bool:
    """Root, our own user, or a member of `group` (primary or supplementary)."""
    if peer_privileged(uid):
        return True
    if group is None:
        return False
    try:
        entry = grp.getgrnam(group)
    except KeyError:
        return False
    if gid == entry.gr_gid:
        return True
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name in entry.gr_mem
    except KeyError:
        return False


class ControlServer:
    """Serves JSON requests on a unix socket."""

    def __init__(self, path: str, handler: Handler, group: str | None = None) -> None:
        self.path = path
        self.handler = handler
        self.group = group
        self.max_clients = MAX_CLIENTS
        self.timeout = CLIENT_TIMEOUT
        self.refused = 0  # peers not allowed, or asking beyond what they may
        self.busy = 0  # connections beyond max_clients
        self.bad_requests = 0
        self.timeouts = 0
        self.active = 0
        self.group_error: str | None = None  # why the socket is not the group's
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        directory = Path(self.path).parent
        old = os.umask(0o022)
        os.umask(old | 0o022)  # missing parents too: never group- or world-writable
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o755)
        finally:
            os.umask(old)
        with contextlib.suppress(FileNotFoundError):
            Path(self.path).unlink()
        old = os.umask(0o117)  # the socket file is created 0660
        try:
            self._server = await asyncio.start_unix_server(
                self._client, path=self.path, limit=MAX_REQUEST
            )
        finally:
            os.umask(old)
        if self.group is not None:
            self.group_error = _give_to_group(self.path, self.group)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
            with contextlib.suppress(FileNotFoundError):
                Path(self.path).unlink()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.active >= self.max_clients:
            self.busy += 1
            writer.write(_line({"error": "busy: too many control connections, try again"}))
            writer.write_eof()  # the request stays unread; the answer is a few bytes
            asyncio.get_running_loop().call_later(REFUSED_LINGER, writer.transport.abort)
            return
        self.active += 1
        try:
            await self._serve(reader, writer)
        except TimeoutError:
            self.timeouts += 1
        except (ConnectionError, OSError):
            pass
        except Exception as exc:  # a client must never kill the server
            log.error("control client failed", error=repr(exc))
        finally:
            self.active -= 1
            writer.transport.abort()  # whatever is left (answers are drained first)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Credentials, then the request, then the answer: in that order."""
        _, uid, gid = peer_credentials(writer.get_extra_info("socket"))
        if not peer_allowed(uid, gid, self.group):
            self.refused += 1
            await self._reply(reader, writer, {"error": f"permission denied for uid {uid}"})
            return
        async with asyncio.timeout(self.timeout):
            request = await self._read(reader)
        if "error" in request:
            self.bad_requests += 1
            reply = request
        elif request.get("command") not in READ_ONLY and not peer_privileged(uid):
            self.refused += 1
            reply = {
                "error": f"permission denied for uid {uid}: {request.get('command')!r} needs "
                "root or the daemon's own user; control_group members may only ask "
                + ", ".join(sorted(READ_ONLY))
            }
        else:
            try:
                reply = await self.handler(request)
            except Exception as exc:
                log.error("control command failed", command=request.get("command"), error=repr(exc))
                reply = {"error": f"internal error: {exc!r}"}
        await self._reply(reader, writer, reply)

    async def _reply(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, reply: dict[str, Any]
    ) -> None:
        """Write the answer under the timeout, then let the client read it before we close."""
        async with asyncio.timeout(self.timeout):
            writer.write(_line(reply))
            await writer.drain()
            writer.write_eof()
            # discard, unparsed and bounded, what the client still sends, until it hangs up:
            # closing with unread bytes could cut the answer off
            for _ in range(64):
                if not await reader.read(MAX_REQUEST):
                    break

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> dict[str, Any]:
        """One request line, bounded in size (the reader's limit); parse errors answered."""
        try:
            line = await reader.readline()
        except ValueError:  # longer than MAX_REQUEST
            return {"error": f"bad request: longer than {MAX_REQUEST} bytes"}
        try:
            request = json.loads(line or b"{}")
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
            return {"error": f"bad request: not JSON ({type(exc).__name__})"}
        if not isinstance(request, dict):
            return {"error": "bad request: a request is a JSON object"}
        if not isinstance(request.get("command"), str):
            return {"error": "bad request: no command"}
        return request


def _line(reply: dict[str, Any]) -> bytes:
    try:
        text = json.dumps(reply)
    except (TypeError, ValueError) as exc:  # a handler's bug, still answered
        text = json.dumps({"error": f"internal error: unserialisable answer ({exc})"})
    return text.encode() + b"\n"
