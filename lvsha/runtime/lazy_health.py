"""The health checker of a director without virtual servers: nothing, until a reload brings some.

The checker (runtime/health.py, with adapters/checker.py and probe.py) is
~1 MB of RSS and tens of milliseconds of import that a VRRP-only director
never uses (docs/benchmarks-vrrp.md, "Lean start"). This stand-in answers
for an empty configuration and builds the real `HealthChecker` (started if
it was) on the first `update` that carries virtual servers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from lvsha.config import VirtualServerConfig
from lvsha.core.desired import HealthMap, ServiceKey
from lvsha.runtime.ports import Health


class LazyHealth:
    """Satisfies ports.Health with no virtual servers; delegates once there are some."""

    def __init__(
        self,
        virtual_servers: Iterable[VirtualServerConfig],
        on_change: Callable[[], None],
        build: Callable[[tuple[VirtualServerConfig, ...], Callable[[], None]], Health],
    ) -> None:
        self.on_change = on_change
        self._build = build
        self._real: Health | None = None
        self._started = False
        self.update(virtual_servers)

    @property
    def built(self) -> bool:
        return self._real is not None

    def start(self) -> None:
        self._started = True
        if self._real is not None:
            self._real.start()

    def stop(self) -> None:
        self._started = False
        if self._real is not None:
            self._real.stop()

    async def wait_stopped(self) -> None:
        if self._real is not None:
            await self._real.wait_stopped()

    def update(self, virtual_servers: Iterable[VirtualServerConfig]) -> None:
        servers = tuple(virtual_servers)
        if self._real is not None:
            self._real.update(servers)
        elif servers:
            self._real = self._build(servers, self.on_change)
            if self._started:
                self._real.start()

    def health(self) -> HealthMap:
        return {} if self._real is None else self._real.health()

    def effective_virtual_servers(
        self, keys: Iterable[ServiceKey] | None = None
    ) -> tuple[VirtualServerConfig, ...]:
        return () if self._real is None else self._real.effective_virtual_servers(keys)

    def changed_services(self) -> frozenset[ServiceKey] | None:
        return None if self._real is None else self._real.changed_services()

    def status(self) -> dict[Any, Any]:
        return {} if self._real is None else self._real.status()

    def quorum(self) -> dict[ServiceKey, tuple[bool, int]]:
        return {} if self._real is None else self._real.quorum()

    def checked(self) -> bool:
        return self._real is None or self._real.checked()
