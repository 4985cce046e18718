"""The daemon's IPVS handle, which imports nothing heavy until a pass needs it.

`IpvsSync` (runtime/ipvs_sync.py) runs over pyroute2, whose import costs
0.2-0.5 s and ~20 MB of RSS. A VRRP-only director (no virtual server, no
sync daemon) never makes an IPVS pass (`IpvsLoop.run_pass` returns before
the first), so with this handle it never imports pyroute2 at all; a
director with virtual servers imports it on its first pass, after its VRRP
sockets and timers are running (docs/benchmarks-vrrp.md, "Lean start").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from lvsha.core.desired import IpvsTable, ServiceKey

if TYPE_CHECKING:
    from lvsha.runtime.ipvs_sync import IpvsSync


class LazyIpvs:
    """Satisfies ports.Ipvs; builds and starts the real `IpvsSync` on first use."""

    def __init__(self) -> None:
        self._real: IpvsSync | None = None
        self._error: str | None = None
        self._on_verified: Callable[[], None] = lambda: None

    @property
    def opened(self) -> bool:
        return self._real is not None

    def _sync(self) -> IpvsSync:
        if self._real is None:
            from lvsha.runtime.ipvs_sync import IpvsSync

            real = IpvsSync()
            real.start()
            real.error = self._error
            real.on_verified = self._on_verified
            self._real = real
        return self._real

    @property
    def error(self) -> str | None:
        return self._error if self._real is None else self._real.error

    @error.setter
    def error(self, value: str | None) -> None:
        if self._real is None:
            self._error = value
        else:
            self._real.error = value

    @property
    def on_verified(self) -> Callable[[], None]:
        return self._on_verified

    @on_verified.setter
    def on_verified(self, value: Callable[[], None]) -> None:
        self._on_verified = value
        if self._real is not None:
            self._real.on_verified = value

    @property
    def passes(self) -> int:
        return 0 if self._real is None else self._real.passes

    @passes.setter
    def passes(self, value: int) -> None:
        self._sync().passes = value

    @property
    def stats(self) -> dict[Any, dict[str, int]]:
        return {} if self._real is None else self._real.stats

    @stats.setter
    def stats(self, value: dict[Any, dict[str, int]]) -> None:
        self._sync().stats = value

    def start(self) -> None:
        """Nothing to start yet: the IPVS thread starts with the first pass."""

    def verify_soon(self) -> None:
        if self._real is not None:  # a first pass verifies anyway
            self._real.verify_soon()

    async def apply(
        self, desired: IpvsTable, role: Any, changed: frozenset[ServiceKey] | None = None
    ) -> list[str]:
        return await self._sync().apply(desired, role, changed)

    async def close(self, cleanup: Iterable[ServiceKey]) -> list[str]:
        if self._real is None:
            return []  # never opened: nothing of ours in the kernel to clean up
        return await self._real.close(cleanup)

    def status(self) -> dict[str, Any]:
        if self._real is not None:
            return self._real.status()
        # the keys of IpvsSync.status(), for a table this daemon never touched
        return {
            "error": self._error,
            "passes": 0,
            "repairs": 0,
            "last_pass": None,
            "sync_daemon": None,
        }
