"""`lvsha doctor` on a BGP director: sloppy_tcp, the speaker, announced VIPs on lo only."""

from __future__ import annotations

from pathlib import Path

from lvsha.adapters.hostnet import Address
from lvsha.config import parse_config
from lvsha.tools.doctor.bgp import check_bgp
from lvsha.tools.doctor.results import Result, Status

CONFIG = """
[daemon]
name = "d1"
[bgp]
local_as = 64513
router_id = "192.0.2.11"
[[bgp.peer]]
address = "192.0.2.1"
peer_as = 64512
[[virtual_server]]
address = "203.0.113.100"
port = 80
announce = "bgp"
[[virtual_server.real_server]]
address = "192.0.2.21"
port = 80
"""


def proc_sys(tmp_path: Path, sloppy_tcp: str | None) -> Path:
    vs = tmp_path / "net" / "ipv4" / "vs"
    vs.mkdir(parents=True)
    if sloppy_tcp is not None:
        (vs / "sloppy_tcp").write_text(sloppy_tcp)
    return tmp_path


def judged(
    tmp_path: Path, sloppy: str | None, binary: str | None, held: list[Address]
) -> dict[str, Result]:
    results = check_bgp(
        parse_config(CONFIG),
        proc_sys=proc_sys(tmp_path, sloppy),
        which=lambda name: binary,
        addresses=lambda: held,
    )
    return {r.check: r for r in results}


def test_a_ready_bgp_director_is_all_ok(tmp_path: Path) -> None:
    lo = Address("lo", "203.0.113.100", 32)
    results = judged(tmp_path, "1\n", "/bin/sh", [lo])
    assert {c: r.status for c, r in results.items()} == {
        "sloppy": Status.OK,
        "bgp-speaker": Status.OK,
        "bgp-vips": Status.OK,
    }


def test_sloppy_tcp_off_or_ip_vs_missing_warns_with_the_fix(tmp_path: Path) -> None:
    off = judged(tmp_path / "a", "0\n", "/bin/sh", [])["sloppy"]
    assert off.status is Status.WARN and off.fix == "sysctl -w net.ipv4.vs.sloppy_tcp=1"
    absent = judged(tmp_path / "b", None, "/bin/sh", [])["sloppy"]
    assert absent.status is Status.WARN and "ip_vs not loaded" in absent.message


def test_a_missing_speaker_fails_with_its_package(tmp_path: Path) -> None:
    result = judged(tmp_path, "1\n", None, [])["bgp-speaker"]
    assert result.status is Status.FAIL and result.fix == "apt install exabgp"


def test_an_announced_address_on_a_lan_interface_fails(tmp_path: Path) -> None:
    held = [Address("lo", "203.0.113.100", 32), Address("eth1", "203.0.113.100", 32)]
    result = judged(tmp_path, "1\n", "/bin/sh", held)["bgp-vips"]
    assert result.status is Status.FAIL and "203.0.113.100 on eth1" in result.message


def test_a_vrrp_only_director_gets_no_bgp_findings(tmp_path: Path) -> None:
    vrrp = """
[daemon]
name = "d1"
[vrrp.VI_1]
interface = "eth1"
virtual_router_id = 51
priority = 100
advert_int = 1
virtual_ipaddress = ["192.0.2.100/32"]
"""
    assert check_bgp(parse_config(vrrp), proc_sys=tmp_path) == []
