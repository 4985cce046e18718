"""Keeps the kernel's VIPs as the VRRP states want them.

Which VIPs should be present is a pure function of the routers' states
(core/vips.py); this module reads what the kernel holds, applies the plan,
and writes the record that `lvsha cleanup` reads after a crash. It runs on
every kick (a state change, a VIP deleted by hand) and every RESYNC seconds,
in its own task: a slow or failing netlink call never delays an advert.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from pathlib import Path

from lvsha import logs
from lvsha.adapters import vip_record
from lvsha.config import VirtualAddress
from lvsha.core.vips import desired_vips, plan_vips
from lvsha.runtime.ports import Netlink

log = logs.get("lvsha")

RESYNC = 5.0  # seconds between full VIP checks, besides netlink events
RETRY = 1.0  # after a failed kernel call


class VipSync:
    """The owned VIPs, the desired ones, and the loop that makes them so."""

    def __init__(
        self,
        netlink: Netlink,
        record: Path | None,
        masters: Callable[[], list[str]],
        vips: Callable[[], Mapping[str, tuple[VirtualAddress, ...]]],
    ) -> None:
        self.netlink = netlink
        self.record = record
        self.masters = masters
        self.vips = vips
        self.owned: set[VirtualAddress] = set()  # every VIP of every config loaded
        self.held: set[VirtualAddress] | None = None  # what the last pass left
        self.error: str | None = None
        self.stopping = False
        self._kick = asyncio.Event()
        self._lock = asyncio.Lock()

    def own(self, vips: Mapping[str, tuple[VirtualAddress, ...]]) -> None:
        self.owned |= {v for group in vips.values() for v in group}

    def desired(self) -> frozenset[VirtualAddress]:
        if self.stopping:
            return frozenset()
        return desired_vips(self.masters(), self.vips())

    def kick(self) -> None:
        self._kick.set()

    async def reconcile(self) -> list[str]:
        """One pass: add what is missing, remove what should not be there."""
        async with self._lock:  # one netlink conversation at a time
            present = await self.netlink.present(self.owned)
            plan = plan_vips(self.desired(), present, self.owned)
            done: list[str] = []
            held = set(present)
            try:
                for vip in plan.add:
                    await self.netlink.add(vip)
                    held.add(vip)
                    done.append(f"added {vip.address}/{vip.prefixlen} on {vip.device}")
                for vip in plan.remove:
                    await self.netlink.remove(vip)
                    held.discard(vip)
                    done.append(f"removed {vip.address}/{vip.prefixlen} from {vip.device}")
            finally:
                self._record(held)
            return done

    def _record(self, held: set[VirtualAddress]) -> None:
        if held == self.held or self.record is None:
            return
        try:
            vip_record.write(self.record, held)
            self.held = held
        except OSError as exc:
            log.error("cannot write the VIP record", path=str(self.record), error=str(exc))

    async def loop(self) -> None:
        """Supervised: a pass on every kick and every RESYNC seconds."""
        wait = RESYNC
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._kick.wait()
            self._kick.clear()
            try:
                for change in await self.reconcile():
                    log.info("vip", change=change)
                self.error = None
                wait = RESYNC
            except Exception as exc:  # KernelError, OSError, anything: retried
                if self.error != str(exc):
                    log.error("vip reconcile failed; will retry", error=str(exc))
                self.error = str(exc)
                wait = RETRY
