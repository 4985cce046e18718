"""The only wiring: event loop, one timer per virtual router, signals, reload.

Each VRRP instance is a pure `VirtualRouter` driven by this module: datagrams
from the raw socket, deadlines and link events go in, actions come out and
are carried out here. Kernel state (VIPs) is declarative: the desired set is
derived from the routers' states and reconciled in its own task, so a slow
or failing netlink call never delays an advertisement.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lvsha import __version__, logs
from lvsha.adapters import addresses
from lvsha.adapters.arp import GratuitousArp
from lvsha.adapters.control import ControlServer
from lvsha.adapters.hooks import HookRunner, hooks_for
from lvsha.adapters.metrics import MetricsServer
from lvsha.adapters.systemd import Notifier, watchdog_interval
from lvsha.adapters.vrrp_socket import VrrpReceiver, VrrpSender
from lvsha.config import Config, VirtualAddress, VrrpInstanceConfig, load_config
from lvsha.core.desired import DestKey, desired_ipvs, service_key
from lvsha.core.packet import AUTH_NONE, AUTH_PASS, VRRP_MULTICAST_GROUP, decode_ipv4, pad_password
from lvsha.core.vrrp import (
    Action,
    Discarded,
    RouterParams,
    SendAdvert,
    SendGratuitousArp,
    State,
    StateChanged,
    VirtualRouter,
)
from lvsha.errors import ConfigError, KernelError, PacketError
from lvsha.health_checker import HealthChecker
from lvsha.ipvs_sync import IpvsSync, SyncDaemonRole

log = logs.get("lvsha")

VIP_RESYNC_INTERVAL = 5.0  # seconds between full VIP checks, besides netlink events
RETRY_INTERVAL = 1.0  # after a failed kernel call
STOP_GRACE = 1.5  # SIGTERM must be done within 2 s
HOOK_GRACE = 0.3  # of which queued hooks may take this much
IPVS_RESYNC_INTERVAL = 10.0  # seconds between full IPVS passes, besides changes
IPVS_RETRY_INTERVAL = 5.0  # after a kernel error (e.g. ip_vs missing)
IPVS_STOP_GRACE = 0.3
# asyncio's epoll wait rounds its timeout up to a whole millisecond, so a
# timer set for the deadline fires up to 1 ms late; set it that much early
# and treat it as the deadline (docs/benchmarks-vrrp.md).
TIMER_SLACK = 0.001
DISCARD_LOG_INTERVAL = 10.0  # at most one log line per drop reason and instance


def router_params(cfg: VrrpInstanceConfig) -> RouterParams:
    """The pure machine's parameters from one instance's configuration."""
    auth_type = AUTH_PASS if cfg.auth_type == "pass" else AUTH_NONE
    auth_data = pad_password(cfg.auth_password.encode()) if auth_type == AUTH_PASS else b"\0" * 8
    return RouterParams(
        name=cfg.name,
        vrid=cfg.virtual_router_id,
        priority=cfg.priority,
        adver_int=cfg.advert_int,
        addresses=tuple(v.address for v in cfg.virtual_ipaddress),
        preempt=cfg.preempt,
        preempt_delay=cfg.preempt_delay,
        auth_type=auth_type,
        auth_data=auth_data,
        unicast_peers=cfg.unicast_peers,
        garp_master_delay=cfg.garp_master_delay,
        garp_master_repeat=cfg.garp_master_repeat,
        garp_master_refresh=cfg.garp_master_refresh,
        garp_master_refresh_repeat=cfg.garp_master_refresh_repeat,
    )


@dataclass
class Instance:
    """One running VRRP instance: its machine, its wire and its timer."""

    cfg: VrrpInstanceConfig
    router: VirtualRouter
    arp: GratuitousArp
    sender: VrrpSender | None = None
    timer: asyncio.TimerHandle | None = None
    last_discard_log: dict[str, float] = field(default_factory=dict)

    @property
    def destinations(self) -> tuple[str, ...]:
        return self.cfg.unicast_peers or (VRRP_MULTICAST_GROUP,)

    @property
    def watched_links(self) -> tuple[str, ...]:
        return (self.cfg.interface, *self.cfg.track_interface)


class Daemon:
    """Runs the VRRP instances of one configuration until told to stop."""

    def __init__(self, config: Config, config_path: str | None = None) -> None:
        self.config = config
        self.config_path = config_path
        self.instances: dict[str, Instance] = {}
        self.receivers: dict[str, VrrpReceiver] = {}
        self.netlink = addresses.Netlink()
        self.vips = addresses.AddressReconciler(self.netlink)
        self.control: ControlServer | None = None
        self.notifier = Notifier()
        self.hooks = HookRunner()
        self.metrics: MetricsServer | None = None
        self.ipvs = IpvsSync()
        self.health = HealthChecker(config.virtual_servers, self._kick_ipvs)
        self._ipvs_kick = asyncio.Event()
        self.started_at = time.time()
        self.reload_error: list[str] = []
        self.reloads = 0
        self._stop = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._vip_kick = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = asyncio.get_running_loop()  # constructed inside the loop

    # ---------------------------------------------------------- lifecycle --

    async def run(self) -> int:
        await self.netlink.open()
        self.vips.owned = self._owned_vips(self.config)
        await self._remove_stale_vips()
        for cfg in self.config.vrrp:
            await self._start_instance(cfg)
        self.ipvs.start()
        await self._ipvs_pass()  # adopt or program the table before READY=1
        self.health.start()
        self._spawn(self._ipvs_loop(), "ipvs-reconciler")
        self._spawn(self._vip_loop(), "vip-reconciler")
        self._spawn(self._watch_loop(), "netlink-watch")
        self.control = ControlServer(
            self.config.daemon.control_socket, self._control, self.config.daemon.control_group
        )
        try:
            await self.control.start()
            if self.control.group_error is not None:
                log.error("control socket group", error=self.control.group_error)
        except OSError as exc:
            log.error("control socket unavailable", path=self.control.path, error=str(exc))
            self.control = None
        if self.config.daemon.metrics:
            self.metrics = MetricsServer(self.config.daemon.metrics, self.status)
            try:
                await self.metrics.start()
            except KernelError as exc:  # metrics are not worth a lost VIP
                log.error("metrics unavailable", error=str(exc))
                self.metrics = None
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._loop.add_signal_handler(signum, self._stop.set)
        self._loop.add_signal_handler(signal.SIGHUP, lambda: self._spawn(self.reload(), "reload"))
        interval = watchdog_interval()
        if interval is not None:
            self._spawn(self._watchdog(interval), "watchdog")
        self.notifier.notify("READY=1", f"STATUS={self._summary()}")
        log.info("started", name=self.config.daemon.name, version=__version__, pid=os.getpid())
        await self._stop.wait()
        self.notifier.notify("STOPPING=1")
        await self._shutdown()
        return 0

    async def _watchdog(self, interval: float) -> None:
        """Feed systemd's watchdog from the loop itself: a stuck loop starves it."""
        while True:
            self.notifier.notify("WATCHDOG=1", f"STATUS={self._summary()}")
            await asyncio.sleep(interval)

    def _summary(self) -> str:
        return ", ".join(f"{i.cfg.name} {i.router.state.value}" for i in self.instances.values())

    async def _shutdown(self) -> None:
        """Priority 0 from every master, then remove the VIPs; IPVS stays."""
        log.info("stopping")
        for inst in list(self.instances.values()):
            self._stop_instance(inst)
        for task in list(self._tasks):
            if not task.get_name().startswith("garp-"):
                task.cancel()
        self.vips.desired = set()
        try:
            async with asyncio.timeout(STOP_GRACE):
                for change in await self.vips.reconcile():
                    log.info("vip", change=change)
        except (KernelError, TimeoutError) as exc:
            log.error("could not remove every VIP on stop", error=str(exc))
        await self.hooks.drain(HOOK_GRACE)
        await self.hooks.close()
        self.health.stop()
        await self._close_ipvs()
        await self.health.wait_stopped()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for receiver in self.receivers.values():
            receiver.close()
        if self.control is not None:
            await self.control.close()
        if self.metrics is not None:
            await self.metrics.close()
        self.netlink.close()
        log.info("stopped")

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task failed", task=task.get_name(), error=repr(task.exception()))

    # ---------------------------------------------------------- instances --

    async def _start_instance(self, cfg: VrrpInstanceConfig) -> None:
        primary = cfg.unicast_src_ip or await self._primary_address(cfg.interface)
        inst = Instance(
            cfg,
            VirtualRouter(router_params(cfg), primary or "0.0.0.0"),
            GratuitousArp(cfg.interface),
        )
        self.instances[cfg.name] = inst
        now = self._loop.time()
        for ifname in inst.watched_links:
            if not await self.netlink.link_up(ifname):
                inst.router.fault_changed(now, f"{ifname} down", True)
        if primary is None:
            inst.router.fault_changed(now, f"no IPv4 address on {cfg.interface}", True)
        else:
            self._open_wire(inst)
        self._execute(inst, inst.router.startup(now))

    async def _primary_address(self, interface: str) -> str | None:
        return await self.netlink.primary_address(interface, (v.address for v in self.vips.owned))

    def _open_wire(self, inst: Instance) -> bool:
        """Open the receiver of the interface and the instance's sender."""
        iface = inst.cfg.interface
        try:
            if iface not in self.receivers:
                multicast = any(
                    not i.cfg.unicast_peers
                    for i in self.instances.values()
                    if i.cfg.interface == iface
                )
                receiver = VrrpReceiver(
                    iface,
                    multicast,
                    lambda data: self._datagram(iface, data),
                    lambda dropped: self._overflow(iface, dropped),
                )
                receiver.open()
                self.receivers[iface] = receiver
            self._expect(iface)
            if inst.sender is None:
                sender = VrrpSender(iface, inst.router.primary_address)
                sender.open()
                inst.sender = sender
        except KernelError as exc:
            log.error("vrrp socket", instance=inst.cfg.name, error=str(exc))
            inst.router.fault_changed(self._loop.time(), f"no socket on {iface}", True)
            return False
        inst.router.fault_changed(self._loop.time(), f"no socket on {iface}", False)
        return True

    def _expect(self, iface: str) -> None:
        """The adverts of the routers on `iface` get a receive queue of their own."""
        routers = [i.router.params for i in self.instances.values() if i.cfg.interface == iface]
        try:
            self.receivers[iface].expect(routers)
        except KernelError as exc:  # every datagram still arrives, in one shared queue
            log.error("vrrp socket filter", interface=iface, error=str(exc))

    def _stop_instance(self, inst: Instance) -> None:
        self._execute(inst, inst.router.shutdown(self._loop.time()))
        if inst.timer is not None:
            inst.timer.cancel()
        if inst.sender is not None:
            inst.sender.close()
        self.instances.pop(inst.cfg.name, None)

    # -------------------------------------------------------------- input --

    def _datagram(self, interface: str, data: bytes) -> None:
        """A VRRP datagram on `interface`: to the router of its VRID."""
        now = self._loop.time()
        here = [i for i in self.instances.values() if i.cfg.interface == interface]
        try:
            header, payload = decode_ipv4(data)
            if len(payload) < 2:
                raise PacketError("length", f"{len(payload)} octets of VRRP")
        except PacketError as exc:
            for inst in here:
                self._execute(inst, [self._count(inst, exc)])
            return
        vrid = payload[1]
        for inst in here:
            if inst.cfg.virtual_router_id == vrid:
                self._execute(inst, inst.router.receive(now, header, payload))
                return
        unknown = PacketError("vrid", f"VRID {vrid} from {header.source} is not configured here")
        for inst in here:
            self._execute(inst, [self._count(inst, unknown)])

    @staticmethod
    def _count(inst: Instance, exc: PacketError) -> Discarded:
        inst.router.stats.discarded[exc.reason] += 1
        return Discarded(exc.reason, exc.detail)

    def _overflow(self, interface: str, dropped: int) -> None:
        """The kernel dropped datagrams from a full receive queue (a flood): count them."""
        detail = f"{dropped} datagrams dropped by the kernel: receive queue full"
        for inst in self.instances.values():
            if inst.cfg.interface == interface:
                inst.router.stats.discarded["overflow"] += dropped
                self._log_discard(inst, Discarded("overflow", detail))

    def _fire(self, inst: Instance) -> None:
        inst.timer = None
        now, deadline = self._loop.time(), inst.router.deadline
        if deadline is not None and deadline - TIMER_SLACK <= now < deadline:
            now = deadline  # armed early by the loop's granularity: this is the deadline
        try:
            self._execute(inst, inst.router.timer_fired(now))
        finally:  # whatever went wrong, the router keeps its timer
            if inst.timer is None:
                self._arm(inst)

    async def _watch_loop(self) -> None:
        """Follow netlink events; if the monitor fails, resync and start again."""
        while True:
            try:
                await addresses.watch(self._netlink_event)
            except Exception as exc:  # e.g. ENOBUFS when events overflow the socket
                log.error("netlink monitor failed; resyncing links", error=repr(exc))
            await asyncio.sleep(RETRY_INTERVAL)
            await self._resync_links()

    async def _resync_links(self) -> None:
        """Read every watched link's state again (events may have been lost)."""
        for inst in list(self.instances.values()):
            for ifname in inst.watched_links:
                try:
                    up = await self.netlink.link_up(ifname)
                except KernelError as exc:
                    log.error("link state unknown", link=ifname, error=str(exc))
                    continue
                self._netlink_event(addresses.LinkEvent(ifname, up))
        self._vip_kick.set()

    def _netlink_event(self, event: addresses.NetlinkEvent) -> None:
        now = self._loop.time()
        if isinstance(event, addresses.LinkEvent):
            for inst in list(self.instances.values()):
                if event.ifname in inst.watched_links:
                    self._execute(
                        inst, inst.router.fault_changed(now, f"{event.ifname} down", not event.up)
                    )
            return
        if event.address in {v.address for v in self.vips.owned}:
            if not event.added:
                self._vip_kick.set()
            return
        for inst in list(self.instances.values()):
            missing = f"no IPv4 address on {inst.cfg.interface}"
            if event.added and event.ifname == inst.cfg.interface and missing in inst.router.faults:
                inst.router.primary_address = event.address
                if self._open_wire(inst):
                    self._execute(inst, inst.router.fault_changed(now, missing, False))

    # ------------------------------------------------------------- output --

    def _execute(self, inst: Instance, actions: Iterable[Action]) -> None:
        """Carry out the machine's actions, then re-arm its timer.

        Adverts go on the wire first (a takeover's advert must not wait for
        the transition's log line and hooks); the rest follow in order.
        """
        actions = list(actions)
        for action in actions:
            if isinstance(action, SendAdvert) and inst.sender is not None:
                inst.sender.send(action.advert.encode(), inst.destinations)
        for action in actions:
            if isinstance(action, SendGratuitousArp):
                self._spawn(
                    inst.arp.announce(action.addresses, action.repeat, inst.cfg.garp_interval),
                    f"garp-{inst.cfg.name}",
                )
            elif isinstance(action, StateChanged):
                self._state_changed(inst, action)
            elif isinstance(action, Discarded):
                self._log_discard(inst, action)
        self._arm(inst)

    def _arm(self, inst: Instance) -> None:
        """Keep one timer on the router's deadline.

        A timer already set for that very deadline stays. Replacing it would
        cancel it even when it is due and queued to run later in this loop
        iteration, behind the socket reader: under a stream of datagrams
        (each one re-arms) the timer would never run, and a flooded master
        stopped advertising.
        """
        deadline = inst.router.deadline
        at = None if deadline is None else deadline - TIMER_SLACK
        if inst.timer is not None:
            if not inst.timer.cancelled() and inst.timer.when() == at:
                return
            inst.timer.cancel()
            inst.timer = None
        if at is not None and inst.cfg.name in self.instances:
            inst.timer = self._loop.call_at(at, self._fire, inst)

    def _state_changed(self, inst: Instance, change: StateChanged) -> None:
        log.info(
            "transition",
            instance=inst.cfg.name,
            old=change.old.value,
            new=change.new.value,
            reason=change.reason,
        )
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
        vips = set(cfg.virtual_ipaddress)
        if change.new is State.MASTER:
            self.vips.desired |= vips
        else:
            self.vips.desired -= vips
        self._vip_kick.set()

    def _log_discard(self, inst: Instance, drop: Discarded) -> None:
        now = self._loop.time()
        if (
            now - inst.last_discard_log.get(drop.reason, -DISCARD_LOG_INTERVAL)
            >= DISCARD_LOG_INTERVAL
        ):
            inst.last_discard_log[drop.reason] = now
            log.warning(
                "datagram invalid",
                instance=inst.cfg.name,
                reason=drop.reason,
                detail=drop.detail,
                count=inst.router.stats.discarded[drop.reason],
            )

    # --------------------------------------------------------------- VIPs --

    @staticmethod
    def _owned_vips(config: Config) -> set[VirtualAddress]:
        return {v for inst in config.vrrp for v in inst.virtual_ipaddress}

    async def _remove_stale_vips(self) -> None:
        """VIPs left behind by a crash (kill -9) go before we elect anew."""
        try:
            for change in await self.vips.reconcile():
                log.warning("stale vip", change=change)
        except KernelError as exc:
            log.error("could not remove stale VIPs", error=str(exc))

    async def _vip_loop(self) -> None:
        """Reconcile VIPs on every kick and every VIP_RESYNC_INTERVAL seconds."""
        wait = VIP_RESYNC_INTERVAL
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._vip_kick.wait()
            self._vip_kick.clear()
            try:
                for change in await self.vips.reconcile():
                    log.info("vip", change=change)
                wait = VIP_RESYNC_INTERVAL
            except KernelError as exc:
                log.error("vip reconcile failed; will retry", error=str(exc))
                wait = RETRY_INTERVAL

    # --------------------------------------------------------------- IPVS --

    def _kick_ipvs(self) -> None:
        self._ipvs_kick.set()

    def _sync_daemon_role(self) -> SyncDaemonRole | None:
        """The sync daemon follows the first instance that names an interface."""
        for inst in self.instances.values():
            interface = inst.cfg.sync_daemon_interface
            if interface:
                state = {State.MASTER: "master", State.BACKUP: "backup"}.get(inst.router.state)
                return SyncDaemonRole(state, interface, inst.cfg.virtual_router_id)
        return None

    async def _ipvs_pass(self) -> bool:
        """Reconcile IPVS once; False (logged, retried later) on a kernel error."""
        role = self._sync_daemon_role()
        if not self.config.virtual_servers and role is None and not self.ipvs.passes:
            return True  # nothing to hold: do not even open IPVS
        desired = desired_ipvs(self.health.effective_virtual_servers())
        try:
            await self.ipvs.apply(desired, role)  # the adapter logs each change it makes
        except KernelError as exc:
            if self.ipvs.error != str(exc):
                log.error("ipvs reconcile failed; will retry", error=str(exc))
            self.ipvs.error = str(exc)
            return False
        return True

    async def _ipvs_loop(self) -> None:
        """A pass on every change (health, VRRP, reload) and every resync interval."""
        wait = IPVS_RESYNC_INTERVAL if self.ipvs.error is None else IPVS_RETRY_INTERVAL
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._ipvs_kick.wait()
            self._ipvs_kick.clear()
            ok = await self._ipvs_pass()
            wait = IPVS_RESYNC_INTERVAL if ok else IPVS_RETRY_INTERVAL

    async def _close_ipvs(self) -> None:
        """The table stays; only services marked ipvs_cleanup_on_stop go."""
        cleanup = [service_key(vs) for vs in self.config.virtual_servers if vs.ipvs_cleanup_on_stop]
        try:
            async with asyncio.timeout(IPVS_STOP_GRACE):
                await self.ipvs.close(cleanup)  # logged by the adapter
        except (KernelError, TimeoutError) as exc:
            log.error("ipvs cleanup on stop incomplete", error=str(exc))

    # ------------------------------------------------------------- reload --

    async def reload(self) -> None:
        """One reload at a time, each starting from what the previous one left.

        A reload awaits the kernel while it starts instances. Two reloads
        that overlapped there each started their own copy of an instance:
        the copy the dict forgot kept its timer, took over on its own and
        advertised, unseen by `lvsha status`.
        """
        async with self._reload_lock:
            await self._reload()

    async def _reload(self) -> None:
        """Parse and validate first; on error keep the running configuration."""
        if self.config_path is None:
            return
        self.notifier.notify("RELOADING=1")
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:
            self.reload_error = exc.problems
            log.error("reload refused; keeping the running configuration", problems=exc.problems)
            self.notifier.notify("READY=1", "STATUS=reload refused: configuration has errors")
            return
        self.reload_error = []
        self.reloads += 1
        old_by_name = {c.name: c for c in self.config.vrrp}
        new_by_name = {c.name: c for c in new.vrrp}
        for name, inst in list(self.instances.items()):
            if new_by_name.get(name) != old_by_name.get(name):
                self._stop_instance(inst)
                self.vips.desired -= set(inst.cfg.virtual_ipaddress)
        self.config = new
        self.vips.owned |= self._owned_vips(new)
        for name, cfg in new_by_name.items():
            if name not in self.instances:
                await self._start_instance(cfg)
        self.health.update(new.virtual_servers)
        self._vip_kick.set()
        self._kick_ipvs()
        self.notifier.notify("READY=1", f"STATUS={self._summary()}")
        log.info("reloaded", instances=sorted(self.instances))

    # ------------------------------------------------------------- status --

    async def _control(self, request: dict[str, Any]) -> dict[str, Any]:
        command = request.get("command")
        if command == "status":
            return self.status()
        if command == "reload":
            await self.reload()
            return {"reloaded": not self.reload_error, "errors": self.reload_error}
        return {"error": f"unknown command {command!r}"}

    def _wall(self, monotonic: float) -> float:
        return time.time() - (self._loop.time() - monotonic)

    def status(self) -> dict[str, Any]:
        """The document behind `lvsha status --json` (docs/status.md)."""
        now = self._loop.time()
        instances = []
        for inst in self.instances.values():
            r = inst.router
            if r.state is State.MASTER:
                master: dict[str, Any] | None = {
                    "address": r.primary_address,
                    "priority": r.params.priority,
                    "self": True,
                }
            elif r.master_seen is not None:
                master = {
                    "address": r.master_seen.address,
                    "priority": r.master_seen.priority,
                    "self": False,
                    "seen_ago": round(now - r.master_seen.at, 3),
                }
            else:
                master = None
            rival = None
            if r.rival is not None and now - r.rival.at <= 3 * r.params.adver_int:
                rival = {
                    "address": r.rival.address,
                    "priority": r.rival.priority,
                    "seen_ago": round(now - r.rival.at, 3),
                }
            transition = None
            if r.last_transition is not None:
                at, reason = r.last_transition
                transition = {"at": self._wall(at), "ago": round(now - at, 3), "reason": reason}
            instances.append(
                {
                    "name": inst.cfg.name,
                    "interface": inst.cfg.interface,
                    "virtual_router_id": inst.cfg.virtual_router_id,
                    "state": r.state.value,
                    "priority": r.params.priority,
                    "advert_int": r.params.adver_int,
                    "preempt": r.params.preempt,
                    "primary_address": r.primary_address,
                    "mode": "unicast" if inst.cfg.unicast_peers else "multicast",
                    "master": master,
                    "split_brain": rival,
                    "warnings": self._instance_warnings(inst),
                    "vips": [f"{v.address}/{v.prefixlen}" for v in inst.cfg.virtual_ipaddress],
                    "faults": sorted(r.faults),
                    "last_transition": transition,
                    "counters": {
                        "adverts_sent": r.stats.adverts_sent,
                        "adverts_received": r.stats.adverts_received,
                        "priority_zero_sent": r.stats.priority_zero_sent,
                        "priority_zero_received": r.stats.priority_zero_received,
                        "became_master": r.stats.became_master,
                        "rival_adverts": r.stats.rival_adverts,
                        "send_errors": inst.sender.send_errors if inst.sender else 0,
                        "garp_sent": inst.arp.sent,
                        "discarded": dict(sorted(r.stats.discarded.items())),
                    },
                }
            )
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
            },
            "instances": instances,
            "virtual_servers": self._virtual_server_status(),
            "ipvs": self.ipvs.status(),
        }

    @staticmethod
    def _instance_warnings(inst: Instance) -> list[str]:
        """What an operator should know though nothing is broken."""
        r = inst.router
        seen = r.master_seen
        if r.state is State.BACKUP and seen is not None and seen.priority == r.params.priority:
            return [
                f"the master {seen.address} has our priority ({seen.priority}): whichever "
                "director starts first stays master; give the preferred one a higher "
                "priority if it should take over"
            ]
        return []

    def _virtual_server_status(self) -> list[dict[str, Any]]:
        checks = self.health.status()
        quorum = self.health.quorum()
        out = []
        for vs in self.config.virtual_servers:
            key = service_key(vs)
            reals = []
            for rs in vs.real_servers:
                check = checks.get((key, DestKey(rs.address, rs.port)))
                entry: dict[str, Any] = {
                    "address": rs.address,
                    "port": rs.port,
                    "weight": rs.weight,
                    "healthy": True if check is None else check.healthy,
                }
                if check is not None:
                    entry["check"] = check.as_dict()
                counters = self.ipvs.stats.get((key, DestKey(rs.address, rs.port)))
                if counters is not None:
                    entry["kernel"] = counters
                reals.append(entry)
            up, live_weight = quorum.get(key, (True, sum(r.weight for r in vs.real_servers)))
            out.append(
                {
                    "address": vs.address,
                    "port": vs.port,
                    "protocol": vs.protocol,
                    "fwmark": vs.fwmark,
                    "scheduler": vs.scheduler,
                    "forwarding": vs.forwarding,
                    "quorum_up": up,
                    "live_weight": live_weight,
                    "kernel": self.ipvs.stats.get((key, None)),
                    "real_servers": reals,
                }
            )
        return out


async def run(config: Config, config_path: str | None) -> int:
    return await Daemon(config, config_path).run()


async def remove_vips(config: Config) -> list[str]:
    """Remove every VIP of the configuration: systemd's ExecStopPost after a crash."""
    netlink = addresses.Netlink()
    await netlink.open()
    try:
        reconciler = addresses.AddressReconciler(netlink)
        reconciler.owned = Daemon._owned_vips(config)
        return await reconciler.reconcile()
    finally:
        netlink.close()
