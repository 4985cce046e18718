"""Drives the pure virtual routers: sockets in, timers, actions out.

One receiving socket pair per interface hands each datagram to the router
of its VRID (RFC 3768 section 7.1); what cannot be given to a router (an
undecodable datagram, a VRID not configured here, a kernel queue overflow)
is counted once, on the interface. One timer per router sits on its
`deadline` (aioquic style) and one sending socket per instance carries its
adverts: an advert goes out synchronously from the timer callback, before
anything else the transition causes, so nothing slow can delay it.

An instance is built completely (`prepare`: link states, primary address,
sockets) before it joins the driver (`start`). Whatever setup could not do
stays as a FAULT of the router, retried every SETUP_RETRY seconds and on
the netlink events that may fix it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from lvsha import logs
from lvsha.config import VrrpInstanceConfig
from lvsha.config.router import router_params
from lvsha.core import drops
from lvsha.core.packet import VRRP_MULTICAST_GROUP, IPv4Header, decode_ipv4
from lvsha.core.packet_v3 import VRRP_MULTICAST_GROUP_V6, AdvertisementV3, IPv6Header
from lvsha.core.vrrp import (
    Action,
    AnyAdvertisement,
    Discarded,
    SendAdvert,
    SendGratuitousArp,
    State,
    StateChanged,
    VirtualRouter,
)
from lvsha.errors import KernelError, PacketError
from lvsha.runtime.ports import Announcer, Ports, Receiver, Sender
from lvsha.runtime.supervisor import Supervisor

log = logs.get("lvsha")

SETUP_RETRY = 1.0  # seconds between attempts to finish an instance's setup
# asyncio's epoll wait rounds its timeout up to a whole millisecond, so a
# timer set for the deadline fires up to 1 ms late; set it that much early
# and treat it as the deadline (docs/benchmarks-vrrp.md).
TIMER_SLACK = 0.001
DISCARD_LOG_INTERVAL = 10.0  # at most one log line per drop reason and place
# A datagram is handed to its router with its arrival time (the kernel's
# receive timestamp), so that a loop busy when a priority-0 advert came in
# does not push Skew_Time back (RFC 5798 section 6.4.2). An age beyond this
# is not believed (a clock step): the datagram then counts from now.
MAX_DATAGRAM_AGE = 1.0


@dataclass
class Instance:
    """One VRRP instance: its machine, its wire and its timer."""

    cfg: VrrpInstanceConfig
    router: VirtualRouter
    arp: Announcer
    sender: Sender | None = None
    timer: asyncio.TimerHandle | None = None
    setup_fault: str | None = None  # what setup could not do yet (a router fault)
    last_discard_log: dict[str, float] = field(default_factory=dict)

    @property
    def destinations(self) -> tuple[str, ...]:
        group = VRRP_MULTICAST_GROUP_V6 if self.router.params.family == 6 else VRRP_MULTICAST_GROUP
        return self.cfg.unicast_peers or (group,)

    @property
    def watched_links(self) -> tuple[str, ...]:
        return (self.cfg.interface, *self.cfg.track_interface)

    @property
    def garp_task(self) -> str:
        return f"garp:{self.cfg.name}"


_UNSPECIFIED = {4: "0.0.0.0", 6: "::"}


def _family(cfg: VrrpInstanceConfig) -> int:
    return 6 if any(":" in v.address for v in cfg.virtual_ipaddress) else 4


@dataclass
class InterfaceDrops:
    """Datagrams of one interface that no router could be given."""

    discarded: Counter[str] = field(default_factory=Counter)
    last_log: dict[str, float] = field(default_factory=dict)


StateHandler = Callable[[Instance, StateChanged], None]


class EarlySockets(Protocol):
    """VRRP sockets opened at process start (runtime/early.py)."""

    def take(self, iface: str) -> tuple[float, list[bytes]] | None: ...
    def take6(self, iface: str) -> tuple[float, list[tuple[str, str, int, bytes]]] | None:
        """(source, destination, hop limit, payload) of each queued IPv6 datagram."""

    def close(self) -> None: ...


class VrrpDriver:
    """The running instances of one daemon, and their sockets and timers."""

    def __init__(
        self,
        ports: Ports,
        supervisor: Supervisor,
        on_state_changed: StateHandler,
        vip_addresses: Callable[[], Iterable[str]],
    ) -> None:
        self.ports = ports
        self.supervisor = supervisor
        self.on_state_changed = on_state_changed
        self.vip_addresses = vip_addresses  # never taken as a primary address
        self.instances: dict[str, Instance] = {}
        self.receivers: dict[str, Receiver] = {}
        self.receivers6: dict[str, Receiver] = {}  # IPv6 VRRPv3 (RFC 5798), per interface
        self.interfaces: dict[str, InterfaceDrops] = {}
        self.early: EarlySockets | None = None  # only during the first start
        self.listening_since: dict[str, float] = {}  # interface -> its early socket's opening
        self.listening_since6: dict[str, float] = {}  # the same, IPv6
        self._backlog: dict[str, list[bytes]] = {}
        self._backlog6: dict[str, list[tuple[str, str, int, bytes]]] = {}
        # called after every execute(): sync groups settle there (runtime/tracking.py)
        self.on_executed: Callable[[Instance], None] | None = None
        self._loop = asyncio.get_running_loop()

    def now(self) -> float:
        return self._loop.time()

    # ------------------------------------------------------ build, start --

    async def prepare(self, cfg: VrrpInstanceConfig) -> Instance:
        """A complete instance, not started: what failed is a fault to retry."""
        inst = Instance(
            cfg,
            VirtualRouter(router_params(cfg), cfg.unicast_src_ip or _UNSPECIFIED[_family(cfg)]),
            self.ports.announcer(cfg.interface),
        )
        now = self.now()
        for ifname in inst.watched_links:
            try:
                up = await self.ports.netlink.link_up(ifname)
            except KernelError as exc:
                log.error("link state unknown", link=ifname, error=str(exc))
                up = False
            if not up:
                inst.router.fault_changed(now, f"{ifname} down", True)
        await self.setup(inst, multicast=not cfg.unicast_peers)
        return inst

    async def setup(self, inst: Instance, multicast: bool = False) -> bool:
        """Primary address, receiver and sender; True when nothing is missing."""
        iface = inst.cfg.interface
        fault: str | None = None
        if inst.router.params.family == 6:
            return await self._setup6(inst, multicast)
        try:
            if inst.cfg.unicast_src_ip is None:
                primary = await self.ports.netlink.primary_address(iface, self.vip_addresses())
                if primary is None:
                    fault = f"no IPv4 address on {iface}"
                else:
                    inst.router.primary_address = primary
            if fault is None:
                self._open_receiver(iface, multicast)
                if inst.sender is None:
                    sender = self.ports.sender(iface, inst.router.primary_address)
                    sender.open()
                    inst.sender = sender
        except KernelError as exc:
            log.error("vrrp setup", instance=inst.cfg.name, error=str(exc))
            fault = f"no socket on {iface}"
        self._set_setup_fault(inst, fault)
        return fault is None

    async def _setup6(self, inst: Instance, multicast: bool) -> bool:
        """IPv6 (RFC 5798 section 5.1.2): the link-local source, the ff02::12 receiver."""
        iface = inst.cfg.interface
        fault: str | None = None
        ports = self.ports
        try:
            if ports.receiver6 is None or ports.sender6 is None or ports.link_local is None:
                fault = "no IPv6 VRRP sockets in this build"
            elif inst.cfg.unicast_src_ip is None:
                primary = await ports.link_local(iface)
                if primary is None:
                    fault = f"no usable IPv6 link-local address on {iface}"
                else:
                    inst.router.primary_address = primary
            if fault is None and ports.receiver6 is not None and ports.sender6 is not None:
                if iface not in self.receivers6:
                    receiver = ports.receiver6(
                        iface,
                        multicast or self._any_multicast(iface, 6),
                        lambda header, data, age: self.datagram6(iface, header, data, age),
                        lambda dropped: self.overflow(iface, dropped),
                    )
                    taken = self.early.take6(iface) if self.early is not None else None
                    receiver.open()  # right after the early socket closed, as for IPv4
                    self.receivers6[iface] = receiver
                    if taken is not None:
                        self.listening_since6[iface], self._backlog6[iface] = taken
                    if inst.cfg.name in self.instances:  # a retried setup: already started
                        self._expect(iface)
                if inst.sender is None:
                    sender = ports.sender6(iface, inst.router.primary_address)
                    sender.open()
                    inst.sender = sender
        except KernelError as exc:
            log.error("vrrp setup", instance=inst.cfg.name, error=str(exc))
            fault = f"no IPv6 socket on {iface}"
        self._set_setup_fault(inst, fault)
        return fault is None

    def _any_multicast(self, iface: str, family: int) -> bool:
        return any(
            not i.cfg.unicast_peers
            for i in self.instances.values()
            if i.cfg.interface == iface and i.router.params.family == family
        )

    def _set_setup_fault(self, inst: Instance, fault: str | None) -> None:
        old, inst.setup_fault = inst.setup_fault, fault
        now = self.now()
        actions: list[Action] = []
        if fault is not None:
            actions += inst.router.fault_changed(now, fault, True)
        if old is not None and old != fault:
            actions += inst.router.fault_changed(now, old, False)
        if inst.cfg.name in self.instances:
            self.execute(inst, actions)

    def _open_receiver(self, iface: str, multicast: bool) -> None:
        if iface in self.receivers:
            return
        multicast = multicast or any(
            not i.cfg.unicast_peers for i in self.instances.values() if i.cfg.interface == iface
        )
        receiver = self.ports.receiver(
            iface,
            multicast,
            lambda data, age: self.datagram(iface, data, age),
            lambda dropped: self.overflow(iface, dropped),
        )
        taken = self.early.take(iface) if self.early is not None else None
        receiver.open()  # right after the early socket closed: nothing is lost between
        self.receivers[iface] = receiver
        if taken is not None:
            self.listening_since[iface], self._backlog[iface] = taken

    def replay_early(self) -> None:
        """Hand the datagrams queued on the early sockets to the started routers."""
        backlog, self._backlog = self._backlog, {}
        backlog6, self._backlog6 = self._backlog6, {}
        self.listening_since.clear()
        self.listening_since6.clear()
        if self.early is not None:
            self.early.close()
            self.early = None
        for iface, queued in backlog.items():
            for data in queued:
                self.datagram(iface, data)
        for iface, queued6 in backlog6.items():
            for source, destination, hops, payload in queued6:
                self.datagram6(iface, IPv6Header(source, destination, hops), payload)

    def early_listening_since(self, inst: Instance) -> float | None:
        """When the early socket of this router's interface and family opened.

        Only its own family's: an IPv6 router heard nothing on an IPv4 socket.
        """
        since = self.listening_since6 if inst.router.params.family == 6 else self.listening_since
        return since.get(inst.cfg.interface)

    def start(self, inst: Instance, listening_since: float | None = None) -> None:
        """Join the driver and run the Startup event (section 6.4.1).

        `listening_since`: when this router began to listen (its interface's
        early socket, runtime/early.py); Master_Down_Timer counts from then.
        """
        self.instances[inst.cfg.name] = inst
        self._expect(inst.cfg.interface)
        now = self.now()
        at = now if listening_since is None else min(listening_since, now)
        self.execute(inst, inst.router.startup(at))

    def stop(self, inst: Instance) -> None:
        """Shutdown event (priority 0 from a master), then close its wire."""
        self.execute(inst, inst.router.shutdown(self.now()))
        self.discard(inst)

    def discard(self, inst: Instance) -> None:
        """Forget an instance: no timer, no socket, no announcement left."""
        if inst.timer is not None:
            inst.timer.cancel()
            inst.timer = None
        self.supervisor.cancel(inst.garp_task)
        if inst.sender is not None:
            inst.sender.close()
            inst.sender = None
        inst.arp.close()
        if self.instances.get(inst.cfg.name) is inst:
            del self.instances[inst.cfg.name]
            self._expect(inst.cfg.interface)

    def close(self) -> None:
        for receiver in (*self.receivers.values(), *self.receivers6.values()):
            receiver.close()
        self.receivers.clear()
        self.receivers6.clear()

    async def retry_setup(self) -> None:
        """Supervised: finish the setup of instances that could not complete it."""
        while True:
            await asyncio.sleep(SETUP_RETRY)
            for inst in list(self.instances.values()):
                if inst.setup_fault is not None and self.instances.get(inst.cfg.name) is inst:
                    await self.setup(inst)

    def _expect(self, iface: str) -> None:
        """The adverts of the routers on `iface` get a receive queue of their own.

        Each family's receiver sorts by the routers of its family (IPv4 and
        IPv6 instances may share a VRID, RFC 5798 section 5.2.3).
        """
        routers = [i.router.params for i in self.instances.values() if i.cfg.interface == iface]
        for receiver in (self.receivers.get(iface), self.receivers6.get(iface)):
            if receiver is None:
                continue
            try:
                receiver.expect(routers)
            except KernelError as exc:  # every datagram still arrives, in one shared queue
                log.error("vrrp socket filter", interface=iface, error=str(exc))

    # -------------------------------------------------------------- input --

    def datagram(self, interface: str, data: bytes, age: float = 0.0) -> None:
        """A VRRP datagram on `interface`, received `age` seconds ago: to its VRID's router."""
        try:
            header, payload = decode_ipv4(data)
        except PacketError as exc:
            self._interface_drop(interface, exc.reason, exc.detail)
            return
        self._dispatch(interface, 4, header, payload, age)

    def datagram6(
        self, interface: str, header: IPv6Header, payload: bytes, age: float = 0.0
    ) -> None:
        """An IPv6 VRRP datagram (no IP header: its fields came as ancillary data)."""
        self._dispatch(interface, 6, header, payload, age)

    def _dispatch(
        self,
        interface: str,
        family: int,
        header: IPv4Header | IPv6Header,
        payload: bytes,
        age: float = 0.0,
    ) -> None:
        """To the router of the VRID and family (RFC 5798 5.2.3); else counted on the interface."""
        if len(payload) < 2:
            self._interface_drop(interface, drops.LENGTH, f"{len(payload)} octets of VRRP")
            return
        vrid = payload[1]
        for inst in self.instances.values():
            if (
                inst.cfg.interface == interface
                and inst.cfg.virtual_router_id == vrid
                and inst.router.params.family == family
            ):
                arrived = self.now() - (age if 0.0 < age <= MAX_DATAGRAM_AGE else 0.0)
                self.execute(inst, inst.router.receive(arrived, header, payload))
                return
        self._interface_drop(
            interface,
            drops.UNKNOWN_VRID,
            f"VRID {vrid} from {header.source} is not configured here (IPv{family})",
        )

    def overflow(self, interface: str, dropped: int) -> None:
        """The kernel dropped datagrams from a full receive queue (a flood)."""
        detail = f"{dropped} datagrams dropped by the kernel: receive queue full"
        self._interface_drop(interface, drops.OVERFLOW, detail, dropped)

    def _interface_drop(self, interface: str, reason: str, detail: str, count: int = 1) -> None:
        drops = self.interfaces.setdefault(interface, InterfaceDrops())
        drops.discarded[reason] += count
        if self._log_due(drops.last_log, reason):
            log.warning(
                "datagram invalid",
                interface=interface,
                reason=reason,
                detail=detail,
                count=drops.discarded[reason],
            )

    def _log_due(self, last: dict[str, float], reason: str) -> bool:
        now = self.now()
        if now - last.get(reason, -DISCARD_LOG_INTERVAL) >= DISCARD_LOG_INTERVAL:
            last[reason] = now
            return True
        return False

    def link_changed(self, ifname: str, up: bool) -> None:
        now = self.now()
        for inst in list(self.instances.values()):
            if ifname in inst.watched_links:
                self.execute(inst, inst.router.fault_changed(now, f"{ifname} down", not up))

    def address_added(self, ifname: str) -> None:
        """An address appeared: an instance waiting for one may finish its setup."""
        for inst in list(self.instances.values()):
            if inst.setup_fault is not None and inst.cfg.interface == ifname:
                self.supervisor.once(self.setup(inst), f"setup:{inst.cfg.name}")

    # ------------------------------------------------------------- timers --

    def _fire(self, inst: Instance) -> None:
        inst.timer = None
        now, deadline = self.now(), inst.router.deadline
        if deadline is not None and deadline - TIMER_SLACK <= now < deadline:
            now = deadline  # armed early by the loop's granularity: this is the deadline
        try:
            self.execute(inst, inst.router.timer_fired(now))
        finally:  # whatever went wrong, the router keeps its timer
            if inst.timer is None:
                self._arm(inst)

    def _arm(self, inst: Instance) -> None:
        """Keep one timer on the router's deadline.

        A timer already set for that very deadline stays. Replacing it would
        cancel it even when it is due and queued to run later in this loop
        iteration, behind the socket reader: under a stream of datagrams
        (each one re-arms) the timer would never run, and a flooded master
        stopped advertising.
        """
        deadline = inst.router.deadline
        at = None if deadline is None else deadline - TIMER_SLACK
        if inst.timer is not None:
            if not inst.timer.cancelled() and inst.timer.when() == at:
                return
            inst.timer.cancel()
            inst.timer = None
        if at is not None and self.instances.get(inst.cfg.name) is inst:
            inst.timer = self._loop.call_at(at, self._fire, inst)

    # ------------------------------------------------------------- output --

    def _send(self, inst: Instance, advert: AnyAdvertisement) -> None:
        """One advert to every destination; a v3 checksum covers each one's address."""
        assert inst.sender is not None
        if isinstance(advert, AdvertisementV3):  # RFC 5798 section 5.2.8
            source = inst.router.primary_address
            for dest in inst.destinations:
                inst.sender.send(advert.encode_for(source, dest), (dest,))
        else:
            inst.sender.send(advert.encode(), inst.destinations)

    def execute(self, inst: Instance, actions: Iterable[Action]) -> None:
        """Carry out the machine's actions, then re-arm its timer.

        Adverts go on the wire first (a takeover's advert must not wait for
        the transition's log line and hooks); the rest follow in order.
        """
        actions = list(actions)
        for action in actions:
            if isinstance(action, SendAdvert) and inst.sender is not None:
                self._send(inst, action.advert)
        for action in actions:
            if isinstance(action, SendGratuitousArp):
                # the excluded VIPs are announced too, as keepalived does
                excluded = tuple(v.address for v in inst.cfg.virtual_ipaddress_excluded)
                self.supervisor.once(
                    inst.arp.announce(
                        action.addresses + excluded, action.repeat, inst.cfg.garp_interval
                    ),
                    inst.garp_task,
                )
            elif isinstance(action, StateChanged):
                if action.new is not State.MASTER:  # a non-master never announces
                    self.supervisor.cancel(inst.garp_task)
                log.info(
                    "transition",
                    instance=inst.cfg.name,
                    old=action.old.value,
                    new=action.new.value,
                    reason=action.reason,
                )
                self.on_state_changed(inst, action)
            elif isinstance(action, Discarded) and self._log_due(
                inst.last_discard_log, action.reason
            ):
                log.warning(
                    "datagram invalid",
                    instance=inst.cfg.name,
                    reason=action.reason,
                    detail=action.detail,
                    count=inst.router.stats.discarded[action.reason],
                )
        self._arm(inst)
        if self.on_executed is not None:
            self.on_executed(inst)
