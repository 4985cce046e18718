"""`lvsha doctor`'s vrrp-neighbours check: who else sends adverts for our VRIDs.

It listens on the VRRP interfaces (bounded in time and frames), then judges
each router heard with the receive checks of RFC 3768 section 7.1 that
the state machine applies (`header_drops` and `advert_drops` of
`lvsha.core.vrrp`, with the parameters the daemon would use,
`lvsha.config.router`): a router that fails one of them and ours discard
each other's adverts, so both become master.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass

from lvsha.adapters import hostnet
from lvsha.config import Config, VrrpInstanceConfig
from lvsha.config.router import router_params
from lvsha.core import drops
from lvsha.core.packet import (
    AUTH_NONE,
    AUTH_PASS,
    IPPROTO_VRRP,
    VRRP_MULTICAST_GROUP,
    Advertisement,
    decode_advertisement,
    decode_ipv4,
)
from lvsha.core.packet_v3 import AdvertisementV3, decode_advertisement_v3
from lvsha.core.vrrp import RouterParams, advert_drops, header_drops
from lvsha.core.vrrp_v3 import advert_drops_v3
from lvsha.errors import KernelError, PacketError
from lvsha.tools.doctor.live import daemon_states
from lvsha.tools.doctor.results import MAX_FRAMES, Result, Status

DEFAULT_LISTEN_SECONDS = 3.0


@dataclass(slots=True)
class Heard:
    """Adverts of one (interface, source, VRID), the last one's contents kept."""

    interface: str
    source: str
    vrid: int
    priority: int
    adver_int: int
    addresses: tuple[str, ...]
    auth_type: int
    auth_data: bytes
    ttl: int
    count: int = 1
    version: int = 2
    v3: AdvertisementV3 | None = None  # a VRRPv3 advert (RFC 5798), as heard

    @property
    def advert(self) -> Advertisement:
        return Advertisement(
            self.vrid, self.priority, self.adver_int, self.addresses, self.auth_type, self.auth_data
        )


def _mreqn(group: str, ifindex: int) -> bytes:
    return socket.inet_aton(group) + socket.inet_aton("0.0.0.0") + struct.pack("@i", ifindex)


def listen_vrrp(interfaces: Iterable[str], seconds: float) -> list[Heard]:
    """Every VRRP advert received on `interfaces` for `seconds` (multicast and unicast)."""
    socks: dict[socket.socket, str] = {}
    heard: dict[tuple[str, str, int], Heard] = {}
    try:
        for iface in dict.fromkeys(interfaces):
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_VRRP)
            socks[sock] = iface
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode() + b"\0")
            sock.setsockopt(
                socket.IPPROTO_IP,
                socket.IP_ADD_MEMBERSHIP,
                _mreqn(VRRP_MULTICAST_GROUP, socket.if_nametoindex(iface)),
            )
            sock.setblocking(False)
        deadline = time.monotonic() + max(0.0, seconds)
        for _ in range(MAX_FRAMES):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select(list(socks), [], [], left)
            for sock in ready:
                with contextlib.suppress(BlockingIOError):
                    _record(heard, socks[sock], sock.recv(65535))
    finally:
        for sock in socks:
            sock.close()
    return list(heard.values())


def _record(heard: dict[tuple[str, str, int], Heard], iface: str, datagram: bytes) -> None:
    try:
        ip, payload = decode_ipv4(datagram)
        advert = decode_advertisement(payload)
    except PacketError as exc:
        if exc.reason == drops.VERSION:
            _record_v3(heard, iface, datagram)
        return  # not an advert doctor can read; the daemon counts those
    key = (iface, ip.source, advert.vrid)
    old = heard.get(key)
    heard[key] = Heard(
        iface,
        ip.source,
        advert.vrid,
        advert.priority,
        advert.adver_int,
        advert.addresses,
        advert.auth_type,
        advert.auth_data,
        ip.ttl,
        old.count + 1 if old else 1,
    )


def _record_v3(heard: dict[tuple[str, str, int], Heard], iface: str, datagram: bytes) -> None:
    """A VRRPv3 advert over IPv4 (RFC 5798): kept with its version, so a v2 router is told."""
    try:
        ip, payload = decode_ipv4(datagram)
        v3 = decode_advertisement_v3(payload, ip.source, ip.destination, 4)
    except PacketError:
        return
    key = (iface, ip.source, v3.vrid)
    old = heard.get(key)
    heard[key] = Heard(
        iface,
        ip.source,
        v3.vrid,
        v3.priority,
        v3.max_adver_int,
        v3.addresses,
        AUTH_NONE,
        bytes(8),
        ip.ttl,
        old.count + 1 if old else 1,
        version=3,
        v3=v3,
    )


AUTH_NAMES = {AUTH_NONE: "none", AUTH_PASS: "pass"}


def failed_checks(params: RouterParams, h: Heard) -> set[str]:
    """The section 7.1 checks our router would drop the heard advert for (the core's own)."""
    header = {e.reason for e in header_drops(params, h.source, h.ttl)}
    if h.version != params.version:
        return header | {drops.VERSION}
    if h.v3 is not None:
        return header | {e.reason for e in advert_drops_v3(params, h.v3)}
    return header | {e.reason for e in advert_drops(params, h.advert)}


def _differences(params: RouterParams, h: Heard, failed: set[str]) -> list[str]:
    """Doctor's words for each failed check that is a disagreement between the two routers.

    Our own role as address owner (priority 255) is none; not being a
    unicast peer is said on its own.
    """
    theirs, ours = ", ".join(sorted(h.addresses)) or "none", ", ".join(sorted(params.addresses))
    said = {
        drops.ADDRESS_LIST: f"VIPs {theirs} (ours: {ours})",
        drops.AUTH_TYPE: f"authentication {AUTH_NAMES.get(h.auth_type, h.auth_type)} "
        f"(ours: {AUTH_NAMES.get(params.auth_type, params.auth_type)})",
        drops.AUTH_PASSWORD: "another password",
        drops.ADVERT_INTERVAL: f"advert_int {h.adver_int} (ours: {params.adver_int})",
        drops.TTL: f"TTL {h.ttl}, not 255 (routed, or forged)",
        drops.VERSION: f"VRRP version {h.version} (ours: {params.version})",
    }
    return [text for reason, text in said.items() if reason in failed]


CHECK = "vrrp-neighbours"


def vrrp_neighbour_results(
    config: Config,
    heard: list[Heard],
    local: set[str],
    seconds: float,
    states: dict[str, str] | None = None,
) -> list[Result]:
    """Judge what was heard: strangers and disagreeing routers with our VRIDs."""
    results = []
    ipv4 = [i for i in config.vrrp if router_params(i).family == 4]  # it listens on IPv4 only
    for inst in ipv4:
        key = (inst.interface, inst.virtual_router_id)
        same = [h for h in heard if (h.interface, h.vrid) == key and h.source not in local]
        disagreeing, agreeing = _judge(inst, sorted(same, key=lambda h: h.source))
        results += disagreeing
        if agreeing or not same:
            results.append(_agreeing(inst, agreeing, seconds, (states or {}).get(inst.name)))
    ours = {(inst.interface, inst.virtual_router_id) for inst in ipv4}
    others = sorted(
        {(h.interface, h.vrid, h.source) for h in heard if (h.interface, h.vrid) not in ours}
    )
    if others:
        seen = ", ".join(f"VRID {v} from {s} on {i}" for i, v, s in others)
        results.append(Result(CHECK, Status.OK, f"also on the link: {seen}"))
    return results


def _judge(inst: VrrpInstanceConfig, same: list[Heard]) -> tuple[list[Result], list[Heard]]:
    """A FAIL for each router our instance would drop the adverts of; the others agree."""
    params = router_params(inst)
    fix = (
        f"give one of the two a virtual_router_id unused on {inst.interface} (1..255), "
        "or align its configuration"
    )
    fails, agreeing = [], []
    for h in same:
        where = f"{inst.name}: {h.source} sends VRID {h.vrid} adverts on {inst.interface}"
        failed = failed_checks(params, h)
        if drops.NOT_PEER in failed:
            message = f"{where} (priority {h.priority}) and is not a unicast peer"
            fails.append(Result(CHECK, Status.FAIL, message, fix))
        elif diffs := _differences(params, h, failed):
            message = f"{where} with {'; '.join(diffs)}: each side discards the other's"
            fails.append(Result(CHECK, Status.FAIL, message, fix))
        else:
            agreeing.append(h)
    return fails, agreeing


def _agreeing(
    inst: VrrpInstanceConfig, agreeing: list[Heard], seconds: float, state: str | None
) -> Result:
    """One peer is a pair; more is a crowd; none is normal on a master, odd on a backup."""
    vrid, iface = inst.virtual_router_id, inst.interface
    if len(agreeing) > 1:
        return Result(
            CHECK,
            Status.WARN,
            f"{inst.name}: {len(agreeing)} other routers send VRID {vrid} on {iface} "
            f"({', '.join(h.source for h in agreeing)}): a pair has one peer",
            "stop the extra router, or give it another virtual_router_id",
        )
    if agreeing:
        h = agreeing[0]
        return Result(
            CHECK,
            Status.OK,
            f"{inst.name}: peer {h.source} (priority {h.priority}) agrees on VIPs "
            "and authentication",
        )
    if state == "BACKUP":
        return Result(
            CHECK,
            Status.WARN,
            f"{inst.name} is BACKUP but heard no advert for VRID {vrid} in {seconds:g} s",
            "check the master, and the firewall on both directors",
        )
    return Result(
        CHECK,
        Status.OK,
        f"{inst.name}: no other router sends VRID {vrid} on {iface} "
        f"(listened {seconds:g} s; a backup peer is silent)",
    )


def check_vrrp_neighbours(
    config: Config, listen_seconds: float = DEFAULT_LISTEN_SECONDS
) -> list[Result]:
    """Listen for up to `listen_seconds`, then judge what was heard."""
    if listen_seconds <= 0 or not config.vrrp:
        return [Result("vrrp-neighbours", Status.OK, "skipped (listen time 0)")]
    try:
        heard = listen_vrrp([inst.interface for inst in config.vrrp], listen_seconds)
        local = {a.address for a in hostnet.addresses()}
    except (OSError, KernelError) as exc:
        return [
            Result(
                "vrrp-neighbours",
                Status.WARN,
                f"cannot listen for VRRP: {exc}",
                "run lvsha doctor as root (raw sockets need CAP_NET_RAW)",
            )
        ]
    return vrrp_neighbour_results(config, heard, local, listen_seconds, daemon_states(config))
