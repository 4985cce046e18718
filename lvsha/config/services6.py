"""IPv6 in `[[virtual_server]]`: addresses, one family per service, persistence prefix.

IPVS keys an IPv6 service like an IPv4 one (protocol, address, port), but
its persistence granularity is a prefix length 1..128, not a netmask
(ipvsadm(8) `-M`: "IPv6 netmasks should be specified as a prefix length
between 1 and 128"; keepalived's `persistence_granularity` likewise), and
its real servers must be IPv6 too: the kernel forwards across families only
through a tunnel, and lvsha keeps one family per service (as keepalived
does unless told otherwise). Addresses are stored in their one spelling
(RFC 5952, what a kernel dump gives back) so that the table lvsha wants and
the table the kernel holds compare equal.
"""

from __future__ import annotations

import ipaddress

from lvsha.config._table import Table, shown
from lvsha.config.model import RealServerConfig
from lvsha.config.values import netmask as netmask4
from lvsha.config.vrrp_version import unicast as unicast46

PREFIX6 = range(1, 129)
HOST_NETMASK4 = "255.255.255.255"


def unicast(value: str) -> str | None:
    """A service or real-server address, IPv4 or IPv6; IPv4-mapped IPv6 is refused.

    ::ffff:a.b.c.d is an IPv4 host in IPv6 clothing: IPVS would need an IPv6
    service for it that no IPv4 client can reach, and a dump spells it
    another way (inet_ntop's ::ffff:1.2.3.4).
    """
    if (message := unicast46(value)) is not None:
        return message
    addr = ipaddress.ip_address(value)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return f"{value} is an IPv4-mapped IPv6 address; write the IPv4 address {addr.ipv4_mapped}"
    return None


def normal(address: str) -> str:
    """The one spelling of a valid address (2001:db8::1, not 2001:DB8:0::1); else as given."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return address


def family(address: str | None) -> int | None:
    """4, 6, or None for no (or no valid) address."""
    if not address:
        return None
    try:
        return ipaddress.ip_address(address).version
    except ValueError:
        return None


def service_family(address: str | None, reals: tuple[RealServerConfig, ...]) -> int:
    """The address's family; a firewall-mark service's is its first real server's, else 4."""
    return family(address) or (family(reals[0].address) if reals else None) or 4


def persistence_netmask(t: Table, service: int) -> str:
    """IPv4: a dotted-quad netmask; IPv6: a prefix length 1..128 (integer or "64")."""
    name = "persistence_netmask"
    t.known.add(name)
    raw = t.data.get(name)
    if service != 6:
        return t.get(name, str, HOST_NETMASK4, netmask4)
    if raw is None:
        return "128"
    prefix: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        prefix = raw
    elif isinstance(raw, str) and raw.removeprefix("/").isdigit() and raw.isascii():
        prefix = int(raw.removeprefix("/"))
    if prefix is None or prefix not in PREFIX6:
        t.problem(
            name,
            "an IPv6 service's persistence granularity is a prefix length 1..128 "
            f"(like ipvsadm -M 64), not {shown(raw)}",
        )
        return "128"
    return str(prefix)


def family_problems(
    t: Table,
    address: str | None,
    reals: tuple[RealServerConfig, ...],
    sorry: RealServerConfig | None,
) -> None:
    """Every real server (and the sorry server) in the service's family.

    A firewall-mark service takes its family from its first real server
    (as keepalived infers it; IPVS keys a fwmark service by family and mark).
    """
    want = service_family(address, reals)
    servers = [(f"real_server[{j}]", r) for j, r in enumerate(reals)]
    if sorry is not None:
        servers.append(("sorry_server", sorry))
    for key, server in servers:
        got = family(server.address)
        if got is None or got == want:
            continue
        if address is None:
            t.problem(
                f"{key}.address",
                f"{server.address} is IPv{got} but this firewall-mark service is IPv{want} "
                "(the family of its first real server): one family per service",
            )
        else:
            t.problem(
                f"{key}.address",
                f"{server.address} is IPv{got} but the service {address} is IPv{want}: "
                "one family per service (IPVS forwards across families only by tunnel)",
            )
