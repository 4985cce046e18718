"""diff(): ordered, minimal, owner-aware; apply + re-plan is empty (Hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lvsha.core.desired import Destination, DestKey, IpvsTable, Service, ServiceKey
from lvsha.core.reconcile import (
    AddDest,
    AddService,
    DeleteDest,
    DeleteService,
    EditDest,
    EditService,
    Operation,
    apply_to_table,
    diff,
    services_of,
)

VIP = ServiceKey("tcp", "192.0.2.10", 80)
FOREIGN = ServiceKey("tcp", "192.0.2.99", 443)


def svc(key: ServiceKey = VIP, sched: str = "rr", *dests: Destination, timeout: int = 0) -> Service:
    return Service(key, sched, 1 if timeout else 0, timeout, destinations=dests)


def d(last: int, weight: int = 1, fwd: str = "dr") -> Destination:
    return Destination(f"198.51.100.{last}", 80, weight, fwd)


def test_from_empty_adds_service_before_its_dests() -> None:
    want = IpvsTable((svc(VIP, "rr", d(1), d(2)),))
    ops = diff(want, IpvsTable())
    assert ops == [AddService(svc(VIP, "rr")), AddDest(VIP, d(1)), AddDest(VIP, d(2))]


def test_equal_tables_give_nothing() -> None:
    t = IpvsTable((svc(VIP, "rr", d(1), d(2)),))
    assert diff(t, t) == []


def test_scheduler_and_persistence_change_is_an_edit_not_a_recreate() -> None:
    have = IpvsTable((svc(VIP, "rr", d(1)),))
    want = IpvsTable((svc(VIP, "wlc", d(1), timeout=300),))
    ops = diff(want, have)
    assert ops == [EditService(svc(VIP, "wlc", timeout=300), svc(VIP, "rr"))]


def test_weight_and_forwarding_changes_are_edits() -> None:
    have = IpvsTable((svc(VIP, "rr", d(1), d(2)),))
    want = IpvsTable((svc(VIP, "rr", d(1, weight=5), d(2, fwd="nat")),))
    assert diff(want, have) == [
        EditDest(VIP, d(1, weight=5), d(1)),
        EditDest(VIP, d(2, fwd="nat"), d(2)),
    ]


def test_replaced_real_server_is_added_before_the_old_one_goes() -> None:
    have = IpvsTable((svc(VIP, "rr", d(1)),))
    want = IpvsTable((svc(VIP, "rr", d(2)),))
    assert diff(want, have) == [AddDest(VIP, d(2)), DeleteDest(VIP, DestKey("198.51.100.1", 80))]


def test_foreign_services_are_untouched_owned_leftovers_are_deleted_dests_first() -> None:
    old = ServiceKey("udp", "192.0.2.10", 53)
    have = IpvsTable((svc(FOREIGN, "wlc", d(9)), svc(old, "rr", d(1), d(2))))
    want = IpvsTable()
    assert diff(want, have) == []  # nothing owned: nothing to do
    assert diff(want, have, owned={old}) == [
        DeleteDest(old, DestKey("198.51.100.1", 80)),
        DeleteDest(old, DestKey("198.51.100.2", 80)),
        DeleteService(old),
    ]


def test_fake_kernel_refuses_invalid_steps() -> None:
    with pytest.raises(ValueError):
        apply_to_table(IpvsTable(), [AddDest(VIP, d(1))])
    with pytest.raises(ValueError):
        apply_to_table(IpvsTable((svc(),)), [AddService(svc())])
    with pytest.raises(ValueError):
        apply_to_table(IpvsTable(), [DeleteService(VIP)])


def test_operations_describe_themselves_for_the_log() -> None:
    assert str(AddDest(VIP, d(1))) == "add dest 198.51.100.1:80 dr weight 1 to TCP 192.0.2.10:80"
    assert str(DeleteService(ServiceKey.for_fwmark(3))) == "delete service FWM 3"


# ------------------------------------------------------------- properties --

keys = st.one_of(
    st.builds(
        ServiceKey,
        st.sampled_from(["tcp", "udp"]),
        st.sampled_from(["192.0.2.1", "192.0.2.2", "203.0.113.7", "2001:db8::100", "2001:db8::7"]),
        st.sampled_from([80, 443]),
    ),
    st.builds(ServiceKey.for_fwmark, st.integers(1, 3), st.sampled_from([4, 6])),
)


def dests(family: int) -> st.SearchStrategy[Destination]:
    """Real servers of one family (the config allows no other)."""
    addresses = (
        ["198.51.100.1", "198.51.100.2", "198.51.100.3", "203.0.113.9"]
        if family == 4
        else ["2001:db8::21", "2001:db8::22", "2001:db8:1::23"]
    )
    return st.builds(
        Destination,
        st.sampled_from(addresses),
        st.sampled_from([0, 80, 8080]),
        st.integers(0, 3),
        st.sampled_from(["dr", "nat", "tun"]),
    )


@st.composite
def services(draw: st.DrawFn, key: ServiceKey) -> Service:
    ds = draw(st.lists(dests(key.family), max_size=5, unique_by=lambda x: x.key))
    timeout = draw(st.sampled_from([0, 300]))
    masks = ["255.255.255.255", "255.255.255.0"] if key.family == 4 else ["128", "64"]
    return Service(
        key,
        scheduler=draw(st.sampled_from(["rr", "wlc", "sh", "mh"])),
        flags=draw(st.sampled_from([0, 0x8, 0x18])) | (1 if timeout else 0),
        timeout=timeout,
        netmask=draw(st.sampled_from(masks)),
        destinations=tuple(ds),
    )


@st.composite
def tables(draw: st.DrawFn) -> IpvsTable:
    ks = draw(st.lists(keys, max_size=5, unique=True))
    return IpvsTable(tuple(draw(services(k)) for k in ks))


@settings(max_examples=400)
@given(tables(), tables(), st.lists(keys, max_size=4))
def test_apply_then_replan_is_empty(
    desired: IpvsTable, observed: IpvsTable, extra_owned: list[ServiceKey]
) -> None:
    owned = desired.keys() | set(extra_owned)
    plan = diff(desired, observed, owned)
    after = apply_to_table(observed, plan)  # raises if a step is out of order
    assert diff(desired, after, owned) == []
    assert after.only(owned) == desired
    foreign = observed.keys() - owned
    assert after.only(foreign) == observed.only(foreign)


@given(tables(), tables())
def test_never_deletes_and_adds_the_same_key(desired: IpvsTable, observed: IpvsTable) -> None:
    plan = diff(desired, observed, desired.keys() | observed.keys())
    deleted = {op.key for op in plan if isinstance(op, DeleteService)}
    added = {op.service.key for op in plan if isinstance(op, AddService)}
    assert not deleted & added
    gone = {(op.service, op.dest) for op in plan if isinstance(op, DeleteDest)}
    came = {(op.service, op.dest.key) for op in plan if isinstance(op, AddDest)}
    assert not gone & came


@given(tables(), tables())
def test_each_owned_service_is_set_up_before_its_dests(
    desired: IpvsTable, observed: IpvsTable
) -> None:
    plan: list[Operation] = diff(desired, observed)
    seen_service: set[ServiceKey] = set(observed.keys())
    for op in plan:
        if isinstance(op, AddService):
            seen_service.add(op.service.key)
        elif isinstance(op, AddDest | EditDest):
            assert op.service in seen_service


def test_services_of_names_the_service_of_every_kind_of_operation() -> None:
    other = ServiceKey("tcp", "192.0.2.11", 80)
    gone = ServiceKey("udp", "192.0.2.12", 53)
    ops: list[Operation] = [
        AddService(svc(VIP)),
        EditService(svc(other, "wlc"), svc(other)),
        DeleteService(gone),
        AddDest(VIP, d(1)),
        EditDest(other, d(2, 5), d(2)),
        DeleteDest(gone, d(3).key),
    ]
    assert services_of(ops) == {VIP, other, gone}
    assert services_of(ops[3:4]) == {VIP}
