"""What an instance's VRRP version and address family change in the translation.

keepalived picks the version from `version` (or global_defs' `vrrp_version`)
and the family from `native_ipv6` or the first VIP. lvsha runs VRRPv3 (RFC
5798) over IPv4 and IPv6, one family per instance (section 5.2.5): VIPs,
unicast source and peers of the other family are left out and listed. The
version and family are read before the instance is translated, since
keepalived lets `version` follow `advert_int` and `virtual_ipaddress`.
"""

from __future__ import annotations

import ipaddress

from lvsha.config import limits
from lvsha.tools.keepalived.reader import Statement
from lvsha.tools.keepalived.values import Notes, Table, float_arg, is_ipv6


def prescan(stmts: list[Statement], default_version: int) -> tuple[int, int, bool]:
    """(version, family, native_ipv6) of one vrrp_instance block."""
    version = default_version
    native = False
    first_vip: str | None = None
    for stmt in stmts:
        if stmt.keyword == "version" and len(stmt.words) > 1 and stmt.words[1] in ("2", "3"):
            version = int(stmt.words[1])
        elif stmt.keyword == "native_ipv6":
            native = True
        elif stmt.keyword == "virtual_ipaddress" and first_vip is None and stmt.block:
            first_vip = stmt.block[0].keyword
    family = 6 if native or (version == 3 and first_vip is not None and is_ipv6(first_vip)) else 4
    return version, family, native


def force_v3(notes: Notes, path: str, version: int, family: int, out: Table) -> int:
    """An IPv6 instance is VRRPv3: RFC 3768 has no IPv6."""
    if family == 6 and version == 2:
        notes.warn(path, "an IPv6 instance runs VRRP version 3 (RFC 5798): version = 3 written")
        return 3
    return version


def advert_int_v3(notes: Notes, stmt: Statement, path: str, out: Table) -> None:
    """Version 3: seconds in centiseconds, 0.01..40.95 (RFC 5798 section 5.2.7)."""
    value = float_arg(notes, stmt, 0.01, 255)
    if value is None:
        return
    low, high = limits.ADVERT_INT_V3
    centis = min(max(round(value * 100), round(low * 100)), round(high * 100))
    if abs(centis - value * 100) > 1e-6:
        notes.warn(
            path,
            f"{value:g} s made {centis / 100:g} s: VRRPv3 carries whole centiseconds "
            f"{low:g}..{high:g} s",
        )
    out["advert_int"] = int(centis / 100) if centis % 100 == 0 else centis / 100


def address(notes: Notes, path: str, stmt: Statement, value: str, family: int) -> str | None:
    """A unicast source or peer in the instance's family, in its one spelling."""
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        notes.bad(stmt, f"{value!r} is not an IP address")
        return None
    if addr.version != family:
        notes.skip(
            path,
            f"not IPv{family}, the instance's family: an advert carries one family "
            "(RFC 5798 section 5.2.5)",
        )
        return None
    return str(addr)


def warn_unicast_hop_limit(notes: Notes, path: str) -> None:
    """keepalived 2.2.7 sends IPv6 unicast adverts with hop limit 64 unless `unicast_ttl 255`."""
    notes.warn(
        path,
        "a keepalived peer must say `unicast_ttl 255`: keepalived 2.2.7 sends IPv6 unicast "
        "adverts with hop limit 64 by default, which lvsha drops (RFC 5798 section 7.1; "
        "counted as `ttl` in lvsha status)",
    )
