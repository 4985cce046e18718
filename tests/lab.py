"""A throw-away LAN of network namespaces for end-to-end tests and benchmarks.

`Lab` makes a bridge in a namespace of its own and plugs hosts into it with
veth pairs; every name carries a per-lab prefix so that parallel runs never
collide, and `close()` kills what it started and deletes every namespace,
also after a failure. Addresses come from the documentation ranges only
(RFC 5737): the LAN is 192.0.2.0/24.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LVSHA = [sys.executable, "-m", "lvsha.cli"]
LAN_PREFIX = "192.0.2."
VIP = "192.0.2.100"
_counter = itertools.count(1)


def sh(*argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run a command; its output comes back as text."""
    return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=timeout)


def netns_available() -> str | None:
    """None when namespaces work here, else why not (the reason to skip)."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, raw sockets)"
    if shutil.which("ip") is None:
        return "needs iproute2 (`ip`)"
    name = f"lvsha-probe-{os.getpid()}"
    try:
        sh("ip", "netns", "add", name)
    except (subprocess.CalledProcessError, OSError) as exc:
        return f"cannot create a network namespace: {exc}"
    sh("ip", "netns", "del", name, check=False)
    return None


def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 0.02) -> Any:
    """Poll `predicate` until it returns something truthy; bounded by `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        time.sleep(interval)


@dataclass
class Host:
    """One namespace plugged into the lab's bridge as `eth1`."""

    lab: Lab
    name: str
    ns: str
    address: str
    port: str = ""  # its veth peer on the bridge

    def run(
        self, *argv: str, check: bool = True, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.ns, *argv, check=check, timeout=timeout)

    def popen(self, argv: list[str], log: Path, **kwargs: Any) -> subprocess.Popen[bytes]:
        handle = log.open("ab")
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, *argv],
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
            **kwargs,
        )
        handle.close()
        self.lab.processes.append(proc)
        return proc

    def popen_pipe(self, argv: list[str]) -> Interactive:
        """A process to talk to line by line (stdin/stdout), stopped by the lab."""
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
            cwd=ROOT,
        )
        self.lab.processes.append(proc)  # type: ignore[arg-type]
        return Interactive(proc)

    def nft(self, rules: str) -> None:
        """Load an nftables ruleset into the host's namespace (`nft -f` of a file)."""
        path = self.lab.workdir / f"{self.name}-{next(_counter)}.nft"
        path.write_text(rules)
        self.run("nft", "-f", str(path))

    def drop_vrrp_multicast(self) -> None:
        """No VRRP multicast leaves this host: only unicast adverts get out."""
        self.nft(
            "table ip lvsha_test {\n chain out {\n  type filter hook output priority 0;\n"
            "  ip daddr 224.0.0.18 drop\n }\n}\n"
        )

    @property
    def mac(self) -> str:
        return self.run("cat", "/sys/class/net/eth1/address").stdout.strip()

    def addresses(self, dev: str = "eth1") -> set[str]:
        out = self.run("ip", "-j", "-4", "addr", "show", "dev", dev).stdout
        return {a["local"] for link in json.loads(out) for a in link.get("addr_info", [])}

    def has_vip(self, vip: str = VIP) -> bool:
        return vip in self.addresses()

    def link(self, up: bool, dev: str = "eth1") -> None:
        self.run("ip", "link", "set", dev, "up" if up else "down")

    def neighbour_mac(self, address: str) -> str | None:
        out = self.run("ip", "-j", "neigh", "show", address, "dev", "eth1").stdout
        entries = json.loads(out or "[]")
        return entries[0].get("lladdr") if entries else None

    # ---- IPv6 (the documentation prefix 2001:db8::/32, RFC 3849) ----

    def add6(self, cidr: str, dev: str = "eth1") -> None:
        """An IPv6 address without duplicate address detection (usable at once)."""
        self.run("ip", "-6", "addr", "add", cidr, "dev", dev, "nodad")

    def addresses6(self, dev: str = "eth1") -> list[dict[str, Any]]:
        out = self.run("ip", "-j", "-6", "addr", "show", "dev", dev).stdout
        return [a for link in json.loads(out) for a in link.get("addr_info", [])]

    def has_vip6(self, vip: str, dev: str = "eth1") -> bool:
        return any(a["local"] == vip for a in self.addresses6(dev))

    def link_local_ready(self, dev: str = "eth1") -> bool:
        """The fe80:: address VRRPv3 sends from has passed DAD (RFC 5798 section 5.1.2.1)."""
        return any(a["scope"] == "link" and not a.get("tentative") for a in self.addresses6(dev))

    def neighbour6(self, address: str) -> dict[str, Any] | None:
        """The IPv6 neighbour cache entry for `address` on eth1 (lladdr, state), if any."""
        out = self.run("ip", "-j", "-6", "neigh", "show", address, "dev", "eth1").stdout
        entries: list[dict[str, Any]] = json.loads(out or "[]")
        return entries[0] if entries else None


@dataclass
class Interactive:
    """Line-by-line conversation with a process; every read has a deadline."""

    proc: subprocess.Popen[str]

    def readline(self, timeout: float = 10.0) -> str:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError(f"no output from {self.proc.args} within {timeout} s")
        return self.proc.stdout.readline().strip()

    def ask(self, line: str, timeout: float = 10.0) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.readline(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@dataclass
class Director:
    """A running `lvsha run` in a host, with its config and control socket."""

    host: Host
    config: Path
    socket: Path
    log: Path
    proc: subprocess.Popen[bytes]

    def status(self) -> dict[str, Any]:
        out = subprocess.run(
            [*LVSHA, "status", "--json", "--socket", str(self.socket)],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=ROOT,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"status failed ({out.returncode}): {out.stderr.strip()}")
        result: dict[str, Any] = json.loads(out.stdout)
        return result

    def state(self, instance: int = 0) -> str | None:
        try:
            return str(self.status()["instances"][instance]["state"])
        except (RuntimeError, ValueError, IndexError):
            return None

    def wait_state(self, state: str, timeout: float) -> None:
        wait_for(lambda: self.state() == state, timeout)

    def ready(self) -> bool:
        return self.socket.exists() and self.state() is not None

    def signal(self, signum: int) -> None:
        # `ip netns exec` execs the command, so the pid is lvsha's own
        os.kill(self.proc.pid, signum)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 5) -> int:
        self.signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Lab:
    """The LAN: a bridge namespace, hosts, and everything to clean up."""

    # LVSHA_LAB_PREFIX (up to 4 characters) keeps one person's namespaces apart on a shared box
    prefix: str = field(
        default_factory=lambda: (
            f"{os.environ.get('LVSHA_LAB_PREFIX', 'lt')[:4]}{os.getpid() % 100000}x{next(_counter)}"
        )
    )
    hosts: dict[str, Host] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="lvsha-lab-")))

    def __post_init__(self) -> None:
        self.switch = self._namespace("sw")
        # no multicast snooping: VRRP and IPVS sync multicast always flood
        self._in(self.switch, "ip", "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
        self._in(self.switch, "ip", "link", "set", "br0", "up")

    def _namespace(self, name: str) -> str:
        ns = f"{self.prefix}{name}"
        sh("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        return ns

    @staticmethod
    def _in(ns: str, *argv: str) -> None:
        sh("ip", "netns", "exec", ns, *argv)

    def host(self, name: str, address: str) -> Host:
        """A namespace with `eth1` = `address`/24 on the bridge."""
        ns = self._namespace(name)
        port = f"{self.prefix}p{len(self.hosts)}"[:15]
        sh(
            "ip",
            "link",
            "add",
            "eth1",
            "netns",
            ns,
            "type",
            "veth",
            "peer",
            "name",
            port,
            "netns",
            self.switch,
        )
        sh("ip", "-n", self.switch, "link", "set", port, "master", "br0", "up")
        sh("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", "eth1")
        sh("ip", "-n", ns, "link", "set", "eth1", "up")
        host = Host(self, name, ns, address, port)
        self.hosts[name] = host
        return host

    def write_config(self, host: Host, body: str, daemon: str = "") -> tuple[Path, Path]:
        sock = self.workdir / f"{host.name}.sock"
        path = self.workdir / f"{host.name}.toml"
        path.write_text(
            f'[daemon]\nname = "{host.name}"\ncontrol_socket = "{sock}"\n{daemon}\n{body}'
        )
        return path, sock

    def start(self, host: Host, body: str, wait: bool = True, daemon: str = "") -> Director:
        """Run `lvsha run` in `host` with the given TOML (`daemon` adds [daemon] keys)."""
        path, sock = self.write_config(host, body, daemon)
        log = self.workdir / f"{host.name}.log"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        proc = host.popen(
            [*LVSHA, "run", "--config", str(path), "--log-format", "keyvalue"], log, env=env
        )
        director = Director(host, path, sock, log, proc)
        if wait:
            try:
                wait_for(director.ready, 15, interval=0.05)
            except TimeoutError:
                raise RuntimeError(
                    f"lvsha did not start in {host.name}:\n{director.log_text()}"
                ) from None
        return director

    def pair(self, first: str, second: str, master_within: float) -> tuple[Director, Director]:
        """d1 (192.0.2.11) starts first and becomes master; d2 (.12) joins as backup."""
        d1 = self.start(self.host("d1", "192.0.2.11"), first)
        d1.wait_state("MASTER", master_within)
        d2 = self.start(self.host("d2", "192.0.2.12"), second)
        d2.wait_state("BACKUP", 5)
        return d1, d2

    def close(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=10)
        for ns in reversed(self.namespaces):
            sh("ip", "netns", "del", ns, check=False)
        shutil.rmtree(self.workdir, ignore_errors=True)


@contextlib.contextmanager
def lab() -> Iterator[Lab]:
    the_lab = Lab()
    try:
        yield the_lab
    finally:
        the_lab.close()


def instance_toml(
    priority: int = 100,
    vrid: int = 51,
    password: str | None = "grr02",
    vip: str = VIP,
    extra: str = "",
    name: str = "VI_1",
) -> str:
    """The lvs01 pair's VRRP instance, on the lab's LAN."""
    auth = f'authentication = {{ type = "pass", password = "{password}" }}\n' if password else ""
    return (
        f"[vrrp.{name}]\n"
        'interface = "eth1"\n'
        f"virtual_router_id = {vrid}\n"
        f"priority = {priority}\n"
        "advert_int = 1\n"
        f"{auth}"
        f'virtual_ipaddress = ["{vip}/32"]\n'
        f"{extra}"
    )
