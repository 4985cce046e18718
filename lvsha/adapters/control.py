"""The control socket: one JSON request line in, one JSON document out.

The server runs in the daemon's event loop; the client
(control_client.py) is plain blocking stdlib so that `lvsha status` starts
fast. Only root, the daemon's own user
and members of the configured group may talk to it (SO_PEERCRED).
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

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
MAX_REQUEST = 64 * 1024


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


def peer_allowed(uid: int, gid: int, group: str | None) -> bool:
    """Root, our own user, or a member of `group` (primary or supplementary)."""
    if uid in (0, os.geteuid()):
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
        self.refused = 0
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
            self._server = await asyncio.start_unix_server(self._client, path=self.path)
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
        try:
            request = await self._read(reader)
            _, uid, gid = peer_credentials(writer.get_extra_info("socket"))
            if not peer_allowed(uid, gid, self.group):
                self.refused += 1
                reply: dict[str, Any] = {"error": f"permission denied for uid {uid}"}
            elif "error" in request:
                reply = request
            else:
                reply = await self.handler(request)
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> dict[str, Any]:
        """One request line, bounded in size and time."""
        try:
            line = await asyncio.wait_for(reader.readline(), timeout=5)
            request = json.loads(line[:MAX_REQUEST] or b"{}")
        except (TimeoutError, ValueError) as exc:
            return {"error": f"bad request: {exc}"}
        if not isinstance(request, dict):
            return {"error": "a request is a JSON object"}
        return request
