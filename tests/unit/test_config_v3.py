"""`version = 3`: centisecond advert_int, no authentication, IPv6 (RFC 5798)."""

from __future__ import annotations

import pytest

from lvsha.config import parse_config
from lvsha.config.router import router_params
from lvsha.errors import ConfigError

BASE = """
[daemon]
name = "lvs1"
{daemon}
[vrrp.VI_1]
interface = "eth1"
virtual_router_id = 51
{vrrp}
"""


def parse(vrrp: str, daemon: str = "") -> object:
    return parse_config(BASE.format(vrrp=vrrp, daemon=daemon))


def problems(vrrp: str, daemon: str = "") -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse(vrrp, daemon)
    return exc.value.problems


V4 = 'virtual_ipaddress = ["192.0.2.100/32"]'
V6 = 'virtual_ipaddress = ["2001:db8::100"]'


@pytest.mark.parametrize(
    ("value", "expected"), [("0.05", 0.05), ("1", 1.0), ("40.95", 40.95), ("0.01", 0.01)]
)
def test_v3_advert_int_in_centiseconds(value: str, expected: float) -> None:
    cfg = parse_config(BASE.format(vrrp=f"version = 3\nadvert_int = {value}\n{V4}", daemon=""))
    inst = cfg.vrrp[0]
    assert (inst.version, inst.advert_int) == (3, expected)
    params = router_params(inst)
    assert (params.version, params.adver_int) == (3, expected)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "must be 0.01..40.95 seconds with version 3, not 0.0"),
        ("40.96", "must be 0.01..40.95 seconds with version 3, not 40.96"),
        ("0.055", "must be a multiple of 0.01 s (RFC 5798 sends centiseconds), not 0.055"),
        ('"fast"', "must be a number, not a string"),
    ],
)
def test_v3_advert_int_bounds(value: str, message: str) -> None:
    assert problems(f"version = 3\nadvert_int = {value}\n{V4}") == [
        f"vrrp.VI_1.advert_int: {message}"
    ]


def test_v2_stays_whole_seconds() -> None:
    assert problems(f"advert_int = 0.05\n{V4}") == [
        "vrrp.VI_1.advert_int: must be whole seconds with version 2, not 0.05 "
        "(set version = 3 for intervals in centiseconds, RFC 5798)"
    ]
    cfg = parse_config(BASE.format(vrrp=f"advert_int = 2\n{V4}", daemon=""))
    assert (cfg.vrrp[0].version, cfg.vrrp[0].advert_int) == (2, 2)


def test_daemon_default_version_and_instance_override() -> None:
    cfg = parse_config(BASE.format(vrrp=f"advert_int = 0.1\n{V4}", daemon="vrrp_version = 3"))
    assert (cfg.daemon.vrrp_version, cfg.vrrp[0].version) == (3, 3)
    cfg = parse_config(BASE.format(vrrp=f"version = 2\n{V4}", daemon="vrrp_version = 3"))
    assert cfg.vrrp[0].version == 2
    assert problems(V4, "vrrp_version = 4") == [
        "daemon.vrrp_version: must be 2 (RFC 3768) or 3 (RFC 5798), not 4"
    ]


def test_authentication_refused_with_v3_and_says_why() -> None:
    got = problems(f'version = 3\nauthentication = {{ type = "pass", password = "grr02" }}\n{V4}')
    assert got == [
        "vrrp.VI_1.authentication: VRRP version 3 has no authentication: RFC 5798 "
        "section 5.2 removed it (remove the key, or use version = 2)"
    ]


def test_ipv6_instance() -> None:
    cfg = parse_config(
        BASE.format(
            vrrp="version = 3\nadvert_int = 0.05\n"
            'virtual_ipaddress = ["2001:db8::100", "2001:0DB8::101/64 dev eth2"]\n'
            'unicast_src_ip = "2001:db8::1"\nunicast_peers = ["2001:DB8:0::2"]',
            daemon="",
        )
    )
    inst = cfg.vrrp[0]
    assert [(v.address, v.prefixlen, v.device) for v in inst.virtual_ipaddress] == [
        ("2001:db8::100", 128, "eth1"),
        ("2001:db8::101", 64, "eth2"),
    ]
    assert inst.unicast_peers == ("2001:db8::2",)  # one spelling: compared with the wire's
    assert inst.unicast_src_ip == "2001:db8::1"
    assert router_params(inst).family == 6


def test_ipv6_needs_v3_and_one_family() -> None:
    assert problems(V6) == [
        "vrrp.VI_1.virtual_ipaddress: IPv6 VIPs need version = 3 (VRRPv2 is IPv4 only)"
    ]
    mixed = 'virtual_ipaddress = ["192.0.2.100", "2001:db8::100"]'
    assert problems(f"version = 3\n{mixed}") == [
        "vrrp.VI_1.virtual_ipaddress: mixes IPv4 and IPv6; an advertisement lists one "
        "family (RFC 5798 section 5.2.5): use one instance per family"
    ]
    got = problems(
        f'version = 3\n{V6}\nunicast_peers = ["192.0.2.2"]\nunicast_src_ip = "192.0.2.1"'
    )
    assert got == [
        "vrrp.VI_1.unicast_peers[0]: 192.0.2.2 is not IPv6, the family of the VIPs",
        "vrrp.VI_1.unicast_src_ip: 192.0.2.1 is not IPv6, the family of the VIPs",
    ]


@pytest.mark.parametrize(
    ("vip", "message"),
    [
        ("ff02::12", "ff02::12 is the VRRP multicast group (RFC 5798 section 5.1.2.2), not a host"),
        ("ff02::1", "ff02::1 is a multicast address, not a host"),
        ("::", ":: is the unspecified address, not a host"),
        ("::1", "::1 is the loopback address; no other host can reach it as a VIP"),
        ("2001:db8::/0", "2001:db8::/0: a /0 VIP would put every address on the link"),
        (
            "2001:db8::zz",
            "'2001:db8::zz' is not an IPv4 or IPv6 address with an optional /prefixlen",
        ),
    ],
)
def test_bad_ipv6_vips(vip: str, message: str) -> None:
    got = problems(f'version = 3\nvirtual_ipaddress = ["{vip}"]')
    assert got[0] == f"vrrp.VI_1.virtual_ipaddress[0]: {message}"


def test_accept_mode() -> None:
    cfg = parse_config(BASE.format(vrrp=f"version = 3\naccept_mode = true\n{V4}", daemon=""))
    assert cfg.vrrp[0].accept_mode
    assert problems(f"version = 3\naccept_mode = false\n{V4}") == [
        "vrrp.VI_1.accept_mode: false is not supported: lvsha installs no filter that drops "
        "traffic to the VIPs, so the master always accepts it (keepalived's default, `accept`)"
    ]
    assert problems(f"accept_mode = true\n{V4}") == [
        "vrrp.VI_1.accept_mode: is a VRRP version 3 setting (RFC 5798 section 6.1)"
    ]


def test_status_table_names_v3_and_both_intervals() -> None:
    from lvsha.tools.status import render_status
    from tests.unit.test_status_render import document

    text = render_status(document(version=3, advert_int=0.1, master_advert_int=0.05))
    assert "VRRPv3, advert_int 0.1 s (the master's: 0.05 s)" in text
    assert "VRRPv3" not in render_status(document(version=2))


def test_an_ipv4_and_an_ipv6_router_may_share_a_vrid() -> None:
    """RFC 5798 section 5.2.3: the VRID is per address family; two of one family clash."""
    two = (
        '[vrrp.V4]\ninterface = "eth1"\nversion = 3\nvirtual_router_id = 51\n'
        'virtual_ipaddress = ["192.0.2.100"]\n'
        '[vrrp.V6]\ninterface = "eth1"\nversion = 3\nvirtual_router_id = 51\n'
        'virtual_ipaddress = ["2001:db8::100"]\n'
    )
    assert len(parse_config(two).vrrp) == 2
    clash = two.replace("2001:db8::100", "192.0.2.101")
    with pytest.raises(ConfigError) as exc:
        parse_config(clash)
    assert exc.value.problems == [
        "vrrp.V6.virtual_router_id: 51 is already used on eth1 by vrrp.V4"
    ]
