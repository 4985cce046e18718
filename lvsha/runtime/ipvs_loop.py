"""Carries the desired IPVS table to the kernel, on every change and periodically.

The table is a pure function of the configuration and the health of the
real servers (core/desired.py); the sync-daemon role follows the first
instance that names a `sync_daemon_interface`. Any failure of a pass, a
kernel error or anything else, is logged once and retried after RETRY
seconds: health changes never stop reaching the kernel in silence.

A health change names its services (`kick(services)`): the pass re-derives
only those from the health checker and replaces them in the table it
derived last, and IpvsSync plans only them, so a failed check at 10,000
real servers costs one service's work, not the whole table's
(docs/benchmarks-ipvs.md). Any other kick (VRRP, reload), the periodic
RESYNC and the pass after a failure derive and plan the whole table.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from lvsha import logs
from lvsha.config import VirtualServerConfig
from lvsha.core.desired import IpvsTable, ServiceKey, desired_ipvs, service_key
from lvsha.runtime.ports import Health, Ipvs

if TYPE_CHECKING:  # importing ipvs_sync imports pyroute2
    from lvsha.runtime.ipvs_sync import SyncDaemonRole

log = logs.get("lvsha")

RESYNC = 10.0  # seconds between passes besides changes
RETRY = 5.0  # after a failed pass (e.g. ip_vs missing)
STOP_GRACE = 0.3


class IpvsLoop:
    """The daemon's IPVS passes."""

    def __init__(
        self,
        ipvs: Ipvs,
        health: Callable[[], Health],
        virtual_servers: Callable[[], tuple[VirtualServerConfig, ...]],
        role: Callable[[], SyncDaemonRole | None],
    ) -> None:
        self.ipvs = ipvs
        self.health = health
        self.virtual_servers = virtual_servers
        self.role = role
        self.failures = 0
        # the services of the last table the kernel took: BGP announces only those
        self.programmed: frozenset[ServiceKey] = frozenset()
        self.on_pass: Callable[[], None] = lambda: None
        self._kick = asyncio.Event()
        self._dirty: set[ServiceKey] | None = None  # None: the whole table
        self._desired: IpvsTable | None = None  # what the last good pass asked for
        self._derived_from: tuple[VirtualServerConfig, ...] | None = None
        ipvs.on_verified = self.kick  # the whole-table pass that takes a verify made beside

    def kick(self, services: Iterable[ServiceKey] | None = None) -> None:
        """A pass soon: for these services only (a health change), or for everything."""
        if services is None:
            self._dirty = None
        elif self._dirty is not None:
            self._dirty.update(services)
        self._kick.set()

    def _derive(self) -> tuple[IpvsTable, frozenset[ServiceKey] | None]:
        """The desired table, and the keys where it may differ from the last (None: any)."""
        dirty, self._dirty = self._dirty, set()
        health = self.health()
        virtual_servers = self.virtual_servers()
        if dirty is None or self._desired is None or virtual_servers is not self._derived_from:
            self._derived_from = virtual_servers
            return desired_ipvs(health.effective_virtual_servers()), None
        changed = frozenset(dirty)
        part = desired_ipvs(health.effective_virtual_servers(changed))
        return self._desired.replace(changed, part), changed

    async def run_pass(self) -> bool:
        """Reconcile once; False (logged, retried later) when it failed."""
        role = self.role()
        if not self.virtual_servers() and role is None and not self.ipvs.passes:
            return True  # nothing to hold: do not even open IPVS
        try:
            desired, changed = self._derive()
            await self.ipvs.apply(desired, role, changed)  # the adapter logs each change
            self._desired = desired
            self.programmed = desired.keys()
        except Exception as exc:  # KernelError, OSError, a bug: never silent
            self._dirty, self._desired = None, None  # the next pass: the whole table
            self.failures += 1
            if self.ipvs.error != str(exc):
                log.error("ipvs reconcile failed; will retry", error=repr(exc))
            self.ipvs.error = str(exc)
            return False
        finally:
            self.on_pass()
        return True

    async def loop(self) -> None:
        """Supervised: a pass on every kick (health, VRRP, reload), a whole one every RESYNC.

        The whole-table pass comes every RESYNC seconds however often health
        changes kick in between: it re-derives everything and is the pass
        that makes a due verify (IpvsSync leaves it out of health passes).
        """
        clock = asyncio.get_running_loop()
        ok = self.ipvs.error is None
        whole_at = clock.time() + RESYNC
        while True:
            deadline = whole_at if ok else min(whole_at, clock.time() + RETRY)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await self._kick.wait()
            self._kick.clear()
            if clock.time() >= whole_at:
                self._dirty = None  # the periodic pass re-derives everything
            whole = self._dirty is None
            ok = await self.run_pass()
            if whole:  # counted from its end: a verify it made is due by the next one
                whole_at = clock.time() + RESYNC

    async def close(self, virtual_servers: Iterable[VirtualServerConfig]) -> None:
        """The table stays; only services marked ipvs_cleanup_on_stop go."""
        cleanup = [service_key(vs) for vs in virtual_servers if vs.ipvs_cleanup_on_stop]
        try:
            async with asyncio.timeout(STOP_GRACE):
                await self.ipvs.close(cleanup)  # logged by the adapter
        except Exception as exc:
            log.error("ipvs cleanup on stop incomplete", error=repr(exc))
