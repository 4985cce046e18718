"""Rules that make a checked config one the runtime can apply and log safely.

Each test here failed on the config before the package split: duplicate
services passed check-config and crashed desired_ipvs() at start; NUL in a
hook argv or an instance name passed and killed the hook runner; interface
names, VIPs and persistence netmasks were checked loosely or not at all.
"""

from __future__ import annotations

import json

import pytest

from lvsha.config import parse_config
from lvsha.core.desired import desired_ipvs
from lvsha.errors import ConfigError

INSTANCE = """
[vrrp.VI_1]
interface = "eth1"
virtual_router_id = 51
virtual_ipaddress = ["192.0.2.100/32"]
"""

SERVICE = """
[[virtual_server]]
address = "192.0.2.100"
port = 80
[[virtual_server.real_server]]
address = "198.51.100.21"
"""

FWMARK = """
[[virtual_server]]
fwmark = 7
[[virtual_server.real_server]]
address = "198.51.100.21"
port = 80
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    return info.value.problems


def instance(**keys: str) -> str:
    """INSTANCE with keys replaced or added (values as TOML text)."""
    lines = [line for line in INSTANCE.strip().splitlines() if line.split(" = ")[0] not in keys]
    return "\n".join([*lines, *(f"{k} = {v}" for k, v in keys.items())]) + "\n"


# ------------------------------------------------------------ duplicates --


def test_two_services_with_one_ipvs_key_are_refused_before_desired_ipvs_would_raise() -> None:
    text = INSTANCE + SERVICE + SERVICE.replace("198.51.100.21", "198.51.100.22")
    assert problems(text) == [
        "virtual_server[1]: same service as virtual_server[0] (tcp 192.0.2.100:80)"
    ]


def test_the_same_address_and_port_on_another_protocol_is_another_service() -> None:
    text = INSTANCE + SERVICE + SERVICE.replace("port = 80", 'port = 80\nprotocol = "udp"', 1)
    config = parse_config(text)
    assert len(desired_ipvs(config.virtual_servers)) == 2


def test_two_fwmark_services_with_one_mark_are_refused() -> None:
    text = INSTANCE + FWMARK + FWMARK.replace('protocol = "tcp"', "").replace("port = 80", "")
    assert problems(text) == ["virtual_server[1]: same service as virtual_server[0] (fwmark 7)"]


def test_a_third_copy_names_the_first_one() -> None:
    assert problems(INSTANCE + SERVICE * 3) == [
        "virtual_server[1]: same service as virtual_server[0] (tcp 192.0.2.100:80)",
        "virtual_server[2]: same service as virtual_server[0] (tcp 192.0.2.100:80)",
    ]


def test_services_already_broken_do_not_also_clash_on_their_defaults() -> None:
    broken = "[[virtual_server]]\nport = 80\n"  # no address: defaults would clash
    assert problems(INSTANCE + broken + broken) == [
        "virtual_server[0].address: is required",
        "virtual_server[1].address: is required",
    ]


def test_every_accepted_config_builds_its_ipvs_table() -> None:
    """The contract #9 broke: whatever check-config accepts, desired_ipvs() takes."""
    text = INSTANCE + SERVICE + FWMARK + SERVICE.replace("port = 80", "port = 443", 1)
    assert len(desired_ipvs(parse_config(text).virtual_servers)) == 3


# --------------------------------------------------- control characters --


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (
            {"notify": '["/usr/local/sbin/lvs-notify", "a\\u0000b"]'},
            "vrrp.VI_1.notify[1]: 'a\\x00b' holds a control character (U+0000)",
        ),
        (
            {"notify_master": '["/bin/echo\\n"]'},
            "vrrp.VI_1.notify_master[0]: '/bin/echo\\n' holds a control character (U+000A)",
        ),
        (
            {"notify_fault": '["/bin/echo", "\\u202etxt.exe"]'},
            "vrrp.VI_1.notify_fault[1]: '\\u202etxt.exe' holds a control character "
            "(U+202E RIGHT-TO-LEFT OVERRIDE)",
        ),
        (
            {"notify_backup": '["/bin/echo", "x\\u007f"]'},
            "vrrp.VI_1.notify_backup[1]: 'x\\x7f' holds a control character (U+007F)",
        ),
    ],
)
def test_hook_argv_refuses_control_characters(keys: dict[str, str], expected: str) -> None:
    assert problems(instance(**keys)) == [expected]


def test_instance_name_with_a_nul_is_refused_and_shown_quoted() -> None:
    text = INSTANCE.replace("[vrrp.VI_1]", '[vrrp."VI\\u0000 1"]')
    assert problems(text) == [
        "vrrp.'VI\\x00 1': instance name 'VI\\x00 1' holds a control character (U+0000)"
    ]


def test_misc_check_argv_refuses_a_nul() -> None:
    text = INSTANCE + SERVICE + 'misc_check = { argv = ["/bin/check", "\\u0000"] }\n'
    assert problems(text) == [
        "virtual_server[0].real_server[0].misc_check.argv[1]: '\\x00' holds a control "
        "character (U+0000)"
    ]


@pytest.mark.parametrize(
    ("daemon", "expected"),
    [
        ('name = "lvs\\n1"', "daemon.name: 'lvs\\n1' holds a control character (U+000A)"),
        ('name = ""', "daemon.name: must not be empty"),
        (
            'control_socket = "/run/x\\u0000"',
            "daemon.control_socket: '/run/x\\x00' holds a control character (U+0000)",
        ),
        (
            'control_group = "a\\tb"',
            "daemon.control_group: 'a\\tb' holds a control character (U+0009)",
        ),
    ],
)
def test_daemon_strings_refuse_control_characters(daemon: str, expected: str) -> None:
    assert problems(f"[daemon]\n{daemon}\n" + INSTANCE) == [expected]


def test_password_refuses_a_nul_keepalived_would_cut_at() -> None:
    text = instance(authentication='{ type = "pass", password = "ab\\u0000c" }')
    assert problems(text) == [
        "vrrp.VI_1.authentication.password: 'ab\\x00c' holds a control character (U+0000)"
    ]


def test_non_ascii_text_is_fine() -> None:
    text = instance(notify='["/usr/local/sbin/notifié", "état"]')
    (vi,) = parse_config(text).vrrp
    assert vi.notify == ("/usr/local/sbin/notifié", "état")


# ------------------------------------------------------- interface names --


@pytest.mark.parametrize(
    "name",
    [
        "eth1:0",  # an alias label, not a device (dev_valid_name refuses ':')
        ".",
        "..",
        "a/b",
        "eth\t1",
        "eth\u00a01",  # U+00A0 is encoded as C2 A0; the kernel's isspace(0xA0) is true
        "ééééééééé",  # 9 characters, 18 bytes: over IFNAMSIZ - 1
        "0123456789abcdef",  # 16 bytes
        "eth\u00001",
        "",
    ],
)
def test_interface_names_are_checked_as_linux_does(name: str) -> None:
    (problem,) = problems(instance(interface=json.dumps(name)))
    assert problem.startswith("vrrp.VI_1.interface: ") and problem.endswith(
        " is not an interface name"
    )


@pytest.mark.parametrize("name", ["eth1", "0123456789abcde", "bond0.100", "veth-a_b", "éé"])
def test_valid_interface_names_pass(name: str) -> None:
    (vi,) = parse_config(instance(interface=f'"{name}"')).vrrp
    assert vi.interface == name


def test_every_interface_key_uses_the_linux_rule() -> None:
    text = instance(
        track_interface='["eth0", "a:b"]',
        sync_daemon_interface='"x/y"',
        virtual_ipaddress='["192.0.2.100/32 dev eth1:1"]',
    )
    assert problems(text) == [
        "vrrp.VI_1.virtual_ipaddress[0]: 'eth1:1' is not an interface name",
        "vrrp.VI_1.track_interface[1]: 'a:b' is not an interface name",
        "vrrp.VI_1.sync_daemon_interface: 'x/y' is not an interface name",
    ]


# ---------------------------------------------------------------- VIPs --


@pytest.mark.parametrize(
    ("vip", "expected"),
    [
        (
            "224.0.0.18/32",
            "224.0.0.18 is the VRRP multicast group (RFC 3768 section 5.2.2), not a host",
        ),
        ("239.1.2.3", "239.1.2.3 is a multicast address, not a host"),
        ("0.0.0.0/0", "0.0.0.0 is the unspecified address, not a host"),
        ("0.0.0.0/32", "0.0.0.0 is the unspecified address, not a host"),
        ("255.255.255.255/32", "255.255.255.255 is the limited broadcast address, not a host"),
        ("127.0.0.2/32", "127.0.0.2 is a loopback address; no other host can reach it as a VIP"),
        ("192.0.2.100/0", "192.0.2.100/0: a /0 VIP would put every address on the link"),
    ],
)
def test_addresses_that_cannot_be_a_vip_are_refused(vip: str, expected: str) -> None:
    text = instance(virtual_ipaddress=f'["{vip}"]')
    assert problems(text) == [f"vrrp.VI_1.virtual_ipaddress[0]: {expected}"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("unicast_peers", '["224.0.0.18"]'),
        ("unicast_src_ip", '"0.0.0.0"'),
    ],
)
def test_peers_must_be_hosts(key: str, value: str) -> None:
    (problem,) = problems(instance(**{key: value}))
    assert problem.startswith(f"vrrp.VI_1.{key}")
    assert "not a host" in problem


def test_real_and_virtual_server_addresses_must_be_hosts() -> None:
    text = INSTANCE + SERVICE.replace("198.51.100.21", "255.255.255.255").replace(
        "192.0.2.100", "0.0.0.0", 1
    )
    assert problems(text) == [
        "virtual_server[0].address: 0.0.0.0 is the unspecified address, not a host",
        "virtual_server[0].real_server[0].address: 255.255.255.255 is the limited broadcast "
        "address, not a host",
    ]


def test_loopback_real_servers_stay_allowed() -> None:
    """A director may balance to itself; tests probe 127.0.0.1."""
    text = INSTANCE + SERVICE.replace("198.51.100.21", "127.0.0.1")
    (vs,) = parse_config(text).virtual_servers
    assert vs.real_servers[0].address == "127.0.0.1"


# ------------------------------------------------------------ netmasks --


@pytest.mark.parametrize("mask", ["255.0.255.0", "255.255.255.1", "0.255.255.255", "128.0.0.1"])
def test_non_contiguous_persistence_netmask_is_refused(mask: str) -> None:
    text = INSTANCE + SERVICE.replace("port = 80", f'port = 80\npersistence_netmask = "{mask}"', 1)
    assert problems(text) == [
        f"virtual_server[0].persistence_netmask: {mask} is not a netmask: its one bits "
        "must be contiguous (e.g. 255.255.255.0)"
    ]


@pytest.mark.parametrize("mask", ["255.255.255.255", "255.255.255.0", "255.128.0.0", "0.0.0.0"])
def test_contiguous_persistence_netmask_passes(mask: str) -> None:
    text = INSTANCE + SERVICE.replace("port = 80", f'port = 80\npersistence_netmask = "{mask}"', 1)
    (vs,) = parse_config(text).virtual_servers
    assert vs.persistence_netmask == mask


# ------------------------------------------------------------- metrics --


@pytest.mark.parametrize("listen", ["0.0.0.0:9650", "192.0.2.1:9650", "metrics.example:9650"])
def test_metrics_off_loopback_is_a_warning(listen: str) -> None:
    config = parse_config(f'[daemon]\nmetrics = "{listen}"\n' + INSTANCE)
    assert config.warnings == (
        f"daemon.metrics: {listen} is not a loopback address; /metrics has no authentication, "
        "so anyone who reaches it reads the whole status",
    )


@pytest.mark.parametrize(
    "listen", ["127.0.0.1:9650", "127.0.0.53:9650", "localhost:9650", "[::1]:9650"]
)
def test_metrics_on_loopback_is_quiet(listen: str) -> None:
    assert parse_config(f'[daemon]\nmetrics = "{listen}"\n' + INSTANCE).warnings == ()


def test_an_empty_instance_name_is_refused() -> None:
    text = INSTANCE.replace("[vrrp.VI_1]", '[vrrp.""]')
    assert problems(text) == ["vrrp: instance name must not be empty"]
