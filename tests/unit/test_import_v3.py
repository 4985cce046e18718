"""`lvsha import-keepalived` of VRRPv3 configurations: vrrp_version 3, IPv6, centiseconds.

What keepalived runs as VRRPv3 must come out as a `version = 3` instance
that `lvsha check-config` takes, speaking to the same peer: today's v2-only
importer wrote a v2 instance that a v3 peer drops.
"""

from __future__ import annotations

from pathlib import Path

from lvsha.config.model import VirtualAddress
from tests.unit.test_keepalived_import import convert_text, paths

V3_PAIR = """
global_defs {
    router_id lvs6
    vrrp_version 3
}
vrrp_instance VI_6 {
    interface eth1
    virtual_router_id 61
    priority 150
    advert_int 0.05
    authentication {
        auth_type PASS
        auth_pass grr02
    }
    unicast_src_ip 2001:db8::1
    unicast_peer {
        2001:DB8::2
        192.0.2.2
    }
    virtual_ipaddress {
        2001:db8::100/64
        2001:db8::101
        192.0.2.100/32
    }
}
"""


def test_vrrp_version_3_ipv6_pair(tmp_path: Path) -> None:
    config, result = convert_text(tmp_path, V3_PAIR)
    assert config.daemon.vrrp_version == 3
    (vi,) = config.vrrp
    assert (vi.version, vi.advert_int, vi.auth_type) == (3, 0.05, "none")
    assert vi.virtual_ipaddress == (
        VirtualAddress("2001:db8::100", 64, "eth1"),
        VirtualAddress("2001:db8::101", 128, "eth1"),
    )
    assert (vi.unicast_src_ip, vi.unicast_peers) == ("2001:db8::1", ("2001:db8::2",))
    assert paths(result.untranslated) == [
        "vrrp_instance.VI_6.authentication",
        "vrrp_instance.VI_6.unicast_peer[192.0.2.2]",
        "vrrp_instance.VI_6.virtual_ipaddress[192.0.2.100/32]",
    ]
    assert "RFC 5798 section 5.2" in result.untranslated[0]
    assert paths(result.warnings) == ["vrrp_instance.VI_6.unicast_peer"]
    assert "unicast_ttl 255" in result.warnings[0]


def test_instance_version_3_over_ipv4_with_a_fractional_interval(tmp_path: Path) -> None:
    config, result = convert_text(
        tmp_path,
        "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 7\n advert_int 0.255\n"
        " virtual_ipaddress {\n  192.0.2.7\n }\n version 3\n}\n",
    )
    (vi,) = config.vrrp
    assert (vi.version, vi.advert_int) == (3, 0.26)  # version after advert_int: still v3
    assert config.daemon.vrrp_version == 2
    assert paths(result.warnings) == ["vrrp_instance.VI_1.advert_int"]
    assert "0.26 s" in result.warnings[0]


def test_native_ipv6_makes_an_ipv6_v3_instance(tmp_path: Path) -> None:
    config, result = convert_text(
        tmp_path,
        "vrrp_instance V6 {\n interface eth0\n virtual_router_id 9\n native_ipv6\n"
        " advert_int 2\n virtual_ipaddress {\n  2001:db8::9\n }\n}\n",
    )
    (vi,) = config.vrrp
    assert (vi.version, vi.advert_int, vi.virtual_ipaddress[0].address) == (3, 2, "2001:db8::9")
    assert paths(result.warnings) == ["vrrp_instance.V6.version"]


def test_v2_stays_v2(tmp_path: Path) -> None:
    config, result = convert_text(
        tmp_path,
        "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 7\n advert_int 1\n"
        " virtual_ipaddress {\n  192.0.2.7\n }\n}\n",
    )
    (vi,) = config.vrrp
    assert (vi.version, vi.advert_int) == (2, 1)
    assert "version" not in result.toml
