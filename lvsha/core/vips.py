"""Which VIPs the kernel should hold, and the changes that get it there.

Declarative like the IPVS table (core/desired.py, core/reconcile.py): the
VIPs of every instance in MASTER state should be present (RFC 3768 section
6.4.3: the master "accepts packets addressed to the IP address(es)
associated with the virtual router"), and no other VIP that lvsha owns.
A VIP that lvsha does not own (an operator's address) is never touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar


class Vip(Protocol):
    """A VIP as the master adds it: address/prefixlen on device (hashable)."""

    @property
    def address(self) -> str: ...
    @property
    def prefixlen(self) -> int: ...
    @property
    def device(self) -> str: ...
    def __hash__(self) -> int: ...


V = TypeVar("V", bound=Vip)


def desired_vips(masters: Iterable[str], vips: Mapping[str, Iterable[V]]) -> frozenset[V]:
    """The VIPs of the instances named in `masters` (those in MASTER state)."""
    return frozenset(v for name in masters for v in vips.get(name, ()))


@dataclass(frozen=True, slots=True)
class VipPlan(Generic[V]):
    """What to add and what to remove, in a stable order."""

    add: tuple[V, ...]
    remove: tuple[V, ...]

    def __bool__(self) -> bool:
        return bool(self.add or self.remove)


def plan_vips(desired: Iterable[V], present: Iterable[V], owned: Iterable[V]) -> VipPlan[V]:
    """Missing desired VIPs to add; present owned VIPs that are not desired to remove."""
    want, have, ours = set(desired), set(present), set(owned)
    return VipPlan(
        add=tuple(sorted(want - have, key=vip_key)),
        remove=tuple(sorted((have & ours) - want, key=vip_key)),
    )


def vip_key(vip: Vip) -> tuple[str, str, int]:
    return (vip.device, vip.address, vip.prefixlen)
