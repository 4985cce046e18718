"""Which VIPs this director announces over BGP, and why (docs/scale-out.md).

Pure: the runtime feeds it what it observed and carries out the routes it
returns. A prefix is announced while every virtual service on its address
meets its quorum, the IPVS table for them is programmed, the VIP is held on
`lo`, and the director is not drained or stopping.

Every prefix has one reason, the first of these that holds (the table is
the spec; `WITHDRAW_ORDER` is its order). The operator's own acts come
first, because they persist and explain everything below them; then
start-up; then the kernel, without which traffic is black-holed whatever
the health; then health; last the hold-down against flapping:

    reason          announced  when
    stopping        no         `stop()` was called: nothing, ever again
    drained         no         the drain file exists / `lvsha drain`
    waiting ...     no         no first health results yet (globally, or for
                               one of the prefix's services)
    IPVS not ...    no         a service of the prefix is not in the kernel
    VIP not on lo   no         the director would not accept the packets
    below quorum    no         a service of the prefix lost its quorum
    held down       no         quorum back for less than `reannounce_delay`
    healthy         yes        none of the above

Hold-down: a prefix whose quorum was lost is announced again only after its
quorum has been met for `reannounce_delay` seconds without a break; the
first quorum state ever seen needs no wait. The one timer is `deadline`.
Route attributes (RFC 4271 section 5, RFC 1997) come from the `[bgp]`
settings; `next_hop` applies to the prefixes of its own family.

The input types are Protocols owned here; lvsha.config's VirtualServerConfig
and BgpConfig satisfy them (the core never imports lvsha.config).
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from lvsha.core.desired import ServiceIdentity, ServiceKey, service_key

ANNOUNCE_BGP = "bgp"


@dataclass(frozen=True, slots=True)
class Route:
    """One announced prefix with its path attributes (RFC 4271 section 5, RFC 1997)."""

    prefix: str  # "203.0.113.100/32" or "2001:db8::100/128"
    next_hop: str | None = None  # None: self
    communities: tuple[tuple[int, int], ...] = ()
    med: int | None = None


# ----------------------------------------------------------------- inputs --


class AnnouncedService(ServiceIdentity, Protocol):
    """What the decision reads of one virtual service; only `announce == "bgp"` ones count."""

    @property
    def announce(self) -> str | None: ...


class BgpSettings(Protocol):
    """What the decision reads of `[bgp]`: the path attributes and the hold-down."""

    @property
    def next_hop(self) -> str | None: ...
    @property
    def communities(self) -> Sequence[tuple[int, int]]: ...
    @property
    def med(self) -> int | None: ...
    @property
    def reannounce_delay(self) -> float: ...


# ---------------------------------------------------------------- outputs --


class Reason(enum.Enum):
    """Why a prefix is (or is not) announced; the value is what status shows."""

    STOPPING = "stopping"
    DRAINED = "drained"
    WAITING = "waiting for the first health checks"
    NOT_PROGRAMMED = "IPVS not programmed"
    NOT_ON_LO = "VIP not on lo"
    BELOW_QUORUM = "below quorum"
    HELD_DOWN = "held down after a quorum loss"
    HEALTHY = "healthy"


# The first that holds is the reason (the module docstring says why this order).
WITHDRAW_ORDER: tuple[Reason, ...] = (
    Reason.STOPPING,
    Reason.DRAINED,
    Reason.WAITING,
    Reason.NOT_PROGRAMMED,
    Reason.NOT_ON_LO,
    Reason.BELOW_QUORUM,
    Reason.HELD_DOWN,
)


@dataclass(frozen=True, slots=True)
class PrefixStatus:
    """One prefix as `lvsha status` shows it; `since`: when `reason` last changed."""

    prefix: str
    address: str
    services: tuple[ServiceKey, ...]
    reason: Reason
    since: float
    detail: str = ""  # which service, until when

    @property
    def announced(self) -> bool:
        return self.reason is Reason.HEALTHY


@dataclass(frozen=True, slots=True)
class Decision:
    """What one input changed: the whole desired set, and the prefixes whose reason moved.

    `routes_changed`: the set differs from the one returned before, so the
    runtime hands `routes` to `Speaker.set_routes()`.
    """

    routes: tuple[Route, ...]
    changes: tuple[PrefixStatus, ...] = ()
    routes_changed: bool = False


def prefix_of(address: str) -> str:
    """The host route of an address: /32 for IPv4, /128 for IPv6."""
    ip = ipaddress.ip_address(address)
    return f"{ip}/{ip.max_prefixlen}"


# ---------------------------------------------------------------- machine --


@dataclass(slots=True)
class _Prefix:
    address: str
    services: tuple[ServiceKey, ...]
    status: PrefixStatus
    met: bool | None = None  # every service meets its quorum; None: not known yet
    held_until: float | None = None


class BgpDecision:
    """The announcement decision of one director: inputs with `now`, a `Decision` back."""

    def __init__(
        self, services: Iterable[AnnouncedService], settings: BgpSettings, now: float
    ) -> None:
        self._settings = settings
        self._prefixes: dict[str, _Prefix] = {}
        self._started = False
        self._drained = False
        self._stopped = False
        self._quorum: dict[ServiceKey, bool] = {}
        self._programmed: frozenset[ServiceKey] = frozenset()
        self._on_lo: frozenset[str] = frozenset()
        self._routes: tuple[Route, ...] = ()
        self._adopt(services, now)
        self._evaluate(now)

    # ------------------------------------------------------------ reading --

    @property
    def routes(self) -> tuple[Route, ...]:
        """The desired set, sorted by prefix."""
        return self._routes

    @property
    def status(self) -> Mapping[str, PrefixStatus]:
        """Per prefix, sorted: announced or not, the reason, since when."""
        return {p: self._prefixes[p].status for p in sorted(self._prefixes)}

    @property
    def addresses(self) -> tuple[str, ...]:
        """The announced addresses, which the runtime holds on `lo` until it stops."""
        return tuple(sorted({p.address for p in self._prefixes.values()}))

    @property
    def deadline(self) -> float | None:
        """When to call `timer_fired`: the earliest end of a hold-down, or None."""
        if self._stopped:
            return None
        pending = [p.held_until for p in self._prefixes.values() if p.held_until is not None]
        return min(pending) if pending else None

    @property
    def drained(self) -> bool:
        return self._drained

    @property
    def stopped(self) -> bool:
        return self._stopped

    # ------------------------------------------------------------- inputs --

    def health_started(self, now: float) -> Decision:
        """The first round of health results is in: quorum now means something."""
        self._started = True
        return self._evaluate(now)

    def quorum_changed(self, now: float, quorum: Mapping[ServiceKey, bool]) -> Decision:
        """Every service's quorum state (the whole map; a missing service is not known)."""
        self._quorum = dict(quorum)
        for prefix in self._prefixes.values():
            self._track_quorum(prefix, now)
        return self._evaluate(now)

    def ipvs_programmed(self, now: float, services: Collection[ServiceKey]) -> Decision:
        """The services the kernel holds as desired after the last IPVS pass."""
        self._programmed = frozenset(services)
        return self._evaluate(now)

    def lo_changed(self, now: float, addresses: Collection[str]) -> Decision:
        """The addresses held on `lo` now (any spelling)."""
        self._on_lo = frozenset(_normal(a) for a in addresses)
        return self._evaluate(now)

    def drain_changed(self, now: float, drained: bool) -> Decision:
        """The drain flag (drain file or `lvsha drain`) was set or cleared."""
        self._drained = drained
        return self._evaluate(now)

    def stop(self, now: float) -> Decision:
        """SIGTERM: withdraw everything before anything else stops; nothing comes back."""
        self._stopped = True
        return self._evaluate(now)

    def timer_fired(self, now: float) -> Decision:
        """A hold-down may have ended."""
        return self._evaluate(now)

    def reconfigure(
        self, now: float, services: Iterable[AnnouncedService], settings: BgpSettings
    ) -> Decision:
        """A reload: kept prefixes keep their state; new ones start from not known."""
        self._settings = settings
        self._adopt(services, now)
        for prefix in self._prefixes.values():
            self._track_quorum(prefix, now)
        return self._evaluate(now)

    # ----------------------------------------------------------- internal --

    def _adopt(self, services: Iterable[AnnouncedService], now: float) -> None:
        by_prefix: dict[str, list[ServiceKey]] = {}
        for vs in services:
            if vs.announce != ANNOUNCE_BGP:
                continue
            if vs.fwmark is not None or not vs.address:
                raise ValueError(f"an announced service needs an address: {service_key(vs)}")
            by_prefix.setdefault(prefix_of(vs.address), []).append(service_key(vs))
        kept: dict[str, _Prefix] = {}
        for prefix, keys in sorted(by_prefix.items()):
            old = self._prefixes.get(prefix)
            services_of = tuple(sorted(keys))
            if old is not None:
                old.services = services_of
                kept[prefix] = old
            else:
                address = prefix.partition("/")[0]
                status = PrefixStatus(prefix, address, services_of, Reason.WAITING, now)
                kept[prefix] = _Prefix(address, services_of, status)
        self._prefixes = kept

    def _track_quorum(self, prefix: _Prefix, now: float) -> None:
        """Arm the hold-down when a lost quorum comes back; disarm it when lost again."""
        states = [self._quorum.get(k) for k in prefix.services]
        met = None if None in states else all(states)
        if met is True and prefix.met is False:
            prefix.held_until = now + self._settings.reannounce_delay
        elif met is not True:
            prefix.held_until = None
        prefix.met = met

    def _evaluate(self, now: float) -> Decision:
        changes = []
        for prefix in self._prefixes.values():
            if prefix.held_until is not None and now >= prefix.held_until:
                prefix.held_until = None
            reason, detail = self._reason(prefix, now)
            old = prefix.status
            if reason is not old.reason or prefix.services != old.services:
                since = now if reason is not old.reason else old.since
                prefix.status = PrefixStatus(
                    old.prefix, prefix.address, prefix.services, reason, since, detail
                )
                if reason is not old.reason:
                    changes.append(prefix.status)
            elif detail != old.detail:
                prefix.status = PrefixStatus(
                    old.prefix, prefix.address, prefix.services, reason, old.since, detail
                )
        routes = tuple(
            self._route(p) for p in sorted(self._prefixes) if self._prefixes[p].status.announced
        )
        changed = routes != self._routes
        self._routes = routes
        return Decision(routes, tuple(changes), changed)

    def _reason(self, prefix: _Prefix, now: float) -> tuple[Reason, str]:
        """The first reason of WITHDRAW_ORDER that holds, with what it is about."""
        if self._stopped:
            return Reason.STOPPING, ""
        if self._drained:
            return Reason.DRAINED, ""
        if not self._started:
            return Reason.WAITING, ""
        unknown = [k for k in prefix.services if k not in self._quorum]
        if unknown:
            return Reason.WAITING, _services(unknown)
        missing = [k for k in prefix.services if k not in self._programmed]
        if missing:
            return Reason.NOT_PROGRAMMED, _services(missing)
        if prefix.address not in self._on_lo:
            return Reason.NOT_ON_LO, prefix.address
        below = [k for k in prefix.services if not self._quorum[k]]
        if below:
            return Reason.BELOW_QUORUM, _services(below)
        if prefix.held_until is not None and now < prefix.held_until:
            return Reason.HELD_DOWN, f"quorum must hold {self._settings.reannounce_delay:g} s"
        return Reason.HEALTHY, ""

    def _route(self, prefix: str) -> Route:
        s = self._settings
        version = ipaddress.ip_address(self._prefixes[prefix].address).version
        next_hop = s.next_hop
        if next_hop is not None and ipaddress.ip_address(next_hop).version != version:
            next_hop = None  # another family's next hop: self
        return Route(prefix, next_hop, tuple(s.communities), s.med)


def _services(keys: Iterable[ServiceKey]) -> str:
    return ", ".join(str(k) for k in keys)


def _normal(address: str) -> str:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return address
