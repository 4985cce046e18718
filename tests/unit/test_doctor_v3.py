"""`lvsha doctor` vrrp-neighbours with VRRPv3 adverts (RFC 5798) on the link.

The heard datagrams are recorded by the same `_record` the listener uses,
then judged with the router's own checks: a v3 peer agrees with a v3
instance (a different interval is not a disagreement in v3: the backup
learns it), and a v2 instance is told that the peer speaks version 3.
"""

from __future__ import annotations

from lvsha.config import parse_config
from lvsha.core.packet_v3 import AdvertisementV3
from lvsha.tools.doctor.neighbours import Heard, _record, vrrp_neighbour_results
from lvsha.tools.doctor.results import Status
from tests.core.test_simulation import ipv4_datagram

V3 = """
[daemon]
name = "d1"
[vrrp.VI_1]
interface = "eth1"
version = 3
virtual_router_id = 51
advert_int = 0.05
virtual_ipaddress = ["192.0.2.100/32"]
"""
V2 = V3.replace("version = 3\n", "").replace("advert_int = 0.05", "advert_int = 1")
PEER = "192.0.2.12"


def heard_v3(interval: int = 5, vips: tuple[str, ...] = ("192.0.2.100",)) -> list[Heard]:
    payload = AdvertisementV3(51, 150, interval, vips).encode_for(PEER, "224.0.0.18")
    heard: dict[tuple[str, str, int], Heard] = {}
    _record(heard, "eth1", ipv4_datagram(PEER, payload))
    return list(heard.values())


def test_a_v3_peer_agrees_with_a_v3_instance_whatever_its_interval() -> None:
    (h,) = heard_v3(interval=100)
    assert (h.version, h.priority, h.v3 is not None) == (3, 150, True)
    [r] = vrrp_neighbour_results(parse_config(V3), [h], {"192.0.2.11"}, 3.0)
    assert r.status is Status.OK and f"peer {PEER} (priority 150) agrees" in r.message


def test_a_v3_peer_and_a_v2_instance_disagree_on_the_version() -> None:
    [r] = vrrp_neighbour_results(parse_config(V2), heard_v3(), {"192.0.2.11"}, 3.0)
    assert r.status is Status.FAIL
    assert "VRRP version 3 (ours: 2)" in r.message


def test_a_v3_peer_with_other_vips_disagrees() -> None:
    [r] = vrrp_neighbour_results(
        parse_config(V3), heard_v3(vips=("192.0.2.7",)), {"192.0.2.11"}, 3.0
    )
    assert r.status is Status.FAIL and "VIPs 192.0.2.7 (ours: 192.0.2.100)" in r.message


def test_an_ipv6_instance_with_the_same_vrid_is_not_judged_by_ipv4_adverts() -> None:
    v6 = V3 + (
        '[vrrp.VI_6]\ninterface = "eth1"\nversion = 3\nvirtual_router_id = 51\n'
        'virtual_ipaddress = ["2001:db8::100"]\n'
    )
    results = vrrp_neighbour_results(parse_config(v6), heard_v3(), {"192.0.2.11"}, 3.0)
    assert [r.status for r in results] == [Status.OK]
