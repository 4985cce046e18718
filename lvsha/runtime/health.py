"""Health checks for the daemon: run them, keep their results, say what IPVS should hold.

`HealthChecker` is the daemon's one handle. By default (`isolate=True`) the
checks run in a worker process (`python -m lvsha.runtime.health`) with its own
event loop, at a lower CPU priority, so that thousands of probes cannot delay
a VRRP advertisement: the benchmark in docs/benchmarks-health.md shows why.
The worker streams `Report`s back over a pipe; this process keeps the health
map, the quorum gates and the status, and calls `on_change()` (once per batch)
when the IPVS table should change. `isolate=False` runs the same engine in
the caller's loop (small configurations, tests).

Wire protocol, parent <-> worker: frames of a 4-byte big-endian length and a
pickle (the worker is our own child, running our own code).

* parent -> worker: `("config", generation, virtual_servers, initial_health)`
* worker -> parent: `("reports", generation, [Report tuples])`

A worker that dies is restarted after a back-off, its machines seeded with
the last known health, so a crash of the checker never flaps IPVS.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import resource
import signal
import struct
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from lvsha import logs
from lvsha.adapters.checker import CheckEngine, RealKey, Report, Target, targets
from lvsha.config import VirtualServerConfig
from lvsha.core.desired import HealthMap, ServiceKey, service_key
from lvsha.core.health import QuorumGates, apply_health

log = logs.get("lvsha.health")

FRAME = struct.Struct(">I")
MAX_FRAME = 64 << 20
REPORTS_PER_FRAME = 500  # the parent decodes one frame per loop iteration
FLUSH_INTERVAL = 0.5  # seconds a plain result may wait in the worker; changes go at once
WORKER_NICE = 5  # the worker yields the CPU to the VRRP loop when both want it
FD_RESERVE = 64  # descriptors kept for the worker's own pipes and imports
RESTART_BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
STOP_GRACE = 1.0


@dataclass(slots=True)
class RealServerStatus:
    """What `lvsha status` shows for one checked real server (wall-clock times)."""

    check: str
    healthy: bool
    since: float
    last_ok: bool | None = None
    latency: float | None = None
    checked_at: float | None = None
    detail: str = "not checked yet"
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "healthy": self.healthy,
            "since": self.since,
            "last_result": None if self.last_ok is None else ("ok" if self.last_ok else "failed"),
            "latency": None if self.latency is None else round(self.latency, 6),
            "checked_at": self.checked_at,
            "detail": self.detail,
            "reason": self.reason,
        }


class HealthChecker:
    """Checks every real server of `virtual_servers`; reports changes via `on_change()`."""

    def __init__(
        self,
        virtual_servers: Iterable[VirtualServerConfig],
        on_change: Callable[[], None],
        *,
        isolate: bool = True,
    ) -> None:
        self.virtual_servers = tuple(virtual_servers)
        self.on_change = on_change
        self.isolate = isolate
        self.generation = 0
        self.restarts = 0
        self.reports = 0
        self._targets: list[Target] = []
        self._health: dict[RealKey, bool] = {}
        self._status: dict[RealKey, RealServerStatus] = {}
        self._gates = QuorumGates()
        self._engine: CheckEngine | None = None
        self._task: asyncio.Task[None] | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._changed = False
        self._batch: set[ServiceKey] | None = set()  # changed since the last flush; None: all
        self._changed_services: frozenset[ServiceKey] | None = None  # the last flush's
        self._service_of: dict[ServiceKey, VirtualServerConfig] = {}
        self._reals_of: dict[ServiceKey, list[RealKey]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._adopt(self.virtual_servers)
        self._gates.update(self.virtual_servers, self._health)

    # ------------------------------------------------------------- the API --

    def start(self) -> None:
        """Begin checking (call inside the running loop)."""
        self._loop = asyncio.get_running_loop()
        if not self._targets:
            return  # nothing to check until a reload brings real servers with checks
        if self.isolate:
            self._task = self._loop.create_task(self._supervise(), name="health-worker")
        else:
            self._engine = CheckEngine(self.virtual_servers, self._report, initial=self._health)
            self._engine.start()

    def stop(self) -> None:
        """Stop checking; the worker is told to exit, then killed after a grace."""
        if self._engine is not None:
            self._engine.stop()
            self._engine = None
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def wait_stopped(self) -> None:
        """After stop(): wait (at most about STOP_GRACE) until the worker is gone."""
        for _ in range(int(STOP_GRACE / 0.05) + 20):
            if self._proc is None:
                return
            await asyncio.sleep(0.05)

    def update(self, virtual_servers: Iterable[VirtualServerConfig]) -> None:
        """A reload: unchanged real servers keep their health and rhythm."""
        self.virtual_servers = tuple(virtual_servers)
        self._adopt(self.virtual_servers)
        self._gates.update(self.virtual_servers, self._health)
        self._batch = None  # a new config: every service may have changed
        if self._engine is not None:
            self._engine.update(self.virtual_servers, self._health)
        elif self._proc is not None:
            self._send_config(self._proc)
        elif self._loop is not None and self._task is None and self._targets:
            self.start()
        self._changed = True
        self._flush_change()

    def health(self) -> HealthMap:
        """(service, real) -> healthy, for every checked real server."""
        return dict(self._health)

    def effective_virtual_servers(
        self, keys: Iterable[ServiceKey] | None = None
    ) -> tuple[VirtualServerConfig, ...]:
        """The virtual servers as IPVS should hold them now: `desired_ipvs(this)`.

        Failed real servers removed (or at weight 0 with inhibit_on_failure),
        the sorry server in place of all of them where the quorum is lost.
        `keys`: only these services (those a health change touched), at the
        cost of their own real servers.
        """
        if keys is None:
            return apply_health(self.virtual_servers, self._health, self._gates.up)
        wanted = [k for k in keys if k in self._service_of]
        health = {rk: self._health[rk] for k in wanted for rk in self._reals_of.get(k, ())}
        return apply_health([self._service_of[k] for k in wanted], health, self._gates.up)

    def changed_services(self) -> frozenset[ServiceKey] | None:
        """The services whose reals the batch being reported changed (None: any may have).

        Valid inside on_change(): the daemon hands it to the IPVS loop, which
        then re-derives and plans only these services.
        """
        return self._changed_services

    def status(self) -> dict[RealKey, RealServerStatus]:
        """Per checked real server: healthy, last result, latency, since when, why."""
        return dict(self._status)

    def checked(self) -> bool:
        """Every checked real server has a first result: the seeded health is now measured."""
        return all(st.last_ok is not None for st in self._status.values())

    def quorum(self) -> dict[ServiceKey, tuple[bool, int]]:
        """Per virtual service: (quorum up, live weight)."""
        return {k: (up, self._gates.weight.get(k, 0)) for k, up in self._gates.up.items()}

    # ------------------------------------------------------------ reports --

    def _adopt(self, virtual_servers: tuple[VirtualServerConfig, ...]) -> None:
        """New config: the target list (shared with the worker) and the seeded state."""
        self.generation += 1
        self._targets = targets(virtual_servers)
        self._service_of = {service_key(vs): vs for vs in virtual_servers}
        self._reals_of = {}
        for target in self._targets:
            self._reals_of.setdefault(target.key[0], []).append(target.key)
        health: dict[RealKey, bool] = {}
        status: dict[RealKey, RealServerStatus] = {}
        now = time.time()
        for target in self._targets:
            key = target.key
            old = self._status.get(key)
            healthy = self._health.get(key, target.params.initial_up)
            health[key] = healthy
            if old is not None and old.check == target.kind:
                status[key] = old
            else:
                status[key] = RealServerStatus(target.kind, healthy, now)
        self._health = health
        self._status = status

    def _report(self, report: Report) -> None:
        self.reports += 1
        if not 0 <= report.position < len(self._targets):
            return
        key = self._targets[report.position].key
        st = self._status[key]
        st.last_ok = report.ok
        st.latency = report.latency
        st.checked_at = report.checked_at
        st.detail = report.detail
        if report.healthy != self._health[key]:
            self._health[key] = report.healthy
            st.healthy = report.healthy
            st.since = report.since
            st.reason = report.reason or ""
            self._changed = True
            service, dest = key
            if self._batch is not None:
                self._batch.add(service)
            log.info(
                "real server healthy" if report.healthy else "real server unhealthy",
                service=str(service),
                real=str(dest),
                reason=st.reason,
            )
            if self._engine is not None and self._loop is not None:
                self._loop.call_soon(self._flush_change)  # one on_change per batch

    def _flush_change(self) -> None:
        if not self._changed:
            return
        self._changed = False
        batch, self._batch = self._batch, set()
        if batch is None:
            gates = self._gates.update(self.virtual_servers, self._health)
        else:  # only the services whose reals changed: the others' quorum cannot have moved
            changed = [self._service_of[k] for k in batch if k in self._service_of]
            gates = self._gates.update(changed, self._health, forget=False)
        for change in gates:
            log.warning(
                "quorum gained" if change.up else "quorum lost",
                service=str(change.service),
                weight=change.weight,
                reason=change.reason,
            )
        self._changed_services = None if batch is None else frozenset(batch)
        try:
            self.on_change()
        finally:
            self._changed_services = None

    # ------------------------------------------------------------- worker --

    def _send_config(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdin is not None
        message = ("config", self.generation, self.virtual_servers, dict(self._health))
        proc.stdin.write(_frame(message))

    async def _supervise(self) -> None:
        """Run the worker; restart it (seeded with the last health) if it dies."""
        failures = 0
        while True:
            started = time.monotonic()
            try:
                await self._run_worker()
                log.error("health-check worker exited; restarting")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep checking whatever happened
                log.error("health-check worker failed; restarting", error=repr(exc))
            self.restarts += 1
            failures = 0 if time.monotonic() - started > 60 else failures + 1
            await asyncio.sleep(RESTART_BACKOFF[min(failures, len(RESTART_BACKOFF) - 1)])

    async def _run_worker(self) -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "lvsha.runtime.health",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=MAX_FRAME,
        )
        self._proc = proc
        try:
            self._send_config(proc)
            assert proc.stdout is not None
            while True:
                try:
                    header = await proc.stdout.readexactly(FRAME.size)
                    body = await proc.stdout.readexactly(FRAME.unpack(header)[0])
                except asyncio.IncompleteReadError:
                    return
                kind, generation, reports = pickle.loads(body)
                if kind == "reports" and generation == self.generation:
                    for item in reports:
                        self._report(Report(*item))
                    self._flush_change()
                await asyncio.sleep(0)  # one frame per loop iteration
        finally:
            await _end(proc)
            self._proc = None


async def _end(proc: asyncio.subprocess.Process) -> None:
    """EOF tells the worker to stop its probes and exit; SIGKILL if it lingers."""
    if proc.stdin is not None:
        proc.stdin.close()
    try:
        async with asyncio.timeout(STOP_GRACE):
            await proc.wait()
    except (TimeoutError, asyncio.CancelledError):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(asyncio.CancelledError):
            await proc.wait()


def _frame(message: object) -> bytes:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return FRAME.pack(len(body)) + body


# ------------------------------------------------------------ the worker --


def raise_fd_limit() -> int:
    """Raise RLIMIT_NOFILE's soft limit to the hard one; return the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    return soft


async def _worker() -> None:
    loop = asyncio.get_running_loop()
    # systemd's SIGTERM and a terminal's ^C reach the whole group: the daemon
    # stops the worker itself (EOF on stdin), in its own order. A handler,
    # unlike SIG_IGN, is not inherited by the commands of misc_check.
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda: None)
    reader = asyncio.StreamReader(limit=MAX_FRAME)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    # The protocol gets its own copy of stdout; fd 1 becomes stderr, so that a
    # stray print() from any library cannot corrupt a frame.
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, out)
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    max_in_flight = max(16, raise_fd_limit() - FD_RESERVE)
    engine: CheckEngine | None = None
    generation = 0
    pending: list[tuple[Any, ...]] = []
    flush: asyncio.Handle | None = None

    def send() -> None:
        nonlocal flush
        flush = None
        for i in range(0, len(pending), REPORTS_PER_FRAME):
            writer.write(_frame(("reports", generation, pending[i : i + REPORTS_PER_FRAME])))
        pending.clear()

    def report(r: Report) -> None:
        nonlocal flush
        pending.append(tuple(r))
        if r.reason is not None:  # a health change goes out now, with what came before
            if flush is not None:
                flush.cancel()
            flush = loop.call_soon(send)
        elif flush is None:
            flush = loop.call_later(FLUSH_INTERVAL, send)

    try:
        while True:
            try:
                header = await reader.readexactly(FRAME.size)
                body = await reader.readexactly(FRAME.unpack(header)[0])
            except asyncio.IncompleteReadError:
                return  # the parent is gone or asked us to stop
            kind, gen, virtual_servers, initial = pickle.loads(body)
            if kind != "config":
                continue
            if pending:
                send()
            generation = gen
            if engine is None:
                engine = CheckEngine(
                    virtual_servers, report, initial=initial, max_in_flight=max_in_flight
                )
                engine.start()
            else:
                engine.update(virtual_servers, initial)
                # a change reported under the old generation was dropped by
                # the parent: send every machine's state under the new one
                for r in engine.snapshot():
                    pending.append(tuple(r))
                send()
    finally:
        if engine is not None:
            engine.stop()
            await asyncio.sleep(0.05)  # let cancelled probes kill their commands


def worker_main() -> int:
    """Entry point of `python -m lvsha.runtime.health` (started by HealthChecker).

    The worker declares itself a batch job (SCHED_BATCH: never preempts on
    wake-up; also drops a real-time policy inherited from the daemon) at a
    lower priority, so that the VRRP loop gets the CPU whenever it wants it.
    """
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICE)
    try:
        asyncio.run(_worker())
    except KeyboardInterrupt:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(worker_main())
