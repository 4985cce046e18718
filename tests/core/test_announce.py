"""BgpDecision on a walked clock: each reason, their order, the hold-down, stop.

The configuration is parsed from TOML (so lvsha.config's dataclasses are
shown to satisfy the core's Protocols); times are exact binary fractions or
millisecond steps compared with ==.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lvsha.config import Config, parse_config
from lvsha.core.announce import (
    WITHDRAW_ORDER,
    BgpDecision,
    Decision,
    Reason,
    Route,
    prefix_of,
)
from lvsha.core.desired import ServiceKey

TOML = """
[bgp]
local_as = 64513
router_id = "192.0.2.11"
communities = ["64513:100", "65535:65281"]
med = 10
reannounce_delay = 1.0

[[bgp.peer]]
address = "192.0.2.1"
peer_as = 64512

[[virtual_server]]
address = "203.0.113.100"
port = 80
announce = "bgp"

[[virtual_server]]
address = "203.0.113.100"
port = 443
announce = "bgp"

[[virtual_server]]
address = "203.0.113.101"
port = 80
announce = "bgp"
"""

WEB = ServiceKey("tcp", "203.0.113.100", 80)
TLS = ServiceKey("tcp", "203.0.113.100", 443)
OTHER = ServiceKey("tcp", "203.0.113.101", 80)
ALL = (WEB, TLS, OTHER)
P100 = "203.0.113.100/32"
P101 = "203.0.113.101/32"
ON_LO = ("203.0.113.100", "203.0.113.101")


def config(text: str = TOML) -> Config:
    return parse_config(text)


def decision(now: float = 0.0, text: str = TOML) -> BgpDecision:
    cfg = config(text)
    assert cfg.bgp is not None
    return BgpDecision(cfg.virtual_servers, cfg.bgp, now)


def healthy(d: BgpDecision, now: float = 0.0) -> Decision:
    """Every input good: the state from which each test breaks one thing."""
    d.health_started(now)
    d.quorum_changed(now, dict.fromkeys(ALL, True))
    d.ipvs_programmed(now, ALL)
    return d.lo_changed(now, ON_LO)


def reasons(d: BgpDecision) -> dict[str, Reason]:
    return {p: s.reason for p, s in d.status.items()}


def announced(d: BgpDecision) -> list[str]:
    return [r.prefix for r in d.routes]


# ---------------------------------------------------------------- reasons --


def test_each_reason_on_the_way_up_and_down() -> None:
    d = decision()
    assert reasons(d) == {P100: Reason.WAITING, P101: Reason.WAITING}
    assert d.routes == () and d.deadline is None
    d.health_started(1.0)
    assert d.status[P100].reason is Reason.WAITING
    assert d.status[P100].detail == "TCP 203.0.113.100:80, TCP 203.0.113.100:443"
    d.quorum_changed(2.0, dict.fromkeys(ALL, True))
    assert d.status[P100].reason is Reason.NOT_PROGRAMMED
    d.ipvs_programmed(3.0, ALL)
    assert d.status[P100].reason is Reason.NOT_ON_LO
    out = d.lo_changed(4.0, ON_LO)
    assert reasons(d) == {P100: Reason.HEALTHY, P101: Reason.HEALTHY}
    assert out.routes_changed and announced(d) == [P100, P101]
    assert d.status[P100].announced and d.status[P100].since == 4.0
    d.quorum_changed(5.0, {WEB: True, TLS: False, OTHER: True})
    assert d.status[P100].reason is Reason.BELOW_QUORUM
    assert d.status[P100].detail == "TCP 203.0.113.100:443"
    d.quorum_changed(6.0, dict.fromkeys(ALL, True))
    assert d.status[P100].reason is Reason.HELD_DOWN
    d.timer_fired(7.0)
    assert d.status[P100].reason is Reason.HEALTHY
    d.drain_changed(8.0, True)
    assert reasons(d) == {P100: Reason.DRAINED, P101: Reason.DRAINED} and d.routes == ()
    d.stop(9.0)
    assert reasons(d) == {P100: Reason.STOPPING, P101: Reason.STOPPING}
    assert [r.value for r in Reason] == [
        "stopping",
        "drained",
        "waiting for the first health checks",
        "IPVS not programmed",
        "VIP not on lo",
        "below quorum",
        "held down after a quorum loss",
        "healthy",
    ]


# One way to make each reason hold, and the way to clear it again.
BREAK: dict[Reason, Callable[[BgpDecision, float], object]] = {
    Reason.DRAINED: lambda d, now: d.drain_changed(now, True),
    Reason.WAITING: lambda d, now: d.quorum_changed(now, {TLS: True, OTHER: True}),
    Reason.NOT_PROGRAMMED: lambda d, now: d.ipvs_programmed(now, (TLS, OTHER)),
    Reason.NOT_ON_LO: lambda d, now: d.lo_changed(now, ("203.0.113.101",)),
}
MEND: dict[Reason, Callable[[BgpDecision, float], object]] = {
    Reason.DRAINED: lambda d, now: d.drain_changed(now, False),
    Reason.WAITING: lambda d, now: d.quorum_changed(now, {WEB: False, TLS: True, OTHER: True}),
    Reason.NOT_PROGRAMMED: lambda d, now: d.ipvs_programmed(now, ALL),
    Reason.NOT_ON_LO: lambda d, now: d.lo_changed(now, ON_LO),
}


def test_reasons_take_priority_in_the_documented_order() -> None:
    """Everything wrong at once shows the first; mending each shows the next."""
    assert WITHDRAW_ORDER[0] is Reason.STOPPING and WITHDRAW_ORDER[-1] is Reason.HELD_DOWN
    d = decision()
    healthy(d)
    # Mending WAITING leaves WEB below quorum, the reason after NOT_ON_LO.
    for reason in (Reason.NOT_ON_LO, Reason.NOT_PROGRAMMED, Reason.WAITING, Reason.DRAINED):
        BREAK[reason](d, 1.0)
    now = 2.0
    for reason in (Reason.DRAINED, Reason.WAITING, Reason.NOT_PROGRAMMED, Reason.NOT_ON_LO):
        assert d.status[P100].reason is reason
        assert P100 not in announced(d)
        MEND[reason](d, now)
        now += 1.0
    assert d.status[P100].reason is Reason.BELOW_QUORUM  # WEB is below quorum
    d.quorum_changed(now, dict.fromkeys(ALL, True))
    assert d.status[P100].reason is Reason.HELD_DOWN
    d.timer_fired(now + 1.0)
    assert d.status[P100].reason is Reason.HEALTHY and announced(d) == [P100, P101]


def test_stopping_beats_every_other_reason() -> None:
    d = decision()
    d.drain_changed(0.0, True)
    d.stop(1.0)
    assert reasons(d) == {P100: Reason.STOPPING, P101: Reason.STOPPING}


def test_not_started_is_waiting_whatever_the_rest_says() -> None:
    d = decision()
    d.quorum_changed(0.0, dict.fromkeys(ALL, True))
    d.ipvs_programmed(0.0, ALL)
    d.lo_changed(0.0, ON_LO)
    assert reasons(d) == {P100: Reason.WAITING, P101: Reason.WAITING}
    assert d.status[P100].detail == ""  # the global wait, not one service's
    d.health_started(1.0)
    assert announced(d) == [P100, P101]


# ------------------------------------------------------------- invariants --


def test_quorum_loss_of_one_of_two_services_withdraws_the_address_only() -> None:
    d = decision()
    healthy(d)
    out = d.quorum_changed(1.0, {WEB: False, TLS: True, OTHER: True})
    assert out.routes_changed and announced(d) == [P101]
    assert [c.prefix for c in out.changes] == [P100]
    assert out.changes[0].reason is Reason.BELOW_QUORUM and out.changes[0].since == 1.0


def test_never_announced_before_ipvs_is_programmed() -> None:
    d = decision()
    d.health_started(0.0)
    d.quorum_changed(0.0, dict.fromkeys(ALL, True))
    d.lo_changed(0.0, ON_LO)
    d.ipvs_programmed(1.0, (WEB, OTHER))  # TLS not yet in the kernel
    assert announced(d) == [P101]
    assert d.status[P100].detail == "TCP 203.0.113.100:443"
    d.ipvs_programmed(2.0, ALL)
    assert announced(d) == [P100, P101]
    d.ipvs_programmed(3.0, ())  # a failed pass: the kernel lost them
    assert d.routes == ()


INPUTS = st.one_of(
    st.tuples(st.just("started"), st.none()),
    st.tuples(st.just("quorum"), st.dictionaries(st.sampled_from(ALL), st.booleans())),
    st.tuples(st.just("programmed"), st.frozensets(st.sampled_from(ALL))),
    st.tuples(st.just("lo"), st.frozensets(st.sampled_from(ON_LO))),
    st.tuples(st.just("drain"), st.booleans()),
    st.tuples(st.just("timer"), st.none()),
    st.tuples(st.just("stop"), st.none()),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(INPUTS, st.sampled_from([0.0, 0.25, 0.5, 1.0])), max_size=30))
def test_an_announced_prefix_always_has_every_precondition(
    steps: list[tuple[tuple[str, object], float]],
) -> None:
    """Whatever the order of inputs: announced => programmed, on lo, quorum, not drained."""
    d = decision()
    now = 0.0
    started = drained = stopped = False
    quorum: dict[ServiceKey, bool] = {}
    programmed: frozenset[ServiceKey] = frozenset()
    lo: frozenset[str] = frozenset()
    for (kind, arg), step in steps:
        now += step
        if kind == "started":
            started = True
            out = d.health_started(now)
        elif kind == "quorum":
            quorum = arg  # type: ignore[assignment]
            out = d.quorum_changed(now, quorum)
        elif kind == "programmed":
            programmed = arg  # type: ignore[assignment]
            out = d.ipvs_programmed(now, programmed)
        elif kind == "lo":
            lo = arg  # type: ignore[assignment]
            out = d.lo_changed(now, lo)
        elif kind == "drain":
            drained = bool(arg)
            out = d.drain_changed(now, drained)
        elif kind == "timer":
            out = d.timer_fired(now)
        else:
            stopped = True
            out = d.stop(now)
        assert out.routes == d.routes
        assert d.deadline is None or d.deadline > now  # never a timer already due
        for route in d.routes:
            status = d.status[route.prefix]
            assert status.reason is Reason.HEALTHY
            assert started and not drained and not stopped
            assert status.address in lo
            assert all(k in programmed and quorum.get(k) for k in status.services)


# ------------------------------------------------------------------- stop --


def test_stop_withdraws_everything_and_nothing_comes_back() -> None:
    d = decision()
    healthy(d)
    out = d.stop(5.0)
    assert out.routes == () and out.routes_changed
    assert {c.prefix for c in out.changes} == {P100, P101}
    d.drain_changed(6.0, False)
    d.health_started(6.0)
    d.quorum_changed(6.0, dict.fromkeys(ALL, True))
    d.ipvs_programmed(6.0, ALL)
    d.lo_changed(6.0, ON_LO)
    d.timer_fired(100.0)
    cfg = config()
    assert cfg.bgp is not None
    out = d.reconfigure(101.0, cfg.virtual_servers, cfg.bgp)
    assert d.routes == () and not out.routes_changed and d.stopped
    assert all(s.reason is Reason.STOPPING and s.since == 5.0 for s in d.status.values())
    assert d.deadline is None


def test_stop_during_a_hold_down_arms_no_timer() -> None:
    d = decision()
    healthy(d)
    d.quorum_changed(1.0, {WEB: False, TLS: True, OTHER: True})
    d.quorum_changed(2.0, dict.fromkeys(ALL, True))
    assert d.deadline == 3.0
    d.stop(2.5)
    assert d.deadline is None


# -------------------------------------------------------------- hold-down --


def test_hold_down_to_the_millisecond() -> None:
    d = decision()
    healthy(d, 10.0)
    assert announced(d) == [P100, P101]  # the first quorum ever seen: no wait
    assert d.deadline is None
    d.quorum_changed(20.0, {WEB: False, TLS: True, OTHER: True})
    assert d.deadline is None  # nothing to wait for while below quorum
    d.quorum_changed(20.5, dict.fromkeys(ALL, True))
    assert d.status[P100].reason is Reason.HELD_DOWN
    assert d.status[P100].detail == "quorum must hold 1 s"
    assert d.deadline == 21.5
    assert not d.timer_fired(21.499).routes_changed
    assert announced(d) == [P101]
    out = d.timer_fired(21.5)
    assert out.routes_changed and announced(d) == [P100, P101]
    assert d.status[P100].since == 21.5 and d.deadline is None


def test_a_loss_during_the_hold_down_starts_it_again() -> None:
    d = decision()
    healthy(d)
    d.quorum_changed(1.0, {WEB: False, TLS: True, OTHER: True})
    d.quorum_changed(1.5, dict.fromkeys(ALL, True))
    d.quorum_changed(2.0, {WEB: False, TLS: True, OTHER: True})  # flaps
    assert d.deadline is None
    d.quorum_changed(2.25, dict.fromkeys(ALL, True))
    assert d.deadline == 3.25
    d.timer_fired(2.5)  # the first hold-down's end: nothing
    assert announced(d) == [P101]
    d.timer_fired(3.25)
    assert announced(d) == [P100, P101]


def test_an_expired_hold_down_while_drained_leaves_no_due_timer() -> None:
    """A deadline in the past would spin the runtime's timer."""
    d = decision()
    healthy(d)
    d.quorum_changed(1.0, {WEB: False, TLS: True, OTHER: True})
    d.quorum_changed(2.0, dict.fromkeys(ALL, True))
    d.drain_changed(2.5, True)
    d.timer_fired(3.0)
    assert d.deadline is None and d.routes == ()
    d.drain_changed(4.0, False)
    assert announced(d) == [P100, P101]  # quorum has held for 2 s: no new wait


def test_reannounce_delay_zero_is_no_hold_down() -> None:
    d = decision(text=TOML.replace("reannounce_delay = 1.0", "reannounce_delay = 0"))
    healthy(d)
    d.quorum_changed(1.0, {WEB: False, TLS: True, OTHER: True})
    d.quorum_changed(2.0, dict.fromkeys(ALL, True))
    assert announced(d) == [P100, P101] and d.deadline is None


# ----------------------------------------------------------------- routes --


def test_routes_carry_the_bgp_path_attributes() -> None:
    d = decision()
    healthy(d)
    assert d.routes[0] == Route(P100, None, ((64513, 100), (65535, 65281)), 10)
    text = TOML.replace("med = 10", 'med = 10\nnext_hop = "192.0.2.11"')
    d = decision(text=text)
    healthy(d)
    assert {r.next_hop for r in d.routes} == {"192.0.2.11"}


@dataclass(frozen=True, slots=True)
class Service6:
    """An IPv6 service, before the config reads them: the Protocol is structural."""

    address: str | None
    port: int
    protocol: str = "tcp"
    fwmark: int | None = None
    announce: str | None = "bgp"
    real_servers: tuple[()] = ()  # ServiceIdentity (a fwmark key takes their family)


@dataclass(frozen=True, slots=True)
class Settings:
    next_hop: str | None = "192.0.2.11"
    communities: tuple[tuple[int, int], ...] = ()
    med: int | None = None
    reannounce_delay: float = 0.5


def test_ipv6_prefixes_are_slash_128_and_skip_an_ipv4_next_hop() -> None:
    assert prefix_of("2001:DB8:0::100") == "2001:db8::100/128"
    assert prefix_of("203.0.113.100") == "203.0.113.100/32"
    key = ServiceKey("tcp", "2001:db8::100", 80)
    services = [Service6("2001:db8::100", 80), Service6(None, 0, announce=None)]
    d = BgpDecision(services, Settings(), 0.0)
    d.health_started(0.0)
    d.quorum_changed(0.0, {key: True})
    d.ipvs_programmed(0.0, [key])
    d.lo_changed(0.0, ["2001:db8:0::100"])
    assert d.routes == (Route("2001:db8::100/128", None),)
    assert d.addresses == ("2001:db8::100",)


def test_services_not_announced_are_ignored_and_fwmark_ones_refused() -> None:
    d = BgpDecision([Service6("203.0.113.9", 80, announce=None)], Settings(), 0.0)
    assert d.status == {} and d.addresses == ()
    with pytest.raises(ValueError, match="needs an address"):
        BgpDecision([Service6(None, 0, fwmark=7)], Settings(), 0.0)


# ----------------------------------------------------------- status, reload --


def test_since_moves_with_the_reason_not_with_the_detail() -> None:
    d = decision()
    healthy(d)
    d.ipvs_programmed(1.0, (OTHER,))
    assert d.status[P100].since == 1.0
    assert d.status[P100].detail == "TCP 203.0.113.100:80, TCP 203.0.113.100:443"
    out = d.ipvs_programmed(2.0, (OTHER, WEB))
    assert out.changes == () and not out.routes_changed
    assert d.status[P100].since == 1.0 and d.status[P100].detail == "TCP 203.0.113.100:443"


def test_reload_keeps_kept_prefixes_and_starts_new_ones_waiting() -> None:
    d = decision()
    healthy(d)
    text = TOML.replace('address = "203.0.113.101"', 'address = "203.0.113.102"')
    cfg = config(text)
    assert cfg.bgp is not None
    out = d.reconfigure(3.0, cfg.virtual_servers, cfg.bgp)
    p102 = "203.0.113.102/32"
    assert list(d.status) == [P100, p102]
    assert d.status[P100].reason is Reason.HEALTHY and d.status[P100].since == 0.0
    assert d.status[p102].reason is Reason.WAITING and d.status[p102].since == 3.0
    assert out.routes_changed and announced(d) == [P100]
    assert d.addresses == ("203.0.113.100", "203.0.113.102")
