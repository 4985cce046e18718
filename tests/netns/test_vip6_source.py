"""An IPv6 VIP is never the master's source address (RFC 6724 section 5, rule 3).

The master holds 2001:db8::11/64 and the VIP 2001:db8::100/64 on the same
link. Were the VIP preferred, the kernel could pick it as the source of the
director's own connections (Linux caps rule 8's longest match at the
prefix length, so both tie), and a DR real server, which holds the VIP on
lo, would answer a health check to itself. lvsha adds the VIP deprecated
(preferred_lft 0): still delivered to and answered for, never a source.
"""

from __future__ import annotations

from lab import Lab, wait_for

VIP6 = "2001:db8::100"
CONFIG = f"""
[vrrp.VI_6]
interface = "eth1"
version = 3
virtual_router_id = 61
priority = 150
advert_int = 0.05
virtual_ipaddress = ["{VIP6}/64"]
"""


def test_the_master_keeps_its_own_address_as_the_source_towards_the_lan(lab: Lab) -> None:
    host = lab.host("i6d1", "192.0.2.11")
    host.add6("2001:db8::11/64")
    wait_for(host.link_local_ready, 10, interval=0.1)
    director = lab.start(host, CONFIG)
    director.wait_state("MASTER", 5)
    wait_for(lambda: host.has_vip6(VIP6), 3)
    (vip,) = [a for a in host.addresses6() if a["local"] == VIP6]
    assert vip["preferred_life_time"] == 0 and vip.get("deprecated") is True
    assert vip.get("nodad") is True
    for target in ("2001:db8::21", "2001:db8::22", "2001:db8::1ff", "2001:db8::101"):
        route = host.run("ip", "-6", "route", "get", target).stdout
        assert " src 2001:db8::11 " in route, route
