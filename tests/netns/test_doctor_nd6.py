"""`lvsha doctor`'s arp check for an IPv6 VIP: who answers a Neighbour Solicitation for it.

A VRRPv3 pair holds 2001:db8::100; a DR real server with the VIP on `lo`
stays silent (Linux answers an NS only for addresses of the receiving
interface), so only the master answers. Put on the real server's eth1 too,
the VIP is answered by it as well, and doctor names its MAC, from the
master and from the backup. Before this check, an IPv6 VIP crashed it.
"""

from __future__ import annotations

from pathlib import Path

from lab import Director, Host, Lab, wait_for
from nspython import results

VIP6 = "2001:db8::100"


def instance6(priority: int) -> str:
    return (
        "[vrrp.VI_6]\n"
        'interface = "eth1"\n'
        "version = 3\n"
        "virtual_router_id = 61\n"
        f"priority = {priority}\n"
        "advert_int = 0.1\n"
        f'virtual_ipaddress = ["{VIP6}/64"]\n'
    )


def director(lab: Lab, name: str, address: str, priority: int) -> Director:
    host = lab.host(name, address)
    wait_for(host.link_local_ready, 10, interval=0.1)
    return lab.start(host, instance6(priority))


def with_real_server(lab: Lab, d: Director, address: str) -> Path:
    text = d.config.read_text()
    text += f'\n[[virtual_server]]\naddress = "{VIP6}"\nport = 80\n'
    text += f'\n[[virtual_server.real_server]]\naddress = "{address}"\nport = 80\n'
    path = lab.workdir / f"{d.host.name}-doctor.toml"
    path.write_text(text)
    return path


def arp(host: Host, config: Path) -> dict[str, str]:
    [result] = results(host, "check_arp(config, 1.0)", config)
    return result


def test_only_the_master_answers_for_an_ipv6_vip_until_a_real_server_holds_it_on_eth1(
    lab: Lab,
) -> None:
    d1 = director(lab, "i6d1", "192.0.2.11", 150)
    d1.wait_state("MASTER", 5)
    d2 = director(lab, "i6d2", "192.0.2.12", 100)
    d2.wait_state("BACKUP", 5)
    wait_for(lambda: d2.status()["instances"][0]["master"], 5)
    rs = lab.host("i6rs", "192.0.2.21")
    rs.add6("2001:db8::21/64")
    rs.add6(f"{VIP6}/128", dev="lo")
    on_d1 = with_real_server(lab, d1, "2001:db8::21")
    on_d2 = with_real_server(lab, d2, "2001:db8::21")

    ok = arp(d1.host, on_d1)
    assert ok["status"] == "OK", ok
    assert ok["message"] == (
        f"VIP {VIP6} on eth1: only this director (master) answers neighbour solicitations for it"
    )
    ok = arp(d2.host, on_d2)
    assert ok["status"] == "OK", ok
    assert "only the master fe80::" in ok["message"]

    rs.add6(f"{VIP6}/64")  # the mistake: the VIP on the LAN interface as well
    for host, config in ((d1.host, on_d1), (d2.host, on_d2)):
        bad = arp(host, config)
        assert bad["status"] == "FAIL", bad
        assert f"{rs.mac} (2001:db8::21) answers neighbour solicitations for it" in bad["message"]
        assert d1.host.mac not in bad["message"]
        assert (
            bad["fix"]
            == f"on that host: keep {VIP6} on lo only   (lvsha realserver check --vip {VIP6})"
        )
