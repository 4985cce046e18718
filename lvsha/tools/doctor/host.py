"""`lvsha doctor` on the host itself: IPVS in the kernel, the VRRP interfaces, rp_filter.

The tools it asks (`modprobe -n`) run as argv, without a shell, bounded
in time; `run_tool` is shared with the firewall check.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from lvsha.adapters import hostnet
from lvsha.config import Config, VrrpInstanceConfig
from lvsha.config.router import router_params
from lvsha.tools.doctor.results import Result, Status

TOOL_TIMEOUT = 10.0
SBIN_PATH = "/usr/local/sbin:/usr/sbin:/sbin"


def tool(name: str) -> str | None:
    return shutil.which(name, path=f"{os.environ.get('PATH', '')}:{SBIN_PATH}")


def run_tool(argv: list[str]) -> tuple[int, str, str]:
    """Run a tool (argv, no shell), bounded in time; (returncode, stdout, stderr)."""
    try:
        out = subprocess.run(
            argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, "", str(exc)
    return out.returncode, out.stdout, out.stderr.strip()


# ------------------------------------------------------------------ ip_vs --


def check_ip_vs(
    schedulers: Iterable[str] = (), *, proc: Path = Path("/proc"), modprobe: str | None = None
) -> list[Result]:
    """The kernel's IPVS: loaded (/proc/net/ip_vs), or loadable (`modprobe -n`)."""
    modprobe = modprobe or tool("modprobe")
    boot_fix = "modprobe ip_vs && echo ip_vs > /etc/modules-load.d/ip_vs.conf"

    def loadable(module: str) -> bool | None:
        if modprobe is None:
            return None
        return run_tool([modprobe, "-n", "-q", module])[0] == 0

    if (proc / "net/ip_vs").exists():
        results = [Result("ip_vs", Status.OK, "ip_vs is loaded (/proc/net/ip_vs)")]
    elif loadable("ip_vs"):
        results = [
            Result(
                "ip_vs",
                Status.WARN,
                "ip_vs is not loaded (lvsha does not load it); modprobe can load it",
                boot_fix,
            )
        ]
    else:
        why = "no modprobe to ask" if modprobe is None else "modprobe cannot find it"
        return [
            Result(
                "ip_vs",
                Status.FAIL,
                f"this kernel has no IPVS: /proc/net/ip_vs is missing and {why}",
                "install a kernel with CONFIG_IP_VS (Debian: linux-image-amd64), then " + boot_fix,
            )
        ]
    for scheduler in sorted(set(schedulers)):
        if loadable(f"ip_vs_{scheduler}") is False:
            results.append(
                Result(
                    "ip_vs",
                    Status.FAIL,
                    f"scheduler {scheduler!r} is configured but module ip_vs_{scheduler} "
                    "is missing",
                    f"install it with the kernel, or use another scheduler than {scheduler}",
                )
            )
    return results


# ------------------------------------------------------------- interfaces --


def own_addresses(inst: VrrpInstanceConfig, held: list[hostnet.Address]) -> list[str]:
    vips = {v.address for v in inst.virtual_ipaddress}
    return [a.address for a in held if a.ifname == inst.interface and a.address not in vips]


def link_local_ready(ifname: str, held6: list[hostnet.Address]) -> bool:
    """A link-local address on `ifname` past DAD: an IPv6 advert's source (RFC 5798 5.1.2.1)."""
    return any(
        a.ifname == ifname
        and a.address.lower().startswith("fe80:")
        and not a.flags & (hostnet.IFA_F_TENTATIVE | hostnet.IFA_F_DADFAILED)
        for a in held6
    )


def _ipv6_source(inst: VrrpInstanceConfig, held6: list[hostnet.Address]) -> Result | None:
    """None when an IPv6 instance can send; else why not (IPv6 off, no link-local yet)."""
    name = f"interface {inst.interface} ({inst.name})"
    if hostnet.read_sysctl(f"net.ipv6.conf.{inst.interface}.disable_ipv6") == 1:
        return Result(
            "interfaces",
            Status.FAIL,
            f"{name}: IPv6 is disabled on it, and the instance's VIPs are IPv6",
            f"sysctl -w net.ipv6.conf.{inst.interface}.disable_ipv6=0",
        )
    if inst.unicast_src_ip or link_local_ready(inst.interface, held6):
        return None
    return Result(
        "interfaces",
        Status.FAIL,
        f"{name} has no usable link-local address (none, or still in duplicate address "
        "detection): IPv6 adverts are sent from it (RFC 5798 section 5.1.2.1)",
        f"ip -6 addr show dev {inst.interface}   (addrgenmode none? DAD failed?)",
    )


def check_interfaces(config: Config) -> list[Result]:
    """Each VRRP interface exists, is up and has an address of its own to send from.

    An IPv4 instance sends from an IPv4 address of the interface, an IPv6
    one from its link-local address (or `unicast_src_ip`).
    """
    links = {link.ifname: link for link in hostnet.links()}
    held = hostnet.addresses()
    held6 = hostnet.addresses(hostnet.AF_INET6)
    results = []
    for inst in config.vrrp:
        name = f"interface {inst.interface} ({inst.name})"
        link = links.get(inst.interface)
        if link is None:
            results.append(
                Result(
                    "interfaces",
                    Status.FAIL,
                    f"{name}: no such interface",
                    f"fix vrrp.{inst.name}.interface (see `ip link`)",
                )
            )
        elif not link.up:
            results.append(
                Result(
                    "interfaces",
                    Status.FAIL,
                    f"{name} is down",
                    f"ip link set {inst.interface} up",
                )
            )
        elif router_params(inst).family == 6:
            problem = _ipv6_source(inst, held6)
            results.append(
                problem or Result("interfaces", Status.OK, f"{name} is up, with a link-local")
            )
        elif not (inst.unicast_src_ip or own_addresses(inst, held)):
            results.append(
                Result(
                    "interfaces",
                    Status.FAIL,
                    f"{name} has no IPv4 address but the VIPs: adverts need a source",
                    f"ip addr add ADDRESS/PREFIX dev {inst.interface}",
                )
            )
        else:
            results.append(Result("interfaces", Status.OK, f"{name} is up, with an address"))
    return results


# -------------------------------------------------------------- rp_filter --


def check_rp_filter(config: Config, *, proc_sys: Path = hostnet.PROC_SYS) -> list[Result]:
    """Strict rp_filter (1) drops packets whose source is routed out of another interface."""
    results = []
    defaults = hostnet.default_route_interfaces()
    all_rp = hostnet.read_sysctl("net.ipv4.conf.all.rp_filter", proc_sys) or 0
    interfaces = dict.fromkeys(inst.interface for inst in config.vrrp)
    for iface in interfaces:
        own = hostnet.read_sysctl(f"net.ipv4.conf.{iface}.rp_filter", proc_sys)
        if own is None:
            continue  # no such interface: check_interfaces says so
        rp = max(all_rp, own)
        fix = f"sysctl -w net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.{iface}.rp_filter=2"
        if rp != 1:
            mode = "off" if rp == 0 else "loose"
            results.append(Result("rp_filter", Status.OK, f"rp_filter on {iface} is {mode}"))
            continue
        peers = [p for inst in config.vrrp if inst.interface == iface for p in inst.unicast_peers]
        astray = {p: hostnet.route_interface(p) for p in peers}
        astray = {p: via for p, via in astray.items() if via != iface}
        if astray:
            text = ", ".join(f"{p} via {via or 'no route'}" for p, via in astray.items())
            results.append(
                Result(
                    "rp_filter",
                    Status.FAIL,
                    f"rp_filter is strict on {iface} but the route back to peers leaves "
                    f"elsewhere ({text}): their adverts are dropped (2, loose, keeps spoofing out)",
                    fix,
                )
            )
        elif defaults and iface not in defaults:
            results.append(
                Result(
                    "rp_filter",
                    Status.WARN,
                    f"rp_filter is strict on {iface} but the default route leaves by "
                    f"{', '.join(sorted(defaults))}: clients' packets for the VIP arriving on "
                    f"{iface} are dropped (2, loose, keeps spoofing out)",
                    fix,
                )
            )
        else:
            results.append(
                Result(
                    "rp_filter",
                    Status.OK,
                    f"rp_filter on {iface} is strict, and the routes back leave by {iface}",
                )
            )
    return results
