"""desired_ipvs(): config + health -> the IPVS table lvsha wants."""

from __future__ import annotations

import pytest

from lvsha.config import parse_config
from lvsha.core.desired import (
    SVC_F_ONEPACKET,
    SVC_F_PERSISTENT,
    SVC_F_SCHED1,
    SVC_F_SCHED2,
    Destination,
    DestKey,
    IpvsTable,
    Service,
    ServiceKey,
    desired_ipvs,
)

LVS01 = """
[[virtual_server]]
address = "192.0.2.84"
port = 80
protocol = "tcp"
scheduler = "rr"
forwarding = "dr"
persistence_timeout = 0
delay_loop = 20

[[virtual_server.real_server]]
address = "198.51.100.206"
port = 80
weight = 1
tcp_check = { connect_timeout = 3 }

[[virtual_server.real_server]]
address = "198.51.100.207"
port = 80
weight = 1
tcp_check = { connect_timeout = 3 }
"""

KEY = ServiceKey("tcp", "192.0.2.84", 80)


def test_lvs01_table() -> None:
    table = desired_ipvs(parse_config(LVS01).virtual_servers)
    assert table == IpvsTable(
        (
            Service(
                KEY,
                scheduler="rr",
                flags=0,
                timeout=0,
                destinations=(
                    Destination("198.51.100.206", 80, 1, "dr"),
                    Destination("198.51.100.207", 80, 1, "dr"),
                ),
            ),
        )
    )


def test_unhealthy_is_removed_by_default_and_missing_health_is_healthy() -> None:
    vs = parse_config(LVS01).virtual_servers
    health = {(KEY, DestKey("198.51.100.206", 80)): False}
    (svc,) = desired_ipvs(vs, health)
    assert [d.address for d in svc.destinations] == ["198.51.100.207"]


def test_unhealthy_can_be_quiesced_to_weight_zero() -> None:
    vs = parse_config(LVS01).virtual_servers
    health = {
        (KEY, DestKey("198.51.100.206", 80)): False,
        (KEY, DestKey("198.51.100.207", 80)): True,
    }
    (svc,) = desired_ipvs(vs, health, unhealthy="quiesce")
    assert [(d.address, d.weight) for d in svc.destinations] == [
        ("198.51.100.206", 0),
        ("198.51.100.207", 1),
    ]
    with pytest.raises(ValueError):
        desired_ipvs(vs, health, unhealthy="drop")


def test_persistence_fwmark_udp_nat_and_flags() -> None:
    cfg = parse_config(
        """
[[virtual_server]]
fwmark = 7
scheduler = "sh"
scheduler_flags = ["sh-fallback", "sh-port", "ops"]
forwarding = "tun"
persistence_timeout = 300
persistence_netmask = "255.255.255.0"
[[virtual_server.real_server]]
address = "198.51.100.1"

[[virtual_server]]
address = "203.0.113.5"
port = 53
protocol = "udp"
forwarding = "nat"
[[virtual_server.real_server]]
address = "198.51.100.2"
port = 5353
weight = 3
"""
    )
    fwm, udp = desired_ipvs(cfg.virtual_servers)
    assert fwm.key == ServiceKey.for_fwmark(7) and str(fwm.key) == "FWM 7"
    assert fwm.flags == SVC_F_PERSISTENT | SVC_F_SCHED1 | SVC_F_SCHED2 | SVC_F_ONEPACKET
    assert (fwm.timeout, fwm.netmask) == (300, "255.255.255.0")
    assert fwm.destinations == (Destination("198.51.100.1", 0, 1, "tun"),)
    assert str(udp.key) == "UDP 203.0.113.5:53" and udp.scheduler == "wlc"
    assert udp.destinations == (Destination("198.51.100.2", 5353, 3, "nat"),)


def test_tables_compare_regardless_of_order_and_reject_duplicates() -> None:
    a = Service(
        KEY, destinations=(Destination("198.51.100.2", 80), Destination("198.51.100.1", 80))
    )
    b = Service(
        KEY, destinations=(Destination("198.51.100.1", 80), Destination("198.51.100.2", 80))
    )
    other = Service(ServiceKey("udp", "192.0.2.1", 53))
    assert a == b
    assert IpvsTable((a, other)) == IpvsTable((other, b))
    with pytest.raises(ValueError):
        Service(
            KEY,
            destinations=(Destination("198.51.100.1", 80, 1), Destination("198.51.100.1", 80, 2)),
        )
    with pytest.raises(ValueError):
        IpvsTable((a, b))


def test_replace_takes_the_changed_services_from_the_part_and_drops_the_absent() -> None:
    a, b, c = (ServiceKey("tcp", f"192.0.2.{i}", 80) for i in (1, 2, 3))
    table = IpvsTable((Service(a, "rr"), Service(b, "rr"), Service(c, "rr")))
    part = IpvsTable((Service(b, "wlc"),))
    assert table.replace({b, c}, part) == IpvsTable((Service(a, "rr"), Service(b, "wlc")))
    assert table.replace(set(), IpvsTable()) is table
    assert table.only({c, ServiceKey("udp", "192.0.2.9", 53)}) == IpvsTable((Service(c, "rr"),))


def test_replace_in_place_keeps_the_order_without_sorting() -> None:
    keys = [ServiceKey("tcp", f"192.0.2.{i}", 80) for i in (9, 1, 5, 3)]
    table = IpvsTable(tuple(Service(k, "rr") for k in keys))
    changed = table.replace({keys[2]}, IpvsTable((Service(keys[2], "wlc"),)))
    rebuilt = IpvsTable(tuple(Service(k, "wlc" if k == keys[2] else "rr") for k in keys))
    assert changed == rebuilt and changed.services == rebuilt.services
    assert changed.get(keys[2]) == Service(keys[2], "wlc") and keys[2] in changed
    assert table.get(keys[2]) == Service(keys[2], "rr")  # the original is untouched
