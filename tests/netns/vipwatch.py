"""Watch who holds the VIP the whole time a fault scenario runs.

A thread samples every director's addresses (and link state) every
`interval` seconds until stopped, so a test can assert its invariant over
the whole scenario, not only at the points it looks: at most one reachable
holder, and no gap longer than the protocol's bound.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from dataclasses import dataclass, field

from lab import VIP, Host


def _holds(host: Host, vip: str) -> bool:
    """The host holds the VIP on an interface that is up (reachable)."""
    out = subprocess.run(
        ["ip", "-n", host.ns, "-j", "-4", "addr", "show", "dev", "eth1"],
        capture_output=True,
        text=True,
        timeout=5,
        check=False,
    ).stdout
    return any(
        "UP" in link.get("flags", [])
        and "LOWER_UP" in link.get("flags", [])
        and any(a.get("local") == vip for a in link.get("addr_info", []))
        for link in json.loads(out or "[]")
    )


@dataclass
class VipWatch:
    """Samples (time, holders) until `stop()`; bounded by `max_seconds`."""

    hosts: list[Host]
    vip: str = VIP
    interval: float = 0.05
    max_seconds: float = 120.0
    samples: list[tuple[float, frozenset[str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        end = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < end:
            now = time.monotonic()
            holders = frozenset(h.name for h in self.hosts if _holds(h, self.vip))
            self.samples.append((now, holders))
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def most_holders(self, since: float = 0.0) -> int:
        return max((len(h) for t, h in self.samples if t >= since), default=0)

    def longest_gap(self, since: float = 0.0) -> float:
        """The longest time no reachable host held the VIP (from sample to sample)."""
        longest, gap_start = 0.0, None
        for t, holders in self.samples:
            if t < since:
                continue
            if not holders and gap_start is None:
                gap_start = t
            elif holders and gap_start is not None:
                longest, gap_start = max(longest, t - gap_start), None
        if gap_start is not None:
            longest = max(longest, self.samples[-1][0] - gap_start)
        return longest
