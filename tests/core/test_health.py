"""RealServerHealth, the quorum gate and apply_health(), on a walked clock.

keepalived's meanings (keepalived.conf(5)) are restated here rather than read
from the implementation: a check every `delay_loop` after the previous one
ended; `retry` extra attempts, `delay_before_retry` apart, only while the real
is alive; a random `warmup` before the first check; quorum gained at
`quorum + hysteresis`, lost below `quorum - hysteresis` or at zero weight.
All times below are exact binary fractions, so deadlines compare with ==.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from lvsha.config import parse_config
from lvsha.core.desired import Destination, DestKey, ServiceKey, desired_ipvs
from lvsha.core.health import (
    HealthChanged,
    HealthParams,
    QuorumChanged,
    QuorumGates,
    RealServerHealth,
    StartProbe,
    apply_health,
    health_params,
    quorum_next,
    spread,
)


def probe(actions: Sequence[object]) -> StartProbe:
    (action,) = actions
    assert isinstance(action, StartProbe)
    return action


def started(params: HealthParams, now: float = 0.0, jitter: float = 0.0) -> RealServerHealth:
    machine = RealServerHealth(params, jitter)
    assert machine.start(now) == []
    return machine


# ------------------------------------------------------------- schedule --


def test_warmup_delays_the_first_probe_by_its_jitter_share() -> None:
    m = started(HealthParams(delay_loop=4.0, timeout=1.0, warmup=8.0), now=10.0, jitter=0.25)
    assert m.deadline == 12.0
    assert m.timer_fired(11.75) == []  # early: nothing
    assert probe(m.timer_fired(12.0)) == StartProbe(1, 1.0)


def test_spread_is_seed_free_and_covers_the_interval_evenly() -> None:
    values = [spread(i) for i in range(1000)]
    assert values == [spread(i) for i in range(1000)]
    assert all(0.0 <= v < 1.0 for v in values)
    counts = [0] * 10
    for v in values:
        counts[int(v * 10)] += 1
    assert min(counts) >= 95 and max(counts) <= 105  # within 5 % of even


def test_next_check_is_delay_loop_after_the_previous_result() -> None:
    m = started(HealthParams(delay_loop=2.0, timeout=1.0))
    p = probe(m.timer_fired(0.0))
    assert m.deadline == 6.0  # in flight: gives up at timeout + RESULT_GRACE
    assert m.probe_result(0.5, True, 0.5, "connected", p.seq) == []
    assert m.deadline == 2.5
    assert probe(m.timer_fired(2.5)).seq == 2
    assert m.last is not None and (m.last.ok, m.last.latency, m.last.at) == (True, 0.5, 0.5)


# ---------------------------------------------------------- fall, retry --


def test_retry_then_fall_as_keepalived() -> None:
    m = started(HealthParams(delay_loop=4.0, timeout=1.0, retry=1, delay_before_retry=0.5))
    p = probe(m.timer_fired(0.0))
    assert m.probe_result(0.25, False, 0.25, "refused", p.seq) == []  # a retry, not a failure
    assert m.healthy and m.deadline == 0.75
    p = probe(m.timer_fired(0.75))
    assert m.probe_result(1.0, False, 0.25, "refused", p.seq) == [
        HealthChanged(False, "1 failed checks: refused")
    ]
    assert not m.healthy and m.since == 1.0
    assert m.deadline == 5.0


def test_a_retry_that_succeeds_keeps_the_server() -> None:
    m = started(HealthParams(delay_loop=4.0, timeout=1.0, retry=2, delay_before_retry=0.5))
    p = probe(m.timer_fired(0.0))
    assert m.probe_result(0.0, False, 0.0, "refused", p.seq) == []
    p = probe(m.timer_fired(0.5))
    assert m.probe_result(0.5, True, 0.0, "connected", p.seq) == []
    assert m.healthy and (m.attempt, m.failures) == (0, 0)
    assert m.deadline == 4.5


def test_fall_counts_consecutive_failed_checks_only() -> None:
    m = started(HealthParams(delay_loop=1.0, timeout=0.5, retry=0, fall=3))
    now = 0.0
    for ok in (False, False, True, False, False):
        p = probe(m.timer_fired(now))
        assert m.probe_result(now, ok, 0.0, "x", p.seq) == []
        now += 1.0
    p = probe(m.timer_fired(now))
    assert m.probe_result(now, False, 0.0, "timeout", p.seq) == [
        HealthChanged(False, "3 failed checks: timeout")
    ]


def test_no_retries_while_down_and_rise_needs_consecutive_good_checks() -> None:
    m = started(HealthParams(delay_loop=1.0, timeout=0.5, retry=3, rise=2, initial_up=False))
    assert not m.healthy
    p = probe(m.timer_fired(0.0))
    assert m.probe_result(0.0, False, 0.0, "refused", p.seq) == []
    assert m.deadline == 1.0  # delay_loop, not delay_before_retry
    p = probe(m.timer_fired(1.0))
    assert m.probe_result(1.0, True, 0.0, "ok", p.seq) == []
    p = probe(m.timer_fired(2.0))
    assert m.probe_result(2.0, False, 0.0, "refused", p.seq) == []  # resets the rise count
    p = probe(m.timer_fired(3.0))
    assert m.probe_result(3.0, True, 0.0, "ok", p.seq) == []
    p = probe(m.timer_fired(4.0))
    assert m.probe_result(4.0, True, 0.0, "ok", p.seq) == [HealthChanged(True, "2 good checks: ok")]
    assert m.healthy and m.since == 4.0


def test_initial_state_up_is_keepalived_default_and_down_waits_for_proof() -> None:
    up = started(HealthParams(delay_loop=1.0, timeout=1.0))
    down = started(HealthParams(delay_loop=1.0, timeout=1.0, initial_up=False))
    assert (up.healthy, down.healthy) == (True, False)
    p = probe(down.timer_fired(0.0))
    assert down.probe_result(0.0, True, 0.0, "ok", p.seq) == [
        HealthChanged(True, "1 good checks: ok")
    ]


# --------------------------------------------------- stale and lost results --


def test_stale_and_unexpected_results_are_ignored() -> None:
    m = started(HealthParams(delay_loop=1.0, timeout=1.0, retry=0))
    assert m.probe_result(0.0, False, 0.0, "nobody asked", 1) == []  # nothing in flight
    p = probe(m.timer_fired(0.0))
    assert m.probe_result(0.1, False, 0.0, "old", p.seq - 1) == []
    assert m.in_flight and m.healthy
    m.stop()
    assert m.probe_result(0.2, False, 0.0, "after stop", p.seq) == []
    assert m.deadline is None and m.healthy


def test_a_probe_that_never_reports_counts_as_failed_after_the_grace() -> None:
    m = started(HealthParams(delay_loop=1.0, timeout=2.0, retry=0, result_grace=1.0))
    p = probe(m.timer_fired(0.0))
    assert m.deadline == 3.0
    assert m.timer_fired(2.5) == []
    assert m.timer_fired(3.0) == [HealthChanged(False, "1 failed checks: no result from the probe")]
    assert m.probe_result(3.5, True, 0.0, "late", p.seq) == []  # given up on
    assert not m.healthy and m.deadline == 4.0


def test_params_are_validated() -> None:
    with pytest.raises(ValueError):
        HealthParams(delay_loop=0.0, timeout=1.0)
    with pytest.raises(ValueError):
        HealthParams(delay_loop=1.0, timeout=1.0, rise=0)
    with pytest.raises(ValueError):
        RealServerHealth(HealthParams(delay_loop=1.0, timeout=1.0), jitter=1.0)


# ---------------------------------------------------------- simulation --


@dataclass
class Server:
    """A real server on a walked clock: refuses (fast) or blackholes while dead."""

    alive: Callable[[float], bool]
    blackhole: bool
    latency: float = 0.001


def simulate(m: RealServerHealth, server: Server, until: float) -> list[tuple[float, bool]]:
    """Run the machine against `server` until `until`; return (time, healthy) changes."""
    changes: list[tuple[float, bool]] = []
    pending: tuple[float, int, bool] | None = None
    for _ in range(100_000):  # bounded
        deadline = m.deadline
        assert deadline is not None
        if pending is not None and pending[0] <= deadline:
            at, seq, ok = pending
            pending = None
            actions = m.probe_result(at, ok, 0.0, "sim", seq)
        else:
            at = deadline
            actions = m.timer_fired(at)
        if at > until:
            return changes
        for action in actions:
            if isinstance(action, StartProbe):
                if server.alive(at):
                    pending = (at + server.latency, action.seq, True)
                elif server.blackhole:
                    pending = (at + action.timeout, action.seq, False)
                else:
                    pending = (at + server.latency, action.seq, False)
            elif isinstance(action, HealthChanged):
                changes.append((at, action.healthy))
    raise AssertionError("simulation did not finish")


@settings(max_examples=300, deadline=None)
@given(
    delay_loop=st.sampled_from([0.5, 1.0, 2.0, 20.0]),
    timeout=st.sampled_from([0.25, 1.0, 3.0]),
    retry=st.integers(0, 3),
    delay_before_retry=st.sampled_from([0.0, 0.5, 1.0, 3.0]),
    rise=st.integers(1, 4),
    fall=st.integers(1, 4),
    warmup=st.sampled_from([0.0, 1.0, 20.0]),
    jitter=st.floats(0.0, 0.999),
    died=st.floats(30.0, 200.0),
    down_for=st.floats(50.0, 300.0),
    blackhole=st.booleans(),
)
def test_leaves_and_returns_within_the_documented_bounds(
    delay_loop: float,
    timeout: float,
    retry: int,
    delay_before_retry: float,
    rise: int,
    fall: int,
    warmup: float,
    jitter: float,
    died: float,
    down_for: float,
    blackhole: bool,
) -> None:
    """docs/configuration.md's bounds: out within fall checks, back within rise checks."""
    params = HealthParams(
        delay_loop, timeout, retry, delay_before_retry, rise, fall, warmup, initial_up=True
    )
    back = died + down_for
    server = Server(lambda t: not died <= t < back, blackhole)
    changes = simulate(started(params, 0.0, jitter), server, back + 400.0)
    latency = server.latency
    attempt = timeout if blackhole else latency
    check = (retry + 1) * attempt + retry * delay_before_retry
    # a check under way when the server dies may still pass: one attempt more
    out_bound = warmup + fall * (delay_loop + check) + attempt
    in_bound = attempt + rise * (delay_loop + latency)
    assume(out_bound < down_for)  # a shorter outage may go unnoticed, rightly
    assert len(changes) == 2
    (out_at, out_healthy), (in_at, in_healthy) = changes
    assert (out_healthy, in_healthy) == (False, True)
    assert died <= out_at <= died + out_bound
    assert back <= in_at <= back + in_bound


# ------------------------------------------------------------- params --

SERVICE = """
[[virtual_server]]
address = "192.0.2.84"
port = 80
delay_loop = 20
"""


def reals(*bodies: str) -> str:
    return SERVICE + "".join(
        f"[[virtual_server.real_server]]\naddress = '198.51.100.{i + 1}'\n{body}\n"
        for i, body in enumerate(bodies)
    )


def test_health_params_follow_keepalived_defaults() -> None:
    (vs,) = parse_config(
        reals(
            "tcp_check = { connect_timeout = 3 }",
            "http_get = { path = '/health' }",
            "misc_check = { argv = ['/bin/true'] }",
            "",
            "tcp_check = {}\nretry = 0\ndelay_before_retry = 2\nwarmup = 0\nrise = 2\nfall = 3\n"
            "initial_state = 'down'",
        )
    ).virtual_servers
    tcp, http, misc, none, custom = (health_params(vs, rs) for rs in vs.real_servers)
    assert tcp == HealthParams(
        delay_loop=20.0, timeout=3.0, retry=1, delay_before_retry=1.0, warmup=20.0
    )
    assert http is not None and (http.retry, http.delay_before_retry) == (1, 3.0)
    assert misc is not None and (misc.retry, misc.timeout) == (0, 20.0)
    assert none is None  # no check: always healthy, as keepalived
    assert custom == HealthParams(20.0, 3.0, 0, 2.0, 2, 3, 0.0, initial_up=False)


# ------------------------------------------------------------- quorum --


@pytest.mark.parametrize(
    ("up", "weight", "quorum", "hysteresis", "expected"),
    [
        (None, 0, 1, 0, False),  # first evaluation: the loss rule only
        (None, 1, 1, 0, True),
        (None, 2, 3, 1, True),  # 2 is not below 3 - 1
        (None, 1, 3, 1, False),
        (True, 2, 3, 1, True),
        (True, 1, 3, 1, False),
        (False, 3, 3, 1, False),  # gained only at quorum + hysteresis
        (False, 4, 3, 1, True),
        (True, 0, 0, 0, False),  # no weight left: always lost
        (False, 0, 0, 0, False),
        (False, 1, 0, 0, True),
    ],
)
def test_quorum_next_is_keepalived_rule(
    up: bool | None, weight: int, quorum: int, hysteresis: int, expected: bool
) -> None:
    assert quorum_next(up, weight, quorum, hysteresis) is expected


QUORUM = """
[[virtual_server]]
address = "192.0.2.84"
port = 80
quorum = 3
hysteresis = 1
sorry_server = { address = "203.0.113.9", port = 8080 }
""" + "".join(
    f"[[virtual_server.real_server]]\naddress = '198.51.100.{i}'\ntcp_check = {{}}\n"
    for i in range(1, 6)
)


def health_of(
    vs_key: ServiceKey, healthy: int, total: int = 5
) -> dict[tuple[ServiceKey, DestKey], bool]:
    return {(vs_key, DestKey(f"198.51.100.{i}", 80)): i <= healthy for i in range(1, total + 1)}


def test_quorum_gate_walks_the_hysteresis_band() -> None:
    config = parse_config(QUORUM)
    key = ServiceKey("tcp", "192.0.2.84", 80)
    gates = QuorumGates()
    assert gates.update(config.virtual_servers, health_of(key, 5)) == []
    assert gates.up[key]
    seen = []
    for healthy in (4, 3, 2, 1, 2, 3, 4, 5, 1):
        for change in gates.update(config.virtual_servers, health_of(key, healthy)):
            assert isinstance(change, QuorumChanged)
            seen.append((healthy, change.up))
    # lost below 3 - 1 = 2 (at 1), gained at 3 + 1 = 4
    assert seen == [(1, False), (4, True), (1, False)]
    assert gates.weight[key] == 1
    gates.update((), {})
    assert gates.up == {}


def test_apply_health_removes_or_inhibits_and_swaps_in_the_sorry_server() -> None:
    (vs,) = parse_config(QUORUM).virtual_servers
    key = ServiceKey("tcp", "192.0.2.84", 80)
    health = health_of(key, 3)

    def table(quorum_up: bool, inhibit: bool) -> list[tuple[str, int, int]]:
        svc = dataclasses.replace(vs, inhibit_on_failure=inhibit)
        effective = apply_health((svc,), health, {key: quorum_up})
        (service,) = desired_ipvs(effective)
        return [(d.address, d.port, d.weight) for d in service.destinations]

    assert table(True, False) == [(f"198.51.100.{i}", 80, 1) for i in (1, 2, 3)]
    assert table(True, True) == [(f"198.51.100.{i}", 80, int(i <= 3)) for i in range(1, 6)]
    assert table(False, False) == [("203.0.113.9", 8080, 1)]
    assert table(False, True) == [
        *[(f"198.51.100.{i}", 80, 0) for i in range(1, 6)],
        ("203.0.113.9", 8080, 1),
    ]


def test_apply_health_without_sorry_server_ignores_quorum_and_keeps_forwarding() -> None:
    (vs,) = parse_config(reals("tcp_check = {}", "tcp_check = {}", "")).virtual_servers
    key = ServiceKey("tcp", "192.0.2.84", 80)
    health = {(key, DestKey("198.51.100.1", 80)): False}
    (service,) = desired_ipvs(apply_health((vs,), health, {key: False}))
    assert service.destinations == (
        Destination("198.51.100.2", 80, 1, "dr"),
        Destination("198.51.100.3", 80, 1, "dr"),
    )
