"""BIRD's control socket (what birdc speaks), from asyncio: no birdc per command.

BIRD's "Remote control" text protocol: the server greets with
`0001 BIRD 2.0.12 ready.`; each command is one line; each reply line starts
with a 4-digit code and a `-` (more lines follow) or a space (the last
line), or with a space alone (a continuation of the previous code's lines).
Codes 0xxx report success (0000 OK, 0003 reconfigured, 0009 disabled,
0011 enabled, 0008/0010 already so, 0013 status), 1xxx/2xxx are table rows
and headers, 8xxx run-time and 9xxx parse errors.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass


class BirdError(RuntimeError):
    """BIRD answered a command with an error code (8xxx, 9xxx), or the socket failed."""


@dataclass(frozen=True, slots=True)
class Reply:
    """One command's reply: (code, text) per line, codes carried onto continuations."""

    lines: tuple[tuple[int, str], ...]

    @property
    def code(self) -> int:
        return self.lines[-1][0] if self.lines else 0

    def rows(self, code: int) -> list[str]:
        return [text for c, text in self.lines if c == code]


class ReplyParser:
    """Feeds on raw lines; `done` once the last line of a reply came."""

    def __init__(self) -> None:
        self.lines: list[tuple[int, str]] = []
        self.done = False
        self._code = 0

    def feed(self, raw: str) -> None:
        line = raw.rstrip("\r\n")
        if len(line) >= 5 and line[:4].isdigit() and line[4] in " -":
            self._code = int(line[:4])
            self.lines.append((self._code, line[5:]))
            self.done = line[4] == " "
        elif line.startswith(" "):
            self.lines.append((self._code, line[1:]))
        else:
            raise BirdError(f"bird: unexpected reply line {line[:80]!r}")

    def reply(self) -> Reply:
        return Reply(tuple(self.lines))


def protocol_rows(reply: Reply) -> dict[str, dict[str, str]]:
    """`show protocols` rows (code 1002) by name: proto, state, info, and the error after it."""
    rows: dict[str, dict[str, str]] = {}
    for text in reply.rows(1002):
        words = text.split()
        if len(words) < 4:
            continue
        name, proto, _table, state = words[:4]
        rest = words[5:]  # after "since"
        info = rest[0] if rest else ""
        rows[name] = {"proto": proto, "state": state, "info": info, "error": " ".join(rest[1:])}
    return rows


class BirdControl:
    """One connection to `bird -s PATH`, reconnected on the next command after a failure."""

    def __init__(self, path: str, timeout: float = 5.0) -> None:
        self.path = path
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()

    async def _connect(self) -> None:
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_unix_connection(self.path, limit=1 << 20), self.timeout
            )
            greeting = await self._read_reply()
        except (OSError, TimeoutError) as exc:
            self.close()
            raise BirdError(f"bird: cannot reach {self.path}: {exc}") from exc
        if greeting.code != 1:
            self.close()
            raise BirdError(f"bird: unexpected greeting {greeting.lines!r}")

    async def _read_reply(self) -> Reply:
        assert self._reader is not None
        parser = ReplyParser()
        while not parser.done:
            raw = await asyncio.wait_for(self._reader.readline(), self.timeout)
            if not raw:
                raise BirdError("bird: control socket closed")
            parser.feed(raw.decode(errors="replace"))
        return parser.reply()

    async def command(self, line: str) -> Reply:
        """Send one command; its reply, or BirdError for an error code or a dead socket."""
        async with self._lock:
            if self._writer is None:
                await self._connect()
            assert self._writer is not None
            try:
                self._writer.write(line.encode() + b"\n")
                await self._writer.drain()
                reply = await self._read_reply()
            except (OSError, TimeoutError, BirdError) as exc:
                self.close()
                raise BirdError(f"bird: {line}: {exc}") from exc
        if reply.code >= 8000:
            raise BirdError(f"bird: {line}: {reply.lines[-1][1]}")
        return reply

    def close(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
        self._reader = self._writer = None
