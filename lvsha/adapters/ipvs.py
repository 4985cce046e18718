"""IPVS over generic netlink: dump the table, apply operations, run the sync daemon.

Thin and async, over pyroute2's `AsyncIPVS` (0.9.7). It knows that version's
traps: the "update" command sends a DELETE (we only use "add", "set", "del"),
and `IPVSService/IPVSDest.from_message()` leave timeout, flags and fwd_method
at class defaults, so dumps are read from the raw `IPVS_*_ATTR_*` attributes.
pyroute2 has no call for the connection sync daemon; its message is built
here (IPVS_CMD_NEW/DEL/GET_DAEMON with nested IPVS_DAEMON_ATTR_*).

`IpvsReconciler.sync(desired)` is what the daemon calls: dump, diff, apply.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import structlog
from pyroute2 import AsyncIPVS, IPVSDest, IPVSService
from pyroute2.netlink import NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, genlmsg, nla
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.generic import ipvs as genl_ipvs

from lvsha.core.desired import (
    FORWARDING_METHODS,
    FORWARDING_NAMES,
    SVC_F_HASHED,
    Destination,
    DestKey,
    IpvsTable,
    Service,
    ServiceKey,
)
from lvsha.core.reconcile import (
    AddDest,
    AddService,
    DeleteDest,
    DeleteService,
    EditDest,
    EditService,
    Operation,
    diff,
)
from lvsha.errors import KernelError

log = structlog.get_logger("lvsha.ipvs")

MODULE_MISSING = (
    "ip_vs kernel module missing: run `modprobe ip_vs` (and make it load at boot, "
    "e.g. `echo ip_vs > /etc/modules-load.d/ip_vs.conf`); this kernel has no IPVS "
    "generic-netlink family"
)

PROTOCOLS = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP, "sctp": 132}
PROTOCOL_NAMES = {v: k for k, v in PROTOCOLS.items()}
FLAGS_MASK = 0xFFFF  # every user-settable IP_VS_SVC_F_* bit

# IP_VS_STATE_* for the sync daemon
SYNC_MASTER = 1
SYNC_BACKUP = 2
SYNC_STATES = {"master": SYNC_MASTER, "backup": SYNC_BACKUP}
DAEMON_ACK_TIMEOUT = 1.0  # seconds; see stop_sync_daemon


class _ipvsmsg(genlmsg):  # type: ignore[misc]  # pyroute2 naming
    """pyroute2's IPVS message plus the sync-daemon attributes it lacks.

    Not a subclass of pyroute2's `ipvsmsg`: pyroute2 caches the compiled
    nla_map on the class, and a subclass would pick up the parent's cache
    (where IPVS_CMD_ATTR_DAEMON is "hex") once the parent has been used.
    """

    prefix = "IPVS_CMD_ATTR_"
    service = genl_ipvs.ipvsmsg.service
    dest = genl_ipvs.ipvsmsg.dest
    nla_map = (
        ("IPVS_CMD_ATTR_UNSPEC", "none"),
        ("IPVS_CMD_ATTR_SERVICE", "service"),
        ("IPVS_CMD_ATTR_DEST", "dest"),
        ("IPVS_CMD_ATTR_DAEMON", "daemon"),
        ("IPVS_CMD_ATTR_TIMEOUT_TCP", "uint32"),
        ("IPVS_CMD_ATTR_TIMEOUT_TCP_FIN", "uint32"),
        ("IPVS_CMD_ATTR_TIMEOUT_UDP", "uint32"),
    )

    class daemon(nla):  # type: ignore[misc]
        """include/uapi/linux/ip_vs.h, enum IPVS_DAEMON_ATTR_*."""

        prefix = "IPVS_DAEMON_ATTR_"
        nla_map = (
            ("IPVS_DAEMON_ATTR_UNSPEC", "none"),
            ("IPVS_DAEMON_ATTR_STATE", "uint32"),
            ("IPVS_DAEMON_ATTR_MCAST_IFN", "asciiz"),
            ("IPVS_DAEMON_ATTR_SYNC_ID", "uint32"),
            ("IPVS_DAEMON_ATTR_SYNC_MAXLEN", "uint16"),
            ("IPVS_DAEMON_ATTR_MCAST_GROUP", "ip4addr"),
            ("IPVS_DAEMON_ATTR_MCAST_GROUP6", "ip6addr"),
            ("IPVS_DAEMON_ATTR_MCAST_PORT", "be16"),
            ("IPVS_DAEMON_ATTR_MCAST_TTL", "uint8"),
        )


class _AsyncIpvsSocket(AsyncIPVS):  # type: ignore[misc]
    """AsyncIPVS that parses replies with `_ipvsmsg` and logs no noise of its own."""

    module_err_level = "debug"  # we raise one clear KernelError instead

    async def setup_endpoint(self) -> None:
        if getattr(self.local, "transport", None) is not None:
            return
        await super().setup_endpoint()
        self.marshal.msg_map[self.prid] = _ipvsmsg


StatsKey = tuple[ServiceKey, DestKey | None]  # (service, None) for the service itself


@dataclass(frozen=True, slots=True)
class SyncDaemon:
    """One running IPVS connection sync daemon, as `ipvsadm -L --daemon` shows it."""

    state: str  # "master" | "backup"
    interface: str
    syncid: int


class Ipvs:
    """One netlink connection to IPVS (optionally in a network namespace).

    Use as `async with Ipvs() as ipvs:`. Every kernel refusal becomes a
    KernelError naming what was attempted.
    """

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self._sock: Any = None
        self.stats: dict[StatsKey, dict[str, int]] = {}  # from the last dump

    async def __aenter__(self) -> Ipvs:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    async def open(self) -> None:
        """Connect; a kernel without IPVS gives KernelError(MODULE_MISSING)."""
        if self._sock is not None:
            return
        sock = _AsyncIpvsSocket(netns=self.netns) if self.netns else _AsyncIpvsSocket()
        try:
            await sock.setup_endpoint()
        except NetlinkError as exc:
            sock.close()
            if exc.code in (errno.ENOENT, errno.ENOTSUP):
                raise KernelError(MODULE_MISSING) from None
            raise KernelError(f"ipvs: cannot open generic netlink: {_why(exc)}") from None
        except OSError as exc:
            sock.close()
            raise KernelError(f"ipvs: cannot open netlink socket: {exc}") from None
        self._sock = sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    @property
    def _s(self) -> Any:
        if self._sock is None:
            raise KernelError("ipvs: not open (use `async with Ipvs()`)")
        return self._sock

    # ---------------------------------------------------------- the table --

    async def dump(self) -> IpvsTable:
        """The whole IPVS table, read from the raw attributes.

        One request lists the services, then one per service lists its
        destinations, one after the other: the kernel runs one dump at a time
        per netlink socket (a second one in flight gets EBUSY).
        """
        stats: dict[StatsKey, dict[str, int]] = {}
        try:
            raw = [m.get_attr("IPVS_CMD_ATTR_SERVICE") for m in await self._s.service("dump")]
            table = []
            for a in raw:
                svc = _service_from_nla(a)
                if svc is None:  # IPv6 or unknown protocol: not ours to model
                    continue
                stats[(svc.key, None)] = _stats(a.get_attr("IPVS_SVC_ATTR_STATS64"))
                msgs = await self._s.dest("dump", service=_service_key_nla(svc.key))
                dests = []
                for m in msgs:
                    d = m.get_attr("IPVS_CMD_ATTR_DEST")
                    dest = _dest_from_nla(d)
                    if dest is not None:
                        dests.append(dest)
                        stats[(svc.key, dest.key)] = {
                            **_stats(d.get_attr("IPVS_DEST_ATTR_STATS64")),
                            "active_connections": d.get_attr("IPVS_DEST_ATTR_ACTIVE_CONNS") or 0,
                            "inactive_connections": d.get_attr("IPVS_DEST_ATTR_INACT_CONNS") or 0,
                        }
                table.append(
                    Service(
                        svc.key,
                        svc.scheduler,
                        svc.flags,
                        svc.timeout,
                        svc.netmask,
                        tuple(d for d in dests if d is not None),
                    )
                )
        except NetlinkError as exc:
            raise KernelError(f"ipvs dump: {_why(exc)}") from None
        self.stats = stats
        return IpvsTable(tuple(table))

    async def apply(self, ops: Iterable[Operation]) -> list[str]:
        """Carry out `ops` in order, logging each; the first failure raises KernelError.

        Returns the descriptions of the operations done. A failure leaves the
        earlier ones in place; the next pass re-plans from a fresh dump.
        """
        done: list[str] = []
        for op in ops:
            try:
                await self._apply_one(op)
            except NetlinkError as exc:
                log.warning("ipvs operation failed", operation=str(op), error=_why(exc))
                raise KernelError(f"ipvs: {op}: {_why(exc)}") from None
            log.info("ipvs", operation=str(op))
            done.append(str(op))
        return done

    async def _apply_one(self, op: Operation) -> None:
        s = self._s
        match op:
            case AddService(service=svc):
                await s.service("add", service=_service_nla(svc))
            case EditService(service=svc):
                await s.service("set", service=_service_nla(svc))  # never "update"
            case DeleteService(key=key):
                await s.service("del", service=_service_key_nla(key))
            case AddDest(service=key, dest=dest):
                await s.dest("add", service=_service_key_nla(key), dest=_dest_nla(dest))
            case EditDest(service=key, dest=dest):
                await s.dest("set", service=_service_key_nla(key), dest=_dest_nla(dest))
            case DeleteDest(service=key, dest=dkey):
                dest = IPVSDest(addr=dkey.address, port=dkey.port)
                await s.dest("del", service=_service_key_nla(key), dest=dest)

    # ------------------------------------------------- connection sync daemon --

    async def sync_daemons(self) -> list[SyncDaemon]:
        """Running sync daemons (at most one master and one backup)."""
        msg = _ipvsmsg()
        msg["cmd"] = genl_ipvs.IPVS_CMD_GET_DAEMON
        msg["version"] = genl_ipvs.GENL_VERSION
        try:
            replies = await self._s._do_request(msg, msg_flags=NLM_F_REQUEST | NLM_F_DUMP)
        except NetlinkError as exc:
            raise KernelError(f"ipvs sync daemon list: {_why(exc)}") from None
        out = []
        for m in replies:
            d = m.get_attr("IPVS_CMD_ATTR_DAEMON")
            if d is None:
                continue
            state = d.get_attr("IPVS_DAEMON_ATTR_STATE")
            out.append(
                SyncDaemon(
                    "master" if state == SYNC_MASTER else "backup",
                    d.get_attr("IPVS_DAEMON_ATTR_MCAST_IFN"),
                    d.get_attr("IPVS_DAEMON_ATTR_SYNC_ID"),
                )
            )
        return out

    async def start_sync_daemon(self, state: str, interface: str, syncid: int = 0) -> None:
        """`ipvsadm --start-daemon STATE --mcast-interface IF --syncid ID`."""
        attrs: list[tuple[str, Any]] = [
            ("IPVS_DAEMON_ATTR_STATE", SYNC_STATES[state]),
            ("IPVS_DAEMON_ATTR_MCAST_IFN", interface),
            ("IPVS_DAEMON_ATTR_SYNC_ID", syncid),
        ]
        await self._daemon(genl_ipvs.IPVS_CMD_NEW_DAEMON, attrs, f"start {state} on {interface}")

    async def stop_sync_daemon(self, state: str) -> None:
        """`ipvsadm --stop-daemon STATE`; stopping one that is not running is not an error.

        The kernel sends no ACK when its sync thread had not yet run (kthread_stop
        returns -EINTR and netlink skips the ACK for -EINTR), so a missing ACK is
        settled by listing the daemons instead of waiting forever.
        """
        msg = _ipvsmsg()
        msg["cmd"] = genl_ipvs.IPVS_CMD_DEL_DAEMON
        msg["version"] = genl_ipvs.GENL_VERSION
        msg["attrs"] = [
            ("IPVS_CMD_ATTR_DAEMON", {"attrs": [("IPVS_DAEMON_ATTR_STATE", SYNC_STATES[state])]})
        ]
        try:
            await asyncio.wait_for(
                self._s._do_request(msg, msg_flags=NLM_F_REQUEST | NLM_F_ACK), DAEMON_ACK_TIMEOUT
            )
        except NetlinkError as exc:
            if exc.code == errno.ESRCH:
                return
            raise KernelError(f"ipvs sync daemon stop {state}: {_why(exc)}") from None
        except TimeoutError:
            if any(d.state == state for d in await self.sync_daemons()):
                raise KernelError(
                    f"ipvs sync daemon stop {state}: no answer, still running"
                ) from None
        log.info("ipvs sync daemon", action=f"stop {state}")

    async def _daemon(self, cmd: int, attrs: list[tuple[str, Any]], what: str) -> None:
        msg = _ipvsmsg()
        msg["cmd"] = cmd
        msg["version"] = genl_ipvs.GENL_VERSION
        msg["attrs"] = [("IPVS_CMD_ATTR_DAEMON", {"attrs": attrs})]
        try:
            await self._s._do_request(msg, msg_flags=NLM_F_REQUEST | NLM_F_ACK)
        except NetlinkError as exc:
            raise KernelError(f"ipvs sync daemon {what}: {_why(exc)}") from None
        log.info("ipvs sync daemon", action=what)

    async def set_sync_daemon(self, state: str | None, interface: str, syncid: int = 0) -> None:
        """Make exactly `state` ("master", "backup" or None = none) run on `interface`.

        Called on every VRRP transition: MASTER -> "master", BACKUP -> "backup",
        FAULT/stop -> None. A daemon already running as asked is left alone.
        """
        running = {d.state: d for d in await self.sync_daemons()}
        want = SyncDaemon(state, interface, syncid) if state else None
        for other in running.values():
            if other != want:
                await self.stop_sync_daemon(other.state)
        if want is not None and running.get(want.state) != want:
            await self.start_sync_daemon(want.state, interface, syncid)


class IpvsReconciler:
    """Keeps the owned part of the kernel's IPVS table equal to a desired table.

    API for the daemon::

        reconciler = IpvsReconciler(ipvs)          # ipvs: an open Ipvs
        repaired = await reconciler.sync(desired)  # on every change + periodic resync

    `sync()` dumps, diffs and applies; it returns one line per operation done
    (empty when the kernel already matched) and raises KernelError on the
    first refusal, after which the next call simply tries again.

    Ownership: a service is lvsha's if its key is in the desired table or was
    in a desired table given earlier to this object (so a service removed from
    the config on reload is deleted). Every other service is left alone. An
    existing table is adopted as it is: matching entries are not touched, so
    their connections and counters survive a restart. Nothing is flushed on
    start or stop; `remove(keys)` deletes owned services on request (the
    `ipvs_cleanup_on_stop` option).
    """

    def __init__(self, ipvs: Ipvs) -> None:
        self.ipvs = ipvs
        self.owned: set[ServiceKey] = set()

    async def sync(self, desired: IpvsTable) -> list[str]:
        self.owned |= desired.keys()
        observed = await self.ipvs.dump()
        done = await self.ipvs.apply(diff(desired, observed, self.owned))
        self.owned = set(desired.keys())
        return done

    async def remove(self, keys: Iterable[ServiceKey]) -> list[str]:
        """Delete these services (if present) with their destinations."""
        wanted = set(keys)
        observed = await self.ipvs.dump()
        done = await self.ipvs.apply(diff(IpvsTable(), observed, wanted))
        self.owned -= wanted
        return done


# ------------------------------------------------------------ conversions --


def _why(exc: NetlinkError) -> str:
    code = exc.code
    return f"{errno.errorcode.get(code, code)} ({os.strerror(code)})" if code else str(exc)


def _service_key_nla(key: ServiceKey) -> IPVSService:
    if key.is_fwmark:
        return IPVSService(fwmark=key.fwmark, af=socket.AF_INET)
    return IPVSService(addr=key.address, port=key.port, protocol=PROTOCOLS[key.protocol])


def _service_nla(svc: Service) -> IPVSService:
    common = {
        "sched_name": svc.scheduler,
        "flags": {"flags": svc.flags, "mask": FLAGS_MASK},
        "timeout": svc.timeout,
        "netmask": svc.netmask,
    }
    if svc.key.is_fwmark:
        return IPVSService(fwmark=svc.key.fwmark, af=socket.AF_INET, **common)
    return IPVSService(
        addr=svc.key.address, port=svc.key.port, protocol=PROTOCOLS[svc.key.protocol], **common
    )


def _dest_nla(dest: Destination) -> IPVSDest:
    return IPVSDest(
        addr=dest.address,
        port=dest.port,
        weight=dest.weight,
        fwd_method=FORWARDING_METHODS[dest.forwarding],
        u_thresh=dest.upper_threshold,
        l_thresh=dest.lower_threshold,
    )


STATS_FIELDS = {
    "IPVS_STATS_ATTR_CONNS": "connections",
    "IPVS_STATS_ATTR_INPKTS": "packets_in",
    "IPVS_STATS_ATTR_OUTPKTS": "packets_out",
    "IPVS_STATS_ATTR_INBYTES": "bytes_in",
    "IPVS_STATS_ATTR_OUTBYTES": "bytes_out",
}


def _stats(a: Any) -> dict[str, int]:
    """The kernel's cumulative counters of a service or destination (64-bit ones)."""
    if a is None:
        return {}
    return {name: int(a.get_attr(attr) or 0) for attr, name in STATS_FIELDS.items()}


def _service_from_nla(a: Any) -> Service | None:
    if a.get_attr("IPVS_SVC_ATTR_AF") != socket.AF_INET:
        return None
    fwmark = a.get_attr("IPVS_SVC_ATTR_FWMARK") or 0
    if fwmark:
        key = ServiceKey.for_fwmark(fwmark)
    else:
        proto = PROTOCOL_NAMES.get(a.get_attr("IPVS_SVC_ATTR_PROTOCOL"))
        if proto is None:
            return None
        key = ServiceKey(proto, a.get_attr("IPVS_SVC_ATTR_ADDR"), a.get_attr("IPVS_SVC_ATTR_PORT"))
    flags = a.get_attr("IPVS_SVC_ATTR_FLAGS")
    return Service(
        key,
        scheduler=a.get_attr("IPVS_SVC_ATTR_SCHED_NAME"),
        flags=(flags["flags"] if flags is not None else 0) & ~SVC_F_HASHED,
        timeout=a.get_attr("IPVS_SVC_ATTR_TIMEOUT") or 0,
        netmask=str(
            ipaddress.IPv4Address(a.get_attr("IPVS_SVC_ATTR_NETMASK") or "255.255.255.255")
        ),
    )


def _dest_from_nla(a: Any) -> Destination | None:
    family = a.get_attr("IPVS_DEST_ATTR_ADDR_FAMILY")
    if family not in (None, socket.AF_INET):
        return None
    fwd = a.get_attr("IPVS_DEST_ATTR_FWD_METHOD") & 0x7  # IP_VS_CONN_F_FWD_MASK
    return Destination(
        address=a.get_attr("IPVS_DEST_ATTR_ADDR"),
        port=a.get_attr("IPVS_DEST_ATTR_PORT"),
        weight=a.get_attr("IPVS_DEST_ATTR_WEIGHT"),
        forwarding=FORWARDING_NAMES.get(fwd, f"fwd{fwd}"),
        upper_threshold=a.get_attr("IPVS_DEST_ATTR_U_THRESH") or 0,
        lower_threshold=a.get_attr("IPVS_DEST_ATTR_L_THRESH") or 0,
    )
