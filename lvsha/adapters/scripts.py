"""Track scripts as processes: argv without a shell, never root unless asked.

keepalived runs each `vrrp_script` in a child of its own and kills the
child's process group when it times out (vrrp_scheduler.c). Here each run
starts in a new session; `kill()` sends SIGKILL to that whole group, so a
script's own children go with it. When lvsha runs as root a script runs as
`nobody` unless its config says `user = "root"`; the supplementary groups
are dropped. What a script prints is drained (a full pipe would block it)
and at most OUTPUT_LIMIT bytes are kept, for the log.

Tracked files are read here too: at most FILE_READ_MAX bytes, without
blocking (O_NONBLOCK), and only from a regular file.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import os
import pwd
import signal
import stat
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from lvsha import logs
from lvsha.core.tracking import FILE_READ_MAX

log = logs.get("lvsha.scripts")

OUTPUT_LIMIT = 4096  # bytes of a run's output kept for the log
DEFAULT_USER = "nobody"
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}
EXIT_CANNOT_START = 126  # the shell's code for "found but cannot run"


@dataclass(frozen=True, slots=True)
class Credentials:
    uid: int | None
    gid: int | None


def credentials(user: str | None, group: str | None) -> Credentials:
    """Whom a script runs as. Raises KeyError for an unknown user or group."""
    if os.geteuid() != 0 and user is None and group is None:
        return Credentials(None, None)  # not root: as ourselves
    name = DEFAULT_USER if user is None else user
    pw = pwd.getpwnam(name)
    gid = grp.getgrnam(group).gr_gid if group is not None else pw.pw_gid
    if pw.pw_uid == os.geteuid() and gid == os.getegid():
        return Credentials(None, None)
    return Credentials(pw.pw_uid, gid)


class ScriptRunner:
    """Runs script processes and reports each exit code (-N: killed by signal N)."""

    def __init__(self, output_limit: int = OUTPUT_LIMIT) -> None:
        self.output_limit = output_limit
        self._pids: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def start(
        self,
        name: str,
        argv: tuple[str, ...],
        user: str | None,
        group: str | None,
        on_exit: Callable[[int], None],
    ) -> None:
        task = asyncio.get_running_loop().create_task(self._run(name, argv, user, group, on_exit))
        task.set_name(f"script:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def kill(self, name: str) -> None:
        pid = self._pids.get(name)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)

    async def close(self) -> None:
        for name in list(self._pids):
            self.kill(name)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _run(
        self,
        name: str,
        argv: tuple[str, ...],
        user: str | None,
        group: str | None,
        on_exit: Callable[[int], None],
    ) -> None:
        try:
            who = credentials(user, group)
            kwargs: dict[str, object] = {}
            if who.uid is not None:
                kwargs = {"user": who.uid, "group": who.gid, "extra_groups": []}
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                env={**ENV, "LVSHA_SCRIPT": name},
                cwd="/",
                **kwargs,  # type: ignore[arg-type]
            )
        except (OSError, KeyError, ValueError, subprocess.SubprocessError) as exc:
            log.error("track script could not start", script=name, error=str(exc))
            on_exit(EXIT_CANNOT_START)
            return
        self._pids[name] = proc.pid
        try:
            output = await self._drain(proc)
            code = await proc.wait()
        except asyncio.CancelledError:
            self.kill(name)
            raise
        finally:
            self._pids.pop(name, None)
        if code != 0 and output:
            log.info(
                "track script failed",
                script=name,
                exit=code,
                output=output.decode(errors="replace").strip()[-500:],
            )
        on_exit(code)

    async def _drain(self, proc: asyncio.subprocess.Process) -> bytes:
        """Read everything the script prints; keep the first output_limit bytes."""
        kept = b""
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(65536):
            if len(kept) < self.output_limit:
                kept += chunk[: self.output_limit - len(kept)]
        return kept


def read_track_file(path: str) -> bytes | None:
    """The first bytes of a tracked file; None when it is missing or not a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except (OSError, ValueError):
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, FILE_READ_MAX)
    except OSError:
        return None
    finally:
        os.close(fd)
