"""The keys that depend on an instance's VRRP version (RFC 3768 vs RFC 5798).

`version = 3` (or `[daemon] vrrp_version = 3`) brings centisecond intervals
and IPv6: `advert_int` becomes seconds in steps of 0.01 (RFC 5798 section
5.2.7: 12 bits of centiseconds), `authentication` is refused (section 5.2
removed it, and a keepalived v3 peer sends none), and VIPs, unicast peers
and the unicast source may be IPv6, one family per instance (section
5.2.5: an advert lists the addresses of one family).
"""

from __future__ import annotations

import ipaddress

from lvsha.config import limits
from lvsha.config._table import Check, Table, between, shown
from lvsha.config.values import unicast as unicast4

IPV6_VRRP_GROUP = ipaddress.IPv6Address("ff02::12")  # RFC 5798 section 5.1.2.2


def version(t: Table, default: int) -> int:
    return t.get("version", int, default, check_version)


def check_version(value: int) -> str | None:
    """2 or 3."""
    if value in limits.VRRP_VERSIONS:
        return None
    return f"must be 2 (RFC 3768) or 3 (RFC 5798), not {shown(value)}"


def advert_int(t: Table, vrrp_version: int) -> float:
    """Whole seconds 1..255 with version 2; 0.01..40.95 in steps of 0.01 with 3."""
    if vrrp_version == 2:
        raw = t.data.get("advert_int")
        if isinstance(raw, float) and not isinstance(raw, bool):
            t.known.add("advert_int")
            t.problem(
                "advert_int",
                f"must be whole seconds with version 2, not {shown(raw)} "
                "(set version = 3 for intervals in centiseconds, RFC 5798)",
            )
            return 1
        return t.get("advert_int", int, 1, between(limits.ADVERT_INT))
    value = t.get("advert_int", float, 1.0, _v3_interval)
    return round(value * 100) / 100


def _v3_interval(value: float) -> str | None:
    low, high = limits.ADVERT_INT_V3
    if not low <= value <= high:
        return f"must be {low}..{high} seconds with version 3, not {shown(value)}"
    if abs(value * 100 - round(value * 100)) > 1e-6:
        return f"must be a multiple of 0.01 s (RFC 5798 sends centiseconds), not {shown(value)}"
    return None


def refuse_authentication(t: Table, vrrp_version: int) -> None:
    if vrrp_version == 3 and "authentication" in t.data:
        t.problem(
            "authentication",
            "VRRP version 3 has no authentication: RFC 5798 section 5.2 removed it "
            "(remove the key, or use version = 2)",
        )


def accept_mode(t: Table, vrrp_version: int) -> bool:
    """RFC 5798 section 6.1 Accept_Mode; lvsha, like keepalived, accepts."""
    value = t.get("accept_mode", bool, True)
    if not value:
        t.problem(
            "accept_mode",
            "false is not supported: lvsha installs no filter that drops traffic to the "
            "VIPs, so the master always accepts it (keepalived's default, `accept`)",
        )
    elif "accept_mode" in t.data and vrrp_version == 2:
        t.problem("accept_mode", "is a VRRP version 3 setting (RFC 5798 section 6.1)")
    return value


def unicast_check(vrrp_version: int) -> Check[str]:
    """`unicast` for version 3; with 2, IPv4's words, and IPv6 left to `family_checks`."""

    def check(value: str) -> str | None:
        if vrrp_version == 3 or _is_ipv6(value):
            return unicast(value)
        return unicast4(value)

    return check


def _is_ipv6(value: str) -> bool:
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return True


def unicast(value: str) -> str | None:
    """A host to talk to, IPv4 or IPv6: not multicast, unspecified or broadcast."""
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return f"{shown(value)} is not an IP address"
    if addr.version == 4:
        return unicast4(value)
    if addr == IPV6_VRRP_GROUP:
        return f"{addr} is the VRRP multicast group (RFC 5798 section 5.1.2.2), not a host"
    if addr.is_multicast:
        return f"{addr} is a multicast address, not a host"
    if addr.is_unspecified:
        return f"{addr} is the unspecified address, not a host"
    return None


def vip6(iface: ipaddress.IPv6Interface) -> str | None:
    """An IPv6 VIP the master adds (nodad) and announces with unsolicited NAs."""
    if (message := unicast(str(iface.ip))) is not None:
        return message
    if iface.ip.is_loopback:
        return f"{iface.ip} is the loopback address; no other host can reach it as a VIP"
    if iface.network.prefixlen == 0:
        return f"{iface.with_prefixlen}: a /0 VIP would put every address on the link"
    return None


def family_checks(
    t: Table,
    vrrp_version: int,
    vips: tuple[str, ...],
    peers: tuple[str, ...],
    source: str | None,
) -> None:
    """One family per instance; IPv6 only with version 3 (RFC 3768 is IPv4 only)."""
    families = {ipaddress.ip_address(a).version for a in vips}
    if len(families) > 1:
        t.problem(
            "virtual_ipaddress",
            "mixes IPv4 and IPv6; an advertisement lists one family (RFC 5798 section 5.2.5): "
            "use one instance per family",
        )
        return
    family = families.pop() if families else 4
    if family == 6 and vrrp_version == 2:
        t.problem("virtual_ipaddress", "IPv6 VIPs need version = 3 (VRRPv2 is IPv4 only)")
    for i, peer in enumerate(peers):
        if ipaddress.ip_address(peer).version != family:
            t.problem(f"unicast_peers[{i}]", f"{peer} is not IPv{family}, the family of the VIPs")
    if source is not None and ipaddress.ip_address(source).version != family:
        t.problem("unicast_src_ip", f"{source} is not IPv{family}, the family of the VIPs")


def normal(address: str) -> str:
    """The one spelling of an address (2001:db8::1, not 2001:0DB8:0::1), for comparisons."""
    return str(ipaddress.ip_address(address))
