"""Desired vs observed IPVS table -> the ordered operations that make them equal.

`diff()` is pure. It touches only the service keys it is told lvsha owns;
every other service in the kernel (an operator's, another tool's) is left
exactly as it is, destinations included. Inside an owned service every
destination is lvsha's.

Order, chosen so that no step fails and no owned service is ever empty when it
need not be:

1. per owned service that stays (sorted by key): AddService or EditService,
   then AddDest, EditDest, and only then DeleteDest, so a real server that is
   replaced is added before the old one goes;
2. per owned service that goes: DeleteDest for each destination, then
   DeleteService.

Anything that can be edited in place is edited (a scheduler, persistence or
weight change, a forwarding method change): delete + add would drop the
service's connections and statistics.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from lvsha.core.desired import Destination, DestKey, IpvsTable, Service, ServiceKey


@dataclass(frozen=True, slots=True)
class AddService:
    service: Service  # destinations are ignored: each comes as its own AddDest

    def __str__(self) -> str:
        return f"add service {self.service.describe()}"


@dataclass(frozen=True, slots=True)
class EditService:
    service: Service
    was: Service

    def __str__(self) -> str:
        return f"edit service {self.service.describe()} (was {self.was.describe()})"


@dataclass(frozen=True, slots=True)
class DeleteService:
    key: ServiceKey

    def __str__(self) -> str:
        return f"delete service {self.key}"


@dataclass(frozen=True, slots=True)
class AddDest:
    service: ServiceKey
    dest: Destination

    def __str__(self) -> str:
        return f"add dest {self.dest} to {self.service}"


@dataclass(frozen=True, slots=True)
class EditDest:
    service: ServiceKey
    dest: Destination
    was: Destination

    def __str__(self) -> str:
        return f"edit dest {self.dest} in {self.service} (was {self.was})"


@dataclass(frozen=True, slots=True)
class DeleteDest:
    service: ServiceKey
    dest: DestKey

    def __str__(self) -> str:
        return f"delete dest {self.dest} from {self.service}"


Operation = AddService | EditService | DeleteService | AddDest | EditDest | DeleteDest


def services_of(ops: Iterable[Operation]) -> set[ServiceKey]:
    """The services these operations change."""
    keys: set[ServiceKey] = set()
    for op in ops:
        match op:
            case AddService(service=svc) | EditService(service=svc):
                keys.add(svc.key)
            case DeleteService(key=key):
                keys.add(key)
            case AddDest(service=key) | EditDest(service=key) | DeleteDest(service=key):
                keys.add(key)
    return keys


def diff(
    desired: IpvsTable, observed: IpvsTable, owned: Iterable[ServiceKey] | None = None
) -> list[Operation]:
    """Operations that turn `observed` into `desired` on the owned keys.

    `owned` defaults to the desired keys. Pass a wider set (say, the keys of
    the previous config) so that services dropped from the config are deleted;
    a desired key is always owned.
    """
    owned_keys = desired.keys() | frozenset(owned or ())
    ops: list[Operation] = []
    for want in desired:
        have = observed.get(want.key)
        if have == want:  # the common case on a large table: nothing to look into
            continue
        if have is None:
            ops.append(AddService(replace(want, destinations=())))
            have_dests: dict[DestKey, Destination] = {}
        else:
            if have.attributes != want.attributes:
                ops.append(
                    EditService(replace(want, destinations=()), replace(have, destinations=()))
                )
            have_dests = have.dests()
        want_dests = want.dests()
        for dkey, dest in want_dests.items():
            if dkey not in have_dests:
                ops.append(AddDest(want.key, dest))
        for dkey, dest in want_dests.items():
            old = have_dests.get(dkey)
            if old is not None and old != dest:
                ops.append(EditDest(want.key, dest, old))
        for dkey in have_dests:
            if dkey not in want_dests:
                ops.append(DeleteDest(want.key, dkey))
    for have in observed:
        if have.key in owned_keys and have.key not in desired:
            ops.extend(DeleteDest(have.key, d.key) for d in have.destinations)
            ops.append(DeleteService(have.key))
    return ops


def apply_to_table(table: IpvsTable, ops: Iterable[Operation]) -> IpvsTable:
    """Carry out `ops` on an in-memory table with the kernel's rules.

    Like the kernel, it refuses to add what exists and to edit or delete what
    does not (ValueError). Tests use it as the fake kernel; it also tells the
    daemon what a plan will leave behind without asking the kernel.
    """
    services = {s.key: s for s in table}
    dests: dict[ServiceKey, dict[DestKey, Destination]] = {}  # only the services touched

    def dests_of(key: ServiceKey) -> dict[DestKey, Destination]:
        if key not in dests:
            dests[key] = services[key].dests() if key in services else {}
        return dests[key]

    for op in ops:
        match op:
            case AddService(service=svc):
                if svc.key in services:
                    raise ValueError(f"{op}: service exists")
                services[svc.key] = replace(svc, destinations=())
                dests[svc.key] = {}
            case EditService(service=svc):
                if svc.key not in services:
                    raise ValueError(f"{op}: no such service")
                dests_of(svc.key)
                services[svc.key] = replace(svc, destinations=())
            case DeleteService(key=key):
                if key not in services:
                    raise ValueError(f"{op}: no such service")
                del services[key]
                dests.pop(key, None)
            case AddDest(service=key, dest=dest):
                if key not in services:
                    raise ValueError(f"{op}: no such service")
                if dest.key in dests_of(key):
                    raise ValueError(f"{op}: destination exists")
                dests[key][dest.key] = dest
            case EditDest(service=key, dest=dest):
                if key not in services or dest.key not in dests_of(key):
                    raise ValueError(f"{op}: no such destination")
                dests[key][dest.key] = dest
            case DeleteDest(service=key, dest=dkey):
                if key not in services or dkey not in dests_of(key):
                    raise ValueError(f"{op}: no such destination")
                del dests[key][dkey]
    for key, ds in dests.items():
        services[key] = replace(services[key], destinations=tuple(ds.values()))
    return IpvsTable(tuple(services.values()))
