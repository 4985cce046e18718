"""What no single key can tell: clashes between instances and between services.

A file that passes these checks is one the runtime can apply whole:
`desired_ipvs()` raises on two services with one IPVS key, so two
`[[virtual_server]]` with the same (protocol, address, port) or the same
fwmark are refused here, where the operator sees the key path, instead of
crash-looping the daemon at start or killing the reconciler on reload.
"""

from __future__ import annotations

import ipaddress

from lvsha.config._table import key_part
from lvsha.config.model import BgpConfig, DaemonConfig, VirtualServerConfig, VrrpInstanceConfig
from lvsha.config.values import is_loopback_host
from lvsha.core.desired import ServiceKey, host_port, service_key


def cross_checks(
    daemon: DaemonConfig,
    instances: tuple[VrrpInstanceConfig, ...],
    servers: tuple[VirtualServerConfig, ...],
    problems: list[str],
    warnings: list[str],
    bgp: BgpConfig | None = None,
    *,
    director: bool = False,
) -> None:
    """`director`: a whole file, which must hold a VRRP instance or [bgp] (or both)."""
    owners = _instances(instances, problems)
    _services(servers, owners, bool(instances), problems, warnings)
    if (
        director
        and not instances
        and bgp is None
        and not _has_problems("vrrp", problems)  # a broken table is not a missing one
        and not _has_problems("bgp", problems)
    ):
        problems.append(
            "(config): neither a [vrrp.NAME] instance nor [bgp]: a director needs VRRP "
            "to hold its VIPs, or [bgp] to announce them, or both"
        )
    _announced(servers, bgp, owners, problems, warnings)
    if daemon.metrics is not None and not is_loopback_host(daemon.metrics):
        warnings.append(
            f"daemon.metrics: {daemon.metrics} is not a loopback address; /metrics has no "
            f"authentication, so anyone who reaches it reads the whole status"
        )


def _instances(instances: tuple[VrrpInstanceConfig, ...], problems: list[str]) -> dict[str, str]:
    """One VRID per interface and family, one owner per VIP; returns VIP -> instance name.

    RFC 5798 section 5.2.3: an IPv4 and an IPv6 virtual router may share a VRID.
    """
    by_link: dict[tuple[str, int, bool], str] = {}
    owners: dict[str, str] = {}
    for inst in instances:
        ipv6 = any(":" in v.address for v in inst.virtual_ipaddress)
        link = (inst.interface, inst.virtual_router_id, ipv6)
        if link in by_link:
            problems.append(
                f"vrrp.{key_part(inst.name)}.virtual_router_id: {inst.virtual_router_id} is "
                f"already used on {inst.interface} by vrrp.{key_part(by_link[link])}"
            )
        else:
            by_link[link] = inst.name
        for index, vip in enumerate(inst.all_vips):
            if vip.address in owners:
                key = "virtual_ipaddress"
                if index >= len(inst.virtual_ipaddress):
                    key += "_excluded"
                problems.append(
                    f"vrrp.{key_part(inst.name)}.{key}: {vip.address} is already "
                    f"held by vrrp.{key_part(owners[vip.address])}"
                )
            owners[vip.address] = inst.name
    return owners


def _services(
    servers: tuple[VirtualServerConfig, ...],
    owners: dict[str, str],
    have_instances: bool,
    problems: list[str],
    warnings: list[str],
) -> None:
    first: dict[ServiceKey, int] = {}
    for i, vs in enumerate(servers):
        key = service_key(vs)
        if _has_problems(f"virtual_server[{i}]", problems):
            pass  # its key may be made of defaults: a clash would be noise
        elif key in first:
            problems.append(
                f"virtual_server[{i}]: same service as virtual_server[{first[key]}] "
                f"({_describe(key)})"
            )
        else:
            first[key] = i
        total = sum(r.weight for r in vs.real_servers)
        if vs.sorry_server is not None and vs.quorum + vs.hysteresis > total:
            warnings.append(
                f"virtual_server[{i}].quorum: {vs.quorum} + hysteresis {vs.hysteresis} exceeds "
                f"the total weight {total} of the real servers; the sorry server will stay in"
            )
        if (
            vs.address is not None
            and vs.address not in owners
            and have_instances
            and vs.announce is None
        ):
            warnings.append(
                f"virtual_server[{i}].address: {vs.address} is not a VIP of any VRRP instance"
            )


# Schedulers that pick the real server from a hash of the flow, the same on
# every director with the same real servers (docs/scale-out.md).
CONSISTENT_SCHEDULERS = frozenset({"mh", "sh"})


def _announced(
    servers: tuple[VirtualServerConfig, ...],
    bgp: BgpConfig | None,
    owners: dict[str, str],
    problems: list[str],
    warnings: list[str],
) -> None:
    """`announce = "bgp"` against `[bgp]` and the VRRP VIPs (docs/scale-out.md).

    An address is either a VRRP VIP (one master holds it) or announced over
    BGP (every director holds it on lo): both at once would answer ARP for
    it on the master and draw ECMP traffic to every director.
    """
    vips = {_normal(vip): name for vip, name in owners.items()}
    announced: dict[str, int] = {}
    for i, vs in enumerate(servers):
        if vs.announce is None:
            continue
        where = f"virtual_server[{i}].announce"
        if bgp is None:
            problems.append(f'{where}: "bgp" needs a [bgp] table (the speaker and its peers)')
        if vs.address is None or vs.fwmark is not None:
            problems.append(
                f"{where}: a firewall-mark service has no address to announce; "
                "announce a service with an address"
            )
            continue
        if vs.scheduler not in CONSISTENT_SCHEDULERS:
            warnings.append(
                f'virtual_server[{i}].scheduler: "{vs.scheduler}" is not a hash of the flow: '
                "a flow that ECMP moves to another director lands on another real server "
                '(use "mh", the default with announce = "bgp")'
            )
        if not vs.address:
            continue  # a bad address: said under its own key
        address = _normal(vs.address)
        if address in vips:
            problems.append(
                f"{where}: {vs.address} is also a VIP of vrrp.{key_part(vips[address])}; "
                "an address is either held by VRRP or announced over BGP, not both"
            )
        else:  # a clash is said once, not again for the VIP's own services
            announced.setdefault(address, i)
    for i, vs in enumerate(servers):
        if vs.announce is None and vs.address and _normal(vs.address) in announced:
            problems.append(
                f"virtual_server[{i}].announce: {vs.address} is announced by "
                f"virtual_server[{announced[_normal(vs.address)]}]; every service on an "
                f'announced address needs announce = "bgp" (the route carries them all)'
            )
    if bgp is not None and not announced:
        warnings.append('bgp: no virtual_server has announce = "bgp"; nothing will be announced')
    if bgp is not None:
        _silent_peers(bgp, warnings)


def _silent_peers(bgp: BgpConfig, warnings: list[str]) -> None:
    """Hold time 0 (RFC 4271 section 4.2: no keepalives) and no BFD: nothing sees a dead host."""
    for i, peer in enumerate(bgp.peers):
        hold = bgp.hold_time if peer.hold_time is None else peer.hold_time
        bfd = bgp.bfd if peer.bfd is None else peer.bfd
        if hold == 0 and not bfd:
            key = "bgp.hold_time" if peer.hold_time is None else f"bgp.peer[{i}].hold_time"
            warnings.append(
                f"{key}: 0 turns keepalives off and bgp.peer[{i}] has no BFD: a director that "
                f"goes silent keeps its routes at {peer.address} until its TCP connection fails"
            )


def _normal(address: str) -> str:
    """One spelling per address; a bad one (reported elsewhere) as it is."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return address


def _has_problems(path: str, problems: list[str]) -> bool:
    return any(p.startswith((f"{path}:", f"{path}.")) for p in problems)


def _describe(key: ServiceKey) -> str:
    if key.is_fwmark:
        return f"fwmark {key.fwmark}"
    return f"{key.protocol} {host_port(key.address, key.port)}"
