"""IpvsSync trusts its model and verifies the kernel: on the in-memory kernel, walked clock."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import replace

import pytest
from fake_kernel import FakeIpvs
from hypothesis import given, settings
from hypothesis import strategies as st
from test_reconcile import d, svc, tables

from lvsha.adapters.ipvs import IpvsBatchError
from lvsha.core.desired import IpvsTable, ServiceKey
from lvsha.core.reconcile import (
    apply_to_table,
    diff,
    services_of,
)
from lvsha.errors import KernelError
from lvsha.runtime.ipvs_sync import IpvsSync, SyncDaemonRole, verify_interval_for

A = ServiceKey("tcp", "192.0.2.1", 80)
B = ServiceKey("tcp", "192.0.2.2", 80)
C = ServiceKey("tcp", "192.0.2.3", 80)
TABLE = IpvsTable((svc(A, "rr", d(1), d(2)), svc(B, "rr", d(1), d(2)), svc(C, "wlc", d(3))))


class Rig:
    """One IpvsSync over one FakeIpvs, with a clock the test walks."""

    def __init__(self, kernel: FakeIpvs | None = None, interval: float | None = 60.0) -> None:
        self.kernel = kernel or FakeIpvs()
        self.now = 0.0
        self.sync = IpvsSync(interval, kernel=lambda: self.kernel, clock=lambda: self.now)
        self.sync.start()

    def apply(self, desired: IpvsTable, role: SyncDaemonRole | None = None) -> list[str]:
        """A whole-table pass as the daemon makes it: with the one that takes a verify."""
        return asyncio.run(self.whole_pass(desired, role))

    async def whole_pass(self, desired: IpvsTable, role: SyncDaemonRole | None) -> list[str]:
        done = await self.sync.apply(desired, role)
        if await self.sync.verified_beside():  # on_verified: the daemon's next whole pass
            done += await self.sync.apply(desired, role)
        return done

    def close(self) -> None:
        asyncio.run(self.sync.close([]))


@pytest.fixture
def rig() -> Iterator[Rig]:
    r = Rig()
    try:
        yield r
    finally:
        r.close()


def test_start_verifies_then_changes_reach_the_kernel_without_a_dump(rig: Rig) -> None:
    assert len(rig.apply(TABLE)) == 3 + 5
    assert rig.kernel.dumps == 1 and rig.kernel.table == TABLE
    # a real server of A fails: one operation, no dump
    rig.now += 1
    fewer = IpvsTable((svc(A, "rr", d(2)), *TABLE.services[1:]))
    assert rig.apply(fewer) == [f"delete dest 198.51.100.1:80 from {A}"]
    assert rig.kernel.dumps == 1
    assert rig.kernel.batches[-1] == diff(fewer, TABLE)
    assert rig.kernel.table == fewer
    # the daemon's periodic kick with nothing new: no dump, no batch
    rig.now += 10
    batches = len(rig.kernel.batches)
    assert rig.apply(fewer) == []
    assert (rig.kernel.dumps, len(rig.kernel.batches)) == (1, batches)


def test_verify_is_time_based_and_shown_in_status(rig: Rig) -> None:
    rig.apply(TABLE)
    for _ in range(5):  # kicks every 10 s inside the interval: no dump
        rig.now += 10
        rig.apply(TABLE)
    assert rig.kernel.dumps == 1
    status = rig.sync.status()["verify"]
    assert status["count"] == 1 and status["next_in"] == 10.0 and status["repaired"] == []
    rig.now += 10.5  # past 60 s since the first verify
    assert rig.apply(TABLE) == []
    assert rig.kernel.dumps == 2
    assert rig.sync.status()["verify"]["count"] == 2


def test_drift_is_trusted_away_until_the_verify_repairs_and_reports_it(rig: Rig) -> None:
    rig.apply(TABLE)
    # an operator deletes a destination and reweights another behind lvsha's back
    by_hand = IpvsTable((svc(A, "rr", d(2, weight=9)), *TABLE.services[1:]))
    rig.kernel.table = apply_to_table(rig.kernel.table, diff(by_hand, rig.kernel.table))
    rig.now += 30
    assert rig.apply(TABLE) == []  # the model says all is well: no dump yet
    rig.now += 31
    done = rig.apply(TABLE)
    assert done == [
        f"add dest 198.51.100.1:80 dr weight 1 to {A}",
        f"edit dest 198.51.100.2:80 dr weight 1 in {A} (was 198.51.100.2:80 dr weight 9)",
    ]
    assert rig.kernel.table == TABLE
    assert rig.sync.status()["verify"]["repaired"] == done
    assert rig.sync.status()["verify"]["repaired_total"] == 2


def test_a_refused_operation_in_the_middle_leaves_the_rest_applied_and_named(rig: Rig) -> None:
    bad = IpvsTable((TABLE.services[0], svc(B, "nosuch", d(1), d(2)), TABLE.services[2]))
    with pytest.raises(IpvsBatchError) as info:
        rig.apply(bad)
    err = info.value
    assert isinstance(err, KernelError)
    assert [str(op) for op, _ in err.failed] == [
        f"add service {B} nosuch",
        f"add dest 198.51.100.1:80 dr weight 1 to {B}",
        f"add dest 198.51.100.2:80 dr weight 1 to {B}",
    ]
    assert err.failed[0][1] == "ENOENT (No such file or directory)"
    assert f"add service {B} nosuch: ENOENT" in str(err)
    assert rig.kernel.table == IpvsTable((TABLE.services[0], TABLE.services[2]))  # the rest
    # after an error the next pass verifies, and with the config fixed all is there
    dumps = rig.kernel.dumps
    rig.apply(TABLE)
    assert rig.kernel.dumps == dumps + 1
    assert rig.kernel.table == TABLE
    assert rig.sync.error is None


def test_an_op_refused_because_of_unseen_drift_makes_the_next_verify_repair(rig: Rig) -> None:
    rig.apply(TABLE)
    rig.kernel.table = IpvsTable(TABLE.services[1:])  # `ipvsadm -D` of A, unseen
    rig.now += 5
    # B's and A's real servers change in one batch: A's is refused, B's applied
    changed = IpvsTable((svc(A, "rr", d(1), d(2), d(4)), svc(B, "rr", d(1)), TABLE.services[2]))
    with pytest.raises(IpvsBatchError) as info:
        rig.apply(changed)
    assert [str(op) for op, _ in info.value.failed] == [
        f"add dest 198.51.100.4:80 dr weight 1 to {A}"
    ]
    assert rig.kernel.table.get(B) == svc(B, "rr", d(1))
    rig.now += 5  # well inside the interval: the error alone brings the verify
    rig.apply(changed)
    assert rig.kernel.table == changed
    assert rig.sync.status()["verify"]["repaired"][0] == f"add service {A} rr"


def test_verify_interval_follows_the_measured_dump_cost() -> None:
    """1 % of a core: 0.5 s of CPU per dump means a verify every 50 s, within 10 s-5 min."""
    assert verify_interval_for(0.0) == 10.0  # small tables: as often as the old resync
    assert verify_interval_for(0.5) == 50.0
    assert verify_interval_for(9.0) == 300.0
    rig = Rig(interval=None)
    try:
        rig.apply(TABLE)  # a dump of the fake costs next to nothing
        assert rig.sync.status()["verify"]["interval"] == 10.0
        rig.now += 9
        rig.apply(TABLE)
        assert rig.kernel.dumps == 1
        rig.now += 1.5
        rig.apply(TABLE)
        assert rig.kernel.dumps == 2
    finally:
        rig.close()


def test_sync_daemon_follows_the_role(rig: Rig) -> None:
    rig.apply(TABLE, SyncDaemonRole("master", "eth0", 51))
    assert rig.kernel.sync_daemon == "master"
    done = rig.apply(TABLE, SyncDaemonRole("backup", "eth0", 51))
    assert done == ["sync daemon: backup"] and rig.kernel.sync_daemon == "backup"


# ------------------------------------------------------------- properties --

steps = st.lists(
    st.tuples(tables(), st.sampled_from(["none", "drift", "bad", "wait"]), tables()),
    min_size=1,
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(tables(), steps)
def test_replan_after_every_pass_is_empty_unless_drift_is_unverified(
    start: IpvsTable, plan: list[tuple[IpvsTable, str, IpvsTable]]
) -> None:
    """The reconcile invariant with the model in between, drift and refusals included.

    After a pass with no refusal, re-planning against the real kernel is
    empty whenever no drift happened since the last verify, and always after
    a verify. A pass with a refusal leaves every other operation applied.
    """
    rig = Rig(FakeIpvs(start), interval=60.0)
    try:
        unseen_drift = False
        for desired, event, other in plan:
            if event == "drift":  # someone else rewrites some of the table
                merged = {s.key: s for s in rig.kernel.table} | {s.key: s for s in other}
                rig.kernel.table = IpvsTable(tuple(merged.values()))
                unseen_drift = True
            if event == "wait":
                rig.now += 61
            want = desired
            if event == "bad" and desired.services:
                first = desired.services[0]
                want = IpvsTable((replace(first, scheduler="nosuch"), *desired.services[1:]))
            verifies = rig.sync.verifies
            try:
                rig.apply(want)
            except IpvsBatchError as exc:
                assert event == "bad" or unseen_drift
                if not unseen_drift:  # only the bad service is refused; the rest is in
                    bad = {want.services[0].key}
                    assert services_of(op for op, _ in exc.failed) == bad
                    assert services_of(diff(want, rig.kernel.table)) <= bad
                continue
            if rig.sync.verifies > verifies:
                unseen_drift = False
            if not unseen_drift:
                assert diff(want, rig.kernel.table, want.keys()) == []
    finally:
        rig.close()


# ------------------------------------------------ the incremental path --


def test_a_pass_with_changed_keys_plans_only_those(rig: Rig) -> None:
    """A health change plans its own services: the rest of the table is not even diffed.

    The desired table here also differs under B, which the caller did not
    name: the incremental pass leaves B alone (a full pass would edit it).
    """
    rig.apply(TABLE)
    want = IpvsTable((svc(A, "rr", d(1)), svc(B, "wlc", d(1), d(2)), svc(C, "wlc", d(3))))
    done = asyncio.run(rig.sync.apply(want, None, frozenset({A})))
    assert done == ["delete dest 198.51.100.2:80 from TCP 192.0.2.1:80"]
    assert rig.kernel.table.get(B) == TABLE.get(B)
    assert rig.kernel.dumps == 1
    (edit,) = rig.apply(want)  # a whole-table pass then finds B
    assert edit.startswith("edit service TCP 192.0.2.2:80 wlc")


def test_a_health_pass_leaves_a_due_verify_to_the_next_whole_table_pass(rig: Rig) -> None:
    """A failed check never waits for a dump; the daemon's periodic pass verifies."""
    rig.apply(TABLE)
    rig.kernel.table = IpvsTable(tuple(s for s in TABLE if s.key != C))  # drift
    rig.now += 61  # the verify is due
    fewer = IpvsTable((svc(A, "rr", d(1)), *TABLE.services[1:]))
    done = asyncio.run(rig.sync.apply(fewer, None, frozenset({A})))
    assert done == ["delete dest 198.51.100.2:80 from TCP 192.0.2.1:80"]
    assert rig.kernel.dumps == 1 and C not in rig.kernel.table
    assert rig.apply(fewer) == [  # the whole-table pass: verify, repair
        "add service TCP 192.0.2.3:80 wlc",
        "add dest 198.51.100.3:80 dr weight 1 to TCP 192.0.2.3:80",
    ]
    assert rig.kernel.dumps == 2


def test_a_health_pass_during_the_periodic_verify_reaches_the_kernel_before_the_dump_ends(
    rig: Rig,
) -> None:
    """The periodic verify dumps beside the passes; what they touch keeps the view's version.

    The dump read A before A's real server failed and C after an operator
    deleted C: the pass that takes it repairs C and leaves A as the health
    pass made it (taking the stale A would re-delete its destination, which
    the kernel refuses).
    """
    rig.apply(TABLE)
    rig.now += 61  # the verify is due
    rig.kernel.hold.set()
    fewer = IpvsTable((svc(A, "rr", d(2)), *TABLE.services[1:]))
    verified = threading.Event()
    rig.sync.on_verified = verified.set

    async def scenario() -> list[str]:
        assert await rig.sync.apply(TABLE, None) == []  # starts the dump, does not wait for it
        assert await asyncio.to_thread(rig.kernel.at_hold.wait, 10)  # it has read A
        done = await rig.sync.apply(fewer, None, frozenset({A}))  # A's real server failed
        assert done == [f"delete dest 198.51.100.1:80 from {A}"]
        assert rig.kernel.table == fewer and rig.kernel.hold.is_set()  # the dump still waits
        assert rig.sync.status()["verify"]["dumping"]
        rig.kernel.table = IpvsTable(tuple(s for s in fewer if s.key != C))  # `ipvsadm -D`
        rig.kernel.hold.clear()
        assert await rig.sync.verified_beside()
        assert verified.is_set()  # the daemon is asked for the pass that takes it
        return await rig.sync.apply(fewer, None)

    assert asyncio.run(scenario()) == [
        f"add service {C} wlc",
        f"add dest 198.51.100.3:80 dr weight 1 to {C}",
    ]
    assert rig.kernel.table == fewer
    assert rig.sync.status()["verify"]["count"] == 2
    assert not rig.sync.status()["verify"]["dumping"]
    assert rig.sync.status()["verify"]["repaired_total"] == 2


def test_a_verify_beside_that_fails_makes_the_next_pass_verify_in_line(rig: Rig) -> None:
    rig.apply(TABLE)
    rig.now += 61
    rig.kernel.dump_error = KernelError("ipvs dump: EINTR")
    dumps = rig.kernel.dumps
    assert rig.apply(TABLE) == []  # the dump failed: logged, nothing taken from it
    rig.kernel.dump_error = None
    rig.kernel.table = IpvsTable(TABLE.services[1:])  # drift the in-line verify must see
    done = rig.apply(TABLE)
    assert rig.kernel.dumps == dumps + 2 and rig.kernel.table == TABLE
    assert done[0] == f"add service {A} rr"


def test_a_pass_told_the_changed_keys_still_verifies_first_when_asked(rig: Rig) -> None:
    """verify_soon() (an error, a reload) makes even a health pass dump and plan it all."""
    rig.apply(TABLE)
    rig.kernel.table = IpvsTable(tuple(s for s in TABLE if s.key != C))  # drift
    rig.sync.verify_soon()
    done = asyncio.run(rig.sync.apply(TABLE, None, frozenset({A})))
    assert done == [
        "add service TCP 192.0.2.3:80 wlc",
        "add dest 198.51.100.3:80 dr weight 1 to TCP 192.0.2.3:80",
    ]
    assert rig.kernel.dumps == 2


def test_a_changed_key_that_left_the_table_is_deleted(rig: Rig) -> None:
    rig.apply(TABLE)
    want = IpvsTable(tuple(s for s in TABLE if s.key != B))
    asyncio.run(rig.sync.apply(want, None, frozenset({B})))
    assert rig.kernel.table == want
    assert rig.apply(want) == []  # and B is no longer owned: a full pass agrees


def changes(prev: IpvsTable, nxt: IpvsTable) -> frozenset[ServiceKey]:
    return frozenset(k for k in prev.keys() | nxt.keys() if prev.get(k) != nxt.get(k))


@settings(max_examples=60, deadline=None)
@given(tables(), steps)
def test_incremental_passes_do_exactly_what_full_passes_do(
    start: IpvsTable, plan: list[tuple[IpvsTable, str, IpvsTable]]
) -> None:
    """Told the changed keys, a pass makes the same operations as a whole-table pass.

    Two IpvsSyncs over two copies of the same kernel, the same tables, drift,
    refusals and verifies: one plans the whole table each time, the other
    only the keys that changed since its previous call (but for the pass
    where the verify is due: the daemon's periodic whole-table pass). Their operations,
    errors and kernels stay equal at every step.
    """
    full, part = Rig(FakeIpvs(start)), Rig(FakeIpvs(start))
    try:
        prev: IpvsTable | None = None
        for desired, event, other in plan:
            if event == "drift":
                for r in (full, part):
                    merged = {s.key: s for s in r.kernel.table} | {s.key: s for s in other}
                    r.kernel.table = IpvsTable(tuple(merged.values()))
            if event == "wait":
                full.now += 61
                part.now += 61
            want = desired
            if event == "bad" and desired.services:
                first = desired.services[0]
                want = IpvsTable((replace(first, scheduler="nosuch"), *desired.services[1:]))
            # "wait": the verify is due; the daemon's periodic pass, which makes
            # it, is a whole-table one (a health pass leaves it to that pass)
            changed = None if prev is None or event == "wait" else changes(prev, want)
            results = []
            for r, keys in ((full, None), (part, changed)):
                try:
                    results.append(("ok", asyncio.run(r.sync.apply(want, None, keys))))
                except IpvsBatchError as exc:
                    results.append(("refused", [str(op) for op, _ in exc.failed]))
            assert results[0] == results[1]
            assert full.kernel.table == part.kernel.table
            prev = want
    finally:
        full.close()
        part.close()
