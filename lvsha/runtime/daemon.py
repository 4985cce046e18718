"""The daemon's lifecycle: start, signals, reload, stop; the wiring of the runtime.

Start, VRRP first: every instance built and started (its socket open, its
Master_Down timer running, RFC 3768 section 6.4.1), then the VIPs left by a
crash removed (the instance is BACKUP for Master_Down_Interval >= 3 s, so
they go long before it could be master), then the heavy parts (health
checker, IPVS adoption), then READY=1. Every long-lived task runs under the `Supervisor`.
Reload is a transaction (`reload`): the new file is validated and every new
or changed instance is built completely before anything is swapped; READY=1
always follows RELOADING=1. Stop (SIGTERM): priority 0 from every master
(RFC 3768 section 6.4.3), VIPs removed, the IPVS table left in place, exit 0
within 2 s.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import os
import signal
import threading
import time
import traceback
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from lvsha import __version__, logs
from lvsha.adapters.addresses import LinkEvent
from lvsha.adapters.vip_record import record_path
from lvsha.config import Config, VirtualAddress, load_config
from lvsha.config.model import BgpConfig, SyncGroupConfig
from lvsha.core.vrrp import State, StateChanged
from lvsha.errors import ConfigError
from lvsha.runtime import status
from lvsha.runtime.bgp import GROUP as BGP_GROUP
from lvsha.runtime.bgp import BgpAnnouncer, lo_vips
from lvsha.runtime.ipvs_loop import IpvsLoop
from lvsha.runtime.ports import Health, Ports
from lvsha.runtime.rs_events import RealServerEvents
from lvsha.runtime.supervisor import Supervisor
from lvsha.runtime.tracking import Tracking
from lvsha.runtime.vips import VipSync
from lvsha.runtime.vrrp_driver import EarlySockets, Instance, VrrpDriver

if TYPE_CHECKING:
    from lvsha.adapters.smtp import Mailer
    from lvsha.runtime.ipvs_sync import SyncDaemonRole

log = logs.get("lvsha")

STOP_GRACE = 1.5  # SIGTERM must be done within 2 s
BGP_GRACE = 0.4  # the speaker's withdrawal, first thing on SIGTERM
# Queued hooks (the STOP hooks among them) may run until this long after
# SIGTERM; the rest of the stop sequence takes about 0.2 s (docs/operations.md).
HOOKS_UNTIL = 1.2
SCRIPTS_GRACE = 0.2  # running track scripts are killed within this
MAIL_GRACE = 0.3  # queued e-mail alerts may take this much
ALERT_STATES = ("MASTER", "BACKUP", "FAULT")  # keepalived mails these, not STOP


class Daemon:
    """Runs the VRRP instances of one configuration until told to stop."""

    def __init__(
        self,
        config: Config,
        config_path: str | None,
        ports: Ports,
        early: EarlySockets | None = None,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.ports = ports
        self.started_at = time.time()
        self.reload_error: list[str] = []
        self.reloads = 0
        self.reload_applied = True  # the last reload swapped its configuration in
        self.stopping = False
        self.supervisor = Supervisor()
        self.driver = VrrpDriver(ports, self.supervisor, self._state_changed, self._vip_addresses)
        self.driver.early = early
        self.vips = VipSync(
            ports.netlink,
            record_path(config.daemon.control_socket),
            self._masters,
            self._instance_vips,
        )
        self.ipvs = ports.ipvs()
        self.rs_events = RealServerEvents(
            lambda runs: self.hooks.submit(runs),
            lambda: self.mailer,
            lambda: self.config.daemon.name,
        )
        self.health: Health  # built in run(), after VRRP: the checker's import is heavy
        self.ipvs_loop = IpvsLoop(
            self.ipvs, lambda: self.health, lambda: self.config.virtual_servers, self._role
        )
        self.hooks = ports.hooks()
        self.tracking = _tracking(ports, self.driver, self.supervisor, self.hooks, config)
        self.driver.on_executed = self.tracking.executed
        self.mailer: Mailer | None = None
        self._set_mailer(config)
        self.tracking.on_group_state = self._group_alert
        self.control: Any = None
        self.metrics: Any = None
        self.bgp: BgpAnnouncer | None = None  # built in run() when [bgp] is configured
        self._stop = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._loop = asyncio.get_running_loop()

    # ---------------------------------------------------------- lifecycle --

    async def run(self) -> int:
        await self.ports.netlink.open()
        self.vips.own(self._config_vips(self.config))
        for cfg in self.config.vrrp:  # VRRP first: nothing may delay the socket and timer
            inst = await self.driver.prepare(cfg)
            await self.tracking.attach(inst, self.config)
            self.driver.start(inst, self.driver.early_listening_since(inst))
        self.driver.replay_early()
        self.tracking.start()
        await self._remove_stale_vips()  # every instance is BACKUP (or a 255 owner) yet
        self.health = self.ports.health(self.config.virtual_servers, self._health_changed)
        self.ipvs.start()
        await self.ipvs_loop.run_pass()  # adopt or program the table before READY=1
        self.health.start()
        self.rs_events.changed(self.config.virtual_servers, self.health.health())  # baseline
        if self.config.bgp is not None:  # announced once IPVS holds the table (first pass above)
            self.bgp = self._bgp(self.config.bgp)
            self.bgp.start()
        self.ipvs_loop.on_pass = self._kick_bgp
        sup = self.supervisor
        sup.keep("ipvs-reconciler", self.ipvs_loop.loop, critical=True)
        sup.keep("vip-reconciler", self.vips.loop, critical=True)
        sup.keep("netlink-watch", self._watch, critical=True)
        sup.keep("vrrp-setup", self.driver.retry_setup, critical=True)
        await self._start_servers()
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._loop.add_signal_handler(signum, self._stop.set)
        self._loop.add_signal_handler(signal.SIGHUP, self._sighup)
        if self.ports.watchdog_interval is not None:
            sup.keep("watchdog", self._watchdog)
        self.ports.notifier.notify("READY=1", f"STATUS={self._summary()}")
        gc.freeze()  # what start-up built stays: full collections skip it (no 30-55 ms pauses)
        log.info("started", name=self.config.daemon.name, version=__version__, pid=os.getpid())
        self.ports.release_memory()  # what loading freed goes back to the kernel
        await self._stop.wait()
        self.ports.notifier.notify("STOPPING=1")
        await self._shutdown()
        return 0

    def stop(self) -> None:
        self._stop.set()

    async def _start_servers(self) -> None:
        d = self.config.daemon
        self.control = self.ports.control(d.control_socket, self._control, d.control_group)
        try:
            await self.control.start()
            if getattr(self.control, "group_error", None) is not None:
                log.error("control socket group", error=self.control.group_error)
        except OSError as exc:
            log.error("control socket unavailable", path=d.control_socket, error=str(exc))
            self.control = None
        if d.metrics:
            self.metrics = self.ports.metrics(d.metrics, self.status)
            try:
                await self.metrics.start()
            except Exception as exc:  # metrics are not worth a lost VIP
                log.error("metrics unavailable", error=str(exc))
                self.metrics = None

    async def _watchdog(self) -> None:
        """Feed systemd's watchdog from the loop, while every critical task lives."""
        interval = self.ports.watchdog_interval or 1.0
        starving = False
        while True:
            if self.supervisor.healthy:
                self.ports.notifier.notify("WATCHDOG=1", f"STATUS={self._summary()}")
                starving = False
            elif not starving:
                log.error("a critical task keeps failing: no longer feeding the watchdog")
                starving = True
            await asyncio.sleep(interval)

    def _summary(self) -> str:
        return ", ".join(
            f"{i.cfg.name} {i.router.state.value}" for i in self.driver.instances.values()
        )

    async def _shutdown(self) -> None:
        """Priority 0 from every master, then remove the VIPs; IPVS stays."""
        log.info("stopping")
        hooks_until = self._loop.time() + HOOKS_UNTIL
        self.stopping = True
        self._loop.remove_signal_handler(signal.SIGHUP)
        if self.bgp is not None:  # the withdrawal before anything else stops
            await self._step("withdraw BGP routes", self.bgp.close(BGP_GRACE), BGP_GRACE + 0.2)
        await self._step("stop track scripts", self.tracking.close(), SCRIPTS_GRACE)
        for inst in list(self.driver.instances.values()):
            self.driver.stop(inst)  # also cancels its gratuitous ARPs
        self.vips.stopping = True
        await self._step("remove VIPs", self.vips.reconcile(), STOP_GRACE)
        await self._step("drain hooks", self.hooks.drain(max(hooks_until - self._loop.time(), 0)))
        if self.mailer is not None:
            await self._step("send alerts", asyncio.to_thread(self.mailer.close, MAIL_GRACE))
        await self._step("close hooks", self.hooks.close())
        self.health.stop()
        await self._step("close IPVS", self.ipvs_loop.close(self.config.virtual_servers))
        await self._step("stop health checks", self.health.wait_stopped())
        await self._step("stop tasks", self.supervisor.stop())
        self.driver.close()
        for server in (self.control, self.metrics):
            if server is not None:
                await self._step("close server", server.close())
        self.ports.netlink.close()
        log.info("stopped")

    @staticmethod
    async def _step(what: str, step: Awaitable[Any], timeout: float | None = None) -> None:
        """One step of the stop sequence: a failure is logged, the rest still runs."""
        try:
            async with asyncio.timeout(timeout):
                await step
        except Exception as exc:
            log.error(f"stop: could not {what}", error=repr(exc))

    # ------------------------------------------------------------ events --

    def _state_changed(self, inst: Instance, change: StateChanged) -> None:
        from lvsha.adapters.hooks import hooks_for

        cfg = inst.cfg
        per_state = {
            "MASTER": cfg.notify_master,
            "BACKUP": cfg.notify_backup,
            "FAULT": cfg.notify_fault,
        }
        # keepalived says STOP where the RFC's machine goes back to Initialize
        state = "STOP" if change.new is State.INIT else change.new.value
        self.hooks.submit(
            hooks_for(
                cfg.notify, per_state, cfg.name, state, inst.router.params.priority, change.reason
            )
        )
        if cfg.sync_daemon_interface:
            self._kick_ipvs()
        self.vips.kick()
        if cfg.smtp_alert and self.mailer is not None and state in ALERT_STATES:
            from lvsha.adapters.smtp import vrrp_alert

            self.mailer.submit(*vrrp_alert(self.config.daemon.name, cfg.name, state))

    def _group_alert(self, group: SyncGroupConfig, state: State) -> None:
        if group.smtp_alert and self.mailer is not None and state.value in ALERT_STATES:
            from lvsha.adapters.smtp import group_alert

            self.mailer.submit(*group_alert(self.config.daemon.name, group.name, state.value))

    def _set_mailer(self, config: Config) -> None:
        """E-mail alerts (adapters/smtp.py): a thread of their own, off the VRRP path."""
        smtp = config.daemon.smtp
        if smtp is None:
            old, self.mailer = self.mailer, None
            if old is not None:
                threading.Thread(target=old.close, args=(MAIL_GRACE,), daemon=True).start()
        elif self.mailer is None:
            from lvsha.adapters.smtp import Mailer  # smtplib only where mail is configured

            self.mailer = Mailer(smtp)
        else:
            self.mailer.cfg = smtp

    async def _watch(self) -> None:
        """Supervised: read every watched link again (events may have been lost), then follow."""
        for inst in list(self.driver.instances.values()):
            for ifname in inst.watched_links:
                try:
                    up = await self.ports.netlink.link_up(ifname)
                except Exception as exc:
                    log.error("link state unknown", link=ifname, error=str(exc))
                    continue
                self.driver.link_changed(ifname, up)
        self.vips.kick()
        await self.ports.netlink.watch(self._netlink_event)

    def _netlink_event(self, event: Any) -> None:
        if isinstance(event, LinkEvent):
            self.driver.link_changed(event.ifname, event.up)
            self.tracking.link_changed(event.ifname, event.up)
        elif event.address in self._vip_addresses():
            if not event.added:
                self.vips.kick()  # a VIP deleted by hand goes back
        elif event.added:
            self.driver.address_added(event.ifname)

    def _sighup(self) -> None:
        self.supervisor.once(self.reload(), "reload")

    # --------------------------------------------------------------- VIPs --

    @staticmethod
    def _config_vips(config: Config) -> dict[str, tuple[VirtualAddress, ...]]:
        vips = {c.name: c.all_vips for c in config.vrrp}
        if config.bgp is not None:  # announced VIPs live on lo from start to stop
            vips[BGP_GROUP] = lo_vips(config.virtual_servers)
        return vips

    def _instance_vips(self) -> dict[str, tuple[VirtualAddress, ...]]:
        vips = {name: i.cfg.all_vips for name, i in self.driver.instances.items()}
        if self.config.bgp is not None:
            vips[BGP_GROUP] = lo_vips(self.config.virtual_servers)
        return vips

    def _masters(self) -> list[str]:
        masters = [n for n, i in self.driver.instances.items() if i.router.state is State.MASTER]
        return [*masters, BGP_GROUP] if self.config.bgp is not None else masters

    def _vip_addresses(self) -> set[str]:
        return {v.address for v in self.vips.owned}

    async def _remove_stale_vips(self) -> None:
        """VIPs left behind by a crash (kill -9) go before we elect anew."""
        try:
            for change in await self.vips.reconcile():
                if change.startswith("added"):  # an announced BGP VIP going onto lo
                    log.info("vip", change=change)
                else:
                    log.warning("stale vip", change=change)
        except Exception as exc:
            log.error("could not remove stale VIPs", error=str(exc))

    # --------------------------------------------------------------- IPVS --

    def _kick_ipvs(self) -> None:
        self.ipvs_loop.kick()

    # ---------------------------------------------------------------- BGP --

    def _bgp(self, cfg: BgpConfig) -> BgpAnnouncer:
        if self.ports.speaker is not None:
            speaker = self.ports.speaker(cfg)
        else:
            from lvsha.adapters.bgp_speakers import speaker_for

            speaker = speaker_for(cfg)
        return BgpAnnouncer(
            cfg,
            speaker,
            self.supervisor,
            lambda: self.health.quorum(),
            lambda: self.health.checked(),
            lambda: self.ipvs_loop.programmed,
            lambda: self.vips.held or set(),
            lambda: self.config.virtual_servers,
            self._loop.time,
            self.ports.proc_sys,
        )

    def _kick_bgp(self) -> None:
        if self.bgp is not None:
            self.bgp.kick()

    def _reload_bgp(self, new: BgpConfig | None) -> None:
        """[bgp] changed: the old speaker withdraws and stops, then the new one starts.

        In turn, not side by side: two speakers of one director would collide
        at the router (RFC 4271 section 6.8).
        """
        old = self.bgp
        if old is not None and new is not None and _same_speaker(old.cfg, new):
            old.reconfigure(new)  # services or path attributes: the sessions stay up
            return
        self.bgp = self._bgp(new) if new is not None else None
        self.supervisor.once(self._swap_bgp(old, self.bgp), "bgp-reload")

    async def _swap_bgp(self, old: BgpAnnouncer | None, new: BgpAnnouncer | None) -> None:
        if old is not None:
            await old.close(BGP_GRACE)
        if new is not None and not self.stopping:
            new.start()

    def _health_changed(self) -> None:
        """The health checker's batch of changes: IPVS, then notify_up/down and mail."""
        services = self.health.changed_services()  # only these: one service's work, not all
        self.ipvs_loop.kick(services)
        self._kick_bgp()
        self.rs_events.changed(self.config.virtual_servers, self.health.health(), services)

    def _role(self) -> SyncDaemonRole | None:
        """The sync daemon follows the first instance that names an interface; else [bgp]'s."""
        for inst in self.driver.instances.values():
            interface = inst.cfg.sync_daemon_interface
            if interface:
                from lvsha.runtime.ipvs_sync import SyncDaemonRole  # pyroute2: only if needed

                state = {State.MASTER: "master", State.BACKUP: "backup"}.get(inst.router.state)
                return SyncDaemonRole(state, interface, inst.cfg.virtual_router_id)
        bgp = self.config.bgp
        if bgp is not None and bgp.sync_daemon_interface and not self.stopping:
            from lvsha.runtime.ipvs_sync import SyncDaemonRole

            return SyncDaemonRole("both", bgp.sync_daemon_interface, bgp.sync_daemon_id)
        return None

    # ------------------------------------------------------------- reload --

    async def reload(self) -> None:
        """One reload at a time; READY=1 always follows RELOADING=1.

        Two reloads that overlapped while awaiting the kernel each started
        their own copy of an instance: the lock keeps them in turn.
        """
        async with self._reload_lock:
            if self.stopping or self.config_path is None:
                return
            self.ports.notifier.notify("RELOADING=1")
            self.reload_applied = False
            try:
                await self._reload(self.config_path)
            except Exception as exc:  # a bug: the running configuration stays
                self.reload_error = [f"reload failed: {exc!r}"]
                log.error(
                    "reload failed; keeping the running configuration",
                    error=repr(exc),
                    traceback="".join(traceback.format_exception(exc)),
                )
            finally:
                summary = self._summary() if self.reload_applied else "reload refused"
                self.ports.notifier.notify("READY=1", f"STATUS={summary}")

    async def _reload(self, path: str) -> None:
        """Validate, build every new instance completely, then swap at once."""
        try:
            new = load_config(path)
        except ConfigError as exc:
            self.reload_error = exc.problems
            log.error("reload refused; keeping the running configuration", problems=exc.problems)
            return
        running = {name: inst.cfg for name, inst in self.driver.instances.items()}
        wanted = {c.name: c for c in new.vrrp}
        built: list[Instance] = []
        try:
            for name, cfg in wanted.items():
                if running.get(name) != cfg:
                    built.append(await self.driver.prepare(cfg))
                    await self.tracking.attach(built[-1], new)
        except BaseException:
            for inst in built:
                self.driver.discard(inst)
            raise
        if self.stopping:  # SIGTERM came while we built: start nothing
            for inst in built:
                self.driver.discard(inst)
            return
        # the swap: no await from here on, so nothing sees half of it
        for name, inst in list(self.driver.instances.items()):
            if wanted.get(name) != inst.cfg:
                self.driver.stop(inst)
        self.config = new
        self.vips.own(self._config_vips(new))
        for inst in built:
            self.driver.start(inst)
        self.tracking.reconfigure(new)
        self._set_mailer(new)
        self._reload_bgp(new.bgp)
        self.reloads += 1
        self.reload_applied = True
        self.reload_error = [
            f"vrrp.{i.cfg.name}: {i.setup_fault} (retrying)" for i in built if i.setup_fault
        ]
        self.health.update(new.virtual_servers)
        self.vips.kick()
        self.ipvs.verify_soon()  # a reload also reads the kernel's table and counters anew
        self._kick_ipvs()
        gc.freeze()
        log.info("reloaded", instances=sorted(self.driver.instances))

    # ------------------------------------------------------------- status --

    async def _control(self, request: dict[str, Any]) -> dict[str, Any]:
        command = request.get("command")
        if command == "status":
            return self.status()
        if command == "reload":
            if self.stopping:
                return {"reloaded": False, "errors": ["the daemon is stopping"]}
            await self.reload()
            return {"reloaded": self.reload_applied, "errors": self.reload_error}
        if command in ("drain", "undrain"):
            return self._drain(command, str(request.get("reason") or "lvsha drain"))
        return {"error": f"unknown command {command!r}"}

    def _drain(self, command: str, reason: str) -> dict[str, Any]:
        """`lvsha drain` / `undrain`: the drain file written or removed, then decided at once."""
        if self.bgp is None:
            return {"error": "this director announces nothing over BGP (no [bgp] table)"}
        error = self.bgp.drain(reason) if command == "drain" else self.bgp.undrain()
        if error is not None:
            return {"error": error}
        return {"drained": self.bgp.drained, "bgp": self.bgp.status(self._wall)}

    def _wall(self, monotonic: float) -> float:
        return time.time() - (self._loop.time() - monotonic)

    def status(self) -> dict[str, Any]:
        """The document behind `lvsha status --json` (docs/status.md)."""
        now = self._loop.time()
        return {
            "daemon": {
                "name": self.config.daemon.name,
                "version": __version__,
                "pid": os.getpid(),
                "config": self.config_path,
                "started_at": self.started_at,
                "reloads": self.reloads,
                "reload_error": self.reload_error,
                "warnings": list(self.config.warnings),
                "hooks": {
                    "ran": self.hooks.ran,
                    "failed": self.hooks.failed,
                    "timed_out": self.hooks.timed_out,
                    "dropped": self.hooks.dropped,
                },
                "tasks": self.supervisor.status(),
                "mail": self.mailer.status() if self.mailer is not None else None,
                "vip_error": self.vips.error,
            },
            "instances": [
                status.instance_status(inst, now, self._wall, self.tracking.status(name))
                for name, inst in self.driver.instances.items()
            ],
            "interfaces": status.interface_status(self.driver.interfaces),
            "virtual_servers": status.virtual_server_status(
                self.config.virtual_servers, self.health, self.ipvs
            ),
            "ipvs": self.ipvs.status(),
            "bgp": None if self.bgp is None else self.bgp.status(self._wall),
        }


def _same_speaker(old: BgpConfig, new: BgpConfig) -> bool:
    """What only the decision reads may change without restarting the speaker."""

    def speaker_part(c: BgpConfig) -> BgpConfig:
        return dataclasses.replace(
            c, communities=(), med=None, next_hop=None, drain_file="", reannounce_delay=0.0
        )

    return speaker_part(old) == speaker_part(new)


def _tracking(
    ports: Ports, driver: VrrpDriver, supervisor: Supervisor, hooks: Any, config: Config
) -> Tracking:
    from lvsha.adapters import scripts

    return Tracking(
        driver,
        ports.netlink,
        supervisor,
        hooks,
        ports.scripts() if ports.scripts is not None else scripts.ScriptRunner(),
        ports.read_file or scripts.read_track_file,
        config,
    )


async def run(config: Config, config_path: str | None, early: EarlySockets | None = None) -> int:
    from lvsha.runtime.ports import real_ports

    return await Daemon(config, config_path, real_ports(), early).run()
