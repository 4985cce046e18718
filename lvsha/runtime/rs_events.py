"""Real-server up/down events: keepalived's notify_up / notify_down and checker mail.

The health checker reports changes in batches (`on_change`); this module
compares the health map with the one it saw last and, for each real server
that flipped, queues its `notify_up` / `notify_down` (argv, no shell, through
the daemon's hook runner) and, with `smtp_alert` on the real server or its
virtual server, keepalived's checker alert. The first map after start (and
the servers a reload adds) only set the baseline, so a restart mails nobody.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from lvsha.adapters.hooks import HookRun
from lvsha.config import RealServerConfig, VirtualServerConfig
from lvsha.core.desired import DestKey, HealthMap, ServiceKey, service_key

if TYPE_CHECKING:
    from lvsha.adapters.smtp import Mailer

Key = tuple[ServiceKey, DestKey]


def checker_alert(router_id: str, rs: RealServerConfig, up: bool) -> tuple[str, str]:
    """keepalived's subject and body for a real server going up or down (check_api.c)."""
    state = "UP" if up else "DOWN"
    kind = "succeed" if up else "failed"
    subject = f"[{router_id}] Realserver [{rs.address}]:{rs.port} - {state}"
    return subject, f"=> CHECK {kind} on service <="


class RealServerEvents:
    """Turns health changes into hooks and mail."""

    def __init__(
        self,
        submit_hooks: Callable[[list[HookRun]], None],
        mailer: Callable[[], Mailer | None],
        router_id: Callable[[], str],
    ) -> None:
        self.submit_hooks = submit_hooks
        self.mailer = mailer
        self.router_id = router_id
        self._last: dict[Key, bool] | None = None
        self._indexed: tuple[VirtualServerConfig, ...] | None = None
        self._servers: dict[Key, tuple[VirtualServerConfig, RealServerConfig]] = {}
        self._keys_of: dict[ServiceKey, list[Key]] = {}

    def _index(self, virtual_servers: tuple[VirtualServerConfig, ...]) -> None:
        """(service, real) -> its configs, built once per configuration."""
        if virtual_servers is self._indexed:
            return
        self._servers, self._keys_of = {}, {}
        for vs in virtual_servers:
            skey = service_key(vs)
            keys = self._keys_of.setdefault(skey, [])
            for rs in vs.real_servers:
                key = (skey, DestKey(rs.address, rs.port))
                self._servers[key] = (vs, rs)
                keys.append(key)
        self._indexed = virtual_servers

    def changed(
        self,
        virtual_servers: Iterable[VirtualServerConfig],
        health: HealthMap,
        services: Iterable[ServiceKey] | None = None,
    ) -> None:
        """Compare with the last map; `services`: only their reals can have flipped."""
        vss = virtual_servers if isinstance(virtual_servers, tuple) else tuple(virtual_servers)
        fresh = vss is not self._indexed
        self._index(vss)
        servers = self._servers
        last = self._last
        if services is None or fresh or last is None:
            # a real server without a check is absent from the map: healthy (core/desired.py)
            now = {k: bool(health.get(k, True)) for k in servers}
            self._last = now
            if last is None:
                return
            flipped = [k for k, up in now.items() if k in last and last[k] != up]
        else:
            now = last
            flipped = []
            for skey in services:
                for k in self._keys_of.get(skey, ()):
                    up = bool(health.get(k, True))
                    if last.get(k, up) != up:
                        flipped.append(k)
                    last[k] = up
        for key in flipped:
            healthy = now[key]
            vs, rs = servers[key]
            argv = rs.notify_up if healthy else rs.notify_down
            state = "UP" if healthy else "DOWN"
            if argv:
                target = f"{rs.address}:{rs.port}"
                self.submit_hooks([HookRun(argv, target, state, rs.weight, "real server " + state)])
            alert = vs.smtp_alert if rs.smtp_alert is None else rs.smtp_alert
            mailer = self.mailer()
            if alert and mailer is not None:
                mailer.submit(*checker_alert(self.router_id(), rs, healthy))
