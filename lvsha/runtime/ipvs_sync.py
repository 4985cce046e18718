"""Keeps the kernel's IPVS table and sync daemon as the daemon wants them.

The daemon derives the desired table (core/desired.py) and the sync-daemon
role from the VRRP states; this module carries them out on a private loop
thread (adapters/loop_thread.py), so that a large dump never delays an
advertisement. A kernel without IPVS, or a refused call, is reported and
retried on the next pass; VRRP goes on regardless.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lvsha.adapters.ipvs import Ipvs, IpvsReconciler, StatsKey
from lvsha.adapters.loop_thread import LoopThread
from lvsha.core.desired import IpvsTable, ServiceKey


@dataclass(frozen=True, slots=True)
class SyncDaemonRole:
    """Which IPVS connection-sync daemon should run (None = none)."""

    state: str | None  # "master" | "backup" | None
    interface: str
    syncid: int


class IpvsSync:
    """The daemon's handle on IPVS; every call runs on the IPVS thread."""

    def __init__(self) -> None:
        self._thread = LoopThread("lvsha-ipvs")
        self._ipvs: Ipvs | None = None
        self._reconciler: IpvsReconciler | None = None
        self._role: SyncDaemonRole | None = None
        self.error: str | None = None
        self.passes = 0
        self.repairs = 0
        self.last_pass: float | None = None
        self.stats: dict[StatsKey, dict[str, int]] = {}  # kernel counters at the last pass

    def start(self) -> None:
        self._thread.start()

    async def apply(self, desired: IpvsTable, role: SyncDaemonRole | None) -> list[str]:
        """One reconcile pass; returns what changed. Raises KernelError."""
        done = await self._thread.run(self._apply(desired, role))
        self.passes += 1
        self.repairs += len(done)
        self.last_pass = time.time()
        self.error = None
        return done

    async def _apply(self, desired: IpvsTable, role: SyncDaemonRole | None) -> list[str]:
        reconciler = await self._open()
        done = await reconciler.sync(desired)
        self.stats = dict(reconciler.ipvs.stats)  # one assignment: safe to read elsewhere
        if role != self._role:
            ipvs = reconciler.ipvs
            if role is None and self._role is not None:
                await ipvs.set_sync_daemon(None, self._role.interface, self._role.syncid)
            elif role is not None:
                await ipvs.set_sync_daemon(role.state, role.interface, role.syncid)
            done.append(f"sync daemon: {role.state if role and role.state else 'stopped'}")
            self._role = role
        return done

    async def _open(self) -> IpvsReconciler:
        if self._reconciler is None:
            ipvs = Ipvs()
            await ipvs.open()
            self._ipvs = ipvs
            self._reconciler = IpvsReconciler(ipvs)
        return self._reconciler

    async def close(self, cleanup: Iterable[ServiceKey]) -> list[str]:
        """On stop: delete the services marked for cleanup, stop the sync daemon."""
        keys = list(cleanup)
        try:
            return await self._thread.run(self._close(keys))
        finally:
            self._thread.stop()

    async def _close(self, keys: list[ServiceKey]) -> list[str]:
        done: list[str] = []
        try:
            if self._reconciler is not None:
                if keys:
                    done += await self._reconciler.remove(keys)
                if self._role is not None and self._role.state is not None:
                    await self._reconciler.ipvs.set_sync_daemon(
                        None, self._role.interface, self._role.syncid
                    )
                    done.append("sync daemon: stopped")
        finally:
            if self._ipvs is not None:
                self._ipvs.close()
        return done

    def status(self) -> dict[str, Any]:
        return {
            "error": self.error,
            "passes": self.passes,
            "repairs": self.repairs,
            "last_pass": self.last_pass,
            "sync_daemon": None if self._role is None else self._role.state,
        }
