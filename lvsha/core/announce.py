"""Which VIPs this director announces over BGP, and why (docs/scale-out.md).

Pure: the runtime feeds it what it observed and carries out the routes it
returns. A prefix is announced while every virtual service on its address
meets its quorum, the IPVS table for them is programmed, the VIP is held on
`lo`, and the director is not drained or stopping.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Route:
    """One announced prefix with its path attributes (RFC 4271 section 5, RFC 1997)."""

    prefix: str  # "203.0.113.100/32" or "2001:db8::100/128"
    next_hop: str | None = None  # None: self
    communities: tuple[tuple[int, int], ...] = ()
    med: int | None = None
