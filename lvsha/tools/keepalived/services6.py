"""IPv6 in keepalived's virtual_server blocks: addresses, granularity, one family.

keepalived takes IPv6 virtual and real servers as it takes IPv4 ones; its
`persistence_granularity` is a prefix length for an IPv6 service, and a
fwmark service's family comes from its real servers (`ip_family` is only
needed when they cannot tell, keepalived.conf(5)). lvsha keeps one family
per service, so a real server of the other family (keepalived would tunnel
to it) is listed as not translated.
"""

from __future__ import annotations

import ipaddress

from lvsha.core import desired
from lvsha.tools.keepalived.reader import Statement
from lvsha.tools.keepalived.values import Notes, Table, arg


def ip_arg(notes: Notes, stmt: Statement, text: str) -> str | None:
    """An IPv4 or IPv6 address, in its one spelling (2001:db8::1, RFC 5952)."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        notes.bad(stmt, f"{text!r} is not an IPv4 or IPv6 address")
        return None


def host_port(address: str, port: int | None) -> str:
    """The core's ADDRESS:PORT (IPv6 in brackets), or the address alone without a port."""
    return address if port is None else desired.host_port(address, port)


def granularity(notes: Notes, stmt: Statement, out: Table) -> None:
    """`persistence_granularity`: a dotted netmask, or a prefix length (IPv6's form).

    Which one the service needs is known once its real servers are read
    (`settle`); a prefix is kept as an integer until then.
    """
    text = arg(notes, stmt)
    if text is None:
        return
    if "." not in text:
        if not text.isdigit() or not 1 <= int(text) <= 128:
            notes.bad(stmt, f"{text!r} is not a netmask or a prefix length 1..128")
            return
        out["persistence_netmask"] = int(text)
        return
    try:
        mask = ipaddress.IPv4Network(f"0.0.0.0/{text}")
    except ValueError:
        notes.bad(stmt, f"{text!r} is not a contiguous IPv4 netmask")
        return
    out["persistence_netmask"] = str(mask.netmask)


def settle(
    notes: Notes, path: str, out: Table, servers: list[Table], ip_family: str | None
) -> None:
    """One family for the service: its address's, else its first real server's.

    Real servers of the other family are dropped (noted); the granularity
    takes the service's form.
    """
    address = out.get("address")
    family = 6 if address and ":" in address else 4
    if not address and servers:
        family = 6 if ":" in servers[0]["address"] else 4
    elif not address and ip_family == "inet6":
        family = 6
    if ip_family is not None and ip_family != ("inet6" if family == 6 else "inet"):
        notes.skip(
            f"{path}.ip_family",
            f"lvsha takes the family from the real servers (IPv{family} here)",
        )
    kept = []
    for rs in servers:
        if (":" in rs["address"]) == (family == 6):
            kept.append(rs)
        else:
            where = host_port(rs["address"], rs.get("port"))
            notes.skip(
                f"{path}.real_server({where})",
                f"lvsha keeps one family per service (this one is IPv{family}); "
                "keepalived would tunnel across families",
            )
    servers[:] = kept
    mask = out.get("persistence_netmask")
    if family == 6 and isinstance(mask, str):
        del out["persistence_netmask"]
        notes.skip(f"{path}.persistence_granularity", "an IPv6 service takes a prefix length")
    elif family == 4 and isinstance(mask, int):
        if mask > 32:
            del out["persistence_netmask"]
            notes.skip(f"{path}.persistence_granularity", f"/{mask} is longer than IPv4's 32")
        else:
            out["persistence_netmask"] = str(ipaddress.IPv4Network(f"0.0.0.0/{mask}").netmask)
