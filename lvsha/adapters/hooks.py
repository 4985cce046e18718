"""State-change hooks, as keepalived's notify scripts, without a shell.

`notify` gets keepalived's four arguments appended (`INSTANCE NAME STATE
PRIORITY`); `notify_master`, `notify_backup` and `notify_fault` run as
written. Every hook also sees LVSHA_INSTANCE, LVSHA_STATE, LVSHA_PRIORITY and
LVSHA_REASON in its environment. Hooks run one at a time, in the order of the
transitions, each bounded by a timeout, in a task of their own: a slow hook
delays the next hook, never an advertisement.

A hook is never trusted to behave: one that cannot start (a NUL byte in its
argv or environment, a missing file) is counted as failed and the runner
goes on; only the first KEEP_OUTPUT bytes of its stdout and stderr are kept
for the log, the rest is read and thrown away; it does not inherit the
daemon's systemd plumbing (NOTIFY_SOCKET, WATCHDOG_*, LISTEN_*,
JOURNAL_STREAM), so it cannot speak for the daemon to systemd. close()
never raises: shutdown goes on whatever a hook did.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass

from lvsha import logs

log = logs.get("lvsha.hooks")

HOOK_TIMEOUT = 30.0
QUEUE_LIMIT = 1000  # beyond this, hooks are dropped and counted, never piled up
KEEP_OUTPUT = 4096  # bytes of a hook's stdout and of its stderr kept for the log
OUTPUT_GRACE = 0.5  # seconds to read what is left in the pipes after the hook exits
# the daemon's, not the hook's: systemd would take a hook's READY=1 or WATCHDOG=1
# (NotifyAccess=all) or fds it passed as its own; JOURNAL_STREAM would be a lie
# (the hook's stderr is a pipe to us)
NOT_INHERITED = frozenset(
    {
        "NOTIFY_SOCKET",
        "WATCHDOG_PID",
        "WATCHDOG_USEC",
        "LISTEN_PID",
        "LISTEN_FDS",
        "LISTEN_FDNAMES",
        "JOURNAL_STREAM",
    }
)


@dataclass(frozen=True, slots=True)
class HookRun:
    """One command to run for one transition."""

    argv: tuple[str, ...]
    instance: str
    state: str
    priority: int
    reason: str


def hooks_for(
    notify: tuple[str, ...],
    per_state: dict[str, tuple[str, ...]],
    instance: str,
    state: str,
    priority: int,
    reason: str,
) -> list[HookRun]:
    """The commands a transition to `state` runs, in keepalived's order."""
    runs = []
    specific = per_state.get(state, ())
    if specific:
        runs.append(HookRun(specific, instance, state, priority, reason))
    if notify:
        argv = (*notify, "INSTANCE", instance, state, str(priority))
        runs.append(HookRun(argv, instance, state, priority, reason))
    return runs


def hook_environment(parent: Mapping[str, str], run: HookRun) -> dict[str, str]:
    """The daemon's environment without systemd's plumbing, plus the LVSHA_* facts."""
    env = {k: v for k, v in parent.items() if k not in NOT_INHERITED}
    env.update(
        LVSHA_INSTANCE=run.instance,
        LVSHA_STATE=run.state,
        LVSHA_PRIORITY=str(run.priority),
        LVSHA_REASON=run.reason,
    )
    return env


class HookRunner:
    """Runs hooks sequentially in the background; counts what happened."""

    def __init__(self, timeout: float = HOOK_TIMEOUT) -> None:
        self.timeout = timeout
        self.ran = 0
        self.failed = 0
        self.timed_out = 0
        self.dropped = 0
        self._queue: asyncio.Queue[HookRun] = asyncio.Queue(QUEUE_LIMIT)
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Hooks queued or running."""
        return self._queue._unfinished_tasks  # type: ignore[attr-defined,no-any-return]

    def submit(self, runs: list[HookRun]) -> None:
        for run in runs:
            try:
                self._queue.put_nowait(run)
            except asyncio.QueueFull:
                self.dropped += 1
                log.error("hook queue full; hook dropped", argv=_printable(run.argv))
        if runs and (self._task is None or self._task.done()):
            self._task = asyncio.ensure_future(self._work())
            self._task.set_name("hooks")

    async def drain(self, timeout: float) -> bool:
        """Wait, at most `timeout` seconds, for the queued hooks; True if all ran.

        At shutdown the STOP hooks are queued when the instances stop, and run
        while the VIPs are removed: give the drain what is left of the SIGTERM
        budget, then close() kills what still runs.
        """
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, timeout)):
                await self._queue.join()
                return True
        return False

    async def close(self) -> None:
        """Stop the runner: the running hook's session is killed, queued ones are dropped.

        Never raises: the rest of the stop sequence must run whatever a hook did.
        """
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception as exc:  # the runner died earlier: say so, do not re-raise
                log.error("hook runner had failed", error=repr(exc))
        left = 0
        while not self._queue.empty():
            self._queue.get_nowait()
            self._queue.task_done()
            left += 1
        if left:
            self.dropped += left
            log.warning("hooks not run: the daemon stops", dropped=left)

    async def _work(self) -> None:
        while True:
            run = await self._queue.get()
            try:
                await self._run(run)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the runner outlives any hook
                self.failed += 1
                log.error("hook failed to run", argv=_printable(run.argv), error=repr(exc))
            finally:
                self._queue.task_done()

    async def _run(self, run: HookRun) -> None:
        argv = _printable(run.argv)
        try:
            proc = await asyncio.create_subprocess_exec(
                *run.argv,
                env=hook_environment(os.environ, run),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except (OSError, ValueError) as exc:  # ValueError: a NUL byte in argv or environment
            self.failed += 1
            log.error("hook could not start", argv=argv, error=str(exc))
            return
        assert proc.stdout is not None and proc.stderr is not None
        out, err = _Head(proc.stdout), _Head(proc.stderr)
        try:
            async with asyncio.timeout(self.timeout):
                await proc.wait()
        except TimeoutError:
            self.timed_out += 1
            _kill_group(proc.pid)
            await proc.wait()
            log.error("hook timed out and was killed", argv=argv, timeout=self.timeout)
            return
        except asyncio.CancelledError:  # the daemon stops: leave no child behind
            _kill_group(proc.pid)
            raise
        finally:
            await _finish(proc, out, err)
        self.ran += 1
        if proc.returncode != 0:
            self.failed += 1
            log.warning(
                "hook failed",
                argv=argv,
                exit=proc.returncode,
                stderr=err.text(),
                stdout=out.text(),
            )
        else:
            log.info("hook ran", argv=argv, state=run.state)


class _Head:
    """Reads a pipe to its end, keeping only the first KEEP_OUTPUT bytes."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.kept = bytearray()
        self.discarded = 0
        self.task = asyncio.ensure_future(self._read(stream))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(65536):
            room = KEEP_OUTPUT - len(self.kept)
            self.kept += chunk[:room]
            self.discarded += max(0, len(chunk) - room)

    def text(self) -> str:
        more = f" [{self.discarded} more bytes not kept]" if self.discarded else ""
        return self.kept.decode(errors="replace").strip() + more


async def _finish(proc: asyncio.subprocess.Process, *heads: _Head) -> None:
    """Let the readers take what is left, briefly; then close the pipes.

    A child the hook left behind may hold them open for ever: it gets no
    more of our attention (nor our memory) after OUTPUT_GRACE.
    """
    tasks = [h.task for h in heads]
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(OUTPUT_GRACE):
            await asyncio.gather(*tasks, return_exceptions=True)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    transport = getattr(proc, "_transport", None)  # asyncio keeps the pipes there
    if transport is not None:
        transport.close()  # the process has exited: this closes the pipes only


def _printable(argv: tuple[str, ...]) -> list[str]:
    """argv for a log line: a NUL or control character shown escaped, never raw."""
    return [a if a.isprintable() else repr(a) for a in argv]


def _kill_group(pid: int) -> None:
    """SIGKILL the hook's whole session (it was started in a new one)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, 9)
