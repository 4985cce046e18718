"""What the kernel's IPVS table should hold: a frozen model and a pure function.

The model mirrors what IPVS keys and stores (`ipvsadm -Ln` columns), so that a
table dumped from the kernel and a table derived from the config compare with
`==`. `desired_ipvs()` derives the table from the configured virtual servers
and the health of their real servers; it reads no clock, socket or kernel.

The core owns its input types: `ServiceIdentity`, `VirtualServerSpec` and
`RealServerSpec` are Protocols naming exactly the attributes read here, and
lvsha.config's frozen dataclasses satisfy them structurally. Protocols, not
core-owned dataclasses plus a mapping function, because the config model is
already frozen and complete: a copy would duplicate every field and a
mapping would have to be kept in step with it, while a Protocol costs
nothing at run time and mypy proves conformance at every call site. The
core imports nothing from lvsha.config, not even for annotations (the
dependency points from config to core only: config reads
SCHEDULER_FLAG_BITS and service_key from here).
"""

from __future__ import annotations

import functools
import ipaddress
import operator
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

# IP_VS_SVC_F_* (include/uapi/linux/ip_vs.h)
SVC_F_PERSISTENT = 0x0001
SVC_F_HASHED = 0x0002  # kernel-internal: set on every hashed service, never ours
SVC_F_ONEPACKET = 0x0004
SVC_F_SCHED1 = 0x0008
SVC_F_SCHED2 = 0x0010
SVC_F_SCHED3 = 0x0020

# Scheduler flag names as ipvsadm's `-b` takes them, plus `-o` (one-packet).
SCHEDULER_FLAG_BITS: Mapping[str, int] = {
    "flag-1": SVC_F_SCHED1,
    "flag-2": SVC_F_SCHED2,
    "flag-3": SVC_F_SCHED3,
    "sh-fallback": SVC_F_SCHED1,
    "sh-port": SVC_F_SCHED2,
    "mh-fallback": SVC_F_SCHED1,
    "mh-port": SVC_F_SCHED2,
    "ops": SVC_F_ONEPACKET,
    "onepacket": SVC_F_ONEPACKET,
}

# IP_VS_CONN_F_* forwarding methods; the names are the config's.
FORWARDING_METHODS: Mapping[str, int] = {"nat": 0, "local": 1, "tun": 2, "dr": 3}
FORWARDING_NAMES: Mapping[int, str] = {v: k for k, v in FORWARDING_METHODS.items()}

HOST_NETMASK = "255.255.255.255"
# An IPv6 service's persistence granularity is a prefix length, not a mask:
# the kernel refuses 0 or more than 128 (ip_vs_add_service() in
# net/netfilter/ipvs/ip_vs_ctl.c) and ipvsadm's `-M` defaults it to 128.
HOST_PREFIX6 = "128"


FWMARK_ADDRESS6 = "::"


def family_of(address: str) -> int:
    """4 or 6, from an address's spelling (an IPv6 address always has a colon)."""
    return 6 if ":" in address else 4


def host_port(address: str, port: int) -> str:
    """ADDRESS:PORT as ipvsadm prints it, an IPv6 address in brackets (RFC 3986 3.2.2)."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


@dataclass(frozen=True, slots=True, order=True)
class ServiceKey:
    """How IPVS identifies a virtual service: protocol+address+port, or family+fwmark.

    A firewall-mark service has protocol "fwm", port 0 and address "" (IPv4)
    or "::" (IPv6: the kernel keys a fwmark service by family and mark), so
    one type sorts and hashes both kinds and `family` reads the same way.
    """

    protocol: str
    address: str
    port: int
    fwmark: int = 0

    @classmethod
    def for_fwmark(cls, fwmark: int, family: int = 4) -> ServiceKey:
        return cls("fwm", FWMARK_ADDRESS6 if family == 6 else "", 0, fwmark)

    @property
    def is_fwmark(self) -> bool:
        return self.fwmark != 0

    @property
    def family(self) -> int:
        """4 or 6 (an IPv6 fwmark service's address is "::")."""
        return family_of(self.address)

    def __str__(self) -> str:
        if self.is_fwmark:  # as ipvsadm -Ln writes them
            return f"FWM {self.fwmark} IPv6" if self.address else f"FWM {self.fwmark}"
        return f"{self.protocol.upper()} {host_port(self.address, self.port)}"


@dataclass(frozen=True, slots=True, order=True)
class DestKey:
    """How IPVS identifies a real server inside one service."""

    address: str
    port: int

    def __str__(self) -> str:
        return host_port(self.address, self.port)


@dataclass(frozen=True, slots=True)
class Destination:
    """A real server: the attributes `ipvsadm -e` can change in place."""

    address: str
    port: int
    weight: int = 1
    forwarding: str = "dr"
    upper_threshold: int = 0
    lower_threshold: int = 0

    @property
    def key(self) -> DestKey:
        return DestKey(self.address, self.port)

    def __str__(self) -> str:
        return f"{host_port(self.address, self.port)} {self.forwarding} weight {self.weight}"


@dataclass(frozen=True, slots=True)
class Service:
    """A virtual service with its destinations (sorted by key, unique keys).

    scheduler, flags, timeout and netmask can all be changed in place
    (IPVS_CMD_SET_SERVICE), so only a key change ever needs delete + add.
    `netmask` is a dotted quad for IPv4 and a prefix length ("64") for IPv6;
    an IPv6 service given IPv4's host mask gets IPv6's ("128"), as the
    kernel would report it.
    """

    key: ServiceKey
    scheduler: str = "wlc"
    flags: int = 0
    timeout: int = 0
    netmask: str = HOST_NETMASK
    destinations: tuple[Destination, ...] = ()

    def __post_init__(self) -> None:
        if self.netmask == HOST_NETMASK and ":" in self.key.address:
            object.__setattr__(self, "netmask", HOST_PREFIX6)
        # sorted by (address, port): DestKey's order, without building DestKeys
        ordered = tuple(sorted(self.destinations, key=_DEST_ORDER))
        if len(set(map(_DEST_ORDER, ordered))) != len(ordered):
            raise ValueError(f"{self.key}: a destination is listed twice")
        object.__setattr__(self, "destinations", ordered)

    @property
    def attributes(self) -> tuple[str, int, int, str]:
        """The in-place editable part, compared to decide on an EditService."""
        return (self.scheduler, self.flags, self.timeout, self.netmask)

    def dests(self) -> dict[DestKey, Destination]:
        return {d.key: d for d in self.destinations}

    def describe(self) -> str:
        text = f"{self.key} {self.scheduler}"
        if self.flags & ~SVC_F_PERSISTENT:
            text += f" flags {self.flags:#x}"
        if self.timeout:
            text += f" persistent {self.timeout}"
            if self.netmask not in (HOST_NETMASK, HOST_PREFIX6):
                text += f" mask {self.netmask}"
        return text


@dataclass(frozen=True, slots=True)
class IpvsTable:
    """A whole IPVS table (the desired one or a dump), services sorted by key."""

    services: tuple[Service, ...] = ()
    _by_key: dict[ServiceKey, Service] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.services, key=_SERVICE_ORDER))  # ServiceKey's order
        by_key = {s.key: s for s in ordered}
        if len(by_key) != len(ordered):
            raise ValueError("a service is listed twice")
        object.__setattr__(self, "services", ordered)
        object.__setattr__(self, "_by_key", by_key)

    def __iter__(self) -> Iterator[Service]:
        return iter(self.services)

    def __len__(self) -> int:
        return len(self.services)

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def get(self, key: ServiceKey) -> Service | None:
        return self._by_key.get(key)

    def keys(self) -> frozenset[ServiceKey]:
        return frozenset(self._by_key)

    def only(self, keys: Iterable[ServiceKey]) -> IpvsTable:
        """The part of this table under `keys` (e.g. what lvsha owns)."""
        by_key = self._by_key
        return IpvsTable(tuple(by_key[k] for k in set(keys) if k in by_key))

    def replace(self, keys: Iterable[ServiceKey], part: IpvsTable) -> IpvsTable:
        """This table with the services under `keys` taken from `part` (absent there: gone).

        The incremental path of a health change: `part` is desired_ipvs() of
        the changed services only, the rest of the table is kept as it is.
        """
        keys = set(keys)
        if not keys and not part:
            return self
        by_key = dict(self._by_key)  # a copy keeps the stored hashes: no ServiceKey rehashed
        if any(s.key not in by_key for s in part) or any(k not in part for k in keys):
            for key in keys:
                by_key.pop(key, None)
            by_key.update((s.key, s) for s in part)
            return IpvsTable(tuple(by_key.values()))  # a key came or went: sort anew
        # The same keys: the values change in place and the dict, built in
        # sorted order, stays sorted, so the table is made without sorting.
        by_key.update((s.key, s) for s in part)
        table = object.__new__(IpvsTable)
        object.__setattr__(table, "services", tuple(by_key.values()))
        object.__setattr__(table, "_by_key", by_key)
        return table


# Sort keys as plain tuples (compared in C): the dataclasses' own order, faster.
_DEST_ORDER = operator.attrgetter("address", "port")
_SERVICE_ORDER = operator.attrgetter("key.protocol", "key.address", "key.port", "key.fwmark")

HealthMap = Mapping[tuple[ServiceKey, DestKey], bool]


# ----------------------------------------------------------------- inputs --
# Read-only properties, so that frozen dataclasses satisfy them.


class RealServerAddress(Protocol):
    @property
    def address(self) -> str: ...


class ServiceIdentity(Protocol):
    """What makes a configured virtual service's IPVS key (`service_key`).

    A firewall-mark service has no address: its family is its real
    servers' (keepalived infers it the same way; the config keeps one
    family per service).
    """

    @property
    def protocol(self) -> str: ...
    @property
    def address(self) -> str | None: ...
    @property
    def port(self) -> int: ...
    @property
    def fwmark(self) -> int | None: ...
    @property
    def real_servers(self) -> Sequence[RealServerAddress]: ...


class RealServerSpec(Protocol):
    """What `desired_ipvs` reads of one real server."""

    @property
    def address(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def weight(self) -> int: ...


class VirtualServerSpec(ServiceIdentity, Protocol):
    """What `desired_ipvs` reads of one virtual service."""

    @property
    def scheduler(self) -> str: ...
    @property
    def scheduler_flags(self) -> Sequence[str]: ...
    @property
    def forwarding(self) -> str: ...
    @property
    def persistence_timeout(self) -> int: ...
    @property
    def persistence_netmask(self) -> str: ...
    @property
    def real_servers(self) -> Sequence[RealServerSpec]: ...


def service_key(vs: ServiceIdentity) -> ServiceKey:
    """The key of a configured virtual service."""
    if vs.fwmark is not None:
        reals = vs.real_servers
        return ServiceKey.for_fwmark(vs.fwmark, 6 if reals and ":" in reals[0].address else 4)
    return ServiceKey(vs.protocol, vs.address or "", vs.port)


def scheduler_flags(names: Iterable[str]) -> int:
    """Bits for scheduler flag names; unknown names raise ValueError (config checks first)."""
    bits = 0
    for name in names:
        if name not in SCHEDULER_FLAG_BITS:
            raise ValueError(f"unknown scheduler flag {name!r}")
        bits |= SCHEDULER_FLAG_BITS[name]
    return bits


def desired_ipvs(
    virtual_servers: Iterable[VirtualServerSpec],
    health: HealthMap | None = None,
    *,
    unhealthy: str = "remove",
) -> IpvsTable:
    """The IPVS table the config asks for, given real-server health.

    A real server missing from `health` counts as healthy (no check has failed
    yet; keepalived does the same with its default `alpha` off). An unhealthy
    one is removed (`unhealthy="remove"`, keepalived's default) or kept with
    weight 0 (`unhealthy="quiesce"`: new connections stop, established ones
    drain).
    """
    if unhealthy not in ("remove", "quiesce"):
        raise ValueError(f"unhealthy must be 'remove' or 'quiesce', not {unhealthy!r}")
    # Only the failed ones matter: one pass over the map, no key built per real server.
    down: dict[ServiceKey, set[tuple[str, int]]] = {}
    for (skey, dkey), healthy in (health or {}).items():
        if not healthy:
            down.setdefault(skey, set()).add((dkey.address, dkey.port))
    services = []
    for vs in virtual_servers:
        key = service_key(vs)
        flags = scheduler_flags(vs.scheduler_flags)
        if vs.persistence_timeout:
            flags |= SVC_F_PERSISTENT
        fwd = vs.forwarding
        failed = down.get(key)
        if failed is None:  # the common case: one comprehension, no test per real server
            dests = [destination(rs.address, rs.port, rs.weight, fwd) for rs in vs.real_servers]
        else:
            dests = []
            for rs in vs.real_servers:
                if (rs.address, rs.port) not in failed:
                    dests.append(destination(rs.address, rs.port, rs.weight, fwd))
                elif unhealthy == "quiesce":
                    dests.append(destination(rs.address, rs.port, 0, fwd))
        services.append(
            Service(
                key=key,
                scheduler=vs.scheduler,
                flags=flags,
                timeout=vs.persistence_timeout,
                netmask=_normal_netmask(vs.persistence_netmask, key.family),
                destinations=tuple(dests),
            )
        )
    return IpvsTable(tuple(services))


@functools.lru_cache(maxsize=1 << 17)
def destination(address: str, port: int, weight: int, forwarding: str) -> Destination:
    """The one Destination of these values (no thresholds), built once, then reused.

    10,000 of them cost 20 ms to build on every pass. The same object each
    time also makes a diff cheap: comparing tuples of identical objects stops
    at identity, so the dump decoder hands out these too.
    """
    return Destination(address, port, weight, forwarding)


@functools.lru_cache(maxsize=64)
def _normal_netmask(mask: str, family: int = 4) -> str:
    """The netmask as the kernel reports it back: a dotted quad, or IPv6's prefix length.

    For IPv6, "64" and "/64" are prefix lengths and IPv4's host mask (the
    config's default) means 128.
    """
    if family == 6:
        if mask == HOST_NETMASK:
            return HOST_PREFIX6
        return str(int(mask.removeprefix("/")))
    return str(ipaddress.IPv4Address(mask))
