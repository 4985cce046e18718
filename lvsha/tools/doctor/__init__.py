"""`lvsha doctor`: what breaks LVS-DR director pairs in practice, checked on the spot.

Each check returns `Result`s (OK / WARN / FAIL, a one-line message and a
one-line fix) so that tests can call it alone; `main` runs them all:

* ip_vs: the kernel module is loaded, or at least loadable, with the
  configured schedulers;
* interfaces: the VRRP interfaces exist, are up and have an address;
* firewall: VRRP (IP protocol 112) passes nftables, iptables and ufw, in
  from the peers (or 224.0.0.18) and out (see `lvsha.firewall`);
* rp_filter: strict reverse-path filtering does not drop the peers' adverts
  or the clients' packets;
* vrrp-neighbours: listening on the link (bounded) for adverts of our VRIDs
  from routers that are not our peer, or that disagree on VIPs or
  authentication (RFC 3768 section 7.1 would have them discarded);
* arp: ARP requests (RFC 5227 probes, sender 0.0.0.0, so that no neighbour
  cache changes) for each VIP; any answer from a MAC that is not the
  master's is a real server without arp_ignore, which pulls client traffic
  past the director.

Only the VRRP interface's own link sees traffic: ARP probes and nothing else.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import select
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from lvsha.adapters import hostnet
from lvsha.adapters.control_client import request
from lvsha.config import Config, VrrpInstanceConfig, load_config
from lvsha.core.packet import (
    AUTH_NONE,
    AUTH_PASS,
    BROADCAST_MAC,
    ETH_P_ARP,
    ETH_P_IP,
    IPPROTO_VRRP,
    VRRP_MULTICAST_GROUP,
    decode_advertisement,
    decode_ipv4,
    mac_bytes,
    pad_password,
)
from lvsha.errors import ConfigError, KernelError, PacketError
from lvsha.tools.firewall import evaluate as firewall

DEFAULT_LISTEN_SECONDS = 3.0
DEFAULT_ARP_WAIT = 1.0
ARP_ROUNDS = 3  # probes per target, spread over the wait: one lost frame is no answer lost
MAX_FRAMES = 100_000  # bounded work, even on a flooded link
TOOL_TIMEOUT = 10.0
SBIN_PATH = "/usr/local/sbin:/usr/sbin:/sbin"
ARP_OP_REQUEST, ARP_OP_REPLY = 1, 2


class Status(StrEnum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True, slots=True)
class Result:
    """One finding: which check, how bad, what it saw, and the one-line fix."""

    check: str
    status: Status
    message: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "check": self.check,
            "status": self.status.value,
            "message": self.message,
            "fix": self.fix,
        }


def _tool(name: str) -> str | None:
    return shutil.which(name, path=f"{os.environ.get('PATH', '')}:{SBIN_PATH}")


def _run(argv: list[str]) -> tuple[int, str, str]:
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
    modprobe = modprobe or _tool("modprobe")
    boot_fix = "modprobe ip_vs && echo ip_vs > /etc/modules-load.d/ip_vs.conf"

    def loadable(module: str) -> bool | None:
        if modprobe is None:
            return None
        return _run([modprobe, "-n", "-q", module])[0] == 0

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


def _own_addresses(inst: VrrpInstanceConfig, held: list[hostnet.Address]) -> list[str]:
    vips = {v.address for v in inst.virtual_ipaddress}
    return [a.address for a in held if a.ifname == inst.interface and a.address not in vips]


def check_interfaces(config: Config) -> list[Result]:
    """Each VRRP interface exists, is up and has an address of its own to send from."""
    links = {link.ifname: link for link in hostnet.links()}
    held = hostnet.addresses()
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
        elif not (inst.unicast_src_ip or _own_addresses(inst, held)):
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


# --------------------------------------------------------------- firewall --


def vrrp_probes(config: Config) -> list[tuple[str, firewall.Packet]]:
    """The adverts each instance must receive and send, as firewall probes."""
    try:
        held = hostnet.addresses()
    except KernelError:
        held = []
    probes = []
    for inst in config.vrrp:
        own = _own_addresses(inst, held)
        local = inst.unicast_src_ip or (own[0] if own else None)
        iface = inst.interface
        if inst.unicast_peers:
            for peer in inst.unicast_peers:
                probes.append((inst.name, firewall.Packet(True, peer, local, iface, False)))
                probes.append((inst.name, firewall.Packet(False, local, peer, iface, False)))
        else:
            group = VRRP_MULTICAST_GROUP
            probes.append((inst.name, firewall.Packet(True, None, group, iface, True)))
            probes.append((inst.name, firewall.Packet(False, local, group, iface, True)))
    return probes


def firewall_results(
    ruleset: firewall.Ruleset, probes: list[tuple[str, firewall.Packet]]
) -> list[Result]:
    """Walk every probe through the ruleset: FAIL on a sure drop, WARN on a doubt."""
    results = []
    source = ruleset.source
    for instance, pkt in probes:
        verdicts = firewall.evaluate(ruleset, pkt)
        drops = [v for v in verdicts if not v.accepted]
        sure = [v for v in drops if not v.doubts]
        what = f"{source}: {pkt.describe()} ({instance})"
        if sure:
            results.append(
                Result("firewall", Status.FAIL, f"{what} is dropped by {sure[0].by}", sure[0].fix)
            )
        elif drops:
            v = drops[0]
            results.append(
                Result(
                    "firewall",
                    Status.WARN,
                    f"{what} is dropped by {v.by} unless {'; '.join(v.doubts)} accepts it",
                    v.fix,
                )
            )
        elif doubtful := [d for v in verdicts for d in v.doubts]:
            results.append(
                Result(
                    "firewall",
                    Status.WARN,
                    f"{what} is accepted, unless {'; '.join(doubtful)} drops it first",
                    "make sure VRRP is accepted before those rules (ip protocol vrrp accept)",
                )
            )
    if not results:
        chains = len(ruleset.base_chains(True)) + len(ruleset.base_chains(False))
        message = (
            f"{source}: VRRP passes in and out ({chains} base chains on those paths)"
            if chains
            else f"{source}: no rules on the input and output paths"
        )
        results.append(Result("firewall", Status.OK, message))
    return results


def ufw_results(status: firewall.UfwStatus, before_rules: str | None) -> list[Result]:
    """ufw has no rule for VRRP by default; its before.rules is where one goes."""
    if not status.active:
        return [Result("firewall", Status.OK, "ufw: inactive")]
    allowed = bool(status.vrrp_rules) or (
        before_rules is not None and firewall.ufw_before_rules_allow_vrrp(before_rules)
    )
    results = []
    if status.incoming in ("deny", "reject") and not allowed:
        results.append(
            Result(
                "firewall",
                Status.FAIL,
                f"ufw: incoming is {status.incoming} by default and no rule allows VRRP",
                "add `-A ufw-before-input -p vrrp -j ACCEPT` to /etc/ufw/before.rules "
                "(before COMMIT), then `ufw reload`",
            )
        )
    if status.outgoing in ("deny", "reject"):
        results.append(
            Result(
                "firewall",
                Status.WARN,
                f"ufw: outgoing is {status.outgoing} by default: our adverts may not leave",
                "add `-A ufw-before-output -p vrrp -j ACCEPT` to /etc/ufw/before.rules, "
                "then `ufw reload`",
            )
        )
    return results or [Result("firewall", Status.OK, "ufw: VRRP allowed")]


def check_firewall(config: Config, *, root: Path = Path("/")) -> list[Result]:
    """Read nftables, iptables and ufw as they are now and evaluate the VRRP probes."""
    probes = vrrp_probes(config)
    results: list[Result] = []
    iptables_save = _tool("iptables-save")
    nft = _tool("nft")
    if nft is not None:
        rc, out, err = _run([nft, "-j", "list", "ruleset"])
        try:
            doc = json.loads(out or "{}") if rc == 0 else None
        except ValueError:
            doc, err = None, "its JSON output does not parse"
        if doc is None:
            results.append(
                Result("firewall", Status.WARN, f"nftables: cannot read the ruleset: {err}", "")
            )
        else:
            # iptables-nft keeps its tables in nftables too: read them once, as iptables
            skip = [("ip", t) for t in firewall.IPTABLES_TABLES] if iptables_save else []
            results += firewall_results(firewall.parse_nft_json(doc, skip), probes)
    if iptables_save is not None:
        rc, out, err = _run([iptables_save])
        if rc != 0:
            results.append(Result("firewall", Status.WARN, f"iptables-save failed: {err}"))
        else:
            results += firewall_results(firewall.parse_iptables_save(out), probes)
    ufw = _tool("ufw")
    if ufw is not None:
        rc, out, err = _run([ufw, "status", "verbose"])
        if rc != 0:
            results.append(Result("firewall", Status.WARN, f"ufw status failed: {err}"))
        else:
            try:
                before = (root / "etc/ufw/before.rules").read_text(errors="replace")
            except OSError:
                before = None
            results += ufw_results(firewall.parse_ufw_status(out), before)
    if nft is None and iptables_save is None and ufw is None:
        results.append(Result("firewall", Status.OK, "no nft, iptables-save or ufw: no firewall"))
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


# --------------------------------------------------------- VRRP neighbours --


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
    except PacketError:
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


def _auth(inst: VrrpInstanceConfig) -> tuple[int, bytes]:
    if inst.auth_type == "pass":
        return AUTH_PASS, pad_password(inst.auth_password.encode())
    return AUTH_NONE, b"\0" * 8


def _differences(inst: VrrpInstanceConfig, h: Heard) -> list[str]:
    out = []
    ours = sorted(v.address for v in inst.virtual_ipaddress)
    if sorted(h.addresses) != ours:
        out.append(f"VIPs {', '.join(sorted(h.addresses)) or 'none'} (ours: {', '.join(ours)})")
    auth_type, auth_data = _auth(inst)
    if h.auth_type != auth_type:
        names = {AUTH_NONE: "none", AUTH_PASS: "pass"}
        out.append(
            f"authentication {names.get(h.auth_type, h.auth_type)} "
            f"(ours: {names.get(auth_type, auth_type)})"
        )
    elif auth_type == AUTH_PASS and h.auth_data != auth_data:
        out.append("another password")
    if h.adver_int != inst.advert_int:
        out.append(f"advert_int {h.adver_int} (ours: {inst.advert_int})")
    if h.ttl != 255:
        out.append(f"TTL {h.ttl}, not 255 (routed, or forged)")
    return out


def vrrp_neighbour_results(
    config: Config,
    heard: list[Heard],
    local: set[str],
    seconds: float,
    states: dict[str, str] | None = None,
) -> list[Result]:
    """Judge what was heard: strangers and disagreeing routers with our VRIDs."""
    results = []
    ours = {(inst.interface, inst.virtual_router_id) for inst in config.vrrp}
    for inst in config.vrrp:
        vrid, iface = inst.virtual_router_id, inst.interface
        same = [
            h for h in heard if (h.interface, h.vrid) == (iface, vrid) and h.source not in local
        ]
        fix = (
            f"give one of the two a virtual_router_id unused on {iface} (1..255), "
            "or align its configuration"
        )
        agreeing = []
        for h in sorted(same, key=lambda x: x.source):
            where = f"{inst.name}: {h.source} sends VRID {vrid} adverts on {iface}"
            if inst.unicast_peers and h.source not in inst.unicast_peers:
                results.append(
                    Result(
                        "vrrp-neighbours",
                        Status.FAIL,
                        f"{where} (priority {h.priority}) and is not a unicast peer",
                        fix,
                    )
                )
            elif diffs := _differences(inst, h):
                results.append(
                    Result(
                        "vrrp-neighbours",
                        Status.FAIL,
                        f"{where} with {'; '.join(diffs)}: each side discards the other's",
                        fix,
                    )
                )
            else:
                agreeing.append(h)
        if len(agreeing) > 1:
            results.append(
                Result(
                    "vrrp-neighbours",
                    Status.WARN,
                    f"{inst.name}: {len(agreeing)} other routers send VRID {vrid} on {iface} "
                    f"({', '.join(h.source for h in agreeing)}): a pair has one peer",
                    "stop the extra router, or give it another virtual_router_id",
                )
            )
        elif agreeing:
            h = agreeing[0]
            results.append(
                Result(
                    "vrrp-neighbours",
                    Status.OK,
                    f"{inst.name}: peer {h.source} (priority {h.priority}) agrees on VIPs "
                    "and authentication",
                )
            )
        elif not same:
            state = (states or {}).get(inst.name)
            if state == "BACKUP":
                results.append(
                    Result(
                        "vrrp-neighbours",
                        Status.WARN,
                        f"{inst.name} is BACKUP but heard no advert for VRID {vrid} in "
                        f"{seconds:g} s",
                        "check the master, and the firewall on both directors",
                    )
                )
            else:
                results.append(
                    Result(
                        "vrrp-neighbours",
                        Status.OK,
                        f"{inst.name}: no other router sends VRID {vrid} on {iface} "
                        f"(listened {seconds:g} s; a backup peer is silent)",
                    )
                )
    others = sorted(
        {(h.interface, h.vrid, h.source) for h in heard if (h.interface, h.vrid) not in ours}
    )
    if others:
        seen = ", ".join(f"VRID {v} from {s} on {i}" for i, v, s in others)
        results.append(Result("vrrp-neighbours", Status.OK, f"also on the link: {seen}"))
    return results


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
    return vrrp_neighbour_results(config, heard, local, listen_seconds, _states(config))


# -------------------------------------------------------------------- ARP --


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
    wanted = list(dict.fromkeys(targets))
    answers: dict[str, set[str]] = {t: set() for t in wanted}
    mac = Path(f"/sys/class/net/{interface}/address").read_text().strip()
    frames = [arp_probe_frame(mac, t) for t in wanted]
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    try:
        sock.bind((interface, ETH_P_ARP))
        sock.setblocking(False)
        start = time.monotonic()
        deadline = start + max(0.0, wait)
        sends = [start + wait * i / ARP_ROUNDS for i in range(ARP_ROUNDS)]
        for _ in range(MAX_FRAMES):
            now = time.monotonic()
            while sends and sends[0] <= now:
                sends.pop(0)
                for frame in frames:
                    sock.send(frame)
            if now >= deadline:
                break
            timeout = min(deadline, sends[0] if sends else deadline) - now
            ready, _, _ = select.select([sock], [], [], max(0.0, timeout))
            if ready:
                with contextlib.suppress(BlockingIOError):
                    reply = parse_arp_reply(sock.recv(2048))
                    if reply is not None and reply[0] in answers and reply[1] != mac:
                        answers[reply[0]].add(reply[1])
    finally:
        sock.close()
    return answers


@dataclass(slots=True)
class _ArpPlan:
    """The VIPs of one interface, who should answer for them, and whom to ask."""

    vips: dict[str, bool] = field(default_factory=dict)  # VIP -> this host is master
    masters: dict[str, str | None] = field(default_factory=dict)  # VIP -> master address


def check_arp(
    config: Config, wait: float = DEFAULT_ARP_WAIT, status: dict[str, Any] | None = None
) -> list[Result]:
    """Only the master may answer ARP for a VIP; name every other MAC that does."""
    status = status if status is not None else _status(config)
    instances = {i.get("name"): i for i in (status or {}).get("instances", [])}
    try:
        held = {(a.ifname, a.address) for a in hostnet.addresses()}
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
            answers = arp_probe(iface, [*plan.vips, *masters, *real_servers], wait)
            names = {m: ip for ip, ms in answers.items() for m in ms if ip not in plan.vips}
            for mac_, ip in hostnet.neighbours(iface).items():
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
    if expected is not None and (bad := sorted(macs - expected)):
        return Result(
            "arp",
            Status.FAIL,
            f"VIP {vip} on {iface}: {', '.join(named(m) for m in bad)} answers ARP for it "
            f"besides {who}: a real server without arp_ignore; clients then bypass the director",
            fix,
        )
    if expected is None and len(macs) > 1:
        return Result(
            "arp",
            Status.FAIL,
            f"VIP {vip} on {iface}: {len(macs)} MACs answer ARP for it "
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
            f"VIP {vip} on {iface}: nobody answers ARP for it, not even {who}",
            "check that the master holds the VIP: lvsha status on the other director",
        )
    return Result("arp", Status.OK, f"VIP {vip} on {iface}: only {who} answers ARP for it")


# ------------------------------------------------------------------- main --


def _status(config: Config) -> dict[str, Any] | None:
    """The running daemon's status document, or None when it does not answer."""
    try:
        return request(config.daemon.control_socket, "status", timeout=2.0)
    except (OSError, ValueError):
        return None


def _states(config: Config) -> dict[str, str]:
    status = _status(config) or {}
    return {
        str(i.get("name")): str(i.get("state"))
        for i in status.get("instances", [])
        if isinstance(i, dict)
    }


def run_checks(
    config: Config,
    listen_seconds: float = DEFAULT_LISTEN_SECONDS,
    arp_wait: float = DEFAULT_ARP_WAIT,
) -> list[Result]:
    """Every check, in the order an operator would fix things."""
    results = check_ip_vs({vs.scheduler for vs in config.virtual_servers})
    steps: list[tuple[str, Callable[[], list[Result]]]] = [
        ("interfaces", lambda: check_interfaces(config)),
        ("firewall", lambda: check_firewall(config)),
        ("rp_filter", lambda: check_rp_filter(config)),
        ("vrrp-neighbours", lambda: check_vrrp_neighbours(config, listen_seconds)),
        ("arp", lambda: check_arp(config, arp_wait)),
    ]
    for name, step in steps:
        try:
            results += step()
        except (OSError, KernelError) as exc:
            results.append(Result(name, Status.WARN, f"could not check: {exc}"))
    return results


def exit_code(results: Iterable[Result]) -> int:
    """0 all OK, 1 any FAIL, 2 warnings only."""
    statuses = {r.status for r in results}
    if Status.FAIL in statuses:
        return 1
    return 2 if Status.WARN in statuses else 0


def render(results: Iterable[Result]) -> str:
    lines = []
    for r in results:
        lines.append(f"{r.status.value:<5} {r.check}: {r.message}")
        if r.fix and r.status is not Status.OK:
            lines.append(f"      fix: {r.fix}")
    return "\n".join(lines)


def main(
    config_path: str,
    listen_seconds: float = DEFAULT_LISTEN_SECONDS,
    arp_wait: float = DEFAULT_ARP_WAIT,
    as_json: bool = False,
) -> int:
    """`lvsha doctor`: print every result; 0 all OK, 1 any FAIL, 2 warnings only."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"FAIL  config: {config_path}: {problem}")
        print(f"      fix: lvsha check-config {config_path}")
        return 1
    results = run_checks(config, listen_seconds, arp_wait)
    if as_json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        print(render(results))
        counts = {s: sum(r.status is s for r in results) for s in Status}
        print(f"{counts[Status.FAIL]} FAIL, {counts[Status.WARN]} WARN, {counts[Status.OK]} OK")
    return exit_code(results)
