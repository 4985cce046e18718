"""Runs the tracking of core/tracking.py: scripts, weighted links, files, sync groups.

One timer per script monitor (on its `deadline`), the script processes
through a `ScriptRunner` port, tracked files polled every FILE_POLL seconds,
weighted links from the daemon's netlink events. After every change the
instances that track the object are evaluated again: the effective priority
goes to the router (the next advert carries it) and weight-0 failures
become router faults. Every input to a sync-group member (the driver's
`on_executed`) settles its group; the group's hooks run after the members'.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from lvsha import logs
from lvsha.adapters.hooks import HookRun
from lvsha.config import Config, VrrpInstanceConfig
from lvsha.config.model import SyncGroupConfig, VrrpScriptConfig
from lvsha.core.tracking import (
    Evaluation,
    GroupStateChanged,
    KillScript,
    Kind,
    RunScript,
    ScriptAction,
    ScriptMonitor,
    ScriptParams,
    ScriptStatusChanged,
    SyncGroup,
    Tracked,
    evaluate,
    parse_track_file,
)
from lvsha.core.vrrp import Action, State
from lvsha.errors import KernelError
from lvsha.runtime.ports import Hooks, Netlink, ScriptRunner
from lvsha.runtime.supervisor import Supervisor
from lvsha.runtime.vrrp_driver import Instance, VrrpDriver

log = logs.get("lvsha")

FILE_POLL = 1.0  # seconds between two reads of the tracked files


def tracked_objects(
    cfg: VrrpInstanceConfig, scripts: Iterable[VrrpScriptConfig]
) -> tuple[Tracked, ...]:
    """What one instance tracks, each with its weight (track_script overrides the script's)."""
    weights = {s.name: s.weight for s in scripts}
    out = [
        Tracked(
            Kind.SCRIPT, ref.name, weights.get(ref.name, 0) if ref.weight is None else ref.weight
        )
        for ref in cfg.track_script
    ]
    out += [
        Tracked(Kind.INTERFACE, ref.name, ref.weight or 0) for ref in cfg.track_interface_weights
    ]
    out += [Tracked(Kind.FILE, ref.name, ref.weight or 0) for ref in cfg.track_file]
    return tuple(out)


def _file_in(paths: frozenset[str]) -> Callable[[Tracked], bool]:
    return lambda t: t.kind is Kind.FILE and t.name in paths


def group_hooks(cfg: SyncGroupConfig, state: State) -> list[HookRun]:
    """keepalived's send_group_notifies: notify_STATE as written, then notify GROUP NAME STATE 0."""
    runs = []
    specific = {
        State.MASTER: cfg.notify_master,
        State.BACKUP: cfg.notify_backup,
        State.FAULT: cfg.notify_fault,
    }.get(state, ())
    reason = f"sync group {cfg.name}"
    if specific:
        runs.append(HookRun(specific, cfg.name, state.value, 0, reason))
    if cfg.notify:
        argv = (*cfg.notify, "GROUP", cfg.name, state.value, "0")
        runs.append(HookRun(argv, cfg.name, state.value, 0, reason))
    return runs


class Tracking:
    """The tracked objects of every instance of one daemon, and its sync groups."""

    def __init__(
        self,
        driver: VrrpDriver,
        netlink: Netlink,
        supervisor: Supervisor,
        hooks: Hooks,
        runner: ScriptRunner,
        read_file: Callable[[str], bytes | None],
        config: Config,
    ) -> None:
        self.driver = driver
        self.netlink = netlink
        self.supervisor = supervisor
        self.hooks = hooks
        self.runner = runner
        self.read_file = read_file
        self.config = config
        self.monitors: dict[str, ScriptMonitor] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self.links: dict[str, bool] = {}
        self.files: dict[str, int] = {}
        # per router (not per name: a reload builds a new router for a changed
        # instance, which must get every fault afresh while the old one runs on)
        self.evaluations: dict[int, Evaluation] = {}
        self.groups: dict[str, SyncGroup] = {}
        self._settling = False
        self._group_states: dict[str, State | None] = {}
        self.stopping = False
        # the daemon's e-mail alert for a group transition
        self.on_group_state: Callable[[SyncGroupConfig, State], None] | None = None
        self._loop = asyncio.get_running_loop()

    # ------------------------------------------------------------ set-up --

    def _tracked(self, cfg: VrrpInstanceConfig) -> tuple[Tracked, ...]:
        return tracked_objects(cfg, self.config.vrrp_scripts)

    def _group_of(self, name: str) -> SyncGroupConfig | None:
        for g in self.config.sync_groups:
            if name in g.group:
                return g
        return None

    async def attach(self, inst: Instance, config: Config) -> None:
        """Before the instance starts: its links and files read, its faults and priority set."""
        tracked = tracked_objects(inst.cfg, config.vrrp_scripts)
        for t in tracked:
            if t.kind is Kind.INTERFACE and t.name not in self.links:
                try:
                    self.links[t.name] = await self.netlink.link_up(t.name)
                except KernelError as exc:
                    log.error("link state unknown", link=t.name, error=str(exc))
                    self.links[t.name] = False
            elif t.kind is Kind.FILE:
                self._read(t.name)
        if any(inst.cfg.name in g.group for g in config.sync_groups):
            inst.router.sync_gate = True
        self._apply(inst, tracked, execute=False)

    def start(self) -> None:
        """Start the script monitors and the file poll; settle the groups."""
        self._sync_monitors()
        if self._tracked_files():
            self.supervisor.keep("track-files", self._poll_files)
        for name in list(self.driver.instances):
            self.executed(self.driver.instances[name])

    def reconfigure(self, config: Config) -> None:
        """After a reload's swap: new scripts, weights and groups; no await."""
        self.config = config
        live = {id(i.router) for i in self.driver.instances.values()}
        self.evaluations = {k: v for k, v in self.evaluations.items() if k in live}
        states = {name: g.state for name, g in self.groups.items()}
        self.groups.clear()
        self._group_states = states  # a rebuilt group keeps its state: no spurious notify
        self._sync_monitors()
        if self._tracked_files():
            self.supervisor.keep("track-files", self._poll_files)
        self.reevaluate(lambda t: True)

    async def close(self) -> None:
        self.stopping = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for m in self.monitors.values():
            m.stop()
        await self.runner.close()

    def _sync_monitors(self) -> None:
        wanted: dict[str, ScriptParams] = {}
        used = {t.name for c in self.config.vrrp for t in self._tracked(c) if t.kind is Kind.SCRIPT}
        for s in self.config.vrrp_scripts:
            if s.name in used:
                wanted[s.name] = ScriptParams(
                    s.name, s.interval, s.timeout or s.interval, s.rise, s.fall, s.init_fail
                )
        for name in list(self.monitors):
            if wanted.get(name) != self.monitors[name].params:
                self.monitors.pop(name).stop()
                self.runner.kill(name)
                timer = self._timers.pop(name, None)
                if timer is not None:
                    timer.cancel()
        for name, params in wanted.items():
            if name not in self.monitors:
                self.monitors[name] = ScriptMonitor(params)
                self._script_actions(name, self.monitors[name].start(self._loop.time()))

    # ------------------------------------------------------------ scripts --

    def _script_actions(self, name: str, actions: list[ScriptAction]) -> None:
        cfg = next((s for s in self.config.vrrp_scripts if s.name == name), None)
        changed = False
        for a in actions:
            if isinstance(a, RunScript) and cfg is not None:
                self.runner.start(
                    name, cfg.script, cfg.user, cfg.group, lambda code: self._exited(name, code)
                )
            elif isinstance(a, KillScript):
                self.runner.kill(name)
                log.warning("track script timed out", script=name)
            elif isinstance(a, ScriptStatusChanged):
                log.info("track script", script=name, ok=a.ok, reason=a.reason)
                changed = True
        self._arm(name)
        if changed:
            self.reevaluate(lambda t: t.kind is Kind.SCRIPT and t.name == name)

    def _exited(self, name: str, code: int) -> None:
        m = self.monitors.get(name)
        if m is not None and not self.stopping:
            self._script_actions(name, m.exited(self._loop.time(), code))

    def _arm(self, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()
        m = self.monitors.get(name)
        if m is None or m.deadline is None or self.stopping:
            return
        self._timers[name] = self._loop.call_at(m.deadline, self._fire, name)

    def _fire(self, name: str) -> None:
        self._timers.pop(name, None)
        m = self.monitors.get(name)
        if m is not None:
            now = max(self._loop.time(), m.deadline or 0.0)
            self._script_actions(name, m.timer_fired(now))

    # ------------------------------------------------------ links, files --

    def link_changed(self, ifname: str, up: bool) -> None:
        if ifname in self.links and self.links[ifname] != up:
            self.links[ifname] = up
            self.reevaluate(lambda t: t.kind is Kind.INTERFACE and t.name == ifname)

    def _tracked_files(self) -> set[str]:
        return {t.name for c in self.config.vrrp for t in self._tracked(c) if t.kind is Kind.FILE}

    def _read(self, path: str) -> bool:
        old = self.files.get(path, 0)
        self.files[path] = parse_track_file(self.read_file(path), old)
        return self.files[path] != old

    async def _poll_files(self) -> None:
        """Supervised: read every tracked file each FILE_POLL seconds."""
        while True:
            await asyncio.sleep(FILE_POLL)
            changed = frozenset(p for p in self._tracked_files() if self._read(p))
            if changed:
                self.reevaluate(_file_in(changed))

    # --------------------------------------------------------- evaluation --

    def reevaluate(self, affects: Callable[[Tracked], bool]) -> None:
        for inst in list(self.driver.instances.values()):
            tracked = self._tracked(inst.cfg)
            if any(affects(t) for t in tracked) or id(inst.router) not in self.evaluations:
                self._apply(inst, tracked, execute=True)

    def _apply(self, inst: Instance, tracked: tuple[Tracked, ...], execute: bool) -> None:
        scripts = {name: m.ok for name, m in self.monitors.items()}
        ev = evaluate(inst.cfg.priority, tracked, scripts, self.links, self.files)
        old = self.evaluations.get(id(inst.router))
        self.evaluations[id(inst.router)] = ev
        now = self._loop.time()
        router = inst.router
        actions: list[Action] = []
        if ev.effective != router.params.priority:
            log.info(
                "effective priority",
                instance=inst.cfg.name,
                old=router.params.priority,
                new=ev.effective,
            )
            actions += router.set_priority(now, ev.effective)
        before = old.faults if old is not None else frozenset()
        for fault in sorted(ev.faults - before):
            actions += router.fault_changed(now, fault, True)
        for fault in sorted(before - ev.faults):
            actions += router.fault_changed(now, fault, False)
        if execute:
            self.driver.execute(inst, actions)

    # -------------------------------------------------------- sync groups --

    def _sync_group(self, cfg: SyncGroupConfig) -> SyncGroup | None:
        """The group over the running members; None until every member runs."""
        members = {n: self.driver.instances.get(n) for n in cfg.group}
        if any(i is None for i in members.values()):
            return None
        routers = {n: i.router for n, i in members.items() if i is not None}
        group = self.groups.get(cfg.name)
        if group is None or any(group.members.get(n) is not r for n, r in routers.items()):
            old_state = group.state if group is not None else self._group_states.get(cfg.name)
            group = SyncGroup(cfg.name, routers)
            group.state = old_state
            self.groups[cfg.name] = group
        return group

    def executed(self, inst: Instance) -> None:
        """The driver carried out actions of `inst`: bring its sync group in line."""
        if self._settling or self.stopping:
            return
        cfg = self._group_of(inst.cfg.name)
        if cfg is None:
            return
        group = self._sync_group(cfg)
        if group is None:
            return
        self._settling = True
        try:
            for item in group.settle(self._loop.time()):
                if isinstance(item, GroupStateChanged):
                    old = item.old.value if item.old is not None else None
                    log.info("sync group", group=item.group, old=old, new=item.new.value)
                    self.hooks.submit(group_hooks(cfg, item.new))
                    if self.on_group_state is not None:
                        self.on_group_state(cfg, item.new)
                else:
                    member = self.driver.instances.get(item[0])
                    if member is not None:
                        self.driver.execute(member, item[1])
        finally:
            self._settling = False

    # ------------------------------------------------------------- status --

    def status(self, name: str) -> dict[str, Any]:
        inst = self.driver.instances.get(name)
        ev = self.evaluations.get(id(inst.router)) if inst is not None else None
        tracked: list[dict[str, Any]] = [
            {
                "kind": c.kind.value,
                "name": c.name,
                "weight": c.weight,
                "state": c.state,
                "contribution": c.priority,
                "fault": c.fault,
            }
            for c in (ev.contributions if ev is not None else ())
        ]
        group = self._group_of(name)
        sync = None
        if group is not None:
            live = self.groups.get(group.name)
            state = live.state.value if live is not None and live.state is not None else None
            sync = {"name": group.name, "state": state, "members": list(group.group)}
        scripts = {
            t["name"]: {
                "runs": self.monitors[t["name"]].runs,
                "timeouts": self.monitors[t["name"]].timeouts,
                "last_exit": self.monitors[t["name"]].last_exit,
            }
            for t in tracked
            if t["kind"] == "script" and t["name"] in self.monitors
        }
        for t in tracked:
            if t["name"] in scripts and t["kind"] == "script":
                t.update(scripts[t["name"]])
        return {"tracked": tracked, "sync_group": sync}
