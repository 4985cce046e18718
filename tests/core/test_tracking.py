"""Tracking (lvsha.core.tracking): scripts, weights, files, effective priority.

The rules are keepalived's (vrrp_track.c, vrrp_scheduler.c, track_file.c),
restated here from its source rather than read from the implementation.
"""

from __future__ import annotations

from unittest.mock import ANY

import pytest

from lvsha.core.tracking import (
    KillScript,
    Kind,
    RunScript,
    ScriptMonitor,
    ScriptParams,
    ScriptStatusChanged,
    Tracked,
    effective_priority,
    evaluate,
    parse_track_file,
)

# ------------------------------------------------------------ rise / fall --


def monitor(**kw: object) -> ScriptMonitor:
    fields: dict[str, object] = {"name": "chk", "interval": 2.0, "timeout": 1.0}
    fields.update(kw)
    return ScriptMonitor(ScriptParams(**fields))  # type: ignore[arg-type]


def run(m: ScriptMonitor, now: float, code: int) -> list[object]:
    """Fire the timer at `now` (which must start a run), then end it with `code`."""
    acts = list(m.timer_fired(now))
    assert RunScript("chk") in acts
    return acts + list(m.exited(now + 0.1, code))


def test_first_result_decides_at_once() -> None:
    # keepalived: result = rise - 1 at start, "one success is enough"; and a
    # first failure fails at once (init_state INIT).
    for code, ok in ((0, True), (1, False)):
        m = monitor(rise=3, fall=3)
        assert m.ok is None
        assert m.start(0.0) == [RunScript("chk")]
        assert m.exited(0.2, code) == [ScriptStatusChanged("chk", ok, ANY)]
        assert m.ok is ok


def test_fall_failures_in_a_row_then_rise_successes() -> None:
    m = monitor(rise=2, fall=3)
    m.start(0.0)
    m.exited(0.1, 0)
    assert m.ok is True
    now = 0.0
    flips: list[tuple[float, bool]] = []
    for code in (1, 1, 0, 1, 1, 1, 0, 1, 0, 0):
        now += 2.0
        for a in run(m, now, code):
            if isinstance(a, ScriptStatusChanged):
                flips.append((now, a.ok))
    # 1,1 (result 4->3->2), 0 back to top (4), 1,1,1 -> fails on the third (t=12),
    # 0 (result 1), 1 (result 0), 0, 0 -> rises on the second success (t=20)
    assert flips == [(12.0, False), (20.0, True)]


def test_init_fail_starts_failed_and_needs_rise_successes() -> None:
    m = monitor(rise=2, fall=2, init_fail=True)
    assert m.ok is False
    m.start(0.0)
    assert m.exited(0.1, 0) == []
    assert m.ok is False
    assert [a for a in run(m, 2.0, 0) if isinstance(a, ScriptStatusChanged)] != []
    assert m.ok is True


def test_timeout_is_a_failure_and_kills_the_run() -> None:
    m = monitor(interval=2.0, timeout=1.5)
    assert m.start(0.0) == [RunScript("chk")]
    assert m.deadline == 1.5
    acts = m.timer_fired(1.5)
    assert acts[0] == KillScript("chk")
    assert isinstance(acts[1], ScriptStatusChanged) and acts[1].ok is False
    assert m.timeouts == 1
    # the killed run's exit is not a second result
    assert m.exited(1.6, -9) == []
    assert m.deadline == 2.0


def test_a_run_still_going_at_the_next_interval_is_skipped() -> None:
    # timeout longer than interval: keepalived skips the run ("already running")
    m = monitor(interval=1.0, timeout=5.0)
    m.start(0.0)
    assert m.timer_fired(1.0) == []
    assert m.timer_fired(2.0) == []
    assert m.runs == 1
    m.exited(2.5, 0)
    assert m.timer_fired(3.0) == [RunScript("chk")]


def test_late_timer_does_not_burst() -> None:
    m = monitor(interval=1.0, timeout=0.5)
    m.start(0.0)
    m.exited(0.1, 0)
    m.timer_fired(10.0)  # the loop was stalled for ten intervals
    assert m.runs == 2
    assert m.deadline == 10.5


# --------------------------------------------------------------- weights --

S = Kind.SCRIPT
I = Kind.INTERFACE  # noqa: E741
F = Kind.FILE


@pytest.mark.parametrize(
    ("weight", "ok", "priority", "fault"),
    [
        (0, True, 100, False),
        (0, False, 100, True),  # weight 0: FAULT while failing
        (0, None, 100, True),  # ... and until the first run (keepalived holds INIT)
        (-30, True, 100, False),
        (-30, False, 70, False),  # <0 subtracted while failing
        (-30, None, 100, False),
        (20, True, 120, False),  # >0 added while OK
        (20, False, 100, False),
        (20, None, 100, False),
    ],
)
def test_script_weights(weight: int, ok: bool | None, priority: int, fault: bool) -> None:
    ev = evaluate(100, (Tracked(S, "chk", weight),), {"chk": ok}, {}, {})
    assert ev.effective == priority
    assert bool(ev.faults) is fault


@pytest.mark.parametrize(
    ("weight", "up", "priority", "fault"),
    [(0, True, 100, False), (0, False, 100, True), (-20, False, 80, False), (15, True, 115, False)],
)
def test_interface_weights(weight: int, up: bool, priority: int, fault: bool) -> None:
    ev = evaluate(100, (Tracked(I, "eth2", weight),), {}, {"eth2": up}, {})
    assert (ev.effective, bool(ev.faults)) == (priority, fault)


@pytest.mark.parametrize(
    ("weight", "value", "priority", "fault"),
    [
        (0, 0, 100, False),  # weight 0: 0 = OK
        (0, 7, 100, True),  # ... any other value = FAULT
        (0, -1, 100, True),
        (1, 20, 120, False),  # value x weight
        (-10, 3, 70, False),
        (10, -25, 1, False),  # -250 is not FAULT: 100 - 250 -> priority 1
        (10, -26, 100, True),  # -260 -> -254: FAULT
        (1, 1000, 254, False),  # +253 at most, then 1..254
    ],
)
def test_file_values_times_weight(weight: int, value: int, priority: int, fault: bool) -> None:
    ev = evaluate(100, (Tracked(F, "/run/x", weight),), {}, {}, {"/run/x": value})
    assert (ev.effective, bool(ev.faults)) == (priority, fault)


def test_weights_add_up_and_clamp_to_1_254() -> None:
    tracked = (Tracked(S, "a", -60), Tracked(S, "b", -60), Tracked(I, "eth2", 50))
    assert evaluate(100, tracked, {"a": False, "b": False}, {"eth2": False}, {}).effective == 1
    assert evaluate(230, tracked, {"a": True, "b": True}, {"eth2": True}, {}).effective == 254
    ev = evaluate(100, tracked, {"a": False, "b": True}, {"eth2": True}, {})
    assert ev.effective == 90
    assert [c.priority for c in ev.contributions] == [-60, 0, 50]


def test_owner_is_not_changed_by_weights_but_faults_still_count() -> None:
    tracked = (Tracked(S, "a", -60), Tracked(S, "z", 0))
    ev = evaluate(255, tracked, {"a": False, "z": True}, {}, {})
    assert ev.effective == 255
    assert not ev.faults
    assert evaluate(255, tracked, {"a": False, "z": False}, {}, {}).faults
    assert effective_priority(255, 100) == 255
    assert effective_priority(254, 100) == 254


# ---------------------------------------------------------------- files --


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (None, 0),  # missing
        (b"", 0),
        (b"12\n", 12),
        (b"  -5 apples", -5),
        (b"0x1f", 31),  # strtol base 0
        (b"010", 8),
        (b"maintenance", 0),  # not a number: 0
        (b"+7", 7),
        (b"2147483648", 2147483648),  # INT32_MAX + 1 is still accepted
    ],
)
def test_file_parsed_like_strtol(data: bytes | None, value: int) -> None:
    assert parse_track_file(data, last=99) == value


def test_file_out_of_range_keeps_the_last_value() -> None:
    assert parse_track_file(b"2147483649", last=3) == 3
    assert parse_track_file(b"-2147483649", last=3) == 3
    assert parse_track_file(b"9" * 126, last=4) == 4
