"""What the VRRPv3 router does differently from VRRPv2 (RFC 5798 sections 6, 7.1).

`lvsha.core.vrrp.VirtualRouter` runs both versions; this module holds the
version 3 rules it calls, so that the v2 machine reads as before:

* the timers scale with Master_Adver_Interval, the interval the current
  master advertises, which a backup learns from each advert it accepts
  (section 6.1: Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256,
  Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time);
* the receive checks of section 7.1 have no authentication (section 5.2
  removed it) and an interval that differs from ours is not a drop: the
  backup learns it (section 6.4.2);
* the address list may be IPv4 or IPv6, the family of the virtual router.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import TYPE_CHECKING

from lvsha.core import drops
from lvsha.core.packet_v3 import CENTISECONDS, AdvertisementV3
from lvsha.errors import PacketError

if TYPE_CHECKING:
    from lvsha.core.vrrp import RouterParams

PRIORITY_OWNER = 255


def centiseconds(seconds: float) -> int:
    """An interval in seconds as the whole centiseconds of Max Adver Int (section 5.2.7)."""
    return round(seconds * CENTISECONDS)


def skew_time_v3(priority: int, master_adver_int: float) -> float:
    """Section 6.1: ((256 - Priority) * Master_Adver_Interval) / 256, in seconds.

    Computed on whole centiseconds so that 0.05 s gives the same figure as
    keepalived's integer arithmetic, up to float rounding.
    """
    return (256 - priority) * centiseconds(master_adver_int) / (256 * CENTISECONDS)


def master_down_interval_v3(priority: int, master_adver_int: float) -> float:
    """Section 6.1: (3 * Master_Adver_Interval) + Skew_Time."""
    return 3 * centiseconds(master_adver_int) / CENTISECONDS + skew_time_v3(
        priority, master_adver_int
    )


def family(addresses: tuple[str, ...]) -> int:
    """4 or 6: the family of a virtual router's addresses (IPv4 when it has none)."""
    return ipaddress.ip_address(addresses[0]).version if addresses else 4


def advert_drops_v3(params: RouterParams, advert: AdvertisementV3) -> Iterator[PacketError]:
    """Section 7.1 for version 3: each check the advert fails, in order.

    The VRID must be ours, we must not be the address owner, and the
    address list must match unless the sender is the owner. There is no
    authentication to check, and Max Adver Int is not checked: section
    6.4.2 has the backup take it as Master_Adver_Interval.
    """
    p = params
    if advert.vrid != p.vrid:
        yield PacketError(drops.OTHER_VRID, f"VRID {advert.vrid}, expected {p.vrid}")
    if p.priority == PRIORITY_OWNER:
        yield PacketError(drops.ADDRESS_OWNER, "we own the addresses (priority 255)")
    if advert.max_adver_int == 0:
        yield PacketError(drops.ADVERT_INTERVAL, "Max Adver Int 0: no master advertises that")
    ours = {ipaddress.ip_address(a) for a in p.addresses}
    theirs = {ipaddress.ip_address(a) for a in advert.addresses}
    if theirs != ours and advert.priority != PRIORITY_OWNER:
        yield PacketError(
            drops.ADDRESS_LIST,
            f"addresses {', '.join(advert.addresses) or '(none)'} differ from ours",
        )
