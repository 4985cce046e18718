"""`lvsha realserver` for IPv6 VIPs: the VIP on `lo` as a /128, and why no sysctl.

An IPv6 DR real server needs the VIP on `lo` (so it accepts the packets the
director forwards with the VIP as destination), as a /128 and with `nodad`
(usable at once; the kernel skips DAD on loopback anyway). The ARP sysctls
have no IPv6 counterpart to set, because Linux already behaves as
arp_ignore=1 / arp_announce=2 do for IPv4:

* a Neighbour Solicitation is answered only for an address of the interface
  it came in on (ndisc_recv_ns() looks the target up with strict=1), so an
  NS for the VIP arriving on eth0 goes unanswered (the real server has not
  even joined the VIP's solicited-node group there, RFC 4861 section 7.2.1);
* its own solicitations take their source from the outgoing interface's
  addresses, never from an address on `lo`.

What `check` finds: the VIP also on another interface (then that interface
answers NS and clients bypass the director), a wider prefix on `lo`, a VIP
still tentative or failed DAD, IPv6 disabled. (A proxy NDP entry for the
VIP, which needs forwarding on, would also answer; it is not looked for.)
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from lvsha.adapters import hostnet

IPV6_NOTE = (
    "IPv6 needs no sysctl: Linux answers neighbour solicitations only for addresses "
    "of the receiving interface and never sends its own from an address on lo"
)


def parse_vip6(spec: str) -> str:
    """`ADDR` or `ADDR/128` -> `ADDR` (RFC 5952 spelling); a wider prefix is refused."""
    try:
        iface = ipaddress.IPv6Interface(spec.strip())
    except ValueError:
        raise ValueError(f"{spec!r} is not an IPv4 or IPv6 address") from None
    if iface.network.prefixlen != 128:
        raise ValueError(
            f"{spec!r}: an IPv6 VIP goes on lo as a /128, not /{iface.network.prefixlen}"
        )
    if iface.ip.is_multicast or iface.ip.is_unspecified or iface.ip.is_loopback:
        raise ValueError(f"{spec!r} is not a unicast address a client can reach")
    return str(iface.ip)


def setup_steps(vips: list[str], dry_run: bool) -> list[str]:
    """Add each IPv6 VIP to `lo` as a /128 with nodad; what was (or would be) done."""
    if not vips:
        return []
    held = {(a.ifname, a.address, a.prefixlen) for a in hostnet.addresses(hostnet.AF_INET6)}
    done = []
    for vip in vips:
        if ("lo", vip, 128) in held:
            continue
        if dry_run or hostnet.add_address("lo", vip, 128, nodad=True):
            done.append(f"{'would add' if dry_run else 'added'} {vip}/128 on lo (nodad)")
    return done


def check_vips6(vips: list[str], proc_sys: Path = hostnet.PROC_SYS) -> list[tuple[str, str, str]]:
    """(subject, message, fix) for every IPv6 VIP problem of this host."""
    if not vips:
        return []
    problems: list[tuple[str, str, str]] = []
    for scope in ("all", "lo"):
        name = f"net.ipv6.conf.{scope}.disable_ipv6"
        if hostnet.read_sysctl(name, proc_sys) == 1:
            problems.append((name, f"{name} = 1: lo can hold no IPv6 VIP", f"sysctl -w {name}=0"))
    held = hostnet.addresses(hostnet.AF_INET6)
    for vip in vips:
        on_lo = [a for a in held if a.address == vip and a.ifname == "lo"]
        elsewhere = sorted({a.ifname for a in held if a.address == vip and a.ifname != "lo"})
        add = f"ip -6 addr add {vip}/128 dev lo nodad"
        if not on_lo:
            problems.append(
                (
                    vip,
                    f"VIP {vip} is not on lo: the real server drops the packets the "
                    "director forwards to it",
                    f"lvsha realserver setup --vip {vip}   (or: {add})",
                )
            )
        for a in on_lo:
            if a.prefixlen != 128:
                problems.append(
                    (
                        vip,
                        f"VIP {vip} is on lo as /{a.prefixlen}: the whole prefix becomes "
                        "local and unreachable",
                        f"ip -6 addr del {vip}/{a.prefixlen} dev lo && {add}",
                    )
                )
            if a.flags & (hostnet.IFA_F_DADFAILED | hostnet.IFA_F_TENTATIVE):
                problems.append(
                    (
                        vip,
                        f"VIP {vip} on lo is tentative or failed duplicate address "
                        "detection: the kernel does not accept packets for it",
                        f"ip -6 addr del {vip}/{a.prefixlen} dev lo && {add}",
                    )
                )
        for ifname in elsewhere:
            problems.append(
                (
                    vip,
                    f"VIP {vip} is also on {ifname}: the real server answers neighbour "
                    "solicitations for it there, and clients bypass the director",
                    f"ip -6 addr del {vip}/<prefix> dev {ifname}  (keep it on lo only)",
                )
            )
    return problems


def ifupdown_stanza(vips: list[str]) -> str:
    """IPv6 has no `lo:N` aliases: one inet6 stanza for lo, the first VIP, the rest by `up`."""
    if not vips:
        return ""
    first, *rest = vips
    lines = [
        "\nauto lo\niface lo inet6 static\n",
        f"    address {first}/128\n",
        "    dad-attempts 0\n",
    ]
    for vip in rest:
        lines.append(f"    up ip -6 addr add {vip}/128 dev lo nodad\n")
        lines.append(f"    down ip -6 addr del {vip}/128 dev lo\n")
    return "".join(lines)


def networkd_sections(vips: list[str]) -> str:
    return "".join(
        f"\n[Address]\nAddress={vip}/128\nDuplicateAddressDetection=none\n" for vip in vips
    )
