"""Hostile values: whatever TOML can hold, the parser answers `key.path: message`.

Issue 10, defect 10: check-config printed a traceback (exit 1, not 78) on
a port in superscript digits, integers past Python's 4300-digit limit or
too big for a float, regexes that overflow or recurse, and arrays nested
past the recursion limit. The fixed cases below each raised something other
than ConfigError before the package split; the Hypothesis test puts random
TOML values under every key and asserts nothing but ConfigError escapes.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lvsha.config import load_config, parse_config
from lvsha.core.announce import BgpDecision
from lvsha.core.desired import desired_ipvs
from lvsha.core.health import apply_health, health_params
from lvsha.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
BASE = (ROOT / "tests" / "data" / "good-config" / "lvs01.toml").read_text(encoding="utf-8")
CHECK = "tcp_check = { connect_timeout = 3 }"


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    return info.value.problems


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            BASE.replace("[daemon]", '[daemon]\nmetrics = "127.0.0.1:²"'),
            "daemon.metrics: '127.0.0.1:²' is not HOST:PORT (e.g. 127.0.0.1:9650)",
        ),
        (
            BASE.replace("[daemon]", '[daemon]\nmetrics = "127.0.0.1:٩٦٥٠"'),  # Arabic-Indic
            "daemon.metrics: '127.0.0.1:٩٦٥٠' is not HOST:PORT (e.g. 127.0.0.1:9650)",
        ),
        (
            BASE.replace("[daemon]", '[daemon]\nmetrics = "127.0.0.1:' + "9" * 5000 + '"'),
            "daemon.metrics: '127.0.0.1:" + "9" * 70 + "...' is not HOST:PORT "
            "(e.g. 127.0.0.1:9650)",
        ),
        (
            BASE.replace("priority = 100", "priority = " + "1" * 4301),
            "vrrp.VI_1.priority: must be 1..255, not an integer of 4301 digits",
        ),
        (
            BASE.replace("priority = 100", "priority = 0x" + "f" * 3700),
            "vrrp.VI_1.priority: must be 1..255, not an integer of 4456 digits",
        ),
        (
            BASE.replace("delay_loop = 20", "delay_loop = 0x" + "f" * 3700),
            "virtual_server[0].delay_loop: must be 0.1..86400, not an integer of 4456 digits",
        ),
        (
            BASE.replace("priority = 100", "priority = 100\npreempt_delay = 1" + "0" * 400),
            "vrrp.VI_1.preempt_delay: must be 0..1000, not an integer of 401 digits",
        ),
        (
            BASE.replace("priority = 100", "priority = 100\npreempt_delay = 1" + "0" * 400 + ".0"),
            "vrrp.VI_1.preempt_delay: must be 0..1000, not inf",
        ),
        (
            BASE.replace("priority = 100", "priority = 100\npreempt_delay = nan"),
            "vrrp.VI_1.preempt_delay: must be a number, not nan",
        ),
        (
            BASE.replace(CHECK, "http_get = { regex = 'a{4294967296}' }"),
            "virtual_server[0].real_server[0].http_get.regex: is not a valid regular "
            "expression: a repetition count is too large",
        ),
        (
            BASE.replace(CHECK, "http_get = { regex = '" + "(" * 1000 + ")" * 1000 + "' }"),
            "virtual_server[0].real_server[0].http_get.regex: is not a valid regular "
            "expression: nested too deeply",
        ),
        (
            BASE.replace("priority = 100", "priority = " + "[" * 1000 + "]" * 1000),
            "(toml): arrays or tables are nested too deeply (at line 10)",
        ),
        (
            BASE.replace("priority = 100", "priority = " + "{a = " * 1000 + "1" + "}" * 1000),
            "(toml): arrays or tables are nested too deeply (at line 10)",
        ),
        (
            BASE.replace("priority = 100", "priority = " + "1" * 30000),
            "(toml): an integer has too many digits (at line 10)",
        ),
        (
            BASE.replace(CHECK, "http_get = { status = " + "[" * 200 + "]" * 200 + " }"),
            "virtual_server[0].real_server[0].http_get.status[0]: must be an HTTP status "
            'code 100..599 or a range "200-299", not an array',
        ),
        (
            BASE.replace("[daemon]", '[daemon]\n"bad\\nkey" = 1'),
            "daemon.'bad\\nkey': unknown key",
        ),
        (
            BASE.replace("[daemon]", "[daemon]\n" + "k" * 10000 + " = 1"),
            "daemon.'" + "k" * 80 + "...': unknown key",
        ),
    ],
    ids=[
        "superscript-port",
        "arabic-indic-port",
        "port-of-5000-digits",
        "int-of-4301-digits",
        "hex-of-3700-f",
        "hex-where-a-float-goes",
        "int-too-big-for-a-float",
        "float-overflow-to-inf",
        "nan",
        "regex-repeat-overflow",
        "regex-1000-groups",
        "arrays-1000-deep",
        "inline-tables-1000-deep",
        "int-of-30000-digits",
        "status-nested-200-deep",
        "key-with-a-newline",
        "key-of-10000-characters",
    ],
)
def test_hostile_value_is_one_problem_with_its_key_path(text: str, expected: str) -> None:
    assert problems(text) == [expected]


def test_the_int_digit_limit_is_restored_after_a_long_integer() -> None:
    import sys

    limit = sys.get_int_max_str_digits()
    problems(BASE.replace("priority = 100", "priority = " + "1" * 4301))
    assert sys.get_int_max_str_digits() == limit


def test_a_path_with_a_nul_is_one_problem() -> None:
    with pytest.raises(ConfigError) as info:
        load_config("/etc/lvsha\0.toml")
    (problem,) = info.value.problems
    assert problem.startswith("(file): cannot read ")


# --------------------------------------------------------------- the net --

# The lvs01 config as data, with every optional key present, so that the
# Hypothesis test below can put a random value under any of them.
FULL: dict[str, Any] = {
    "daemon": {
        "name": "lvs1",
        "control_socket": "/run/lvsha/lvsha.sock",
        "control_group": "lvsha",
        "metrics": "127.0.0.1:9650",
        "log_format": "auto",
    },
    "vrrp": {
        "VI_1": {
            "interface": "eth1",
            "virtual_router_id": 51,
            "priority": 100,
            "advert_int": 1,
            "preempt": True,
            "preempt_delay": 0,
            "authentication": {"type": "pass", "password": "grr02"},
            "virtual_ipaddress": ["192.0.2.100/32", "192.0.2.101/32 dev eth1"],
            "unicast_peers": ["192.0.2.2"],
            "unicast_src_ip": "192.0.2.1",
            "track_interface": ["eth0"],
            "sync_daemon_interface": "eth0",
            "notify": ["/usr/local/sbin/lvs-notify"],
            "notify_master": ["/bin/true"],
            "notify_backup": ["/bin/true"],
            "notify_fault": ["/bin/true"],
            "garp_master_delay": 5,
            "garp_master_repeat": 5,
            "garp_interval": 0.0,
            "garp_master_refresh": 0,
            "garp_master_refresh_repeat": 1,
        }
    },
    "virtual_server": [
        {
            "address": "192.0.2.100",
            "port": 80,
            "protocol": "tcp",
            "scheduler": "rr",
            "scheduler_flags": ["sh-port"],
            "forwarding": "dr",
            "persistence_timeout": 0,
            "persistence_netmask": "255.255.255.255",
            "delay_loop": 20,
            "quorum": 1,
            "hysteresis": 0,
            "inhibit_on_failure": False,
            "ipvs_cleanup_on_stop": False,
            "sorry_server": {"address": "198.51.100.9", "port": 80},
            "real_server": [
                {
                    "address": "198.51.100.21",
                    "port": 80,
                    "weight": 1,
                    "retry": 1,
                    "delay_before_retry": 1,
                    "rise": 1,
                    "fall": 1,
                    "warmup": 0,
                    "initial_state": "up",
                    "tcp_check": {"connect_timeout": 3, "connect_ip": "198.51.100.21"},
                },
                {
                    "address": "198.51.100.22",
                    "http_get": {
                        "path": "/health",
                        "status": [200],
                        "regex": "ok",
                        "digest": "0" * 32,
                        "host": "www.example",
                        "connect_timeout": 3,
                        "connect_port": 8080,
                    },
                },
                {
                    "address": "198.51.100.23",
                    "ssl_get": {"sni": "www.example", "verify_certificate": True},
                },
                {"address": "198.51.100.24", "misc_check": {"argv": ["/bin/true"], "timeout": 3}},
            ],
        },
        {"fwmark": 7, "real_server": [{"address": "198.51.100.31", "port": 80}]},
        {
            "address": "203.0.113.100",
            "port": 80,
            "announce": "bgp",
            "real_server": [{"address": "198.51.100.41"}],
        },
    ],
    "bgp": {
        "local_as": 64513,
        "router_id": "192.0.2.11",
        "speaker": "bird",
        "speaker_path": "/usr/sbin/bird",
        "hold_time": 3,
        "bfd": True,
        "bfd_interval": 0.1,
        "bfd_multiplier": 3,
        "communities": ["64513:100"],
        "med": 10,
        "next_hop": "192.0.2.11",
        "drain_file": "/run/lvsha/drain",
        "state_dir": "/run/lvsha/bgp",
        "liveness": 1.0,
        "reannounce_delay": 1.0,
        "peer": [
            {
                "address": "192.0.2.1",
                "peer_as": 64512,
                "local_address": "192.0.2.11",
                "hold_time": 9,
                "bfd": True,
                "multihop": 2,
                "passive": False,
            },
            {"address": "2001:db8::1", "peer_as": 64512},
        ],
    },
}


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path and array index in FULL, tables and arrays included."""
    out = [path] if path else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*path, i))
    return out


PATHS = _paths(FULL)


class Huge:
    """An integer of `bits` one bits, written in hex: Python cannot repr() it in decimal."""

    def __init__(self, bits: int) -> None:
        self.bits = bits

    def __repr__(self) -> str:
        return f"Huge({self.bits})"


def toml(value: Any) -> str:
    """A value as TOML text (inline tables, so the whole file is one value per line)."""
    if isinstance(value, Huge):
        return hex(2**value.bits - 1)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{toml(str(k))} = {toml(v)}" for k, v in value.items()) + "}"


def document(data: dict[str, Any]) -> str:
    return "".join(f"{toml(key)} = {toml(value)}\n" for key, value in data.items())


SCALARS = st.one_of(
    st.booleans(),
    st.integers(),
    st.sampled_from([0, -1, 256, 65536, 2**32, 2**63, -(2**63), 10**400]),
    st.sampled_from([Huge(1400), Huge(14800)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(
        [
            "127.0.0.1:²",
            "0.0.0.0/0",
            "224.0.0.18",
            "255.0.255.0",
            "a{4294967296}",
            "(" * 1000,
            "eth1:0",
            "\x00",
            "/bin/true",
            "192.0.2.100/32 dev",
            "rr",
        ]
    ),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _set(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    node: Any = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    changes=st.lists(st.tuples(st.sampled_from(PATHS), VALUES), min_size=1, max_size=3),
    extra=st.none() | st.tuples(st.text(min_size=1, max_size=12), VALUES),
)
def test_random_values_under_any_key_raise_nothing_but_config_error(
    changes: list[tuple[tuple[Any, ...], Any]], extra: tuple[str, Any] | None
) -> None:
    data = copy.deepcopy(FULL)
    for path, value in changes:
        with contextlib.suppress(KeyError, IndexError, TypeError):
            _set(data, path, value)  # fails if an earlier change replaced a parent
    if extra is not None and isinstance(data.get("daemon"), dict):
        data["daemon"][extra[0]] = extra[1]
    try:
        config = parse_config(document(data))
    except ConfigError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.isprintable(), problem  # one line, no terminal escapes
            assert ": " in problem, problem
        return
    # Whatever check-config accepts, the core takes (defect 9: desired_ipvs raised).
    desired_ipvs(apply_health(config.virtual_servers, {}, {}))
    if config.bgp is not None:  # every announced service has an address to announce
        BgpDecision(config.virtual_servers, config.bgp, 0.0)
    for vs in config.virtual_servers:
        for rs in vs.real_servers:
            health_params(vs, rs)


def test_the_full_config_of_the_net_is_valid() -> None:
    """The net starts from a config that passes, so every problem it finds is the change's."""
    config = parse_config(document(FULL))
    assert len(config.virtual_servers) == 3 and config.bgp is not None


REAL = st.fixed_dictionaries(
    {"address": st.sampled_from(["198.51.100.21", "198.51.100.22"])},
    optional={"port": st.sampled_from([80, 8080])},
)
SERVICE = st.one_of(
    st.fixed_dictionaries(
        {
            "address": st.sampled_from(["192.0.2.100", "192.0.2.101"]),
            "port": st.sampled_from([80, 443]),
            "real_server": st.lists(REAL, max_size=3),
        },
        optional={"protocol": st.sampled_from(["tcp", "udp"])},
    ),
    st.fixed_dictionaries(
        {"fwmark": st.sampled_from([1, 2]), "real_server": st.lists(REAL, max_size=3)},
        optional={"protocol": st.sampled_from(["tcp", "udp"])},
    ),
)


@settings(max_examples=200, deadline=None)
@given(services=st.lists(SERVICE, min_size=1, max_size=4))
def test_whatever_check_config_accepts_desired_ipvs_builds(services: list[dict[str, Any]]) -> None:
    """Defect 9: duplicate services passed the check and desired_ipvs() raised at start."""
    data = {"vrrp": copy.deepcopy(FULL["vrrp"]), "virtual_server": services}
    try:
        config = parse_config(document(data))
    except ConfigError:
        return
    assert len(desired_ipvs(config.virtual_servers)) == len(services)
