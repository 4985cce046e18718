"""Keeps the kernel's IPVS table and sync daemon as the daemon wants them.

The daemon derives the desired table (core/desired.py) and the sync-daemon
role from the VRRP states; this module carries them out on a private loop
thread (adapters/loop_thread.py), so that a large dump never delays an
advertisement. A kernel without IPVS, or a refused call, is reported and
retried on the next pass; VRRP goes on regardless.

Trust the model, verify the kernel: each pass plans against the last
verified view of the table (a dump, then every operation the kernel
acknowledged since), so a health change costs a diff and a batch of a few
operations, not a dump of the whole table. A full dump (the verify) runs at
start, after any error, and periodically, at an interval set from what the
last dump cost (verify_interval_for); what it finds
different from the view is drift (an operator's `ipvsadm`, another tool),
repaired and logged. The verify policy lives here and is time-based, so the
daemon's periodic kick costs only a diff.

The periodic verify dumps *beside* the passes (a second socket, the loop
handed back after each service): a health change that comes during a dump
of 10,000 destinations (0.5-1 s in the UML guest) is applied at once, not
after it. The services any pass operates on while it dumps keep the view's
version (the dump may have read them before or after the change) and are
verified the next time; the rest is taken from the dump by the next
whole-table pass, which `on_verified` asks the daemon for, and which
repairs the drift found.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from lvsha import logs
from lvsha.adapters.ipvs import Ipvs, IpvsBatchError, StatsKey
from lvsha.adapters.loop_thread import LoopThread
from lvsha.core.desired import IpvsTable, ServiceKey
from lvsha.core.reconcile import Operation, apply_to_table, diff, services_of
from lvsha.errors import KernelError

log = logs.get("lvsha.ipvs")

# When to verify (docs/ipvs.md, "Trust the model, verify the kernel"): the
# interval follows the measured CPU cost of the last dump, so that verifying
# takes at most VERIFY_CPU_SHARE of one core on average, between the daemon's
# own 10 s resync (a small table is verified as often as before) and 5 min.
# 1,000 services x 10 destinations cost 0.7-1.2 s of CPU in the UML guest:
# a verify every 70-120 s there.
VERIFY_CPU_SHARE = 0.01
VERIFY_MIN_INTERVAL = 10.0
VERIFY_MAX_INTERVAL = 300.0
REPAIRED_SHOWN = 20  # drift lines kept for `lvsha status`


def verify_interval_for(cpu_seconds: float) -> float:
    """Seconds until the next verify, given the CPU time the last one took."""
    return min(VERIFY_MAX_INTERVAL, max(VERIFY_MIN_INTERVAL, cpu_seconds / VERIFY_CPU_SHARE))


class IpvsKernel(Protocol):
    """What IpvsSync needs of the kernel: adapters.ipvs.Ipvs, or a fake in tests."""

    stats: dict[StatsKey, dict[str, int]]

    async def open(self) -> None: ...
    def close(self) -> None: ...
    async def dump(self, beside: bool = False) -> IpvsTable: ...
    async def apply(self, ops: Sequence[Operation]) -> list[str]: ...
    async def set_sync_daemon(self, state: str | None, interface: str, syncid: int = 0) -> None:
        """Make exactly `state` run (None: none)."""


@dataclass(frozen=True, slots=True)
class SyncDaemonRole:
    """Which IPVS connection-sync daemon should run (None = none)."""

    state: str | None  # "master" | "backup" | "both" (BGP directors) | None
    interface: str
    syncid: int


class IpvsSync:
    """The daemon's handle on IPVS; every call runs on the IPVS thread."""

    def __init__(
        self,
        verify_interval: float | None = None,
        kernel: Callable[[], IpvsKernel] = Ipvs,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._thread = LoopThread("lvsha-ipvs")
        self._kernel = kernel
        self._clock = clock
        self._ipvs: IpvsKernel | None = None
        self._role: SyncDaemonRole | None = None
        self._view: IpvsTable | None = None  # the kernel's table as last verified + acked since
        self._owned: set[ServiceKey] = set()
        self._verify_at = 0.0  # monotonic; 0 = at the next pass
        self._beside: asyncio.Task[IpvsTable] | None = None  # the periodic verify's dump
        self._touched: set[ServiceKey] = set()  # operated on since that dump began
        self._caller: asyncio.AbstractEventLoop | None = None  # the daemon's loop
        self.on_verified: Callable[[], None] = lambda: None  # on the caller's loop
        self.fixed_interval = verify_interval  # None: from the measured cost
        self.verify_interval = verify_interval or VERIFY_MIN_INTERVAL
        self.error: str | None = None
        self.passes = 0
        self.repairs = 0  # operations done, all passes
        self.last_pass: float | None = None
        self.verifies = 0
        self.last_verify: float | None = None  # wall clock
        self.last_verify_seconds: float | None = None
        self.last_verify_cpu: float | None = None
        self.last_verify_repaired: list[str] = []  # drift the last verify found
        self.drift_repaired = 0  # drift operations, all verifies
        self.stats: dict[StatsKey, dict[str, int]] = {}  # kernel counters at the last verify

    def start(self) -> None:
        self._thread.start()

    @property
    def verifying(self) -> bool:
        """A verify is dumping beside the passes right now."""
        return self._beside is not None and not self._beside.done()

    def verify_soon(self) -> None:
        """Make the next pass verify with a dump (e.g. on an operator's request)."""
        self._verify_at = 0.0

    async def apply(
        self,
        desired: IpvsTable,
        role: SyncDaemonRole | None,
        changed: frozenset[ServiceKey] | None = None,
    ) -> list[str]:
        """One reconcile pass; returns what changed. Raises KernelError.

        On a batch with refused operations the rest are applied, the next
        pass verifies, and KernelError (IpvsBatchError) names each refusal.
        `changed`: the caller's word that `desired` differs from the table
        of its previous call only under these keys (a health change), so
        only they are planned; None plans the whole table. Such a pass
        leaves a due periodic verify to the next whole-table pass; after an
        error, at start or after verify_soon() it verifies and plans the
        whole table regardless.
        """
        self._caller = asyncio.get_running_loop()
        done = await self._thread.run(self._apply(desired, role, changed))
        self.passes += 1
        self.repairs += len(done)
        self.last_pass = time.time()
        self.error = None
        return done

    async def verified_beside(self) -> bool:
        """Wait for the verify dumping beside the passes, if one is; whether one was.

        What the daemon's on_verified kick waits for, for tests and benchmarks.
        """
        return await self._thread.run(self._wait_beside())

    async def _wait_beside(self) -> bool:
        if self._beside is None:
            return False
        await asyncio.wait([self._beside])
        return True

    async def _apply(
        self,
        desired: IpvsTable,
        role: SyncDaemonRole | None,
        changed: frozenset[ServiceKey] | None,
    ) -> list[str]:
        ipvs = await self._open()
        view = self._view
        # After an error, at start or on request (_verify_at == 0) every pass
        # verifies first, in line. The periodic verify dumps beside the
        # passes: a whole-table pass starts it, the first whole-table pass
        # after it is done takes it (health passes never wait for either).
        if view is None or self._verify_at == 0.0:
            self._drop_beside()
            view = await self._verify(ipvs, view)
            changed = None
        elif changed is None and self._beside is not None and self._beside.done():
            view = self._take_beside(view)
        elif changed is None and self._beside is None and self._clock() >= self._verify_at:
            self._start_beside(ipvs)
        if changed is None:
            owned = self._owned | desired.keys()
            ops = diff(desired, view, owned)
        else:  # the view equals the previous desired table on owned keys: plan the changed part
            owned = self._owned | {k for k in changed if k in desired}
            ops = diff(desired.only(changed), view.only(changed), owned & changed)
        failure: KernelError | None = None
        done: list[str] = []
        if ops:
            if self._beside is not None:
                self._touched |= services_of(ops)
            applied: list[Operation] = ops
            try:
                done = await ipvs.apply(ops)
            except IpvsBatchError as exc:
                applied, failure = exc.applied, exc
                done = [str(op) for op in applied]
            except KernelError as exc:  # nothing is known of this batch
                self._view, self._verify_at = None, 0.0
                self._drop_beside()
                raise exc
            try:
                if changed is None:
                    self._view = apply_to_table(view, applied)
                else:
                    self._view = view.replace(changed, apply_to_table(view.only(changed), applied))
            except ValueError:  # the kernel took what the view said it could not
                self._view = None
                self._drop_beside()
            if failure is not None:
                self._verify_at = 0.0  # after any error: verify on the next pass
        if failure is not None:
            self._owned = owned
        elif changed is None:
            self._owned = set(desired.keys())
        else:
            self._owned = (self._owned - changed) | {k for k in changed if k in desired}
        if role != self._role:
            if role is None and self._role is not None:
                await ipvs.set_sync_daemon(None, self._role.interface, self._role.syncid)
            elif role is not None:
                await ipvs.set_sync_daemon(role.state, role.interface, role.syncid)
            done.append(f"sync daemon: {role.state if role and role.state else 'stopped'}")
            self._role = role
        if failure is not None:
            raise failure
        return done

    async def _verify(self, ipvs: IpvsKernel, believed: IpvsTable | None) -> IpvsTable:
        """Dump the table in line; what differs from the view on owned keys is drift."""
        dumped = await self._timed_dump(ipvs, beside=False)
        return self._verified(believed, dumped)

    async def _timed_dump(self, ipvs: IpvsKernel, beside: bool) -> IpvsTable:
        start, cpu = time.perf_counter(), time.thread_time()  # this thread: the dump's
        dumped = await ipvs.dump(beside)
        self.last_verify_seconds = time.perf_counter() - start
        # beside: also the passes made meanwhile, a few ms against the dump's 0.5-1 s
        self.last_verify_cpu = time.thread_time() - cpu
        self.stats = dict(ipvs.stats)  # one assignment: safe to read elsewhere
        return dumped

    def _start_beside(self, ipvs: IpvsKernel) -> None:
        self._touched = set()
        self._beside = asyncio.ensure_future(self._timed_dump(ipvs, beside=True))
        self._beside.add_done_callback(self._beside_done)

    def _beside_done(self, task: asyncio.Task[IpvsTable]) -> None:
        """Ask the daemon for the whole-table pass that takes the dump."""
        caller = self._caller
        if task.cancelled() or caller is None:
            return
        with contextlib.suppress(RuntimeError):  # the daemon's loop has closed
            caller.call_soon_threadsafe(self.on_verified)

    def _drop_beside(self) -> None:
        task = self._beside
        if task is not None and not task.done():
            task.cancel()
        elif task is not None and not task.cancelled():
            task.exception()  # done, and not wanted: its error is not left unretrieved
        self._beside, self._touched = None, set()

    def _take_beside(self, view: IpvsTable) -> IpvsTable:
        """The dump made beside the passes, but the view's version of what they touched."""
        task, touched = self._beside, self._touched
        assert task is not None
        self._beside, self._touched = None, set()
        try:
            dumped = task.result()
        except KernelError as exc:
            log.warning("ipvs verify failed; verifying on the next pass", error=str(exc))
            self._verify_at = 0.0
            return view
        return self._verified(view, dumped.replace(touched, view.only(touched)))

    def _verified(self, believed: IpvsTable | None, dumped: IpvsTable) -> IpvsTable:
        if self.fixed_interval is None and self.last_verify_cpu is not None:
            self.verify_interval = verify_interval_for(self.last_verify_cpu)
        self.verifies += 1
        self.last_verify = time.time()
        self._verify_at = self._clock() + self.verify_interval
        if believed is not None:
            drift = [str(op) for op in diff(believed.only(self._owned), dumped, self._owned)]
            if drift:  # each repair is then logged as an operation, like any other
                log.warning("ipvs drift found by verify; repairing", operations=len(drift))
            self.last_verify_repaired = drift[:REPAIRED_SHOWN]
            self.drift_repaired += len(drift)
        self._view = dumped
        return dumped

    async def _open(self) -> IpvsKernel:
        if self._ipvs is None:
            ipvs = self._kernel()
            await ipvs.open()
            self._ipvs = ipvs
        return self._ipvs

    async def close(self, cleanup: Iterable[ServiceKey]) -> list[str]:
        """On stop: delete the services marked for cleanup, stop the sync daemon."""
        keys = list(cleanup)
        try:
            return await self._thread.run(self._close(keys))
        finally:
            self._thread.stop()

    async def _close(self, keys: list[ServiceKey]) -> list[str]:
        done: list[str] = []
        self._drop_beside()
        try:
            if self._ipvs is not None:
                if keys:
                    observed = await self._ipvs.dump()
                    done += await self._ipvs.apply(diff(IpvsTable(), observed, set(keys)))
                if self._role is not None and self._role.state is not None:
                    await self._ipvs.set_sync_daemon(None, self._role.interface, self._role.syncid)
                    done.append("sync daemon: stopped")
        finally:
            if self._ipvs is not None:
                self._ipvs.close()
        return done

    def status(self) -> dict[str, Any]:
        next_in = None
        if self._view is not None:
            next_in = round(max(0.0, self._verify_at - self._clock()), 1)
        return {
            "error": self.error,
            "passes": self.passes,
            "repairs": self.repairs,
            "last_pass": self.last_pass,
            "sync_daemon": None if self._role is None else self._role.state,
            "verify": {
                "interval": self.verify_interval,
                "count": self.verifies,
                "last": self.last_verify,
                "seconds": self.last_verify_seconds,
                "cpu_seconds": self.last_verify_cpu,
                "next_in": next_in,
                "dumping": self.verifying,
                "repaired": list(self.last_verify_repaired),
                "repaired_total": self.drift_repaired,
            },
        }
