"""Runs one RealServerHealth machine per checked real server on the running loop.

The shell around `lvsha.core.health`: every machine's `deadline` is re-armed
after every call, as the daemon does for VRRP, but in one heap served by one
loop timer; each `StartProbe` becomes a TCP connect on the shared
`TcpProber` or a task running the configured probe; each result goes back
into the machine and out as a `Report`. Whether this runs in the daemon's
loop or in a worker process is `lvsha.health_checker`'s business.

At most `max_in_flight` probes run at once (each holds a file descriptor);
the rest wait in order. A reload keeps the machine, and so the health, of
every real server whose check did not change.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import heapq
import itertools
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from lvsha.adapters.probe import Probe, ProbeResult, TcpProber, check_kind, probe_for
from lvsha.config import VirtualServerConfig
from lvsha.core.desired import DestKey, ServiceKey, service_key
from lvsha.core.health import (
    Action,
    HealthChanged,
    HealthParams,
    RealServerHealth,
    StartProbe,
    health_params,
    spread,
)

RealKey = tuple[ServiceKey, DestKey]
DEFAULT_MAX_IN_FLIGHT = 1024
TICK = 0.01  # machines due within the same 10 ms fire in one loop iteration


@dataclass(frozen=True, slots=True)
class Target:
    """One checked real server: where it sits, how it is checked."""

    key: RealKey
    kind: str
    params: HealthParams
    check: object  # the check's configuration, compared on reload
    probe: Probe
    tcp: tuple[str, int, float] | None = None  # (address, port, timeout): the fast path


def targets(virtual_servers: Iterable[VirtualServerConfig]) -> list[Target]:
    """Every real server that has a check, in configuration order."""
    out = []
    for vs in virtual_servers:
        skey = service_key(vs)
        for rs in vs.real_servers:
            params = health_params(vs, rs)
            kind = check_kind(rs)
            probe = probe_for(rs, vs.delay_loop)
            if params is None or kind is None or probe is None:
                continue
            tcp = None
            if rs.tcp_check is not None:
                c = rs.tcp_check
                tcp = (c.connect_ip or rs.address, c.connect_port or rs.port, c.connect_timeout)
            out.append(
                Target(
                    (skey, DestKey(rs.address, rs.port)),
                    kind,
                    params,
                    (rs.address, rs.port, rs.check),
                    probe,
                    tcp,
                )
            )
    return out


class Report(NamedTuple):
    """One probe's outcome and the real server's health after it (wall times)."""

    position: int  # in targets(virtual_servers), for this generation of the config
    healthy: bool
    ok: bool
    latency: float
    checked_at: float
    since: float
    detail: str
    reason: str | None  # why the health changed, when this result changed it


@dataclass(slots=True)
class _Slot:
    target: Target
    machine: RealServerHealth
    index: int
    armed: float | None = None  # the deadline queued for this slot, if any
    task: asyncio.Task[ProbeResult] | None = None
    tcp: int = -1  # TcpProber handle while a TCP probe runs


class CheckEngine:
    """Drives the machines of `virtual_servers`; calls `report` after every probe.

    Deadlines of all machines sit in one heap served by one loop timer, and
    TCP checks go through one `TcpProber`: per probe no task, future or timer
    handle is created, which is what lets one core check 10,000 real servers
    a second. HTTP and command checks run as tasks.
    """

    def __init__(
        self,
        virtual_servers: Iterable[VirtualServerConfig],
        report: Callable[[Report], None],
        *,
        initial: Mapping[RealKey, bool] | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    ) -> None:
        self.report = report
        self.max_in_flight = max(1, max_in_flight)
        self.in_flight = 0
        self.probes = 0
        self.slots: list[_Slot] = []
        self._waiting: collections.deque[tuple[_Slot, StartProbe]] = collections.deque()
        self._loop = asyncio.get_running_loop()
        self._running = False
        self._heap: list[tuple[float, int, _Slot]] = []
        self._order = itertools.count()
        self._wake: asyncio.TimerHandle | None = None
        self._wake_at = math.inf
        self._tcp: TcpProber | None = None
        self._build(list(virtual_servers), initial or {}, {})

    @property
    def keys(self) -> list[RealKey]:
        return [s.target.key for s in self.slots]

    def start(self) -> None:
        """Arm every machine: first probes spread over each one's warmup."""
        self._running = True
        if self._tcp is None:
            self._tcp = TcpProber()
        now = self._loop.time()
        for slot in self.slots:
            if slot.machine.since is None:
                slot.machine.start(now)  # never asks for a probe at once
            self._arm(slot)

    def stop(self) -> None:
        """Cancel every timer and probe (a running command is killed)."""
        self._running = False
        for slot in self.slots:
            self._retire(slot)
        self._waiting.clear()
        self._heap.clear()
        if self._wake is not None:
            self._wake.cancel()
            self._wake, self._wake_at = None, math.inf
        if self._tcp is not None:
            self._tcp.close()
            self._tcp = None

    def update(
        self, virtual_servers: Iterable[VirtualServerConfig], initial: Mapping[RealKey, bool]
    ) -> None:
        """A reload: keep the machines whose check is unchanged, restart the others.

        A real server whose check changed keeps its last health (`initial`
        only applies to real servers not seen before).
        """
        old = {s.target.key: s for s in self.slots}
        self._build(list(virtual_servers), initial, old)
        kept = {id(s) for s in self.slots}
        for slot in old.values():
            if id(slot) not in kept:
                self._retire(slot)
        self._waiting = collections.deque(
            (slot, start) for slot, start in self._waiting if id(slot) in kept
        )
        if self._running:
            self.start()

    def snapshot(self) -> list[Report]:
        """The last outcome of every machine that has one: resyncs a reader after a reload."""
        now = self._loop.time()
        return [self._report_of(s, now, None) for s in self.slots if s.machine.last is not None]

    # ----------------------------------------------------------- internal --

    def _report_of(self, slot: _Slot, now: float, reason: str | None) -> Report:
        m = slot.machine
        last = m.last
        assert last is not None
        wall = time.time() - (now - last.at)
        since = m.since if m.since is not None else last.at
        return Report(
            slot.index,
            m.healthy,
            last.ok,
            last.latency,
            wall,
            wall - (last.at - since),
            last.detail,
            reason,
        )

    def _build(
        self,
        virtual_servers: list[VirtualServerConfig],
        initial: Mapping[RealKey, bool],
        old: dict[RealKey, _Slot],
    ) -> None:
        slots = []
        for index, target in enumerate(targets(virtual_servers)):
            previous = old.get(target.key)
            if (
                previous is not None
                and previous.target.params == target.params
                and previous.target.check == target.check
            ):
                previous.index = index
                slots.append(previous)
                continue
            params = target.params
            up = previous.machine.healthy if previous is not None else initial.get(target.key)
            if up is not None:
                params = dataclasses.replace(params, initial_up=up)
            machine = RealServerHealth(params, spread(index))
            slots.append(_Slot(dataclasses.replace(target, params=params), machine, index))
        self.slots = slots

    def _retire(self, slot: _Slot) -> None:
        slot.machine.stop()
        slot.armed = None  # its heap entry turns stale
        if slot.task is not None:
            slot.task.cancel()
            slot.task = None
        if slot.tcp >= 0 and self._tcp is not None:
            self._tcp.cancel(slot.tcp)
            slot.tcp = -1
            self._finished()

    # ------------------------------------------------------------ timers --

    def _arm(self, slot: _Slot) -> None:
        deadline = slot.machine.deadline
        if deadline is None or not self._running:
            slot.armed = None
            return
        if slot.armed == deadline:
            return
        slot.armed = deadline
        heapq.heappush(self._heap, (deadline, next(self._order), slot))
        if deadline < self._wake_at:
            self._wake_up_at(deadline)

    def _wake_up_at(self, deadline: float) -> None:
        """One loop timer for the heap, on a TICK grid: due machines fire in batches."""
        if self._wake is not None:
            self._wake.cancel()
        self._wake_at = math.ceil(deadline / TICK) * TICK
        self._wake = self._loop.call_at(self._wake_at, self._tick)

    def _tick(self) -> None:
        """Fire every machine whose deadline has come; re-arm for the next one."""
        self._wake, self._wake_at = None, math.inf
        now = self._loop.time()
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, slot = heapq.heappop(heap)
            if slot.armed != deadline:
                continue  # stale: re-armed or retired since
            slot.armed = None
            self._call(slot, now, slot.machine.timer_fired, now)
        if heap and self._running and heap[0][0] < self._wake_at:
            self._wake_up_at(heap[0][0])

    # ------------------------------------------------------------ probes --

    def _call(
        self, slot: _Slot, now: float, method: Callable[..., list[Action]], *args: object
    ) -> None:
        """Call the machine; report when it recorded an outcome; carry out its actions."""
        m = slot.machine
        before = m.last
        actions = method(*args)
        if m.last is not None and m.last is not before:
            reason = None
            for action in actions:
                if isinstance(action, HealthChanged):
                    reason = action.reason
            self.report(self._report_of(slot, now, reason))
        for action in actions:
            if isinstance(action, StartProbe):
                if self.in_flight < self.max_in_flight:
                    self._launch(slot, action)
                else:
                    self._waiting.append((slot, action))
        self._arm(slot)

    def _launch(self, slot: _Slot, start: StartProbe) -> None:
        self.in_flight += 1
        self.probes += 1
        seq = start.seq
        tcp = slot.target.tcp
        if tcp is not None and self._tcp is not None:
            address, port, timeout = tcp
            slot.tcp = self._tcp.start(
                address, port, timeout, lambda result: self._tcp_done(slot, seq, result)
            )
            return
        task = self._loop.create_task(slot.target.probe())
        slot.task = task
        task.add_done_callback(lambda t: self._task_done(slot, seq, t))

    def _finished(self) -> None:
        """A probe ended: start waiting ones while there is room."""
        self.in_flight -= 1
        while self._waiting and self.in_flight < self.max_in_flight:
            waiting, start = self._waiting.popleft()
            if waiting.machine.seq == start.seq and waiting.machine.in_flight:
                self._launch(waiting, start)

    def _tcp_done(self, slot: _Slot, seq: int, result: ProbeResult) -> None:
        slot.tcp = -1
        self._finished()
        self._result(slot, seq, result)

    def _task_done(self, slot: _Slot, seq: int, task: asyncio.Task[ProbeResult]) -> None:
        if slot.task is task:
            slot.task = None
        self._finished()
        if task.cancelled():
            return
        exc = task.exception()
        result = (
            task.result()
            if exc is None
            else ProbeResult(False, 0.0, f"probe error: {type(exc).__name__}: {exc}")
        )
        self._result(slot, seq, result)

    def _result(self, slot: _Slot, seq: int, result: ProbeResult) -> None:
        now = self._loop.time()
        method = slot.machine.probe_result
        self._call(slot, now, method, now, result.ok, result.latency, result.detail, seq)
