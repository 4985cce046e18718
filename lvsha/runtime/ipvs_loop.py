"""Carries the desired IPVS table to the kernel, on every change and periodically.

The table is a pure function of the configuration and the health of the
real servers (core/desired.py); the sync-daemon role follows the first
instance that names a `sync_daemon_interface`. Any failure of a pass, a
kernel error or anything else, is logged once and retried after RETRY
seconds: health changes never stop reaching the kernel in silence.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from lvsha import logs
from lvsha.config import VirtualServerConfig
from lvsha.core.desired import ServiceKey, desired_ipvs, service_key
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

    def kick(self) -> None:
        self._kick.set()

    async def run_pass(self) -> bool:
        """Reconcile once; False (logged, retried later) when it failed."""
        role = self.role()
        if not self.virtual_servers() and role is None and not self.ipvs.passes:
            return True  # nothing to hold: do not even open IPVS
        try:
            desired = desired_ipvs(self.health().effective_virtual_servers())
            await self.ipvs.apply(desired, role)  # the adapter logs each change it makes
            self.programmed = desired.keys()
        except Exception as exc:  # KernelError, OSError, a bug: never silent
            self.failures += 1
            if self.ipvs.error != str(exc):
                log.error("ipvs reconcile failed; will retry", error=repr(exc))
            self.ipvs.error = str(exc)
            return False
        finally:
            self.on_pass()
        return True

    async def loop(self) -> None:
        """Supervised: a pass on every kick (health, VRRP, reload) and every RESYNC."""
        wait = RESYNC if self.ipvs.error is None else RETRY
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._kick.wait()
            self._kick.clear()
            wait = RESYNC if await self.run_pass() else RETRY

    async def close(self, virtual_servers: Iterable[VirtualServerConfig]) -> None:
        """The table stays; only services marked ipvs_cleanup_on_stop go."""
        cleanup = [service_key(vs) for vs in virtual_servers if vs.ipvs_cleanup_on_stop]
        try:
            async with asyncio.timeout(STOP_GRACE):
                await self.ipvs.close(cleanup)  # logged by the adapter
        except Exception as exc:
            log.error("ipvs cleanup on stop incomplete", error=repr(exc))
