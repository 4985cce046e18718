"""IPVS over generic netlink: dump the table, apply operations, run the sync daemon.

Thin and async. pyroute2's `AsyncIPVS` (0.9.7) opens the family and runs
the sync daemon; the table goes over a second socket of our own in batches
(adapters/ipvs_wire.py: many requests per sendmsg, each answered on its
own), because pyroute2 encodes one request in about half a millisecond.
Its traps stay avoided: never "update" (it sends a DELETE), and dumps are
read from the raw `IPVS_*_ATTR_*` attributes. pyroute2 has no call for the
connection sync daemon; its message is built here (IPVS_CMD_NEW/DEL/
GET_DAEMON with nested IPVS_DAEMON_ATTR_*).

`Ipvs.apply(ops)` raises IpvsBatchError naming each refused operation with
its errno; the others take effect. `IpvsReconciler.sync(desired)` is one
stateless pass (dump, diff, apply); the daemon's IpvsSync (lvsha/runtime/ipvs_sync.py)
plans against its verified view instead and dumps only to verify.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pyroute2 import AsyncIPVS
from pyroute2.netlink import NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, genlmsg, nla
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.generic import ipvs as genl_ipvs

from lvsha import logs
from lvsha.adapters import ipvs_wire as wire
from lvsha.core.desired import Destination, DestKey, IpvsTable, Service, ServiceKey
from lvsha.core.reconcile import Operation, diff
from lvsha.errors import KernelError

log = logs.get("lvsha.ipvs")

MODULE_MISSING = (
    "ip_vs kernel module missing: run `modprobe ip_vs` (and make it load at boot, "
    "e.g. `echo ip_vs > /etc/modules-load.d/ip_vs.conf`); this kernel has no IPVS "
    "generic-netlink family"
)


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


class IpvsBatchError(KernelError):
    """Some operations of a batch were refused; the others took effect."""

    def __init__(self, applied: list[Operation], failed: list[tuple[Operation, str]]) -> None:
        self.applied = applied
        self.failed = failed  # (operation, the kernel's reason)
        first, why = failed[0]
        more = f" (and {len(failed) - 1} more refused)" if len(failed) > 1 else ""
        super().__init__(f"ipvs: {first}: {why}{more}; {len(applied)} others applied")


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
        self._sock: Any = None  # pyroute2's: the family id, the sync daemon
        self._batch: wire.NetlinkBatch | None = None  # ours: the table, in batches
        self._beside: wire.NetlinkBatch | None = None  # ours: dumps beside the batches
        self.stats: dict[StatsKey, dict[str, int]] = {}  # from the last dump
        self.dumps = 0  # whole-table dumps done (tests count them)
        self.batches = 0

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
        try:
            self._batch = wire.NetlinkBatch.open(sock.prid, self.netns)
        except OSError as exc:
            sock.close()
            raise KernelError(f"ipvs: cannot open netlink socket: {exc}") from None
        self._sock = sock

    def close(self) -> None:
        for batch in (self._batch, self._beside):
            if batch is not None:
                batch.close()
        self._batch = self._beside = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    @property
    def _s(self) -> Any:
        if self._sock is None:
            raise KernelError("ipvs: not open (use `async with Ipvs()`)")
        return self._sock

    # ---------------------------------------------------------- the table --

    async def dump(self, beside: bool = False) -> IpvsTable:
        """The whole IPVS table: one request for the services, then one per service.

        `beside`: on a second socket of its own, handing the loop back after
        each service, so that batches (apply) go on while it dumps: the
        periodic verify (runtime/ipvs_sync.py) never holds a health change.

        The destination dumps go one after the other on the batch socket.
        Batching them does not work: the kernel runs one dump at a time per
        socket, and a dump that returned anything ends only in a second pass
        (netlink_dump() queues NLMSG_DONE when the dumpit callback returns 0,
        on our next recvmsg), so every request behind it in a batch would be
        refused with EBUSY. Each dump costs one sendmsg and two recvmsg, all
        answered at once from the socket's queue: no wait on the event loop.
        """
        batch = self._beside_socket() if beside else self._batch_socket
        (listing,) = await batch.transact([(genl_ipvs.IPVS_CMD_GET_SERVICE, b"", True)])
        if listing.error:
            raise KernelError(f"ipvs dump: {_errno(listing.error, listing.message)}")
        stats: dict[StatsKey, dict[str, int]] = {}
        table: list[Service] = []
        for part in listing.parts:
            svc, counters = wire.decode_service(part)
            if svc is None:  # unknown family or protocol: not ours to model
                continue
            (reply,) = await batch.transact(
                [(genl_ipvs.IPVS_CMD_GET_DEST, wire.service_key_attr(svc.key), True)]
            )
            if reply.error in (errno.ESRCH, errno.ENOENT):  # deleted since the listing
                continue
            if reply.error:
                raise KernelError(f"ipvs dump {svc.key}: {_errno(reply.error, reply.message)}")
            stats[(svc.key, None)] = counters
            dests: list[Destination] = []
            for dpart in reply.parts:
                dest, dcounters = wire.decode_dest(dpart, wire.AF_OF[svc.key.family])
                if dest is not None:
                    dests.append(dest)
                    stats[(svc.key, dest.key)] = dcounters
            table.append(replace(svc, destinations=tuple(dests)))
            if beside:
                await asyncio.sleep(0)
        self.dumps += 1
        self.stats = stats
        return IpvsTable(tuple(table))

    async def apply(self, ops: Sequence[Operation]) -> list[str]:
        """Carry out `ops` in batches, in order; returns the descriptions of those done.

        Every operation is tried, each is answered on its own: when some are
        refused, the others still take effect and IpvsBatchError lists both
        (an operation that depended on a refused one, say a destination of a
        service the kernel would not add, is refused in its turn).
        """
        if not ops:
            return []
        requests = [(*wire.encode_op(op), False) for op in ops]
        replies = await self._batch_socket.transact(requests)
        applied: list[Operation] = []
        failed: list[tuple[Operation, str]] = []
        for op, reply in zip(ops, replies, strict=True):
            if reply.error:
                why = _errno(reply.error, reply.message)
                log.warning("ipvs operation failed", operation=str(op), error=why)
                failed.append((op, why))
            else:
                log.info("ipvs", operation=str(op))
                applied.append(op)
        self.batches += 1
        if failed:
            raise IpvsBatchError(applied, failed)
        return [str(op) for op in applied]

    @property
    def _batch_socket(self) -> wire.NetlinkBatch:
        if self._batch is None:
            raise KernelError("ipvs: not open (use `async with Ipvs()`)")
        return self._batch

    def _beside_socket(self) -> wire.NetlinkBatch:
        if self._beside is None:
            try:
                self._beside = wire.NetlinkBatch.open(self._s.prid, self.netns)
            except OSError as exc:
                raise KernelError(f"ipvs: cannot open netlink socket: {exc}") from None
        return self._beside

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
        """Make exactly `state` ("master", "backup", "both" or None = none) run on `interface`.

        Called on every VRRP transition: MASTER -> "master", BACKUP -> "backup",
        FAULT/stop -> None. BGP directors run "both": each sends its own
        connections and takes the others', so a flow ECMP moves keeps its
        real server. A daemon already running as asked is left alone.
        """
        running = {d.state: d for d in await self.sync_daemons()}
        states = ("master", "backup") if state == "both" else (state,) if state else ()
        wants = {s: SyncDaemon(s, interface, syncid) for s in states}
        for other in running.values():
            if wants.get(other.state) != other:
                await self.stop_sync_daemon(other.state)
        for s, want in wants.items():
            if running.get(s) != want:
                await self.start_sync_daemon(s, interface, syncid)


class IpvsReconciler:
    """Keeps the owned part of the kernel's IPVS table equal to a desired table.

    One stateless pass (tests, the benchmark, tools)::

        reconciler = IpvsReconciler(ipvs)          # ipvs: an open Ipvs
        repaired = await reconciler.sync(desired)  # on every change + periodic resync

    `sync()` dumps, diffs and applies; it returns one line per operation done
    (empty when the kernel already matched). When the kernel refuses some
    operations it raises IpvsBatchError (a KernelError) naming them, after
    every other operation was applied; the next call simply tries again.

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
    return _errno(exc.code) if exc.code else str(exc)


def _errno(code: int, message: str = "") -> str:
    text = f"{errno.errorcode.get(code, code)} ({os.strerror(code)})"
    return f"{text}: {message}" if message else text
