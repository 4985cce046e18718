"""Helpers for the kernel tier: commands in namespaces, polling, ipvsadm parsing."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lvsha.adapters.ipvs import Ipvs, IpvsReconciler
from lvsha.config import VirtualServerConfig, parse_config
from lvsha.core.desired import IpvsTable
from lvsha.core.reconcile import diff


def run(*argv: str, check: bool = True, timeout: float = 30) -> str:
    """Run a command; return stdout; fail the test with stderr on error."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} -> {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def sh(ns: str, script: str, check: bool = True) -> str:
    """One bash script inside a namespace (one exec: execs are slow in UML)."""
    return run("ip", "netns", "exec", ns, "bash", "-ec", script, check=check)


def ipvsadm(ns: str, *args: str) -> str:
    return run("ip", "netns", "exec", ns, "ipvsadm", *args)


def config(text: str) -> tuple[VirtualServerConfig, ...]:
    return parse_config(text).virtual_servers


async def sync(ns: str, desired: IpvsTable) -> list[str]:
    """One pass by a fresh reconciler, as after a restart of lvsha."""
    async with Ipvs(netns=ns) as ipvs:
        return await IpvsReconciler(ipvs).sync(desired)


async def replan(ns: str, desired: IpvsTable) -> list[str]:
    async with Ipvs(netns=ns) as ipvs:
        return [str(op) for op in diff(desired, await ipvs.dump())]


async def dump(ns: str) -> IpvsTable:
    async with Ipvs(netns=ns) as ipvs:
        return await ipvs.dump()


def wait_for(what: str, check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll `check` until true or the deadline; no sleep-and-hope."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


# ------------------------------------------------------ ipvsadm -Ln parser --

FWD_NAMES = {"Route": "dr", "Masq": "nat", "Tunnel": "tun", "Local": "local"}


@dataclass
class ListedService:
    scheduler: str
    flags: tuple[str, ...] = ()
    persistent: int = 0
    mask: str = "255.255.255.255"
    dests: dict[str, tuple[str, int]] = field(default_factory=dict)


def parse_ipvsadm(text: str) -> dict[str, ListedService]:
    """`ipvsadm -Ln` -> {"TCP 192.0.2.10:80", "FWM 7" or "FWM 7 IPv6": ListedService}."""
    out: dict[str, ListedService] = {}
    current: ListedService | None = None
    for line in text.splitlines():
        m = re.match(r"^(TCP|UDP|SCTP|FWM)\s+(\S+(?: IPv6)?)\s+(\S+)(.*)$", line)
        if m:
            rest = m.group(4)
            flags = re.search(r"\(([^)]*)\)", rest)
            persistent = re.search(r"persistent (\d+)", rest)
            mask = re.search(r"mask (\S+)", rest)
            current = ListedService(
                scheduler=m.group(3),
                flags=tuple(flags.group(1).split(",")) if flags else (),
                persistent=int(persistent.group(1)) if persistent else 0,
                mask=mask.group(1) if mask else "255.255.255.255",
            )
            out[f"{m.group(1)} {m.group(2)}"] = current
            continue
        m = re.match(r"^\s+->\s+(\S+)\s+(\w+)\s+(\d+)", line)
        if m and current is not None and m.group(1) != "RemoteAddress:Port":
            current.dests[m.group(1)] = (FWD_NAMES.get(m.group(2), m.group(2)), int(m.group(3)))
    return out


def available_schedulers() -> set[str]:
    moddir = Path("/lib/modules") / os.uname().release / "kernel/net/netfilter/ipvs"
    return {p.name[len("ip_vs_") : -len(".ko")] for p in moddir.glob("ip_vs_*.ko")}


class Peer:
    """A peers.py process inside a namespace; lines read with a deadline."""

    def __init__(self, ns: str, *args: str) -> None:
        script = str(Path(__file__).with_name("peers.py"))
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, script, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def readline(self, timeout: float = 15.0) -> str:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise AssertionError(f"no output from {self.proc.args} within {timeout}s")
        return self.proc.stdout.readline().strip()

    def send(self, line: str) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.readline()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def lan(netns: Callable[[str], str], hosts: dict[str, str]) -> dict[str, str]:
    """One Ethernet segment: a bridge in its own namespace, `eth0` in each host.

    `hosts` maps a role to its eth0 address (CIDR); returns role -> namespace.
    Multicast snooping is off so the IPVS sync multicast always floods.
    """
    sw = netns("sw")
    run("ip", "-n", sw, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
    run("ip", "-n", sw, "link", "set", "br0", "up")
    out = {}
    for i, (role, cidr) in enumerate(hosts.items()):
        ns = netns(role)
        run("ip", "-n", sw, "link", "add", f"p{i}", "type", "veth", "peer", "eth0", "netns", ns)
        run("ip", "-n", sw, "link", "set", f"p{i}", "master", "br0", "up")
        run("ip", "-n", ns, "addr", "add", cidr, "dev", "eth0")
        run("ip", "-n", ns, "link", "set", "eth0", "up")
        out[role] = ns
    return out
