"""Every long-lived task of the daemon, started in one place and kept alive.

A task that raises is logged with its traceback, counted (`lvsha status`
shows `daemon.tasks`), and started again after a backoff that grows while
it keeps failing. A critical task (one without which VIPs or IPVS silently
go stale) that fails CRITICAL_FAILURES times within CRITICAL_WINDOW seconds
marks the daemon unhealthy: the watchdog stops being fed, so systemd
restarts the unit instead of leaving a half-dead director in place.
One-shot tasks (a gratuitous-ARP burst, a reload) are tracked too, so that
shutdown cancels them and a failure is never silent.
"""

from __future__ import annotations

import asyncio
import contextlib
import traceback
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from lvsha import logs

log = logs.get("lvsha")

BACKOFF = (0.1, 0.5, 1.0, 2.0, 5.0)  # seconds before the n-th restart in a row
STABLE_AFTER = 60.0  # a run this long resets the backoff
CRITICAL_FAILURES = 5
CRITICAL_WINDOW = 60.0

Factory = Callable[[], Coroutine[Any, Any, None]]


@dataclass
class TaskRecord:
    """What status shows of one supervised task."""

    name: str
    critical: bool
    restarts: int = 0
    last_error: str | None = None
    failures_at: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "critical": self.critical,
            "restarts": self.restarts,
            "last_error": self.last_error,
        }


class Supervisor:
    """Runs named tasks; restarts the long-lived ones when they die."""

    def __init__(self) -> None:
        self.records: dict[str, TaskRecord] = {}
        self.one_shot_failures = 0
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._one_shots: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self._released: set[str] = set()  # kept tasks that may end for good
        self._loop = asyncio.get_running_loop()  # built inside the daemon's loop

    @property
    def healthy(self) -> bool:
        """False once a critical task failed too often: stop feeding the watchdog.

        Only reads memory (no running loop needed): /metrics takes the status
        document in a forked child, where no loop runs.
        """
        now = self._loop.time()
        return not any(
            r.critical
            and len([t for t in r.failures_at if now - t <= CRITICAL_WINDOW]) >= CRITICAL_FAILURES
            for r in self.records.values()
        )

    def keep(self, name: str, factory: Factory, *, critical: bool = False) -> None:
        """Run `factory()` until stop(); start it again whenever it ends or raises."""
        self.records[name] = TaskRecord(name, critical)
        self._released.discard(name)
        self._tasks[name] = self._loop.create_task(self._keep(name, factory), name=name)

    def once(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run a one-shot coroutine; a failure is logged and counted."""
        task = self._loop.create_task(coro, name=name)
        self._one_shots.add(task)
        task.add_done_callback(self._one_shot_done)
        return task

    def release(self, name: str) -> None:
        """Let a kept task end: when it returns (or raises) next, it is not started again."""
        self._released.add(name)

    async def let_end(self, name: str, timeout: float) -> None:
        """Wait (bounded) for a released task to end by itself, then drop it."""
        task = self._tasks.get(name)
        if task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(task), timeout)
        self.drop(name)

    def drop(self, name: str) -> None:
        """Stop keeping a long-lived task now (its feature was reloaded away)."""
        self.release(name)
        task = self._tasks.pop(name, None)
        self.records.pop(name, None)
        if task is not None:
            task.cancel()

    def cancel(self, name: str) -> None:
        """Cancel the one-shot tasks of that name."""
        for task in list(self._one_shots):
            if task.get_name() == name:
                task.cancel()

    async def _keep(self, name: str, factory: Factory) -> None:
        record = self.records[name]
        loop = self._loop
        in_a_row = 0
        while not self._stopping:
            started = loop.time()
            try:
                await factory()
                if name in self._released:
                    return
                record.last_error = "returned"
                log.error("task ended; restarting", task=name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                record.last_error = repr(exc)
                if name in self._released:
                    log.error("task failed as it was let go", task=name, error=repr(exc))
                    return
                log.error(
                    "task failed; restarting",
                    task=name,
                    error=repr(exc),
                    traceback="".join(traceback.format_exception(exc)),
                )
            now = loop.time()
            record.restarts += 1
            record.failures_at = [t for t in record.failures_at if now - t <= CRITICAL_WINDOW]
            record.failures_at.append(now)
            in_a_row = 0 if now - started >= STABLE_AFTER else in_a_row + 1
            await asyncio.sleep(BACKOFF[min(max(in_a_row - 1, 0), len(BACKOFF) - 1)])

    def _one_shot_done(self, task: asyncio.Task[Any]) -> None:
        self._one_shots.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.one_shot_failures += 1
            log.error(
                "task failed",
                task=task.get_name(),
                error=repr(exc),
                traceback="".join(traceback.format_exception(exc)),
            )

    async def stop(self) -> None:
        """Cancel everything and wait for it to end."""
        self._stopping = True
        tasks = [*self._tasks.values(), *self._one_shots]
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    def status(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "one_shot_failures": self.one_shot_failures,
            "supervised": {name: r.as_dict() for name, r in sorted(self.records.items())},
        }
