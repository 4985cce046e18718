"""Active/active directors: the VIPs of `announce = "bgp"` services, over BGP.

The decision is the core's (core/announce.py); this module feeds it what
the daemon observed (quorum from the health checker, the services IPVS has
programmed, the VIPs held on `lo`, the drain file) and hands the routes it
returns to the speaker, a child process that only speaks (ExaBGP or BIRD,
adapters/bgp_speakers.py). It re-decides on every kick (a health change, an
IPVS pass, `lvsha drain`) and every POLL seconds (the drain file is for
automation and may appear without a word to us).

The route dies with the daemon: the speaker's helper withdraws when lvsha's
connection drops or falls silent (docs/scale-out.md). On SIGTERM the
withdrawal comes first, before anything else stops (`close`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from lvsha import logs
from lvsha.config import VirtualAddress, VirtualServerConfig
from lvsha.config.model import BgpConfig
from lvsha.core.announce import BgpDecision, PrefixStatus, Reason, prefix_of
from lvsha.core.desired import ServiceKey
from lvsha.runtime.ports import Speaker
from lvsha.runtime.supervisor import Supervisor

log = logs.get("lvsha")

POLL = 0.2  # seconds between drain-file checks besides kicks
SPEAKER_TASK = "bgp-speaker"
DECIDE_TASK = "bgp-decide"
GROUP = "[bgp]"  # the VIP group of VipSync; "[" cannot start a VRRP instance name


def lo_vips(virtual_servers: Iterable[VirtualServerConfig]) -> tuple[VirtualAddress, ...]:
    """The announced addresses as host routes on `lo`, so the director accepts their packets."""
    addresses = {vs.address for vs in virtual_servers if vs.announce == "bgp" and vs.address}
    return tuple(
        VirtualAddress(address, int(prefix_of(address).rpartition("/")[2]), "lo")
        for address in sorted(addresses)
    )


class BgpAnnouncer:
    """One `[bgp]` table's speaker, decision and drain flag."""

    def __init__(
        self,
        cfg: BgpConfig,
        speaker: Speaker,
        supervisor: Supervisor,
        quorum: Callable[[], dict[ServiceKey, tuple[bool, int]]],
        checked: Callable[[], bool],
        programmed: Callable[[], frozenset[ServiceKey]],
        held: Callable[[], set[VirtualAddress]],
        virtual_servers: Callable[[], tuple[VirtualServerConfig, ...]],
        clock: Callable[[], float],
        proc_sys: Path = Path("/proc/sys"),
    ) -> None:
        self.cfg = cfg
        self.speaker = speaker
        self.supervisor = supervisor
        self.quorum = quorum
        self.checked = checked  # every real server has a first result
        self.programmed = programmed
        self.held = held
        self.virtual_servers = virtual_servers
        self.clock = clock
        self.proc_sys = proc_sys
        self.sysctl_error: str | None = None
        self.decision = BgpDecision(virtual_servers(), cfg, clock())
        self._checked = False
        self._kick = asyncio.Event()

    # ------------------------------------------------------------ control --

    def start(self) -> None:
        """After the first IPVS pass (ip_vs is loaded) and the health checker's start."""
        self.ensure_sloppy()
        self.supervisor.keep(SPEAKER_TASK, self.speaker.run)
        self.supervisor.keep(DECIDE_TASK, self._loop, critical=True)

    def kick(self) -> None:
        self._kick.set()

    @property
    def drained(self) -> bool:
        return os.path.exists(self.cfg.drain_file)

    def drain(self, reason: str) -> str | None:
        """`lvsha drain`: the drain file, with why and when; None, or the error."""
        path = Path(self.cfg.drain_file)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{reason}\n{time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n")
        except OSError as exc:
            return f"cannot write {path}: {exc.strerror}"
        log.warning("drained", reason=reason, file=str(path))
        self.decide()
        return None

    def undrain(self) -> str | None:
        path = Path(self.cfg.drain_file)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            return f"cannot remove {path}: {exc.strerror}"
        log.warning("undrained", file=str(path))
        self.decide()
        return None

    async def close(self, timeout: float) -> None:
        """SIGTERM: nothing announced from now on, then the speaker withdraws and stops."""
        before = {prefix: p.reason for prefix, p in self.decision.status.items()}
        self.decision.stop(self.clock())
        self._log(before)
        self.speaker.set_routes(())
        self.supervisor.drop(DECIDE_TASK)
        # the speaker's run() returns once closed: not cancelled (that would
        # stop the child before it withdraws), and not started again
        self.supervisor.release(SPEAKER_TASK)
        try:
            await self.speaker.close(timeout)
        finally:
            await self.supervisor.let_end(SPEAKER_TASK, 0.1)

    def reconfigure(self, cfg: BgpConfig) -> None:
        """A reload that keeps the speaker: new services or path attributes."""
        self.cfg = cfg
        self.decision.reconfigure(self.clock(), self.virtual_servers(), cfg)
        self.ensure_sloppy()
        self.kick()

    def ensure_sloppy(self) -> None:
        """sloppy_tcp (sloppy_sctp): a flow ECMP moves here mid-stream is scheduled, not dropped.

        Without it IPVS takes only a SYN as a new connection, so every flow a
        router change moves to this director would be reset; with `mh` the
        flow finds the same real server here (docs/scale-out.md).
        """
        protocols = {vs.protocol for vs in self.virtual_servers() if vs.announce == "bgp"}
        errors = []
        for protocol in sorted(protocols & {"tcp", "sctp"}):
            path = self.proc_sys / "net" / "ipv4" / "vs" / f"sloppy_{protocol}"
            try:
                if path.read_text().strip() != "1":
                    path.write_text("1\n")
                    log.warning("set for ECMP", sysctl=f"net.ipv4.vs.sloppy_{protocol}", value=1)
            except OSError as exc:
                errors.append(f"cannot set net.ipv4.vs.sloppy_{protocol} = 1: {exc.strerror}")
        if errors and self.sysctl_error != "; ".join(errors):
            log.error("sysctl", error="; ".join(errors))
        self.sysctl_error = "; ".join(errors) or None

    # ----------------------------------------------------------- decision --

    def decide(self) -> None:
        """Feed the core what we see now; hand its routes to the speaker."""
        now = self.clock()
        d = self.decision
        before = {prefix: p.reason for prefix, p in d.status.items()}
        if not self._checked and self.checked():  # the seeded health is now measured
            self._checked = True
            d.health_started(now)
        d.quorum_changed(now, {k: up for k, (up, _) in self.quorum().items()})
        d.ipvs_programmed(now, self.programmed())
        d.lo_changed(now, [v.address for v in self.held() if v.device == "lo"])
        d.drain_changed(now, self.drained)
        d.timer_fired(now)
        self._log(before)
        self.speaker.set_routes(d.routes)

    def _log(self, before: dict[str, Reason]) -> None:
        """One line per prefix whose reason moved over the whole pass."""
        for prefix, p in self.decision.status.items():
            if before.get(prefix) is not p.reason:
                log.info(
                    "bgp announced" if p.announced else "bgp withdrawn",
                    prefix=prefix,
                    reason=p.reason.value,
                    detail=p.detail or None,
                )

    async def _loop(self) -> None:
        """Supervised: decide on every kick, every POLL, and at the core's deadline."""
        while True:
            self.decide()
            deadline = self.decision.deadline
            wait = POLL if deadline is None else min(POLL, max(deadline - self.clock(), 0.0))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._kick.wait()
            self._kick.clear()

    # ------------------------------------------------------------- status --

    def status(self, wall: Callable[[float], float]) -> dict[str, Any]:
        """The `bgp` part of `lvsha status --json` (docs/status.md)."""
        return {
            "speaker": self.speaker.status(),
            "sessions": self.speaker.sessions(),
            "drained": self.drained,
            "drain_file": self.cfg.drain_file,
            "sysctl_error": self.sysctl_error,
            "prefixes": [_prefix(p, wall) for p in self.decision.status.values()],
        }


def _prefix(p: PrefixStatus, wall: Callable[[float], float]) -> dict[str, Any]:
    return {
        "prefix": p.prefix,
        "announced": p.announced,
        "reason": p.reason.value,
        "detail": p.detail or None,
        "since": wall(p.since),
        "services": [str(k) for k in p.services],
    }
