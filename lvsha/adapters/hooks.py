"""State-change hooks, as keepalived's notify scripts, without a shell.

`notify` gets keepalived's four arguments appended (`INSTANCE NAME STATE
PRIORITY`); `notify_master`, `notify_backup` and `notify_fault` run as
written. Every hook also sees LVSHA_INSTANCE, LVSHA_STATE, LVSHA_PRIORITY and
LVSHA_REASON in its environment. Hooks run one at a time, in the order of the
transitions, each bounded by a timeout, in a task of their own: a slow hook
delays the next hook, never an advertisement.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass

from lvsha import logs

log = logs.get("lvsha.hooks")

HOOK_TIMEOUT = 30.0
QUEUE_LIMIT = 1000  # beyond this, hooks are dropped and counted, never piled up


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

    def submit(self, runs: list[HookRun]) -> None:
        for run in runs:
            try:
                self._queue.put_nowait(run)
            except asyncio.QueueFull:
                self.dropped += 1
                log.error("hook queue full; hook dropped", argv=list(run.argv))
        if runs and self._task is None:
            self._task = asyncio.ensure_future(self._work())
            self._task.set_name("hooks")

    async def drain(self, timeout: float) -> None:
        """Wait (bounded) for the queued hooks, e.g. before exiting."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._queue.join()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _work(self) -> None:
        while True:
            run = await self._queue.get()
            try:
                await self._run(run)
            finally:
                self._queue.task_done()

    async def _run(self, run: HookRun) -> None:
        env = {
            **os.environ,
            "LVSHA_INSTANCE": run.instance,
            "LVSHA_STATE": run.state,
            "LVSHA_PRIORITY": str(run.priority),
            "LVSHA_REASON": run.reason,
        }
        try:
            proc = await asyncio.create_subprocess_exec(
                *run.argv,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            self.failed += 1
            log.error("hook could not start", argv=list(run.argv), error=str(exc))
            return
        try:
            async with asyncio.timeout(self.timeout):
                _, err = await proc.communicate()
        except TimeoutError:
            self.timed_out += 1
            _kill_group(proc.pid)
            await proc.wait()
            log.error("hook timed out and was killed", argv=list(run.argv), timeout=self.timeout)
            return
        except asyncio.CancelledError:  # the daemon stops: leave no child behind
            _kill_group(proc.pid)
            raise
        self.ran += 1
        if proc.returncode != 0:
            self.failed += 1
            log.warning(
                "hook failed",
                argv=list(run.argv),
                exit=proc.returncode,
                stderr=err.decode(errors="replace")[-500:].strip(),
            )
        else:
            log.info("hook ran", argv=list(run.argv), state=run.state)


def _kill_group(pid: int) -> None:
    """SIGKILL the hook's whole session (it was started in a new one)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, 9)
