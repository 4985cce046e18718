"""In-memory stand-ins for every port of the runtime (lvsha/runtime/ports.py).

A `FakeLan` carries adverts between the daemons of one test as IPv4
datagrams to 224.0.0.18, as a bridge would; `FakeKernel` holds links, addresses and VIPs;
IPVS is a dict. Failures are injected by setting the `fail_*` attributes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lvsha.adapters.addresses import AddressEvent, LinkEvent
from lvsha.config import Config, VirtualAddress, VirtualServerConfig, parse_config
from lvsha.config.model import BgpConfig
from lvsha.core.announce import Route
from lvsha.core.desired import DestKey, IpvsTable, ServiceKey, service_key
from lvsha.core.health import apply_health
from lvsha.core.vrrp import RouterParams
from lvsha.errors import KernelError
from lvsha.runtime.daemon import Daemon
from lvsha.runtime.ports import Ports
from tests.core.test_simulation import ipv4_datagram


class FakeLan:
    """One broadcast domain: what a sender sends, every receiver of the lan gets."""

    def __init__(self) -> None:
        self.receivers: list[FakeReceiver] = []
        self.sent: list[tuple[float, str, bytes]] = []  # (time, source, payload)
        self.up = True

    def deliver(self, source: str, payload: bytes, destinations: tuple[str, ...]) -> None:
        loop = asyncio.get_running_loop()
        self.sent.append((loop.time(), source, payload))
        if not self.up:
            return
        for receiver in list(self.receivers):
            if receiver.source_filter != source:
                loop.call_soon(receiver.on_datagram, ipv4_datagram(source, payload), 0.0)


class FakeReceiver:
    def __init__(
        self,
        lan: FakeLan,
        kernel: FakeKernel,
        iface: str,
        on_datagram: Callable[[bytes, float], None],
    ) -> None:
        self.lan, self.iface, self.on_datagram = lan, iface, on_datagram
        self.source_filter = kernel.primary.get(iface, "")  # multicast loop is off
        self.expected: list[RouterParams] = []

    def open(self) -> None:
        self.lan.receivers.append(self)

    def expect(self, routers: Iterable[RouterParams]) -> None:
        self.expected = list(routers)

    def close(self) -> None:
        if self in self.lan.receivers:
            self.lan.receivers.remove(self)


class FakeSender:
    def __init__(self, lan: FakeLan, kernel: FakeKernel, source: str) -> None:
        self.lan, self.kernel, self.source = lan, kernel, source
        self.send_errors = 0
        self.open_ = False

    def open(self) -> None:
        if self.kernel.fail_socket is not None:
            raise self.kernel.fail_socket
        self.open_ = True

    def send(self, payload: bytes, destinations: tuple[str, ...]) -> bool:
        if not self.open_:
            self.send_errors += 1
            return False
        self.lan.deliver(self.source, payload, destinations)
        return True

    def close(self) -> None:
        self.open_ = False


@dataclass
class FakeAnnouncer:
    """Gratuitous ARP: records every frame's time, like a sniffer would."""

    frames: list[tuple[float, str]] = field(default_factory=list)
    sent: int = 0

    async def announce(self, addresses: tuple[str, ...], repeat: int, interval: float) -> None:
        loop = asyncio.get_running_loop()
        for round_ in range(repeat):
            if round_ and interval > 0:
                await asyncio.sleep(interval)
            for address in addresses:
                self.frames.append((loop.time(), address))
                self.sent += 1

    def close(self) -> None:
        pass


class FakeKernel:
    """Links, primary addresses and VIPs of one director."""

    def __init__(self, primary: dict[str, str]) -> None:
        self.primary = dict(primary)
        self.links = {iface: True for iface in primary}
        self.vips: set[VirtualAddress] = set()
        self.fail_primary: Exception | None = None
        self.fail_socket: Exception | None = None
        self.fail_vip: Exception | None = None
        self.on_event: Callable[[Any], None] | None = None
        self.watching = asyncio.Event()
        self.events: list[str] = []  # VIPs added and removed, in order

    async def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    async def primary_address(self, interface: str, exclude: Iterable[str]) -> str | None:
        if self.fail_primary is not None:
            raise self.fail_primary
        address = self.primary.get(interface)
        return None if address in set(exclude) else address

    async def link_up(self, interface: str) -> bool:
        return self.links.get(interface, False)

    async def present(self, owned: Iterable[VirtualAddress]) -> set[VirtualAddress]:
        if self.fail_vip is not None:
            raise self.fail_vip
        return self.vips & set(owned)

    async def add(self, vip: VirtualAddress) -> None:
        self.vips.add(vip)
        self.events.append(f"added {vip.address} on {vip.device}")

    async def remove(self, vip: VirtualAddress) -> None:
        self.vips.discard(vip)
        self.events.append(f"removed {vip.address} from {vip.device}")

    async def watch(self, on_event: Callable[[Any], None]) -> None:
        self.on_event = on_event
        self.watching.set()
        await asyncio.Event().wait()  # until cancelled

    def set_link(self, iface: str, up: bool) -> None:
        self.links[iface] = up
        if self.on_event is not None:
            self.on_event(LinkEvent(iface, up))

    def delete_vip(self, vip: VirtualAddress) -> None:
        self.vips.discard(vip)
        if self.on_event is not None:
            self.on_event(AddressEvent(vip.device, vip.address, False))


class FakeIpvs:
    """The IPVS table as the last apply left it."""

    def __init__(self) -> None:
        self.table: IpvsTable | None = None
        self.error: str | None = None
        self.passes = 0
        self.stats: dict[Any, dict[str, int]] = {}
        self.on_verified: Callable[[], None] = lambda: None
        self.fail: list[Exception] = []  # raised by the next applies, in order
        self.verifies_asked = 0
        self.role: Any = None  # the sync-daemon role of the last apply

    def start(self) -> None:
        pass

    def verify_soon(self) -> None:
        self.verifies_asked += 1

    async def apply(
        self, desired: IpvsTable, role: Any, changed: frozenset[ServiceKey] | None = None
    ) -> list[str]:
        if self.fail:
            raise self.fail.pop(0)
        self.table = desired
        self.role = role
        self.passes += 1
        self.error = None
        return []

    async def close(self, cleanup: Iterable[ServiceKey]) -> list[str]:
        return []

    def status(self) -> dict[str, Any]:
        return {"error": self.error, "passes": self.passes}


class FakeHealth:
    """Every real server healthy unless a test says otherwise."""

    def __init__(self, virtual_servers: tuple[VirtualServerConfig, ...], on_change: Any) -> None:
        self.virtual_servers = virtual_servers
        self.on_change = on_change
        self.down: set[Any] = set()
        self.first_results = True  # every real server checked once (False: still pending)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    async def wait_stopped(self) -> None:
        pass

    def update(self, virtual_servers: Iterable[VirtualServerConfig]) -> None:
        self.virtual_servers = tuple(virtual_servers)

    def health(self) -> dict[Any, bool]:
        return {key: False for key in self.down}

    def effective_virtual_servers(
        self, keys: Iterable[ServiceKey] | None = None
    ) -> tuple[VirtualServerConfig, ...]:
        vss = self.virtual_servers
        if keys is not None:
            wanted = set(keys)
            vss = tuple(vs for vs in vss if service_key(vs) in wanted)
        return apply_health(vss, self.health(), {})

    def changed_services(self) -> frozenset[ServiceKey] | None:
        return None  # tests flip `down` by hand: every change is a whole-table one

    def status(self) -> dict[Any, Any]:
        return {}

    def checked(self) -> bool:
        return self.first_results

    def quorum(self) -> dict[ServiceKey, tuple[bool, int]]:
        """Quorum as core/health.py counts it: the live weight against `quorum`."""
        health = self.health()
        result = {}
        for vs in self.virtual_servers:
            key = service_key(vs)
            live = sum(
                rs.weight
                for rs in vs.real_servers
                if health.get((key, DestKey(rs.address, rs.port)), True)
            )
            result[key] = (live >= vs.quorum, live)
        return result


class FakeSpeaker:
    """A BGP speaker that remembers what it was told; `died` ends its run()."""

    def __init__(self, cfg: BgpConfig, log: list[str]) -> None:
        self.cfg = cfg
        self.log = log  # shared with the test: the order of events across fakes
        self.routes: tuple[Route, ...] = ()
        self.runs = 0
        self.closed = False
        self.died = asyncio.Event()

    def set_routes(self, routes: Iterable[Route]) -> None:
        new = tuple(sorted(routes, key=lambda r: r.prefix))
        if new != self.routes:
            self.log.append("routes " + " ".join(r.prefix for r in new))
        self.routes = new

    async def run(self) -> None:
        """As the adapters: returns once closed, raises when the child died."""
        self.runs += 1
        self.died.clear()
        try:
            await self.died.wait()
        except asyncio.CancelledError:
            self.log.append("speaker run cancelled")  # the child stopped unwithdrawn
            raise
        if self.closed:
            return
        raise OSError("the speaker exited with status 1")

    async def close(self, timeout: float) -> None:
        await asyncio.sleep(0.05)  # the withdrawal's round trip: run() must not be cancelled
        self.log.append("speaker closed")
        self.routes = ()
        self.closed = True
        self.died.set()

    def sessions(self) -> list[dict[str, Any]]:
        return [
            {"peer": p.address, "peer_as": p.peer_as, "state": "established"}
            for p in self.cfg.peers
        ]

    def status(self) -> dict[str, Any]:
        return {"speaker": "fake", "pid": None, "restarts": self.runs - 1, "last_error": None}


class FakeHooks:
    def __init__(self) -> None:
        self.runs: list[Any] = []
        self.drained_within: float | None = None
        self.ran = self.failed = self.timed_out = self.dropped = 0

    def submit(self, runs: list[Any]) -> None:
        self.runs += runs

    async def drain(self, timeout: float) -> bool:
        self.drained_within = timeout
        return True

    async def close(self) -> None:
        pass


class FakeScripts:
    """Track scripts: each run exits after `duration` with `results[name]` (0 if unset).

    A script named in `hang` never exits until killed (exit -9).
    """

    def __init__(self, duration: float = 0.05) -> None:
        self.duration = duration
        self.results: dict[str, int] = {}
        self.hang: set[str] = set()
        self.started: list[tuple[float, str, tuple[str, ...], str | None]] = []
        self.killed: list[tuple[float, str]] = []
        self._running: dict[str, Callable[[int], None]] = {}

    def start(
        self,
        name: str,
        argv: tuple[str, ...],
        user: str | None,
        group: str | None,
        on_exit: Callable[[int], None],
    ) -> None:
        loop = asyncio.get_running_loop()
        self.started.append((loop.time(), name, argv, user))
        self._running[name] = on_exit
        if name not in self.hang:
            loop.call_later(self.duration, self._exit, name, self.results.get(name, 0))

    def _exit(self, name: str, code: int) -> None:
        on_exit = self._running.pop(name, None)
        if on_exit is not None:
            on_exit(code)

    def kill(self, name: str) -> None:
        if name in self._running:
            loop = asyncio.get_running_loop()
            self.killed.append((loop.time(), name))
            loop.call_soon(self._exit, name, -9)

    async def close(self) -> None:
        self._running.clear()


class FakeNotifier:
    def __init__(self) -> None:
        self.lines: list[tuple[float, str]] = []

    def notify(self, *lines: str) -> bool:
        now = asyncio.get_running_loop().time()
        self.lines += [(now, line) for line in lines]
        return True

    def said(self, prefix: str) -> list[str]:
        return [line for _, line in self.lines if line.startswith(prefix)]


class FakeServer:
    def __init__(self, *args: Any) -> None:
        self.args = args
        self.group_error = None

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass


@dataclass
class Director:
    """One daemon on fakes, and the fakes to look at."""

    daemon: Daemon
    kernel: FakeKernel
    ipvs: FakeIpvs
    hooks: FakeHooks
    notifier: FakeNotifier
    announcers: dict[str, FakeAnnouncer]
    task: asyncio.Task[int] | None = None
    scripts: FakeScripts = field(default_factory=FakeScripts)
    files: dict[str, bytes] = field(default_factory=dict)
    speakers: list[FakeSpeaker] = field(default_factory=list)  # one per [bgp] table run
    events: list[str] = field(default_factory=list)  # speaker and kernel events, in order

    @property
    def speaker(self) -> FakeSpeaker:
        return self.speakers[-1]

    def state(self, name: str = "VI_1") -> str:
        return self.daemon.driver.instances[name].router.state.value

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.daemon.run())

    async def stop(self) -> int:
        self.daemon.stop()
        assert self.task is not None
        return await self.task


def director(
    lan: FakeLan,
    toml: str,
    primary: str,
    config_path: str | None = None,
    watchdog: float | None = None,
    config: Config | None = None,
    proc_sys: Path | None = None,
) -> Director:
    """A daemon for `toml` on eth1 = `primary`, wired to fakes (call inside the loop)."""
    kernel = FakeKernel({"eth1": primary, "eth0": primary.replace("192.0.2.", "198.51.100.")})
    ipvs, hooks, notifier = FakeIpvs(), FakeHooks(), FakeNotifier()
    announcers: dict[str, FakeAnnouncer] = {}
    scripts, files = FakeScripts(), dict[str, bytes]()

    def announcer(iface: str) -> FakeAnnouncer:
        return announcers.setdefault(iface, FakeAnnouncer())

    def receiver(iface: str, multicast: bool, on_datagram: Any, on_overflow: Any) -> FakeReceiver:
        return FakeReceiver(lan, kernel, iface, on_datagram)

    ports = Ports(
        netlink=kernel,
        receiver=receiver,
        sender=lambda iface, source: FakeSender(lan, kernel, source),
        announcer=announcer,
        ipvs=lambda: ipvs,
        health=FakeHealth,
        hooks=lambda: hooks,
        notifier=notifier,
        control=FakeServer,
        metrics=FakeServer,
        watchdog_interval=watchdog,
        scripts=lambda: scripts,
        read_file=files.get,
    )
    speakers: list[FakeSpeaker] = []
    events = kernel.events  # the speaker's events go in the same list

    def speaker(cfg: BgpConfig) -> FakeSpeaker:
        speakers.append(FakeSpeaker(cfg, events))
        return speakers[-1]

    ports.speaker = speaker
    ports.proc_sys = proc_sys or Path("/nonexistent/proc/sys")  # never the host's sysctls
    daemon = Daemon(config or parse_config(toml), config_path, ports)
    return Director(
        daemon, kernel, ipvs, hooks, notifier, announcers, None, scripts, files, speakers, events
    )


def instance_toml(
    priority: int, name: str = "VI_1", vrid: int = 51, vip: str = "192.0.2.100", extra: str = ""
) -> str:
    return f"""
[vrrp.{name}]
interface = "eth1"
virtual_router_id = {vrid}
priority = {priority}
advert_int = 1
authentication = {{ type = "pass", password = "grr02" }}
virtual_ipaddress = ["{vip}/32"]
{extra}
"""


def daemon_toml(name: str, body: str, sock: str = "/nonexistent/lvsha.sock") -> str:
    return f'[daemon]\nname = "{name}"\ncontrol_socket = "{sock}"\n{body}'


async def until(predicate: Callable[[], object], limit: float, step: float = 0.01) -> float:
    """Walk the virtual clock until `predicate()` holds; returns the time it took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not predicate():
        if loop.time() - start > limit:
            raise TimeoutError(f"not within {limit} virtual seconds")
        await asyncio.sleep(step)
    return loop.time() - start


KERNEL_ERROR = KernelError("netlink: connection refused (injected)")
