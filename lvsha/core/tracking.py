"""Track scripts, interfaces and files -> effective priority; sync groups.

keepalived's tracking, as pure state machines on an injected clock:

* `ScriptMonitor`: one `vrrp_script`. It says when to run the script and when
  a run has taken too long (a timeout is a failure: the shell kills the
  process group), and keeps keepalived's rise/fall counter
  (vrrp_scheduler.c, vrrp_script_child_thread): the first result after start
  decides at once; then `rise` successes or `fall` failures in a row flip it.
* `evaluate()`: what the tracked objects of one instance make of its
  priority. Weight 0 holds the instance in FAULT while the object fails; a
  negative weight is added while it fails, a positive one while it is OK
  (vrrp_track.c). A file contributes its integer times the weight, and
  FAULT at -254 or below; with weight 0 any non-zero value is FAULT
  (track_file.c). The sum goes onto the base priority within 1..254; an
  address owner (255) keeps 255 (vrrp_set_effective_priority).
* `SyncGroup`: a `vrrp_sync_group` (vrrp_sync.c). A member in FAULT puts
  every member in FAULT; a member that falls back to BACKUP takes the
  masters with it; a member whose Master_Down timer ran out waits until
  every member wants MASTER, then all go together. RFC 3768 has no groups:
  this follows keepalived so that a mixed pair fails over whole.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from lvsha.core.vrrp import Action, State, VirtualRouter

PRIORITY_OWNER = 255
MIN_PRIORITY = 1
MAX_PRIORITY = 254
FILE_FAULT = -254  # a file contribution at or below this is FAULT (track_file.c)
FILE_MAX = 253
_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1
FILE_READ_MAX = 127  # keepalived reads at most this many bytes of a tracked file


# ---------------------------------------------------------------- scripts --


@dataclass(frozen=True, slots=True)
class ScriptParams:
    """One `vrrp_script`: when to run it, how long a run may take, rise/fall."""

    name: str
    interval: float
    timeout: float
    rise: int = 1
    fall: int = 1
    init_fail: bool = False


@dataclass(frozen=True, slots=True)
class RunScript:
    """Start the script now."""

    name: str


@dataclass(frozen=True, slots=True)
class KillScript:
    """The run took longer than `timeout`: kill its process group."""

    name: str


@dataclass(frozen=True, slots=True)
class ScriptStatusChanged:
    """The script's status flipped (after rise/fall): re-evaluate its instances."""

    name: str
    ok: bool
    reason: str


ScriptAction = RunScript | KillScript | ScriptStatusChanged


class ScriptMonitor:
    """When to run one track script, and its rise/fall status.

    keepalived starts a run every `interval` and skips a run while the last
    one is still going; `result` counts from 0 to rise+fall-1 and the script
    is OK at `rise` or above.
    """

    def __init__(self, params: ScriptParams) -> None:
        self.params = params
        self.result = 0 if params.init_fail else params.rise - 1
        self.ok: bool | None = False if params.init_fail else None  # None: not run yet
        self.run_at: float | None = None
        self.timeout_at: float | None = None
        self.started_at: float | None = None
        self.killed = False  # a killed run's exit is not a result
        self.runs = 0
        self.timeouts = 0
        self.last_exit: int | None = None

    @property
    def deadline(self) -> float | None:
        pending = [t for t in (self.run_at, self.timeout_at) if t is not None]
        return min(pending) if pending else None

    @property
    def running(self) -> bool:
        return self.started_at is not None

    def start(self, now: float) -> list[ScriptAction]:
        """Arm the first run for now (keepalived runs each script at start)."""
        self.run_at = now
        return self.timer_fired(now)

    def stop(self) -> None:
        self.run_at = self.timeout_at = None

    def timer_fired(self, now: float) -> list[ScriptAction]:
        actions: list[ScriptAction] = []
        if self.timeout_at is not None and self.timeout_at <= now:
            self.timeout_at = None
            self.killed = True
            self.timeouts += 1
            actions.append(KillScript(self.params.name))
            actions += self._record(False, f"timed out after {self.params.timeout:g} s")
        if self.run_at is not None and self.run_at <= now:
            self.run_at += self.params.interval
            if self.run_at <= now:
                self.run_at = now + self.params.interval
            if not self.running:  # keepalived: "already running - skipping run"
                self.started_at = now
                self.killed = False
                self.timeout_at = now + self.params.timeout
                self.runs += 1
                actions.append(RunScript(self.params.name))
        return actions

    def exited(self, now: float, code: int) -> list[ScriptAction]:
        """The run ended with exit `code` (a signal as a negative code)."""
        if not self.running:
            return []
        self.started_at = self.timeout_at = None
        if self.killed:
            self.killed = False
            return []
        self.last_exit = code
        why = "succeeded" if code == 0 else f"exited with status {code}"
        return self._record(code == 0, why)

    def _record(self, success: bool, why: str) -> list[ScriptAction]:
        p = self.params
        top = p.rise + p.fall - 1
        flipped: bool | None = None
        if success:
            if self.result < p.rise - 1:
                self.result += 1
            elif self.result != top:
                if self.ok is not True:
                    flipped = True
                self.result = top
        else:
            if self.result > p.rise:
                self.result -= 1
            else:
                if self.ok is not False:
                    flipped = False
                self.result = 0
        if flipped is None:
            return []
        self.ok = flipped
        return [ScriptStatusChanged(p.name, flipped, why)]


# ------------------------------------------------------------------ files --


def parse_track_file(data: bytes | None, last: int) -> int:
    """The value of a tracked file as keepalived reads it (track_file.c).

    A missing or empty file is 0. Otherwise C's strtol(buf, NULL, 0) on the
    first 127 bytes: leading blanks, a sign, 0x for hex, 0 for octal, digits
    up to the first other character; no digits give 0. A value outside
    -2^31..2^31 is ignored: the last value stays.
    """
    if not data:
        return 0
    text = data[:FILE_READ_MAX].decode("latin-1").lstrip(" \t\n\v\f\r")
    sign = 1
    if text[:1] in ("+", "-"):
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    base, digits = 10, "0123456789"
    if text[:2].lower() == "0x" and text[2:3].lower() in "0123456789abcdef" and text[2:3]:
        base, digits, text = 16, "0123456789abcdef", text[2:]
    elif text[:1] == "0":
        base, digits = 8, "01234567"
    n = 0
    for ch in text.lower():
        if ch not in digits:
            break
        n = n * base + digits.index(ch)
        if n > 2**40:  # far outside the range already; stop before the number grows
            return last
    value = sign * n
    if value < _INT32_MIN or value > _INT32_MAX + 1:
        return last
    return value


# ------------------------------------------------------------ evaluation --


class Kind(enum.Enum):
    SCRIPT = "script"
    INTERFACE = "interface"
    FILE = "file"


@dataclass(frozen=True, slots=True)
class Tracked:
    """One object an instance tracks, with this instance's weight."""

    kind: Kind
    name: str  # script name, interface name or file path
    weight: int = 0


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one tracked object does to the instance now (for `lvsha status`)."""

    kind: Kind
    name: str
    weight: int
    state: str  # "ok", "failed", "unknown", "up", "down", or the file's value
    priority: int  # added to the base priority
    fault: bool  # holds the instance in FAULT

    @property
    def fault_name(self) -> str:
        return f"{self.kind.value} {self.name} {self.state}"


@dataclass(frozen=True, slots=True)
class Evaluation:
    base: int
    effective: int
    contributions: tuple[Contribution, ...]

    @property
    def faults(self) -> frozenset[str]:
        return frozenset(c.fault_name for c in self.contributions if c.fault)


def effective_priority(base: int, total: int) -> int:
    """Base plus weights, within 1..254; an address owner keeps 255."""
    if base == PRIORITY_OWNER:
        return PRIORITY_OWNER
    return max(MIN_PRIORITY, min(MAX_PRIORITY, base + total))


def evaluate(
    base: int,
    tracked: tuple[Tracked, ...],
    scripts: Mapping[str, bool | None],
    links: Mapping[str, bool],
    files: Mapping[str, int],
) -> Evaluation:
    """Every tracked object's contribution and the effective priority."""
    out = [_contribution(t, scripts, links, files) for t in tracked]
    total = sum(c.priority for c in out)
    return Evaluation(base, effective_priority(base, total), tuple(out))


def _contribution(
    t: Tracked,
    scripts: Mapping[str, bool | None],
    links: Mapping[str, bool],
    files: Mapping[str, int],
) -> Contribution:
    if t.kind is Kind.FILE:
        value = files.get(t.name, 0)
        if t.weight == 0:
            return Contribution(t.kind, t.name, 0, str(value), 0, value != 0)
        c = max(FILE_FAULT, min(FILE_MAX, value * t.weight))
        if c == FILE_FAULT:
            return Contribution(t.kind, t.name, t.weight, str(value), 0, True)
        return Contribution(t.kind, t.name, t.weight, str(value), c, False)
    ok: bool | None
    if t.kind is Kind.SCRIPT:
        ok = scripts.get(t.name)
        state = "unknown" if ok is None else ("ok" if ok else "failed")
    else:
        ok = links.get(t.name, False)
        state = "up" if ok else "down"
    if t.weight == 0:
        # keepalived holds the instance in INIT until a weight-0 script has
        # run once; FAULT is lvsha's name for "may not be master yet".
        return Contribution(t.kind, t.name, 0, state, 0, ok is not True)
    if ok is None:
        return Contribution(t.kind, t.name, t.weight, state, 0, False)
    if (ok and t.weight > 0) or (not ok and t.weight < 0):
        return Contribution(t.kind, t.name, t.weight, state, t.weight, False)
    return Contribution(t.kind, t.name, t.weight, state, 0, False)


# ------------------------------------------------------------ sync groups --


@dataclass(frozen=True, slots=True)
class GroupStateChanged:
    """The group as a whole changed state: run its notify (keepalived's
    send_group_notifies, after the members' own notifies)."""

    group: str
    old: State | None
    new: State


class SyncGroup:
    """A `vrrp_sync_group`: members fail over together (vrrp_sync.c)."""

    def __init__(self, name: str, members: Mapping[str, VirtualRouter]) -> None:
        self.name = name
        self.members = dict(members)
        self.state: State | None = None
        self.fault_name = f"sync group {name}"
        for router in self.members.values():
            router.sync_gate = True

    def own_faults(self, router: VirtualRouter) -> frozenset[str]:
        return router.faults - {self.fault_name}

    def settle(self, now: float) -> list[tuple[str, list[Action]] | GroupStateChanged]:
        """Bring the members in line after any input to any of them.

        Returns each member's follow-up actions (for the shell to execute in
        order), then the group's own state change if there was one.
        """
        out: list[tuple[str, list[Action]] | GroupStateChanged] = []
        for _ in range(4 * len(self.members) + 4):
            step = self._step(now)  # each step changes a fault set or a state
            if step is None:
                break
            if step[1]:
                out.append(step)
        new = self._group_state()
        if new is not None and new is not self.state:
            out.append(GroupStateChanged(self.name, self.state, new))
            self.state = new
        return out

    def _step(self, now: float) -> tuple[str, list[Action]] | None:
        routers = self.members
        faulted = [n for n, r in routers.items() if self.own_faults(r)]
        for name, r in routers.items():
            has = self.fault_name in r.faults
            if faulted and not has:
                return name, r.fault_changed(now, self.fault_name, True)
            if not faulted and has:
                return name, r.fault_changed(now, self.fault_name, False)
        if faulted:
            return None
        states = {n: r.state for n, r in routers.items()}
        waiting = [n for n, r in routers.items() if r.state is State.BACKUP and r.wants_master]
        ready = all(s is State.MASTER or n in waiting for n, s in states.items())
        if waiting and ready:
            name = waiting[0]
            why = f"{self.fault_name}: every member wants MASTER"
            return name, routers[name].release_master(now, why)
        behind = [n for n, r in routers.items() if r.state is State.BACKUP and n not in waiting]
        for name, r in routers.items():
            if behind and r.state is State.MASTER:
                why = f"{self.fault_name}: {behind[0]} is BACKUP"
                return name, r.step_down(now, why)
        return None

    def _group_state(self) -> State | None:
        states = {r.state for r in self.members.values()}
        if State.FAULT in states:
            return State.FAULT
        if states == {State.MASTER}:
            return State.MASTER
        if states == {State.BACKUP}:
            return State.BACKUP
        return None
