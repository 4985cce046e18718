"""The VRRP virtual-router state machine (RFC 3768 section 6, RFC 5798 section 6).

Pure and clock-injected: every input is a method call that takes `now`
(seconds on a monotonic clock) and returns the actions the shell must carry
out, in order. The machine keeps absolute deadlines (`*_at`) and exposes the
earliest as `deadline`; the shell calls `timer_fired(now)` when it passes.

Names follow the RFC: `skew_time`, `master_down_interval`, `adver_int`.
Beyond the RFC, as keepalived does: a FAULT state while a tracked interface
is down, `preempt_delay`, and the gratuitous ARP schedule of
`garp_master_delay` / `garp_master_repeat` / `garp_master_refresh`.
Version 3 (`RouterParams.version`) differs in a few places, each a call
into lvsha.core.vrrp_v3.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from lvsha.core import drops
from lvsha.core.packet import (
    AUTH_DATA_LEN,
    AUTH_NONE,
    VRRP_TTL,
    Advertisement,
    IPv4Header,
    decode_advertisement,
)
from lvsha.core.packet_v3 import AdvertisementV3, IPv6Header, decode_advertisement_v3
from lvsha.core.vrrp_v3 import (
    advert_drops_v3,
    centiseconds,
    family,
    master_down_interval_v3,
    skew_time_v3,
)
from lvsha.errors import PacketError

IPHeader = IPv4Header | IPv6Header
AnyAdvertisement = Advertisement | AdvertisementV3


class State(enum.Enum):
    """The states of section 6.4, plus FAULT (keepalived's, for tracking)."""

    INIT = "INIT"
    BACKUP = "BACKUP"
    MASTER = "MASTER"
    FAULT = "FAULT"


# Every transition the machine may take; anything else is a bug (h11 style).
ALLOWED_TRANSITIONS: frozenset[tuple[State, State]] = frozenset(
    {
        (State.INIT, State.BACKUP),
        (State.INIT, State.MASTER),
        (State.INIT, State.FAULT),
        (State.BACKUP, State.MASTER),
        (State.BACKUP, State.INIT),
        (State.BACKUP, State.FAULT),
        (State.MASTER, State.BACKUP),
        (State.MASTER, State.INIT),
        (State.MASTER, State.FAULT),
        (State.FAULT, State.BACKUP),
        (State.FAULT, State.MASTER),
        (State.FAULT, State.INIT),
    }
)

PRIORITY_OWNER = 255
PRIORITY_STOP = 0


@dataclass(frozen=True, slots=True)
class RouterParams:
    """What one virtual router needs from the configuration."""

    name: str
    vrid: int
    priority: int
    adver_int: float  # seconds: whole with version 2, centiseconds with version 3
    addresses: tuple[str, ...]
    preempt: bool = True
    preempt_delay: float = 0.0
    auth_type: int = AUTH_NONE
    auth_data: bytes = b"\x00" * AUTH_DATA_LEN
    unicast_peers: tuple[str, ...] = ()
    garp_master_delay: float = 5.0
    garp_master_repeat: int = 5
    garp_master_refresh: float = 0.0
    garp_master_refresh_repeat: int = 1
    version: int = 2  # 3: RFC 5798 (lvsha.core.vrrp_v3)
    accept_mode: bool = True  # RFC 5798 section 6.1; the shell enforces it

    @property
    def family(self) -> int:
        """4 or 6, from the addresses (RFC 5798 section 5.2.5)."""
        return family(self.addresses)


# ---------------------------------------------------------------- actions --


@dataclass(frozen=True, slots=True)
class SendAdvert:
    """Send this advertisement (to 224.0.0.18, or to every unicast peer)."""

    advert: AnyAdvertisement


@dataclass(frozen=True, slots=True)
class SendGratuitousArp:
    """Announce the addresses with `repeat` gratuitous ARPs each (section 8.1.2)."""

    addresses: tuple[str, ...]
    repeat: int


@dataclass(frozen=True, slots=True)
class StateChanged:
    """The router moved from `old` to `new`; the VIPs follow MASTER."""

    old: State
    new: State
    reason: str


@dataclass(frozen=True, slots=True)
class Discarded:
    """A received packet was dropped (section 7.1); counted under `reason`."""

    reason: str
    detail: str


Action = SendAdvert | SendGratuitousArp | StateChanged | Discarded


@dataclass(slots=True)
class MasterSeen:
    """The master as last seen on the wire."""

    address: str
    priority: int
    at: float


@dataclass(slots=True)
class Stats:
    """Counters shown by `lvsha status`."""

    adverts_sent: int = 0
    adverts_received: int = 0
    priority_zero_sent: int = 0
    priority_zero_received: int = 0
    became_master: int = 0
    rival_adverts: int = 0
    discarded: Counter[str] = field(default_factory=Counter)


def skew_time(priority: int) -> float:
    """Section 6.1: ((256 - Priority) / 256) seconds."""
    return (256 - priority) / 256


def master_down_interval(adver_int: float, priority: int) -> float:
    """Section 6.1: 3 * Advertisement_Interval + Skew_Time."""
    return 3 * adver_int + skew_time(priority)


class VirtualRouter:
    """One VRRP virtual router: a VRID on one interface.

    `primary_address` is the interface's primary IPv4 address, the source of
    our adverts and the tie-break of section 6.4.3.
    """

    def __init__(self, params: RouterParams, primary_address: str) -> None:
        self.params = params
        self.primary_address = primary_address
        self.state = State.INIT
        self.stats = Stats()
        self.master_seen: MasterSeen | None = None
        self.rival: MasterSeen | None = None
        # Adverts from our own primary address that we did not send: another
        # router configured with our address (for `lvsha status`).
        self.address_conflict: MasterSeen | None = None
        self._sent_at: dict[int, float] = {}  # priority -> when we last advertised it
        self.reassert_at: float | None = None
        self.last_transition: tuple[float, str] | None = None
        self.master_down_at: float | None = None
        self.adver_at: float | None = None
        self.garp_delay_at: float | None = None
        self.garp_refresh_at: float | None = None
        self.preempt_at: float | None = None
        self._faults: set[str] = set()
        self._running = False
        # Sync groups (core/tracking.py): a gated backup whose timer ran out
        # waits with `wants_master` until its group releases it.
        self.sync_gate = False
        self.wants_master = False
        # RFC 5798 section 6.1: the interval of the current master (version 3).
        self.master_adver_int: float = params.adver_int

    # ------------------------------------------------------------ queries --

    @property
    def skew_time(self) -> float:
        if self.params.version == 3:
            return skew_time_v3(self.params.priority, self.master_adver_int)
        return skew_time(self.params.priority)

    @property
    def master_down_interval(self) -> float:
        if self.params.version == 3:
            return master_down_interval_v3(self.params.priority, self.master_adver_int)
        return master_down_interval(self.params.adver_int, self.params.priority)

    @property
    def deadline(self) -> float | None:
        """The earliest pending deadline, or None when nothing is pending."""
        pending = [
            t
            for t in (self.master_down_at, self.adver_at, self.garp_delay_at, self.garp_refresh_at)
            if t is not None
        ]
        return min(pending) if pending else None

    @property
    def faults(self) -> frozenset[str]:
        return frozenset(self._faults)

    # ------------------------------------------------------------- inputs --

    def startup(self, now: float) -> list[Action]:
        """Section 6.4.1: the Startup event in Initialize."""
        self._running = True
        if self._faults:
            return self._go(
                now, State.FAULT, "startup with a fault: " + ", ".join(sorted(self._faults))
            )
        return self._leave_init(now, "startup")

    def shutdown(self, now: float) -> list[Action]:
        """Sections 6.4.2 and 6.4.3: the Shutdown event; a master says priority 0."""
        self._running = False
        if self.state is State.INIT:  # never started, or already shut down
            return []
        actions: list[Action] = []
        if self.state is State.MASTER:
            actions.append(self._advert(now, PRIORITY_STOP))
        actions += self._go(now, State.INIT, "shutdown")
        return actions

    def timer_fired(self, now: float) -> list[Action]:
        """Handle every deadline that is due at `now`."""
        actions: list[Action] = []
        if self.state is State.BACKUP and _due(self.master_down_at, now):
            if self.sync_gate:
                self.master_down_at, self.wants_master = None, True
            else:
                actions += self._become_master(now, "master down timer expired")
        if self.state is State.MASTER:
            if _due(self.adver_at, now):
                actions.append(self._advert(now, self.params.priority))
                assert self.adver_at is not None
                self.adver_at += self.params.adver_int
                if self.adver_at <= now:  # the loop was late by a whole interval
                    self.adver_at = now + self.params.adver_int
            if _due(self.garp_delay_at, now):
                self.garp_delay_at = None
                actions.append(
                    SendGratuitousArp(self.params.addresses, self.params.garp_master_repeat)
                )
            if _due(self.garp_refresh_at, now):
                self.garp_refresh_at = now + self.params.garp_master_refresh
                actions.append(
                    SendGratuitousArp(self.params.addresses, self.params.garp_master_refresh_repeat)
                )
        return actions

    def fault_changed(self, now: float, fault: str, active: bool) -> list[Action]:
        """A tracked condition (an interface down) began or ended.

        Any active fault holds the router in FAULT; a master leaving for
        FAULT sends priority 0 so that the backup takes over after Skew_Time.
        """
        before = bool(self._faults)
        if active:
            self._faults.add(fault)
        else:
            self._faults.discard(fault)
        if not self._running or before == bool(self._faults):
            return []
        if self._faults:
            actions: list[Action] = []
            if self.state is State.MASTER:
                actions.append(self._advert(now, PRIORITY_STOP))
            return actions + self._go(now, State.FAULT, f"fault: {fault}")
        return self._leave_init(now, f"fault cleared: {fault}")

    def receive(self, now: float, header: IPHeader, payload: bytes) -> list[Action]:
        """A datagram arrived for this VRID: check it (section 7.1), then act (6.4)."""
        try:
            advert = self._accept(now, header, payload)
        except PacketError as exc:
            self.stats.discarded[exc.reason] += 1
            return [Discarded(exc.reason, exc.detail)]
        self.stats.adverts_received += 1
        if advert.priority == PRIORITY_STOP:
            self.stats.priority_zero_received += 1
        elif self.state is not State.MASTER:
            self.master_seen = MasterSeen(header.source, advert.priority, now)
        if self.state is State.BACKUP:
            return self._backup_received(now, header, advert)
        if self.state is State.MASTER:
            return self._master_received(now, header, advert)
        return []

    # -------------------------------------------------------- transitions --

    def _leave_init(self, now: float, reason: str) -> list[Action]:
        self.master_adver_int = self.params.adver_int  # RFC 5798 section 6.4.1
        if self.params.priority == PRIORITY_OWNER:
            return self._become_master(now, f"{reason}: address owner (priority 255)")
        actions = self._go(now, State.BACKUP, reason)
        self.master_down_at = now + self.master_down_interval
        return actions

    def _become_master(self, now: float, reason: str) -> list[Action]:
        """Sections 6.4.1 and 6.4.2: advertise, announce, arm Adver_Timer."""
        actions = self._go(now, State.MASTER, reason)
        self.stats.became_master += 1
        actions.append(self._advert(now, self.params.priority))
        actions.append(SendGratuitousArp(self.params.addresses, self.params.garp_master_repeat))
        self.adver_at = now + self.params.adver_int
        if self.params.garp_master_delay > 0:
            self.garp_delay_at = now + self.params.garp_master_delay
        if self.params.garp_master_refresh > 0:
            self.garp_refresh_at = now + self.params.garp_master_refresh
        return actions

    def _go(self, now: float, new: State, reason: str) -> list[Action]:
        old = self.state
        if (old, new) not in ALLOWED_TRANSITIONS:
            raise RuntimeError(f"VRRP {self.params.name}: no transition {old.value} -> {new.value}")
        self.state = new
        self.wants_master = False
        self.master_down_at = self.adver_at = None
        self.garp_delay_at = self.garp_refresh_at = None
        self.preempt_at = None
        self.reassert_at = None
        self.last_transition = (now, reason)
        return [StateChanged(old, new, reason)]

    def _backup_received(
        self, now: float, header: IPHeader, advert: AnyAdvertisement
    ) -> list[Action]:
        """Section 6.4.2, ADVERTISEMENT received in Backup."""
        p = self.params
        if advert.priority == PRIORITY_STOP:
            self.master_down_at = now + self.skew_time
            return []
        if not p.preempt or advert.priority >= p.priority:
            self.preempt_at = None
            self._learn_interval(advert)
            self.master_down_at = now + self.master_down_interval
            self.wants_master = False
            return []
        # A lower-priority master and preemption on: keepalived's preempt_delay
        # keeps obeying it for that long before letting the timer run out.
        if p.preempt_delay > 0:
            if self.preempt_at is None:
                self.preempt_at = now + p.preempt_delay
            if now < self.preempt_at:
                self.master_down_at = now + self.master_down_interval
        return []

    def _master_received(
        self, now: float, header: IPHeader, advert: AnyAdvertisement
    ) -> list[Action]:
        """Section 6.4.3, ADVERTISEMENT received in Master."""
        p = self.params
        if advert.priority == PRIORITY_STOP:
            self.adver_at = now + p.adver_int
            return [self._advert(now, p.priority)]
        if advert.priority > p.priority or (
            advert.priority == p.priority and _ip(header.source) > _ip(self.primary_address)
        ):
            why = (
                "higher priority"
                if advert.priority > p.priority
                else "equal priority, higher address"
            )
            actions = self._go(now, State.BACKUP, f"advert from {header.source} ({why})")
            self._learn_interval(advert)
            self.master_down_at = now + self.master_down_interval
            return actions
        return self._rival_received(now, header, advert)

    def _rival_received(
        self, now: float, header: IPHeader, advert: AnyAdvertisement
    ) -> list[Action]:
        """Another master that we out-rank: a split brain (one-way loss).

        Section 6.4.3 discards the advert. Like keepalived, lvsha also records
        the rival for `lvsha status` and re-asserts itself, at most once per
        advert interval: an advert (so that the rival steps down as soon as
        it can hear us) and gratuitous ARP (so that hosts the rival's ARP
        drew away come back).
        """
        self.rival = MasterSeen(header.source, advert.priority, now)
        self.stats.rival_adverts += 1
        if self.reassert_at is not None and now < self.reassert_at:
            return []
        self.reassert_at = now + self.params.adver_int
        return [
            self._advert(now, self.params.priority),
            SendGratuitousArp(self.params.addresses, self.params.garp_master_repeat),
        ]

    # ------------------------------------ run-time priority, sync groups --

    def set_priority(self, now: float, priority: int) -> list[Action]:
        """Track weights changed our priority (keepalived's effective priority).

        The next advert carries it; preemption then follows section 6.4.2/6.4.3
        on both sides. A backup's Master_Down timer moves by the change of its
        Skew_Time, as keepalived's vrrp_set_effective_priority does.
        """
        if priority == self.params.priority:
            return []
        old_mdi = self.master_down_interval
        self.params = dataclasses.replace(self.params, priority=priority)
        if self.state is State.BACKUP and self.master_down_at is not None:
            self.master_down_at += self.master_down_interval - old_mdi
        return []

    def release_master(self, now: float, reason: str) -> list[Action]:
        """The sync group lets a gated backup that wants MASTER become it."""
        if self.state is not State.BACKUP or not self.wants_master:
            return []
        return self._become_master(now, reason)

    def step_down(self, now: float, reason: str) -> list[Action]:
        """The sync group moves a master to BACKUP (no priority 0, as keepalived)."""
        if self.state is not State.MASTER:
            return []
        actions = self._go(now, State.BACKUP, reason)
        self.master_down_at = now + self.master_down_interval
        return actions

    def _learn_interval(self, advert: AnyAdvertisement) -> None:
        """RFC 5798 sections 6.4.2, 6.4.3: Master_Adver_Interval from the master's advert."""
        if isinstance(advert, AdvertisementV3):
            self.master_adver_int = advert.adver_int

    # ---------------------------------------------------------- receiving --

    def _accept(self, now: float, header: IPHeader, payload: bytes) -> AnyAdvertisement:
        """Section 7.1: every receive check; raise PacketError(reason) on the first failure."""
        for problem in header_drops(self.params, header.source, header.ttl):
            raise problem
        advert: AnyAdvertisement
        if self.params.version == 3:
            advert = decode_advertisement_v3(
                payload, header.source, header.destination, self.params.family
            )
            for problem in advert_drops_v3(self.params, advert):
                raise problem
        else:
            advert = decode_advertisement(payload)
            for problem in advert_drops(self.params, advert):
                raise problem
        if header.source == self.primary_address:
            raise self._from_our_address(now, advert)
        return advert

    def _from_our_address(self, now: float, advert: AnyAdvertisement) -> PacketError:
        """An advert whose source is our primary address: an echo, or an address conflict.

        We disable multicast loopback, so such an advert is either one of
        ours reflected by the link (same priority, within an interval of our
        sending it) or another router configured with our address. Section
        6.4.3 breaks priority ties by address and cannot order two routers
        with the same one (both stay master); keepalived logs "advert received
        from remote host with our IP address". lvsha drops it either way and
        keeps the conflict for `lvsha status`. A conflicting router that
        advertises our own priority while we are master looks like an echo.
        """
        sent_at = self._sent_at.get(advert.priority)
        if sent_at is not None and now - sent_at <= self.params.adver_int:
            return PacketError(drops.OWN_ADVERT, "our own advertisement came back")
        self.address_conflict = MasterSeen(self.primary_address, advert.priority, now)
        return PacketError(
            drops.ADDRESS_CONFLICT,
            f"an advert from our own address {self.primary_address} (priority "
            f"{advert.priority}) that we did not send: another router uses our address",
        )

    def _advert(self, now: float, priority: int) -> SendAdvert:
        p = self.params
        self._sent_at[priority] = now
        self.stats.adverts_sent += 1
        if priority == PRIORITY_STOP:
            self.stats.priority_zero_sent += 1
        if p.version == 3:
            return SendAdvert(
                AdvertisementV3(p.vrid, priority, centiseconds(p.adver_int), p.addresses)
            )
        return SendAdvert(
            Advertisement(p.vrid, priority, int(p.adver_int), p.addresses, p.auth_type, p.auth_data)
        )


def header_drops(params: RouterParams, source: str, ttl: int) -> Iterator[PacketError]:
    """Section 7.1, the checks of the IP header: each that fails, in order.

    Unicast mode first (keepalived drops adverts from unknown peers before
    anything else), then the TTL, which must be 255: an advert that crossed a
    router is not from this link.
    """
    if params.unicast_peers and source not in params.unicast_peers:
        yield PacketError(drops.NOT_PEER, f"{source} is not a configured unicast peer")
    if ttl != VRRP_TTL:
        yield PacketError(drops.TTL, f"TTL {ttl}, expected {VRRP_TTL}")


def advert_drops(params: RouterParams, advert: Advertisement) -> Iterator[PacketError]:
    """Section 7.1 against our configuration: each check the advert fails, in order.

    The VRID must be ours and we must not be its address owner; the
    authentication type must match, and with PASS the password (RFC 2338
    section 7.1); the advert interval must match; the address list must
    match unless the sender is the owner (priority 255). `VirtualRouter`
    drops on the first; `lvsha doctor` reports them all.
    """
    p = params
    if advert.vrid != p.vrid:
        yield PacketError(drops.OTHER_VRID, f"VRID {advert.vrid}, expected {p.vrid}")
    if p.priority == PRIORITY_OWNER:
        yield PacketError(drops.ADDRESS_OWNER, "we own the addresses (priority 255)")
    if advert.auth_type != p.auth_type:
        yield PacketError(drops.AUTH_TYPE, f"auth type {advert.auth_type}, expected {p.auth_type}")
    elif p.auth_type != AUTH_NONE and advert.auth_data != p.auth_data:
        yield PacketError(drops.AUTH_PASSWORD, "authentication data does not match")
    if advert.adver_int != p.adver_int:
        yield PacketError(
            drops.ADVERT_INTERVAL, f"advert interval {advert.adver_int}, expected {p.adver_int}"
        )
    if set(advert.addresses) != set(p.addresses) and advert.priority != PRIORITY_OWNER:
        yield PacketError(
            drops.ADDRESS_LIST,
            f"addresses {', '.join(advert.addresses) or '(none)'} differ from ours",
        )


def _due(at: float | None, now: float) -> bool:
    return at is not None and at <= now


def _ip(address: str) -> int:
    """Section 6.4.3's tie-break compares primary addresses as numbers (IPv4 or IPv6)."""
    return int(ipaddress.ip_address(address))
