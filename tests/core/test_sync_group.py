"""Run-time priority and sync groups (core/vrrp.py hooks, core/tracking.SyncGroup).

Walked by hand. Priority changes follow RFC 3768 6.4.2/6.4.3 (the peer
preempts or yields on the next advert); groups follow keepalived's
vrrp_sync.c: FAULT and BACKUP spread to every member, MASTER only together.
"""

from __future__ import annotations

from lvsha.core.packet import IPPROTO_VRRP, VRRP_MULTICAST_GROUP, Advertisement, IPv4Header
from lvsha.core.tracking import GroupStateChanged, SyncGroup
from lvsha.core.vrrp import (
    Action,
    RouterParams,
    SendAdvert,
    State,
    StateChanged,
    VirtualRouter,
    master_down_interval,
)

ME = "192.0.2.10"
PEER = "192.0.2.20"


def router(name: str = "VI_1", vrid: int = 51, priority: int = 100, **kw: object) -> VirtualRouter:
    fields: dict[str, object] = {
        "name": name,
        "vrid": vrid,
        "priority": priority,
        "adver_int": 1,
        "addresses": (f"198.51.100.{vrid}",),
        "garp_master_delay": 0.0,
    }
    fields.update(kw)
    return VirtualRouter(RouterParams(**fields), ME)  # type: ignore[arg-type]


def rx(r: VirtualRouter, now: float, priority: int, source: str = PEER) -> list[Action]:
    payload = Advertisement(r.params.vrid, priority, 1, r.params.addresses).encode()
    hdr = IPv4Header(source, VRRP_MULTICAST_GROUP, 255, IPPROTO_VRRP, 20, 20 + len(payload))
    return r.receive(now, hdr, payload)


def sent_priorities(actions: list[Action]) -> list[int]:
    return [a.advert.priority for a in actions if isinstance(a, SendAdvert)]


# ------------------------------------------------------- run-time priority --


def test_backup_master_down_timer_moves_by_the_skew_change() -> None:
    r = router(priority=100)
    r.startup(0.0)
    assert r.master_down_at == master_down_interval(1, 100)
    assert r.set_priority(0.5, 50) == []
    assert r.master_down_at == master_down_interval(1, 50)
    assert r.master_down_interval == master_down_interval(1, 50)


def test_master_advertises_the_new_priority_next() -> None:
    r = router(priority=100)
    r.startup(0.0)
    r.timer_fired(r.master_down_at or 0.0)
    assert r.state is State.MASTER
    due = r.deadline
    assert due is not None
    r.set_priority(due - 0.5, 70)
    assert sent_priorities(r.timer_fired(due)) == [70]


def test_backup_whose_priority_rises_above_the_master_preempts() -> None:
    r = router(priority=100)
    r.startup(0.0)
    now = 0.0
    for _ in range(5):  # a master at 110 holds us
        now += 1.0
        rx(r, now, 110)
        r.timer_fired(now)
    assert r.state is State.BACKUP
    r.set_priority(now, 120)  # e.g. a positive-weight script became OK
    took_over = None
    for _ in range(10):
        now += 1.0
        rx(r, now, 110)  # section 6.4.2: lower priority + preempt -> discard
        if r.deadline is not None and r.deadline <= now + 1.0:
            r.timer_fired(r.deadline)
            if r.state is State.MASTER:
                took_over = now
                break
    assert took_over is not None
    assert took_over - 5.0 <= master_down_interval(1, 120) + 1.0


def test_master_whose_priority_falls_below_a_backup_is_preempted() -> None:
    a = router(priority=100)
    b = VirtualRouter(router(priority=90).params, PEER)
    a.startup(0.0)
    b.startup(0.0)
    a.timer_fired(a.master_down_at or 0.0)  # a is master at 100
    assert a.state is State.MASTER
    now = 4.0
    log: list[tuple[float, str, int]] = []
    a.set_priority(now, 70)  # a tracked script with weight -30 failed
    for _ in range(200):
        now += 0.125
        for who, r, other, src in (("a", a, b, ME), ("b", b, a, PEER)):
            acts = r.timer_fired(now) if r.deadline is not None and r.deadline <= now else []
            for p in sent_priorities(acts):
                log.append((now, who, p))
                payload = Advertisement(51, p, 1, other.params.addresses).encode()
                hdr = IPv4Header(src, VRRP_MULTICAST_GROUP, 255, IPPROTO_VRRP, 20, 40)
                other.receive(now, hdr, payload)
        if b.state is State.MASTER and a.state is State.BACKUP:
            break
    assert (a.state, b.state) == (State.BACKUP, State.MASTER)
    assert now - 4.0 <= master_down_interval(1, 90) + 1.0


# -------------------------------------------------------------- sync group --


class Pair:
    """Two members of one group on this node, driven through the group."""

    def __init__(self) -> None:
        self.v1 = router("VI_1", 51)
        self.v2 = router("VI_2", 52)
        self.group = SyncGroup("G1", {"VI_1": self.v1, "VI_2": self.v2})
        self.events: list[tuple[str, State, State] | GroupStateChanged] = []
        self.adverts: list[tuple[str, int]] = []

    def apply(self, name: str, actions: list[Action], now: float) -> None:
        for a in actions:
            if isinstance(a, StateChanged):
                self.events.append((name, a.old, a.new))
            elif isinstance(a, SendAdvert):
                self.adverts.append((name, a.advert.priority))
        for item in self.group.settle(now):
            if isinstance(item, GroupStateChanged):
                self.events.append(item)
            else:
                self.apply(item[0], item[1], now)

    def member(self, name: str) -> VirtualRouter:
        return self.v1 if name == "VI_1" else self.v2

    def start(self, now: float = 0.0) -> None:
        for name in ("VI_1", "VI_2"):
            self.apply(name, self.member(name).startup(now), now)

    def fire(self, name: str, now: float) -> None:
        self.apply(name, self.member(name).timer_fired(now), now)

    def fault(self, name: str, now: float, active: bool) -> None:
        self.apply(name, self.member(name).fault_changed(now, "eth2 down", active), now)

    def states(self) -> tuple[State, State]:
        return self.v1.state, self.v2.state


def test_master_only_when_every_member_wants_it() -> None:
    p = Pair()
    p.start(0.0)
    assert p.events[-1] == GroupStateChanged("G1", None, State.BACKUP)
    p.events.clear()
    # VI_1 hears nobody and its timer runs out; VI_2 still hears a master
    p.apply("VI_2", rx(p.v2, 2.0, 120), 2.0)
    p.fire("VI_1", master_down_interval(1, 100))
    assert p.states() == (State.BACKUP, State.BACKUP)
    assert p.v1.wants_master and p.v1.deadline is None
    assert p.events == []
    # VI_2's master goes silent: when its timer runs out both go MASTER
    t2 = 2.0 + master_down_interval(1, 100)
    p.fire("VI_2", t2)
    assert p.states() == (State.MASTER, State.MASTER)
    assert p.events == [  # members in configuration order, then the group
        ("VI_1", State.BACKUP, State.MASTER),
        ("VI_2", State.BACKUP, State.MASTER),
        GroupStateChanged("G1", State.BACKUP, State.MASTER),
    ]


def both_master(p: Pair) -> float:
    p.start(0.0)
    t = master_down_interval(1, 100)
    p.fire("VI_1", t)
    p.fire("VI_2", t)
    assert p.states() == (State.MASTER, State.MASTER)
    p.events.clear()
    p.adverts.clear()
    return t


def test_one_member_fault_takes_every_member_to_fault_with_priority_zero() -> None:
    p = Pair()
    t = both_master(p) + 1.0
    p.fault("VI_2", t, True)
    assert p.states() == (State.FAULT, State.FAULT)
    # both masters say priority 0 so that the peer's backups take over at once
    assert p.adverts == [("VI_2", 0), ("VI_1", 0)]
    assert p.events == [
        ("VI_2", State.MASTER, State.FAULT),
        ("VI_1", State.MASTER, State.FAULT),
        GroupStateChanged("G1", State.MASTER, State.FAULT),
    ]
    p.events.clear()
    p.fault("VI_2", t + 5.0, False)
    assert p.states() == (State.BACKUP, State.BACKUP)
    assert p.events[-1] == GroupStateChanged("G1", State.FAULT, State.BACKUP)
    assert p.v1.faults == p.v2.faults == frozenset()


def test_a_member_losing_the_election_takes_the_others_to_backup() -> None:
    p = Pair()
    t = both_master(p) + 0.5
    p.apply("VI_1", rx(p.v1, t, 150), t)  # a higher-priority master on VI_1's link
    assert p.states() == (State.BACKUP, State.BACKUP)
    assert p.events == [
        ("VI_1", State.MASTER, State.BACKUP),
        ("VI_2", State.MASTER, State.BACKUP),
        GroupStateChanged("G1", State.MASTER, State.BACKUP),
    ]
    assert ("VI_2", 0) not in p.adverts  # keepalived leaves master -> backup silently
    assert p.v2.master_down_at == t + master_down_interval(1, 100)


def test_member_faulting_while_another_waits_to_become_master() -> None:
    p = Pair()
    p.start(0.0)
    p.apply("VI_2", rx(p.v2, 2.0, 120), 2.0)
    p.fire("VI_1", master_down_interval(1, 100))
    assert p.v1.wants_master  # mid-transition: waiting for VI_2
    p.events.clear()
    p.fault("VI_2", 4.0, True)
    assert p.states() == (State.FAULT, State.FAULT)
    assert not p.v1.wants_master
    p.fault("VI_2", 6.0, False)
    assert p.states() == (State.BACKUP, State.BACKUP)
    assert not p.v1.wants_master  # a fresh timer, not a stale wish
    t = 6.0 + master_down_interval(1, 100)
    assert p.v1.master_down_at == p.v2.master_down_at == t
    p.fire("VI_1", t)
    assert p.states() == (State.BACKUP, State.BACKUP)
    p.fire("VI_2", t)
    assert p.states() == (State.MASTER, State.MASTER)


def test_own_fault_and_group_fault_are_kept_apart() -> None:
    p = Pair()
    both_master(p)
    p.fault("VI_1", 5.0, True)
    p.fault("VI_2", 5.5, True)  # VI_2 now has a fault of its own too
    p.fault("VI_1", 6.0, False)
    assert p.states() == (State.FAULT, State.FAULT)  # VI_2 still down
    assert p.v1.faults == frozenset({"sync group G1"})
    p.fault("VI_2", 7.0, False)
    assert p.states() == (State.BACKUP, State.BACKUP)


def test_router_outside_a_group_is_not_gated() -> None:
    r = router()
    r.startup(0.0)
    r.timer_fired(master_down_interval(1, 100))
    assert r.state is State.MASTER
