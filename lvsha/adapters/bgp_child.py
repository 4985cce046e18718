"""What the ExaBGP and BIRD adapters share: the child process and the tether.

The speaker runs as lvsha's child, its output kept (bounded) for the log and
`lvsha status`; its pid is written to the state directory, so that a speaker
left by an lvsha that was killed (kill -9) is stopped before a new one
starts and the two never collide on the BGP session.

The *tether* ties the routes to lvsha's life: a unix socket in the state
directory that the helper beside the speaker (adapters/exabgp_relay.py,
adapters/bird_keeper.py) connects to. lvsha sends a heartbeat every
liveness/3 s; the helper stops the speaker (which withdraws every route)
when the connection drops or stays silent longer than the liveness.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from lvsha import logs

log = logs.get("lvsha.bgp")

HEARTBEAT = "heartbeat"
OUTPUT_LINES = 200  # the speaker's last lines kept for status and errors
LINE_LIMIT = 64 * 1024  # a longer line from a helper ends its connection
SEND_BUFFER = 1 << 20  # bytes queued to a helper that does not read: it is dropped
STOP_GRACE = 2.0  # seconds between SIGTERM and SIGKILL of a stale speaker


class SpeakerError(RuntimeError):
    """The speaker died or could not start; the supervisor starts it again."""


def stop_stale(pid_file: Path, marker: str, grace: float = STOP_GRACE) -> int | None:
    """Stop the process named in `pid_file` if its command line holds `marker`.

    The marker (the generated config's path) makes sure that a pid reused by
    an unrelated process is never signalled. Returns the pid stopped.
    """
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if pid <= 1 or pid == os.getpid() or marker not in _cmdline(pid):
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while marker in _cmdline(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    if marker in _cmdline(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + grace
        while marker in _cmdline(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
    log.warning("bgp stale speaker stopped", pid=pid, pid_file=str(pid_file))
    return pid


def _cmdline(pid: int) -> str:
    """The command line of `pid` ('' for none or a zombie)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""
    return "" if state == "Z" else raw.replace(b"\0", b" ").decode(errors="replace")


class Child:
    """One run of the speaker: its process, its output, its pid file."""

    def __init__(self, name: str, pid_file: Path) -> None:
        self.name = name
        self.pid_file = pid_file
        self.proc: asyncio.subprocess.Process | None = None
        self.output: collections.deque[str] = collections.deque(maxlen=OUTPUT_LINES)
        self._readers: list[asyncio.Task[None]] = []

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.returncode is None else None

    async def start(self, argv: list[str], env: dict[str, str]) -> None:
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                start_new_session=True,  # a Ctrl-C on lvsha's terminal is lvsha's to handle
            )
        except OSError as exc:
            raise SpeakerError(f"{self.name}: cannot start {argv[0]}: {exc}") from exc
        self.pid_file.write_text(f"{self.proc.pid}\n")
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [
            asyncio.create_task(self._read(self.proc.stdout)),
            asyncio.create_task(self._read(self.proc.stderr)),
        ]

    async def _read(self, stream: asyncio.StreamReader) -> None:
        while True:
            try:
                raw = await stream.readline()
            except (ValueError, asyncio.LimitOverrunError):  # a huge line: skip it
                continue
            if not raw:
                return
            line = raw.decode(errors="replace").rstrip()
            if line:
                self.output.append(line)
                log.info("bgp speaker output", speaker=self.name, line=line[:500])

    async def wait(self) -> int:
        assert self.proc is not None
        code = await self.proc.wait()
        with contextlib.suppress(TimeoutError):  # the pipes' last lines
            await asyncio.wait_for(asyncio.gather(*self._readers), 1.0)
        with contextlib.suppress(OSError):
            if self.pid_file.read_text().strip() == str(self.proc.pid):
                self.pid_file.unlink()
        return code

    async def outlive(self, grace: float) -> str:
        """Until the child exits, and why (for `last_error`); cancelled, it is stopped first."""
        try:
            code = await self.wait()
        except asyncio.CancelledError:
            await self.stop(grace)
            raise
        return f"{self.name} exited with status {code}: {self.last_output()}"

    async def stop(self, timeout: float) -> None:
        """SIGTERM, then SIGKILL after `timeout`; returns once it is gone."""
        if self.proc is None or self.proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.terminate()
        try:
            await asyncio.wait_for(asyncio.shield(self.proc.wait()), max(timeout, 0.05))
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()

    def last_output(self, lines: int = 5) -> str:
        return " | ".join(list(self.output)[-lines:])


class Tether:
    """The unix socket the speaker's helper holds; heartbeats every liveness/3.

    One helper at a time: a new connection (the helper respawned with its
    speaker) replaces the old one, and `on_connect` lets the adapter send
    the whole state again. Lines from the helper go to `on_line`.
    """

    def __init__(
        self,
        path: Path,
        liveness: float,
        on_line: Callable[[str], None],
        on_connect: Callable[[], None] = lambda: None,
    ) -> None:
        self.path = path
        self.interval = max(liveness / 3, 0.01)
        self.on_line = on_line
        self.on_connect = on_connect
        self.writer: asyncio.StreamWriter | None = None
        self.connected = asyncio.Event()
        self._server: asyncio.base_events.Server | None = None
        self._beat: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._server is not None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._server = await asyncio.start_unix_server(
            self._serve, str(self.path), limit=LINE_LIMIT
        )
        os.chmod(self.path, 0o600)
        self._beat = asyncio.create_task(self._heartbeat())

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.writer is not None:
            self.writer.close()
        self.writer = writer
        self.connected.set()
        self.on_connect()
        try:
            while True:
                raw = await reader.readline()
                if not raw:
                    break
                self.on_line(raw.decode(errors="replace").strip())
        except (OSError, ValueError, asyncio.LimitOverrunError):
            pass
        finally:
            if self.writer is writer:
                self.writer = None
                self.connected.clear()
            writer.close()

    def send(self, line: str) -> bool:
        """Queue one line to the helper; False when none is connected."""
        if self.writer is None or self.writer.is_closing():
            return False
        if self.writer.transport.get_write_buffer_size() > SEND_BUFFER:
            # the helper stopped reading: drop it, so that it stops the speaker
            log.warning("bgp helper not reading, dropped", socket=str(self.path))
            self.writer.close()
            return False
        self.writer.write(line.encode() + b"\n")
        return True

    async def _heartbeat(self) -> None:
        while True:
            self.send(HEARTBEAT)
            await asyncio.sleep(self.interval)

    async def close(self) -> None:
        if self._beat is not None:
            self._beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beat
            self._beat = None
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        self.connected.clear()
        if self._server is not None:
            self._server.close()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
