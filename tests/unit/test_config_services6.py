"""IPv6 `[[virtual_server]]`: addresses, one family per service, the persistence prefix."""

from __future__ import annotations

import pytest

from lvsha.config import parse_config
from lvsha.config.model import Config
from lvsha.core.desired import DestKey, ServiceKey, desired_ipvs
from lvsha.errors import ConfigError


def service(body: str = "", reals: tuple[str, ...] = ("2001:db8::21", "2001:db8::22")) -> str:
    text = f'[[virtual_server]]\naddress = "2001:db8::100"\nport = 80\n{body}\n'
    for r in reals:
        text += f'[[virtual_server.real_server]]\naddress = "{r}"\n'
    return text


def parse(text: str) -> Config:
    return parse_config(text)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse_config(text)
    return exc.value.problems


def test_ipv6_service_and_real_servers_in_the_kernels_spelling() -> None:
    cfg = parse(
        '[[virtual_server]]\naddress = "2001:DB8:0:0::100"\nport = 443\nforwarding = "nat"\n'
        '[[virtual_server.real_server]]\naddress = "2001:0db8::0021"\n'
        'tcp_check = { connect_ip = "2001:db8::99" }\n'
        '[virtual_server.sorry_server]\naddress = "2001:db8::9"\n'
    )
    vs = cfg.virtual_servers[0]
    assert vs.address == "2001:db8::100"
    assert vs.real_servers[0].address == "2001:db8::21"
    assert vs.real_servers[0].tcp_check is not None
    assert vs.real_servers[0].tcp_check.connect_ip == "2001:db8::99"
    assert vs.sorry_server is not None and vs.sorry_server.address == "2001:db8::9"
    (svc,) = desired_ipvs(cfg.virtual_servers)
    assert svc.key == ServiceKey("tcp", "2001:db8::100", 443)
    assert svc.key.family == 6
    assert svc.netmask == "128"  # ipvsadm's default prefix for IPv6
    assert [d.key for d in svc.destinations] == [DestKey("2001:db8::21", 443)]
    assert str(svc.key) == "TCP [2001:db8::100]:443"
    assert str(svc.destinations[0]) == "[2001:db8::21]:443 nat weight 1"


def test_same_real_server_spelled_twice_is_one_duplicate() -> None:
    got = problems(service(reals=("2001:db8::21", "2001:DB8:0::21")))
    assert got == ["virtual_server[0].real_server[1]: [2001:db8::21]:80 is listed twice"]


@pytest.mark.parametrize(("value", "stored"), [("64", "64"), ('"64"', "64"), ('"/48"', "48")])
def test_ipv6_persistence_granularity_is_a_prefix_length(value: str, stored: str) -> None:
    cfg = parse(service(f"persistence_timeout = 300\npersistence_netmask = {value}"))
    assert cfg.virtual_servers[0].persistence_netmask == stored
    (svc,) = desired_ipvs(cfg.virtual_servers)
    assert (svc.timeout, svc.netmask) == (300, stored)
    assert svc.describe() == f"TCP [2001:db8::100]:80 wlc persistent 300 mask {stored}"


@pytest.mark.parametrize("value", ['"255.255.255.0"', "0", "129", '"64x"', "true"])
def test_ipv6_persistence_netmask_must_be_a_prefix(value: str) -> None:
    (msg,) = problems(service(f"persistence_netmask = {value}"))
    assert msg.startswith(
        "virtual_server[0].persistence_netmask: an IPv6 service's persistence granularity "
        "is a prefix length 1..128 (like ipvsadm -M 64), not "
    )


def test_ipv4_persistence_netmask_stays_a_dotted_quad() -> None:
    text = '[[virtual_server]]\naddress = "192.0.2.100"\nport = 80\npersistence_netmask = 24\n'
    assert problems(text) == [
        "virtual_server[0].persistence_netmask: must be a string, not an integer"
    ]


def test_one_family_per_service() -> None:
    got = problems(service(reals=("2001:db8::21", "192.0.2.22")))
    assert got == [
        "virtual_server[0].real_server[1].address: 192.0.2.22 is IPv4 but the service "
        "2001:db8::100 is IPv6: one family per service (IPVS forwards across families "
        "only by tunnel)"
    ]
    text = '[[virtual_server]]\naddress = "192.0.2.100"\nport = 80\n'
    text += '[virtual_server.sorry_server]\naddress = "2001:db8::9"\n'
    assert problems(text) == [
        "virtual_server[0].sorry_server.address: 2001:db8::9 is IPv6 but the service "
        "192.0.2.100 is IPv4: one family per service (IPVS forwards across families "
        "only by tunnel)"
    ]


def test_a_fwmark_service_takes_the_family_of_its_real_servers() -> None:
    text = "[[virtual_server]]\nfwmark = 7\npersistence_timeout = 60\npersistence_netmask = 64\n"
    text += '[[virtual_server.real_server]]\naddress = "2001:db8::21"\nport = 80\n'
    text += "[[virtual_server]]\nfwmark = 7\n"  # the same mark for IPv4: another service
    text += '[[virtual_server.real_server]]\naddress = "198.51.100.1"\nport = 80\n'
    v4, v6 = desired_ipvs(parse(text).virtual_servers)  # sorted: "" before "::"
    assert (v6.key, v4.key) == (ServiceKey.for_fwmark(7, 6), ServiceKey.for_fwmark(7))
    assert (str(v6.key), str(v4.key)) == ("FWM 7 IPv6", "FWM 7")
    assert (v6.key.family, v4.key.family) == (6, 4)
    assert (v6.netmask, v4.netmask) == ("64", "255.255.255.255")


def test_a_fwmark_service_mixing_families_is_refused() -> None:
    text = "[[virtual_server]]\nfwmark = 7\n"
    text += '[[virtual_server.real_server]]\naddress = "2001:db8::21"\nport = 80\n'
    text += '[[virtual_server.real_server]]\naddress = "198.51.100.1"\nport = 80\n'
    assert problems(text) == [
        "virtual_server[0].real_server[1].address: 198.51.100.1 is IPv4 but this "
        "firewall-mark service is IPv6 (the family of its first real server): one family "
        "per service"
    ]


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("ff02::1", "is a multicast address, not a host"),
        ("::", "is the unspecified address, not a host"),
        ("::ffff:192.0.2.1", "is an IPv4-mapped IPv6 address; write the IPv4 address 192.0.2.1"),
        ("2001:db8::zz", "is not an IP address"),
    ],
)
def test_bad_ipv6_addresses_are_named_with_their_key(address: str, why: str) -> None:
    got = problems(service(reals=(address,)))
    assert len(got) == 1 and got[0].startswith("virtual_server[0].real_server[0].address: ")
    assert got[0].endswith(why)
    got = problems(service().replace('"2001:db8::100"', f'"{address}"', 1))
    assert got[0].startswith("virtual_server[0].address: ") and got[0].endswith(why)


def test_a_duplicate_ipv6_service_is_named_with_brackets() -> None:
    text = """
[daemon]
name = "d1"
[vrrp.VI_1]
interface = "eth1"
virtual_router_id = 51
priority = 100
advert_int = 1
virtual_ipaddress = ["192.0.2.100/32"]
[[virtual_server]]
address = "2001:db8::100"
port = 80
[[virtual_server]]
address = "2001:db8::100"
port = 80
"""
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert any("tcp [2001:db8::100]:80" in p for p in info.value.problems), info.value.problems
