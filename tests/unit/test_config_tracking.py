"""Config: [vrrp_script], track_script / track_interface / track_file, [vrrp_sync_group]."""

from __future__ import annotations

import pytest

from lvsha.config import VirtualAddress, parse_config
from lvsha.config.model import TrackRef
from lvsha.errors import ConfigError

ISSUE_SHAPE = """
[vrrp_script.chk_web]
script = ["/usr/bin/curl", "-fsS", "-m", "1", "http://127.0.0.1/health"]
interval = 2
timeout = 2
weight = -30
rise = 2
fall = 2
user = "nobody"

[vrrp.VI_1]
interface = "eth1"
virtual_router_id = 51
virtual_ipaddress = ["192.0.2.100/32"]
track_script = ["chk_web"]
track_interface = ["eth0", { name = "eth2", weight = -20 }]
track_file = [{ path = "/run/lvsha/maint", weight = 0 }]

[vrrp.VI_2]
interface = "eth2"
virtual_router_id = 52
virtual_ipaddress = ["198.51.100.100/32"]
track_script = [{ name = "chk_web", weight = -50 }]

[vrrp_sync_group.G1]
group = ["VI_1", "VI_2"]
notify = ["/usr/local/sbin/group-notify"]
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    return info.value.problems


def test_the_issue_shape_loads_with_its_meaning() -> None:
    cfg = parse_config(ISSUE_SHAPE)
    (script,) = cfg.vrrp_scripts
    assert script.script[0] == "/usr/bin/curl"
    assert (script.interval, script.timeout, script.weight, script.rise, script.fall) == (
        2.0,
        2.0,
        -30,
        2,
        2,
    )
    assert script.user == "nobody" and script.group is None
    vi1, vi2 = cfg.vrrp
    assert vi1.track_script == (TrackRef("chk_web"),)
    assert vi1.track_interface == ("eth0",)
    assert vi1.track_interface_weights == (TrackRef("eth2", -20),)
    assert vi1.track_file == (TrackRef("/run/lvsha/maint", 0),)
    assert vi2.track_script == (TrackRef("chk_web", -50),)
    (group,) = cfg.sync_groups
    assert (group.name, group.group, group.notify) == (
        "G1",
        ("VI_1", "VI_2"),
        ("/usr/local/sbin/group-notify",),
    )


def test_defaults_are_keepalived_s() -> None:
    cfg = parse_config(
        ISSUE_SHAPE.replace("interval = 2\ntimeout = 2\nweight = -30\nrise = 2\nfall = 2\n", "")
        .replace(", weight = 0 }]", " }]")
        .replace('{ name = "eth2", weight = -20 }', '{ name = "eth2", weight = 0 }')
    )
    (script,) = cfg.vrrp_scripts
    assert (script.interval, script.timeout, script.weight, script.rise, script.fall) == (
        1.0,
        None,  # the interval, as keepalived
        0,
        1,
        1,
    )
    vi1 = cfg.vrrp[0]
    assert vi1.track_file == (TrackRef("/run/lvsha/maint", 1),)  # weight 1 by default
    assert vi1.track_interface == ("eth0", "eth2")  # weight 0 = FAULT while down


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("weight = -30", "weight = -254", "vrrp_script.chk_web.weight: must be -253..253"),
        ("interval = 2", "interval = 0", "vrrp_script.chk_web.interval: must be 0.1..86400"),
        ("timeout = 2", "timeout = -1", "vrrp_script.chk_web.timeout: must be 0.1..3600"),
        ("rise = 2", "rise = 0", "vrrp_script.chk_web.rise: must be 1..100"),
        (
            'script = ["/usr/bin/curl", "-fsS", "-m", "1", "http://127.0.0.1/health"]',
            'script = "curl http://x"',
            "vrrp_script.chk_web.script: must be an array",
        ),
        ('user = "nobody"', 'usr = "nobody"', "vrrp_script.chk_web.usr: unknown key"),
        (
            'track_script = ["chk_web"]',
            'track_script = ["chk_wbe"]',
            "vrrp.VI_1.track_script[0]: no [vrrp_script.chk_wbe] is defined",
        ),
        (
            "weight = -20 }",
            "weight = 300 }",
            "vrrp.VI_1.track_interface[1].weight: must be -253..253",
        ),
        (
            '{ name = "eth2", weight = -20 }',
            '{ nmae = "eth2" }',
            "vrrp.VI_1.track_interface[1].name: is required",
        ),
        ('"eth0", {', "3, {", "vrrp.VI_1.track_interface[0]: must be a name or a table"),
        (
            '{ path = "/run/lvsha/maint", weight = 0 }',
            '"/run/lvsha/maint"',
            "vrrp.VI_1.track_file[0]: must be a table {path, weight}",
        ),
        (
            "weight = 0 }]",
            "weight = 255 }]",
            "vrrp.VI_1.track_file[0].weight: must be -254..254",
        ),
        (
            'group = ["VI_1", "VI_2"]',
            'group = ["VI_1", "VI_3"]',
            "vrrp_sync_group.G1.group[1]: no [vrrp.VI_3] is defined",
        ),
        ('group = ["VI_1", "VI_2"]', "group = []", "vrrp_sync_group.G1.group: must name"),
        (
            'notify = ["/usr/local/sbin/group-notify"]',
            'notify = "/usr/local/sbin/group-notify GROUP"',
            "vrrp_sync_group.G1.notify: must be",
        ),
        ('"eth0", {', '"eth0", "eth0", {', "vrrp.VI_1.track_interface[1]: 'eth0' is tracked twice"),
    ],
)
def test_each_problem_has_its_key_path(old: str, new: str, expected: str) -> None:
    assert old in ISSUE_SHAPE
    found = problems(ISSUE_SHAPE.replace(old, new, 1))
    assert any(p.startswith(expected) for p in found), found


def test_an_instance_is_in_one_group_at_most() -> None:
    text = ISSUE_SHAPE + '\n[vrrp_sync_group.G2]\ngroup = ["VI_2"]\n'
    assert problems(text) == [
        "vrrp_sync_group.G2.group[0]: VI_2 is already in vrrp_sync_group.G1 "
        "(an instance is in one group at most)"
    ]


def test_every_problem_at_once() -> None:
    text = (
        ISSUE_SHAPE.replace("rise = 2", "rise = 0")
        .replace('track_script = ["chk_web"]', 'track_script = ["nope"]')
        .replace('group = ["VI_1", "VI_2"]', 'group = ["VI_9"]')
    )
    assert len(problems(text)) == 3


EXCLUDED = """
[vrrp.VI_1]
interface = "eth1"
virtual_router_id = 51
virtual_ipaddress = ["192.0.2.100/32"]
virtual_ipaddress_excluded = [{addresses}]
"""


def test_excluded_vips_are_not_limited_to_one_advert() -> None:
    net = ["203.0.113.", "198.51.100."]
    addresses = ", ".join(
        f'"{net[i // 250]}{i % 250 + 1}/32 dev eth{i // 250 + 2}"' for i in range(300)
    )
    (vi,) = parse_config(EXCLUDED.format(addresses=addresses)).vrrp
    assert len(vi.virtual_ipaddress_excluded) == 300  # past the 255 of one advert
    assert vi.virtual_ipaddress_excluded[0].device == "eth2"
    assert [v.address for v in vi.all_vips][:2] == ["192.0.2.100", "203.0.113.1"]


def test_excluded_vips_are_checked_like_vips() -> None:
    assert problems(EXCLUDED.format(addresses='"224.0.0.18", "192.0.2.100"')) == [
        "vrrp.VI_1.virtual_ipaddress_excluded[0]: 224.0.0.18 is the VRRP multicast group "
        "(RFC 3768 section 5.2.2), not a host",
        "vrrp.VI_1.virtual_ipaddress_excluded: 192.0.2.100 is already held by vrrp.VI_1",
    ]


@pytest.mark.parametrize(
    ("spec", "label", "brd", "problem"),
    [
        ("192.0.2.100/24 brd + label eth1:vip", "eth1:vip", "192.0.2.255", None),
        (
            "192.0.2.100/24 broadcast 192.0.2.127 dev eth2 label eth2:0",
            "eth2:0",
            "192.0.2.127",
            None,
        ),
        (
            "192.0.2.100/24 label vip",
            None,
            None,
            "label 'vip' must start with the device name eth1",
        ),
        ("192.0.2.100/24 label eth1:0123456789a", None, None, "label 'eth1:0123456789a' must"),
        ("192.0.2.100/24 brd nope", None, None, "brd 'nope' is not an IPv4 address or +"),
        ("192.0.2.100/24 label eth1:a label eth1:b", None, None, "'192.0.2.100/24 label eth1:a"),
    ],
)
def test_vip_label_and_broadcast(
    spec: str, label: str | None, brd: str | None, problem: str | None
) -> None:
    text = (
        f'[vrrp.VI_1]\ninterface = "eth1"\nvirtual_router_id = 51\nvirtual_ipaddress = ["{spec}"]\n'
    )
    if problem is None:
        (vip,) = parse_config(text).vrrp[0].virtual_ipaddress
        assert (vip.label, vip.broadcast) == (label, brd)
        assert vip == VirtualAddress(vip.address, vip.prefixlen, vip.device)  # identity unchanged
    else:
        (found,) = problems(text)
        assert found.startswith(f"vrrp.VI_1.virtual_ipaddress[0]: {problem}"), found
