"""`lvsha doctor`'s arp check: only the master may answer ARP for a VIP.

ARP probes (RFC 5227 section 2.1.1, sender address 0.0.0.0, so that no
neighbour cache changes) for each VIP; any answer from a MAC that is not
the master's is a real server without arp_ignore, which pulls client
traffic past the director. Only the VIP's own link sees them.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lvsha.adapters import hostnet
from lvsha.config import Config
from lvsha.core.packet import (
    BROADCAST_MAC,
    ETH_P_ARP,
    ETH_P_IP,
    mac_bytes,
)
from lvsha.errors import KernelError
from lvsha.tools.doctor.linkprobe import link_probe
from lvsha.tools.doctor.live import daemon_status
from lvsha.tools.doctor.nd import nd_probe
from lvsha.tools.doctor.results import Result, Status

DEFAULT_ARP_WAIT = 1.0
ARP_ROUNDS = 3  # probes per target, spread over the wait: one lost frame is no answer lost

ARP_OP_REQUEST, ARP_OP_REPLY = 1, 2


def arp_probe_frame(mac: str, target: str) -> bytes:
    """An ARP probe (RFC 5227 section 2.1.1): who has `target`, sender address 0.0.0.0.

    With no sender address, the hosts that see it learn nothing and change
    no neighbour entry; those holding `target` still answer (Linux does, as
    long as arp_ignore lets it).
    """
    src = mac_bytes(mac)
    ethernet = BROADCAST_MAC + src + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, ETH_P_IP, 6, 4, ARP_OP_REQUEST)
    arp += src + b"\0" * 4 + b"\0" * 6 + ipaddress.IPv4Address(target).packed
    return ethernet + arp


def parse_arp_reply(frame: bytes) -> tuple[str, str] | None:
    """(sender IPv4, sender MAC) of an ARP reply frame, else None."""
    if len(frame) < 42 or frame[12:14] != struct.pack("!H", ETH_P_ARP):
        return None
    if struct.unpack_from("!H", frame, 20)[0] != ARP_OP_REPLY:
        return None
    mac = ":".join(f"{b:02x}" for b in frame[22:28])
    return str(ipaddress.IPv4Address(frame[28:32])), mac


def arp_probe(interface: str, targets: Iterable[str], wait: float) -> dict[str, set[str]]:
    """Ask who has each target; every MAC that answers within `wait` seconds, by target."""
    return link_probe(
        interface, ETH_P_ARP, targets, arp_probe_frame, parse_arp_reply, wait, ARP_ROUNDS
    )


@dataclass(slots=True)
class _ArpPlan:
    """The VIPs of one interface, who should answer for them, and whom to ask."""

    vips: dict[str, bool] = field(default_factory=dict)  # VIP -> this host is master
    masters: dict[str, str | None] = field(default_factory=dict)  # VIP -> master address


def check_arp(
    config: Config, wait: float = DEFAULT_ARP_WAIT, status: dict[str, Any] | None = None
) -> list[Result]:
    """Only the master may answer ARP for a VIP; name every other MAC that does."""
    status = status if status is not None else daemon_status(config)
    instances = {i.get("name"): i for i in (status or {}).get("instances", [])}
    try:
        held = {(a.ifname, a.address) for a in hostnet.addresses()}
        held |= {(a.ifname, a.address) for a in hostnet.addresses(hostnet.AF_INET6)}
    except KernelError as exc:
        return [Result("arp", Status.WARN, f"cannot list addresses: {exc}")]
    plans: dict[str, _ArpPlan] = {}
    for inst in config.vrrp:
        live = instances.get(inst.name, {})
        master = live.get("master") or {}
        for va in inst.virtual_ipaddress:
            plan = plans.setdefault(va.device, _ArpPlan())
            is_master = live.get("state") == "MASTER" or (va.device, va.address) in held
            plan.vips[va.address] = is_master
            plan.masters[va.address] = None if is_master else master.get("address")
    real_servers = {
        rs.address
        for vs in config.virtual_servers
        for rs in (*vs.real_servers, *([vs.sorry_server] if vs.sorry_server else []))
    }
    results = []
    for iface, plan in plans.items():
        masters = {m for m in plan.masters.values() if m}
        try:
            targets = [*plan.vips, *masters, *real_servers]
            answers = arp_probe(iface, [t for t in targets if ":" not in t], wait)
            if any(":" in vip for vip in plan.vips):  # IPv6 VIPs: tools/doctor/nd.py
                answers.update(nd_probe(iface, [t for t in targets if ":" in t], wait))
            names = {m: ip for ip, ms in answers.items() for m in ms if ip not in plan.vips}
            for mac_, ip in hostnet.neighbours(iface).items():
                names.setdefault(mac_, ip)
            for mac_, ip in hostnet.neighbours(iface, hostnet.AF_INET6).items():
                names.setdefault(mac_, ip)
        except (OSError, KernelError) as exc:
            results.append(
                Result(
                    "arp",
                    Status.WARN,
                    f"cannot send ARP probes on {iface}: {exc}",
                    "run lvsha doctor as root (packet sockets need CAP_NET_RAW)",
                )
            )
            continue
        for vip, is_master in plan.vips.items():
            results.append(judge_arp(vip, iface, is_master, plan.masters[vip], answers, names))
    return results


def judge_arp(
    vip: str,
    iface: str,
    is_master: bool,
    master: str | None,
    answers: dict[str, set[str]],
    names: dict[str, str],
) -> Result:
    macs = answers.get(vip, set())

    def named(mac: str) -> str:
        ip = names.get(mac)
        return f"{mac} ({ip})" if ip else mac

    expected: set[str] | None
    if is_master:
        expected, who = set(), "this director (master)"
    elif master is not None and answers.get(master):
        expected, who = answers[master], f"the master {master}"
    else:
        expected, who = None, "the master"
    fix = f"on that host: lvsha realserver setup --vip {vip}   (arp_ignore=1, arp_announce=2)"
    what, culprit = "ARP", "a real server without arp_ignore"
    if ":" in vip:  # IPv6: a Neighbour Solicitation, answered only where the VIP is not on lo
        what, culprit = "neighbour solicitations", "a host with the VIP on a LAN interface"
        fix = f"on that host: keep {vip} on lo only   (lvsha realserver check --vip {vip})"
    if expected is not None and (bad := sorted(macs - expected)):
        return Result(
            "arp",
            Status.FAIL,
            f"VIP {vip} on {iface}: {', '.join(named(m) for m in bad)} answers {what} for it "
            f"besides {who}: {culprit}; clients then bypass the director",
            fix,
        )
    if expected is None and len(macs) > 1:
        return Result(
            "arp",
            Status.FAIL,
            f"VIP {vip} on {iface}: {len(macs)} MACs answer {what} for it "
            f"({', '.join(named(m) for m in sorted(macs))}): only the master may",
            fix,
        )
    if expected is None:
        return Result(
            "arp",
            Status.WARN,
            f"VIP {vip} on {iface}: answered by {', '.join(map(named, sorted(macs))) or 'nobody'};"
            " the daemon's status is not available to tell whether that is the master",
            "start lvsha (or check daemon.control_socket) and run doctor again",
        )
    if not is_master and not macs:
        return Result(
            "arp",
            Status.WARN,
            f"VIP {vip} on {iface}: nobody answers {what} for it, not even {who}",
            "check that the master holds the VIP: lvsha status on the other director",
        )
    return Result("arp", Status.OK, f"VIP {vip} on {iface}: only {who} answers {what} for it")
