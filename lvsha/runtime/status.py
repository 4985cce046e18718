"""The document behind `lvsha status --json` and /metrics (docs/status.md).

Built from the live objects on the event loop, in one pass, so the two
views never disagree; the keys of DESIGN.md's operator contract are typed
here (`InstanceStatus`) and tested in tests/netns/test_status_schema.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict

from lvsha.config import VirtualServerConfig
from lvsha.core.desired import DestKey, service_key
from lvsha.core.vrrp import MasterSeen, State
from lvsha.runtime.ports import Health, Ipvs
from lvsha.runtime.vrrp_driver import Instance, InterfaceDrops


class InstanceStatus(TypedDict):
    name: str
    interface: str
    virtual_router_id: int
    state: str
    priority: int
    base_priority: int
    advert_int: float
    version: int
    master_advert_int: float
    preempt: bool
    primary_address: str
    mode: str
    master: dict[str, Any] | None
    split_brain: dict[str, Any] | None
    address_conflict: dict[str, Any] | None
    warnings: list[str]
    vips: list[str]
    vips_excluded: list[str]
    faults: list[str]
    tracked: list[dict[str, Any]]
    sync_group: dict[str, Any] | None
    last_transition: dict[str, Any] | None
    counters: dict[str, Any]


def instance_status(
    inst: Instance,
    now: float,
    wall: Callable[[float], float],
    tracking: dict[str, Any] | None = None,
) -> InstanceStatus:
    """`priority` is the effective one (base + tracked weights, runtime/tracking.py)."""
    r = inst.router
    tracking = tracking or {}
    master: dict[str, Any] | None = None
    if r.state is State.MASTER:
        master = {"address": r.primary_address, "priority": r.params.priority, "self": True}
    elif r.master_seen is not None:
        master = {
            "address": r.master_seen.address,
            "priority": r.master_seen.priority,
            "self": False,
            "seen_ago": round(now - r.master_seen.at, 3),
        }
    recent = 3 * r.params.adver_int  # a rival or a conflict shows this long after its advert
    transition = None
    if r.last_transition is not None:
        at, reason = r.last_transition
        transition = {"at": wall(at), "ago": round(now - at, 3), "reason": reason}
    return {
        "name": inst.cfg.name,
        "interface": inst.cfg.interface,
        "virtual_router_id": inst.cfg.virtual_router_id,
        "state": r.state.value,
        "priority": r.params.priority,
        "base_priority": inst.cfg.priority,
        "advert_int": r.params.adver_int,
        "version": r.params.version,
        "master_advert_int": r.master_adver_int,
        "preempt": r.params.preempt,
        "primary_address": r.primary_address,
        "mode": "unicast" if inst.cfg.unicast_peers else "multicast",
        "master": master,
        "split_brain": _seen(r.rival, now, recent),
        "address_conflict": _seen(r.address_conflict, now, recent),
        "warnings": instance_warnings(inst),
        "vips": [f"{v.address}/{v.prefixlen}" for v in inst.cfg.virtual_ipaddress],
        "vips_excluded": [
            f"{v.address}/{v.prefixlen}" for v in inst.cfg.virtual_ipaddress_excluded
        ],
        "faults": sorted(r.faults),
        "tracked": tracking.get("tracked", []),
        "sync_group": tracking.get("sync_group"),
        "last_transition": transition,
        "counters": {
            "adverts_sent": r.stats.adverts_sent,
            "adverts_received": r.stats.adverts_received,
            "priority_zero_sent": r.stats.priority_zero_sent,
            "priority_zero_received": r.stats.priority_zero_received,
            "became_master": r.stats.became_master,
            "rival_adverts": r.stats.rival_adverts,
            "send_errors": inst.sender.send_errors if inst.sender else 0,
            "garp_sent": inst.arp.sent,
            "discarded": dict(sorted(r.stats.discarded.items())),
        },
    }


def _seen(seen: MasterSeen | None, now: float, within: float) -> dict[str, Any] | None:
    """Another router's advert, if it came in the last `within` seconds."""
    if seen is None or now - seen.at > within:
        return None
    return {"address": seen.address, "priority": seen.priority, "seen_ago": round(now - seen.at, 3)}


def instance_warnings(inst: Instance) -> list[str]:
    """What an operator should know though nothing is broken."""
    r = inst.router
    seen = r.master_seen
    if r.state is State.BACKUP and seen is not None and seen.priority == r.params.priority:
        return [
            f"the master {seen.address} has our priority ({seen.priority}): whichever "
            "director starts first stays master; give the preferred one a higher "
            "priority if it should take over"
        ]
    return []


def interface_status(interfaces: dict[str, InterfaceDrops]) -> list[dict[str, Any]]:
    """Drops counted on an interface: no router could be given the datagram."""
    return [
        {"name": name, "discarded": dict(sorted(drops.discarded.items()))}
        for name, drops in sorted(interfaces.items())
    ]


def virtual_server_status(
    virtual_servers: tuple[VirtualServerConfig, ...], health: Health, ipvs: Ipvs
) -> list[dict[str, Any]]:
    checks = health.status()
    quorum = health.quorum()
    out = []
    for vs in virtual_servers:
        key = service_key(vs)
        reals = []
        for rs in vs.real_servers:
            dest = (key, DestKey(rs.address, rs.port))
            check = checks.get(dest)
            entry: dict[str, Any] = {
                "address": rs.address,
                "port": rs.port,
                "weight": rs.weight,
                "healthy": True if check is None else check.healthy,
            }
            if check is not None:
                entry["check"] = check.as_dict()
            counters = ipvs.stats.get(dest)
            if counters is not None:
                entry["kernel"] = counters
            reals.append(entry)
        up, live_weight = quorum.get(key, (True, sum(r.weight for r in vs.real_servers)))
        out.append(
            {
                "address": vs.address,
                "port": vs.port,
                "protocol": vs.protocol,
                "fwmark": vs.fwmark,
                "scheduler": vs.scheduler,
                "forwarding": vs.forwarding,
                "quorum_up": up,
                "live_weight": live_weight,
                "kernel": ipvs.stats.get((key, None)),
                "real_servers": reals,
            }
        )
    return out
