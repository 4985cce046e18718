"""lvsha/config/limits.py is what the parser checks: each bound, at both ends.

The keepalived importer reuses these constants; if the parser checked other
numbers, the importer would write values the parser refuses.
"""

from __future__ import annotations

import pytest

from lvsha.config import limits, parse_config
from lvsha.config.limits import Bounds, IntBounds
from lvsha.errors import ConfigError

HEAD = """
[vrrp.VI_1]
interface = "eth1"
virtual_router_id = 51
virtual_ipaddress = ["192.0.2.100/32"]
{vrrp}
[[virtual_server]]
address = "192.0.2.100"
port = 80
{service}
[[virtual_server.real_server]]
address = "198.51.100.21"
{real}
"""

# (where, key, bounds): `where` is the table the key goes in.
KEYS = [
    ("vrrp", "virtual_router_id", limits.VIRTUAL_ROUTER_ID),
    ("vrrp", "priority", limits.PRIORITY),
    ("vrrp", "advert_int", limits.ADVERT_INT),
    ("vrrp", "preempt_delay", limits.PREEMPT_DELAY),
    ("vrrp", "garp_master_delay", limits.GARP_MASTER_DELAY),
    ("vrrp", "garp_master_repeat", limits.GARP_REPEAT),
    ("vrrp", "garp_interval", limits.GARP_INTERVAL),
    ("vrrp", "garp_master_refresh", limits.GARP_MASTER_REFRESH),
    ("vrrp", "garp_master_refresh_repeat", limits.GARP_REPEAT),
    ("service", "port", limits.PORT),
    ("service", "persistence_timeout", limits.PERSISTENCE_TIMEOUT),
    ("service", "delay_loop", limits.DELAY_LOOP),
    ("service", "quorum", limits.QUORUM),
    ("service", "hysteresis", limits.QUORUM),
    ("real", "port", limits.PORT),
    ("real", "weight", limits.WEIGHT),
    ("real", "retry", limits.RETRY),
    ("real", "delay_before_retry", limits.DELAY_BEFORE_RETRY),
    ("real", "rise", limits.RISE_FALL),
    ("real", "fall", limits.RISE_FALL),
    ("real", "warmup", limits.WARMUP),
    ("real", "tcp_check.connect_timeout", limits.CONNECT_TIMEOUT),
    ("real", "tcp_check.connect_port", limits.CHECK_PORT),
]
PATHS = {
    "vrrp": "vrrp.VI_1",
    "service": "virtual_server[0]",
    "real": "virtual_server[0].real_server[0]",
}


def config(where: str, key: str, value: float) -> str:
    parts = {"vrrp": "", "service": "", "real": ""}
    if "." in key:
        table, sub = key.split(".")
        parts[where] = f"{table} = {{ {sub} = {value!r} }}"
    else:
        parts[where] = f"{key} = {value!r}"
    text = HEAD.format(**parts)
    if where == "vrrp" and key == "virtual_router_id":
        text = text.replace("virtual_router_id = 51\n", "", 1)
    if where == "service" and key == "port":
        text = text.replace("port = 80\n", "", 1)
    return text


def shown(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else f"{number:g}"


@pytest.mark.parametrize(("where", "key", "bounds"), KEYS, ids=[f"{w}.{k}" for w, k, _ in KEYS])
def test_each_bound_is_the_parsers_at_both_ends(
    where: str, key: str, bounds: Bounds | IntBounds
) -> None:
    step = 1 if isinstance(bounds, IntBounds) else 0.001
    for inside in (bounds.low, bounds.high):
        parse_config(config(where, key, inside))
    for outside in (bounds.low - step, bounds.high + step):
        with pytest.raises(ConfigError) as info:
            parse_config(config(where, key, outside))
        expected = f"{PATHS[where]}.{key}: must be {shown(bounds.low)}..{shown(bounds.high)}, not "
        assert [p for p in info.value.problems if p.startswith(expected)], info.value.problems


def test_bounds_unpack_for_the_importer_and_refuse_non_numbers() -> None:
    low, high = limits.PRIORITY
    assert (low, high) == (1, 255)
    assert 255 in limits.PRIORITY and 256 not in limits.PRIORITY
    assert True not in limits.PRIORITY and "1" not in limits.PRIORITY
    assert 2**5000 not in limits.QUORUM
    assert 0.1 in limits.DELAY_LOOP and 0.09 not in limits.DELAY_LOOP
