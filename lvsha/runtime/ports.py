"""What the runtime needs from the operating system, as interfaces.

The daemon is wired from a `Ports` bundle: `real_ports()` builds it from the
adapters (raw sockets, rtnetlink, IPVS, the health worker, hooks, sd_notify),
and the runtime's unit tests build it from in-memory fakes, so that the VRRP
driver, reload and supervision run without root on a virtual clock. Every
protocol lists exactly what the runtime calls.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from lvsha.config import VirtualAddress, VirtualServerConfig
from lvsha.config.model import BgpConfig
from lvsha.core.announce import Route
from lvsha.core.desired import HealthMap, IpvsTable, ServiceKey
from lvsha.core.vrrp import RouterParams

NetlinkEventHandler = Callable[[Any], None]


class Netlink(Protocol):
    """Links and IPv4 addresses (adapters/addresses.py)."""

    async def open(self) -> None: ...
    def close(self) -> None: ...
    async def primary_address(self, interface: str, exclude: Iterable[str]) -> str | None: ...
    async def link_up(self, interface: str) -> bool: ...
    async def present(self, owned: Iterable[VirtualAddress]) -> set[VirtualAddress]: ...
    async def add(self, vip: VirtualAddress) -> None: ...
    async def remove(self, vip: VirtualAddress) -> None: ...
    async def watch(self, on_event: NetlinkEventHandler) -> None: ...


class Receiver(Protocol):
    """The VRRP datagrams of one interface (adapters/vrrp_socket.py)."""

    def open(self) -> None: ...
    def expect(self, routers: Iterable[RouterParams]) -> None: ...
    def close(self) -> None: ...


class Sender(Protocol):
    """One instance's adverts, from its primary address."""

    send_errors: int

    def open(self) -> None: ...
    def send(self, payload: bytes, destinations: tuple[str, ...]) -> bool: ...
    def close(self) -> None: ...


class Announcer(Protocol):
    """Gratuitous ARP out of one interface (adapters/arp.py)."""

    sent: int

    async def announce(self, addresses: tuple[str, ...], repeat: int, interval: float) -> None: ...
    def close(self) -> None: ...


class Ipvs(Protocol):
    """The IPVS table and sync daemon (runtime/ipvs_sync.py)."""

    error: str | None
    passes: int
    stats: dict[Any, dict[str, int]]
    on_verified: Callable[[], None]  # a verify dumped beside the passes: a whole pass, please

    def start(self) -> None: ...
    def verify_soon(self) -> None: ...
    async def apply(
        self, desired: IpvsTable, role: Any, changed: frozenset[ServiceKey] | None = None
    ) -> list[str]: ...
    async def close(self, cleanup: Iterable[ServiceKey]) -> list[str]: ...
    def status(self) -> dict[str, Any]: ...


class Health(Protocol):
    """The health checks (runtime/health.py)."""

    def start(self) -> None: ...
    def stop(self) -> None: ...
    async def wait_stopped(self) -> None: ...
    def update(self, virtual_servers: Iterable[VirtualServerConfig]) -> None: ...
    def health(self) -> HealthMap: ...
    def effective_virtual_servers(
        self, keys: Iterable[ServiceKey] | None = None
    ) -> tuple[VirtualServerConfig, ...]: ...
    def changed_services(self) -> frozenset[ServiceKey] | None: ...
    def status(self) -> dict[Any, Any]: ...
    def quorum(self) -> dict[ServiceKey, tuple[bool, int]]: ...
    def checked(self) -> bool: ...


class Hooks(Protocol):
    """Notify hooks (adapters/hooks.py)."""

    ran: int
    failed: int
    timed_out: int
    dropped: int

    def submit(self, runs: list[Any]) -> None: ...
    async def drain(self, timeout: float) -> bool: ...
    async def close(self) -> None: ...


class ScriptRunner(Protocol):
    """Track script processes (adapters/scripts.py)."""

    def start(
        self,
        name: str,
        argv: tuple[str, ...],
        user: str | None,
        group: str | None,
        on_exit: Callable[[int], None],
    ) -> None: ...
    def kill(self, name: str) -> None: ...
    async def close(self) -> None: ...


class Notifier(Protocol):
    """sd_notify (adapters/systemd.py)."""

    def notify(self, *lines: str) -> bool: ...


class Speaker(Protocol):
    """A BGP speaker lvsha runs as a child and drives (adapters/exabgp.py, adapters/bird.py).

    `set_routes` gives the whole announced set; the speaker diffs it, and
    sends it again after any restart. `run` starts the child and returns (or
    raises) only when it died: the supervisor restarts it. `close` withdraws
    everything, then stops the child.
    """

    def set_routes(self, routes: Iterable[Route]) -> None: ...
    async def run(self) -> None: ...
    async def close(self, timeout: float) -> None: ...
    def sessions(self) -> list[dict[str, Any]]: ...
    def status(self) -> dict[str, Any]: ...


class Server(Protocol):
    """The control socket and /metrics servers."""

    async def start(self) -> None: ...
    async def close(self) -> None: ...


@dataclass
class Ports:
    """Factories for everything the daemon opens."""

    netlink: Netlink
    # each datagram with its age, seconds since the kernel received it
    receiver: Callable[[str, bool, Callable[[bytes, float], None], Callable[[int], None]], Receiver]
    sender: Callable[[str, str], Sender]
    announcer: Callable[[str], Announcer]
    ipvs: Callable[[], Ipvs]
    health: Callable[[tuple[VirtualServerConfig, ...], Callable[[], None]], Health]
    hooks: Callable[[], Hooks]
    notifier: Notifier
    control: Callable[[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]], str | None], Any]
    metrics: Callable[[str, Callable[[], dict[str, Any]]], Server]
    watchdog_interval: float | None = None
    release_memory: Callable[[], object] = lambda: None  # after start-up (adapters/heap.py)
    scripts: Callable[[], ScriptRunner] | None = None  # None: adapters/scripts.py
    read_file: Callable[[str], bytes | None] | None = None  # None: adapters/scripts.py
    # IPv6 VRRPv3 instances (RFC 5798): the receiver hands over (IPv6Header, payload, age)
    receiver6: (
        Callable[[str, bool, Callable[[Any, bytes, float], None], Callable[[int], None]], Receiver]
        | None
    ) = None
    sender6: Callable[[str, str], Sender] | None = None
    link_local: Callable[[str], Awaitable[str | None]] | None = None  # IPv6 advert source
    speaker: Callable[[BgpConfig], Speaker] | None = None  # None: adapters/bgp_speakers.py
    proc_sys: Path = Path("/proc/sys")  # the sysctls the daemon sets (BGP: IPVS sloppy_tcp)


def real_ports() -> Ports:
    """The adapters of a real director, light enough to build before VRRP starts.

    Nothing here imports pyroute2 or the health checker: IPVS opens on its
    first pass (runtime/lazy_ipvs.py), the health checker is imported when
    the daemon builds it, after its VRRP sockets and timers run.
    """
    from lvsha.adapters import addresses, heap
    from lvsha.adapters.control import ControlServer
    from lvsha.adapters.hooks import HookRunner
    from lvsha.adapters.nd import Announcer as DualStackAnnouncer
    from lvsha.adapters.systemd import Notifier as SdNotifier
    from lvsha.adapters.systemd import watchdog_interval
    from lvsha.adapters.vrrp_socket import VrrpReceiver, VrrpSender
    from lvsha.adapters.vrrp_socket6 import VrrpReceiver6, VrrpSender6
    from lvsha.runtime.lazy_ipvs import LazyIpvs

    netlink = addresses.Netlink()  # IPv4 and IPv6 addresses, one rtnetlink path
    return Ports(
        netlink=netlink,
        receiver=VrrpReceiver,
        sender=VrrpSender,
        announcer=DualStackAnnouncer,
        ipvs=LazyIpvs,
        health=_health_checker,
        hooks=HookRunner,
        notifier=SdNotifier(),
        control=ControlServer,
        metrics=_metrics_server,
        watchdog_interval=watchdog_interval(),
        release_memory=heap.trim,
        receiver6=VrrpReceiver6,
        sender6=VrrpSender6,
        link_local=netlink.link_local,
    )


def _health_checker(
    virtual_servers: tuple[VirtualServerConfig, ...], on_change: Callable[[], None]
) -> Health:
    """The checker; for no virtual servers a stand-in that imports it on a reload."""
    from lvsha.runtime.lazy_health import LazyHealth

    return LazyHealth(virtual_servers, on_change, _real_health_checker)


def _real_health_checker(
    virtual_servers: tuple[VirtualServerConfig, ...], on_change: Callable[[], None]
) -> Health:
    from lvsha.runtime.health import HealthChecker

    return HealthChecker(virtual_servers, on_change)


def _metrics_server(listen: str, status: Callable[[], dict[str, Any]]) -> Server:
    from lvsha.adapters.metrics import MetricsServer

    return MetricsServer(listen, status)
