"""Config parsing: the lvs01 file loads, and every problem is reported by key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from lvsha.config import VirtualAddress, load_config, parse_config
from lvsha.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = """
[vrrp.VI_1]
interface = "eth1"
virtual_router_id = 51
virtual_ipaddress = ["192.0.2.100/32"]
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    return info.value.problems


def test_lvs01_reference_config_loads_with_its_meaning() -> None:
    config = load_config(ROOT / "conf" / "lvsha.toml")
    (vi,) = config.vrrp
    assert (vi.name, vi.interface, vi.virtual_router_id, vi.priority, vi.advert_int) == (
        "VI_1",
        "eth1",
        51,
        100,
        1,
    )
    assert (vi.auth_type, vi.auth_password, vi.sync_daemon_interface) == ("pass", "grr02", "eth0")
    assert vi.virtual_ipaddress == (VirtualAddress("161.202.132.84", 32, "eth1"),)
    (vs,) = config.virtual_servers
    assert (vs.address, vs.port, vs.protocol, vs.scheduler, vs.forwarding) == (
        "161.202.132.84",
        80,
        "tcp",
        "rr",
        "dr",
    )
    assert (vs.persistence_timeout, vs.delay_loop) == (0, 20.0)
    assert [(r.address, r.port, r.weight) for r in vs.real_servers] == [
        ("161.202.142.206", 80, 1),
        ("161.202.142.207", 80, 1),
    ]
    assert all(
        r.tcp_check is not None and r.tcp_check.connect_timeout == 3 for r in vs.real_servers
    )
    assert config.warnings == ()


def test_defaults_follow_keepalived() -> None:
    (vi,) = parse_config(MINIMAL).vrrp
    assert (vi.priority, vi.advert_int, vi.preempt, vi.auth_type) == (100, 1, True, "none")
    assert (vi.garp_master_delay, vi.garp_master_repeat, vi.garp_master_refresh) == (5.0, 5, 0.0)


def test_every_problem_is_reported_at_once_by_key_path() -> None:
    found = problems(
        """
[daemon]
nmae = "x"
[vrrp.VI_1]
interface = "eth1"
virtual_router_id = 300
priority = "high"
advert_int = 0
preemt = false
authentication = { type = "pass", password = "123456789" }
virtual_ipaddress = ["192.0.2.300/32"]
unicast_peers = ["nope"]
"""
    )
    assert found == [
        "daemon.nmae: unknown key (did you mean 'name'?)",
        "vrrp.VI_1.authentication.password: is 9 octets; PASS carries at most 8 "
        "(keepalived would silently use only '12345678')",
        "vrrp.VI_1.virtual_ipaddress[0]: '192.0.2.300/32' is not an IPv4 address with an "
        "optional /prefixlen",
        "vrrp.VI_1.virtual_router_id: must be 1..255, not 300",
        "vrrp.VI_1.priority: must be an integer, not a string",
        "vrrp.VI_1.advert_int: must be 1..255, not 0",
        "vrrp.VI_1.unicast_peers[0]: 'nope' is not an IPv4 address",
        "vrrp.VI_1.preemt: unknown key (did you mean 'preempt'?)",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[vrrp.A]\nvirtual_router_id = 1\nvirtual_ipaddress = ['192.0.2.1']\n",
            "vrrp.A.interface: is required",
        ),
        (
            "[vrrp.A]\ninterface = 'eth1'\nvirtual_ipaddress = ['192.0.2.1']\n",
            "vrrp.A.virtual_router_id: is required",
        ),
        (
            "[vrrp.A]\ninterface = 'eth1'\nvirtual_router_id = 1\n",
            "vrrp.A.virtual_ipaddress: is required (at least one VIP)",
        ),
        (
            MINIMAL + "authentication = { type = 'ah' }\n",
            "vrrp.VI_1.authentication.type: must be 'none' or 'pass', not 'ah'",
        ),
        (
            MINIMAL + "authentication = { type = 'pass' }\n",
            "vrrp.VI_1.authentication.password: is required with type = 'pass'",
        ),
        (
            MINIMAL + "priority = 255\npreempt = false\n",
            "vrrp.VI_1.preempt: an address owner (priority 255) always preempts; "
            "remove preempt = false",
        ),
        (
            MINIMAL + "notify = []\n",
            "vrrp.VI_1.notify: must be a non-empty array of non-empty strings (argv, no shell)",
        ),
        (
            MINIMAL + "[vrrp.VI_2]\ninterface = 'eth1'\nvirtual_router_id = 51\n"
            "virtual_ipaddress = ['192.0.2.101']\n",
            "vrrp.VI_2.virtual_router_id: 51 is already used on eth1 by vrrp.VI_1",
        ),
        (
            MINIMAL + "[vrrp.VI_2]\ninterface = 'eth2'\nvirtual_router_id = 51\n"
            "virtual_ipaddress = ['192.0.2.100']\n",
            "vrrp.VI_2.virtual_ipaddress: 192.0.2.100 is already held by vrrp.VI_1",
        ),
        (
            "[[virtual_server]]\naddress = '192.0.2.1'\nport = 80\nscheduler = 'fifo'\n",
            "virtual_server[0].scheduler: must be one of dh, fo, lblc, lblcr, lc, mh, nq, ovf, rr, "
            "sed, sh, twos, wlc, wrr, not 'fifo'",
        ),
        (
            "[[virtual_server]]\naddress = '192.0.2.1'\nport = 80\n[[virtual_server.real_server]]\n"
            "address = '198.51.100.1'\nweight = -1\n",
            "virtual_server[0].real_server[0].weight: must be 0..65535, not -1",
        ),
        (
            "[[virtual_server]]\nfwmark = 7\naddress = '192.0.2.1'\n",
            "virtual_server[0].address: a firewall-mark service has no address; "
            "remove it or fwmark",
        ),
        ("vrrp = 3\n", "vrrp: must be a table, not an integer"),
        (
            "[vrrp.A\n",
            "(toml): Expected ']' at the end of a table declaration (at line 1, column 8)",
        ),
    ],
)
def test_each_problem_class_has_its_message(text: str, expected: str) -> None:
    assert expected in problems(text)


def test_virtual_server_outside_every_instance_is_a_warning() -> None:
    config = parse_config(MINIMAL + "[[virtual_server]]\naddress = '192.0.2.7'\nport = 80\n")
    assert config.warnings == (
        "virtual_server[0].address: 192.0.2.7 is not a VIP of any VRRP instance",
    )


def test_vip_with_device_as_keepalived_writes_it() -> None:
    (vi,) = parse_config(MINIMAL.replace('"192.0.2.100/32"', '"192.0.2.100/24 dev eth9"')).vrrp
    assert vi.virtual_ipaddress == (VirtualAddress("192.0.2.100", 24, "eth9"),)


def test_unreadable_file_is_one_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "missing.toml")
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith("(file): cannot read")
