"""Host network facts for one-shot commands: addresses, links, routes, sysctls.

`lvsha realserver` and `lvsha doctor` run once and exit, outside any event
loop, so this adapter uses pyroute2's synchronous `IPRoute` (the daemon uses
the async classes in `addresses.py`). Sysctls are files under /proc/sys; the
root is a parameter so that tests can point it at a fake tree. In a network
namespace both netlink and /proc/sys/net are the namespace's own.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute

from lvsha.errors import KernelError

PROC_SYS = Path("/proc/sys")
AF_INET6 = socket.AF_INET6
IFF_UP = 0x1
RT_TABLE_MAIN = 254
# IFA_F_* (include/uapi/linux/if_addr.h)
IFA_F_NODAD, IFA_F_DADFAILED, IFA_F_TENTATIVE = 0x02, 0x08, 0x40


@dataclass(frozen=True, slots=True)
class Address:
    """One address as the kernel holds it (`flags`: IFA_F_*, IPv6's DAD state)."""

    ifname: str
    address: str
    prefixlen: int
    flags: int = 0


@dataclass(frozen=True, slots=True)
class Link:
    """One interface: its name, whether it is administratively up, its MAC."""

    ifname: str
    up: bool
    mac: str


@contextmanager
def _netlink() -> Iterator[Any]:
    try:
        ipr = IPRoute()
    except Exception as exc:  # pyroute2 raises OSError and NetlinkError alike
        raise KernelError(f"cannot open a netlink socket: {exc}") from exc
    try:
        yield ipr
    except KernelError:
        raise
    except Exception as exc:
        raise KernelError(f"netlink: {exc}") from exc
    finally:
        ipr.close()


def links() -> list[Link]:
    """Every interface of this network namespace."""
    with _netlink() as ipr:
        return [
            Link(m.get("ifname"), bool(m["flags"] & IFF_UP), m.get("IFLA_ADDRESS") or "")
            for m in ipr.link("dump")
            if m.get("ifname")
        ]


def addresses(family: int = socket.AF_INET) -> list[Address]:
    """Every address of `family` with its interface (aliases like `lo:0` count as `lo`)."""
    with _netlink() as ipr:
        names = {m["index"]: m.get("ifname") for m in ipr.link("dump")}
        return [
            Address(
                names.get(m["index"], ""),
                m.get("address"),
                m["prefixlen"],
                m.get("IFA_FLAGS") or m["flags"],
            )
            for m in ipr.addr("dump", family=family)
        ]


def add_address(ifname: str, address: str, prefixlen: int, nodad: bool = False) -> bool:
    """Add an address; False when it was already there.

    `nodad`: IFA_F_NODAD, an IPv6 address usable at once, without Duplicate
    Address Detection (RFC 4862 section 5.4).
    """
    extra = {"flags": IFA_F_NODAD} if nodad else {}
    with _netlink() as ipr:
        index = ipr.link_lookup(ifname=ifname)
        if not index:
            raise KernelError(f"no interface {ifname}")
        try:
            ipr.addr("add", index=index[0], address=address, prefixlen=prefixlen, **extra)
        except Exception as exc:
            if getattr(exc, "code", None) == errno.EEXIST:
                return False
            raise KernelError(f"cannot add {address}/{prefixlen} on {ifname}: {exc}") from exc
        return True


def route_interface(destination: str) -> str | None:
    """The interface the kernel would send a packet to `destination` out of."""
    with _netlink() as ipr:
        try:
            answer = ipr.route("get", dst=destination)
        except Exception as exc:
            if getattr(exc, "code", None) in (errno.ENETUNREACH, errno.EHOSTUNREACH):
                return None
            raise
        names = {m["index"]: m.get("ifname") for m in ipr.link("dump")}
        for msg in answer:
            oif = msg.get("RTA_OIF")
            if oif is not None:
                name: str | None = names.get(oif)
                return name
    return None


def default_route_interfaces() -> set[str]:
    """Interfaces that carry an IPv4 default route in the main table."""
    with _netlink() as ipr:
        names = {m["index"]: m.get("ifname") for m in ipr.link("dump")}
        return {
            names.get(m.get("RTA_OIF"), "")
            for m in ipr.route("dump", family=socket.AF_INET, table=RT_TABLE_MAIN)
            if m["dst_len"] == 0 and m.get("RTA_OIF") is not None
        }


def neighbours(ifname: str, family: int = socket.AF_INET) -> dict[str, str]:
    """MAC -> address, from the interface's neighbour table (ARP, or IPv6's ND)."""
    with _netlink() as ipr:
        index = ipr.link_lookup(ifname=ifname)
        if not index:
            return {}
        out: dict[str, str] = {}
        for m in ipr.neigh("dump", family=family, ifindex=index[0]):
            mac, dst = m.get("NDA_LLADDR"), m.get("NDA_DST")
            if mac and dst and mac != "00:00:00:00:00:00":
                out.setdefault(mac, dst)
        return out


def sysctl_path(name: str, proc_sys: Path = PROC_SYS) -> Path:
    """`net.ipv4.conf.lo.arp_ignore` -> /proc/sys/net/ipv4/conf/lo/arp_ignore."""
    return proc_sys.joinpath(*name.split("."))


def read_sysctl(name: str, proc_sys: Path = PROC_SYS) -> int | None:
    """An integer sysctl, or None when it does not exist (no such interface)."""
    try:
        return int(sysctl_path(name, proc_sys).read_text().split()[0])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, IndexError) as exc:
        raise KernelError(f"cannot read {name}: {exc}") from exc


def write_sysctl(name: str, value: int, proc_sys: Path = PROC_SYS) -> None:
    try:
        sysctl_path(name, proc_sys).write_text(f"{value}\n")
    except OSError as exc:
        raise KernelError(f"cannot set {name} = {value}: {exc}") from exc
