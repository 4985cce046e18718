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

    def changed(self, virtual_servers: Iterable[VirtualServerConfig], health: HealthMap) -> None:
        servers: dict[Key, tuple[VirtualServerConfig, RealServerConfig]] = {}
        for vs in virtual_servers:
            for rs in vs.real_servers:
                servers[(service_key(vs), DestKey(rs.address, rs.port))] = (vs, rs)
        # a real server without a check is absent from the map: healthy (core/desired.py)
        now = {k: bool(health.get(k, True)) for k in servers}
        last, self._last = self._last, now
        if last is None:
            return
        for key, healthy in now.items():
            if key not in last or last[key] == healthy:
                continue
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
