"""`lvsha doctor`'s judgements without a network: what it concludes from what it saw.

The namespace tier (tests/netns/test_doctor.py) produces the same inputs
for real; here they are written by hand so that every branch is walked.
ARP frames are checked against scapy, an independent decoder.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.l2 import ARP, Ether

from lvsha.config import parse_config
from lvsha.config.router import router_params
from lvsha.core.packet import AUTH_NONE, AUTH_PASS, IPPROTO_VRRP, IPv4Header, pad_password
from lvsha.core.vrrp import Discarded, VirtualRouter
from lvsha.tools.doctor.arp import arp_probe_frame, judge_arp, parse_arp_reply
from lvsha.tools.doctor.firewall import firewall_results, ufw_results
from lvsha.tools.doctor.host import check_ip_vs
from lvsha.tools.doctor.neighbours import Heard, vrrp_neighbour_results
from lvsha.tools.doctor.results import Result, Status, exit_code, render
from lvsha.tools.firewall.evaluate import Packet
from lvsha.tools.firewall.iptables import parse_iptables_save
from lvsha.tools.firewall.ufw import UfwStatus

CONFIG = """
[daemon]
name = "d1"
[vrrp.VI_1]
interface = "eth1"
virtual_router_id = 51
priority = 100
advert_int = 1
authentication = { type = "pass", password = "grr02" }
virtual_ipaddress = ["192.0.2.100/32"]
"""
PASS = pad_password(b"grr02")
MAC_RS = "02:00:5e:00:53:21"
MAC_MASTER = "02:00:5e:00:53:11"


def heard(
    source: str, vrid: int = 51, vips: tuple[str, ...] = ("192.0.2.100",), **kw: object
) -> Heard:
    fields: dict[str, object] = {
        "priority": 100,
        "adver_int": 1,
        "auth_type": AUTH_PASS,
        "auth_data": PASS,
        "ttl": 255,
    }
    fields.update(kw)
    return Heard("eth1", source, vrid, addresses=vips, **fields)


def fake_modprobe(tmp_path: Path, present: set[str]) -> str:
    script = tmp_path / "modprobe"
    cases = " ".join(present)
    script.write_text(f'#!/bin/sh\nfor m in {cases}; do [ "$3" = "$m" ] && exit 0; done\nexit 1\n')
    script.chmod(0o755)
    return str(script)


def test_ip_vs_loaded_loadable_or_missing(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    (proc / "net").mkdir(parents=True)
    modprobe = fake_modprobe(tmp_path, {"ip_vs", "ip_vs_rr"})
    [r] = check_ip_vs(proc=proc, modprobe=modprobe)
    assert r.status is Status.WARN and "modprobe can load it" in r.message
    assert r.fix == "modprobe ip_vs && echo ip_vs > /etc/modules-load.d/ip_vs.conf"

    (proc / "net/ip_vs").write_text("")
    found = check_ip_vs(["rr", "wlc"], proc=proc, modprobe=modprobe)
    assert [r.status for r in found] == [Status.OK, Status.FAIL]
    assert "module ip_vs_wlc is missing" in found[1].message

    (proc / "net/ip_vs").unlink()
    [r] = check_ip_vs(["rr"], proc=proc, modprobe=fake_modprobe(tmp_path, set()))
    assert r.status is Status.FAIL and "this kernel has no IPVS" in r.message


def test_the_peer_agreeing_is_ok_a_stranger_with_our_vrid_fails() -> None:
    config = parse_config(CONFIG)
    local = {"192.0.2.11"}
    [r] = vrrp_neighbour_results(config, [heard("192.0.2.12")], local, 3.0)
    assert r.status is Status.OK and "peer 192.0.2.12 (priority 100) agrees" in r.message

    stranger = heard("192.0.2.13", vips=("192.0.2.200",), auth_data=pad_password(b"x"))
    found = vrrp_neighbour_results(config, [heard("192.0.2.12"), stranger], local, 3.0)
    assert [r.status for r in found] == [Status.FAIL, Status.OK]
    assert found[0].message == (
        "VI_1: 192.0.2.13 sends VRID 51 adverts on eth1 with VIPs 192.0.2.200 "
        "(ours: 192.0.2.100); another password: each side discards the other's"
    )
    # our own adverts (a local source) and other VRIDs are not a problem
    found = vrrp_neighbour_results(
        config, [heard("192.0.2.11"), heard("192.0.2.30", vrid=52)], local, 3.0
    )
    assert [r.status for r in found] == [Status.OK, Status.OK]
    assert found[1].message == "also on the link: VRID 52 from 192.0.2.30 on eth1"


def test_two_agreeing_routers_three_with_the_pair_and_a_silent_link() -> None:
    config = parse_config(CONFIG)
    found = vrrp_neighbour_results(config, [heard("192.0.2.12"), heard("192.0.2.13")], set(), 3)
    assert [r.status for r in found] == [Status.WARN]
    assert "2 other routers send VRID 51" in found[0].message
    [r] = vrrp_neighbour_results(config, [], set(), 3, {"VI_1": "BACKUP"})
    assert r.status is Status.WARN and "BACKUP but heard no advert" in r.message
    [r] = vrrp_neighbour_results(config, [], set(), 3, {"VI_1": "MASTER"})
    assert r.status is Status.OK


def test_unicast_peers_only() -> None:
    config = parse_config(
        CONFIG.replace("advert_int = 1", 'advert_int = 1\nunicast_peers = ["192.0.2.12"]')
    )
    [r] = vrrp_neighbour_results(config, [heard("192.0.2.14", ttl=64)], set(), 3)
    assert (
        r.status is Status.FAIL and "192.0.2.14" in r.message and "not a unicast peer" in r.message
    )


def test_arp_probe_frame_as_scapy_reads_it() -> None:
    frame = Ether(arp_probe_frame(MAC_MASTER, "192.0.2.100"))
    assert frame.dst == "ff:ff:ff:ff:ff:ff" and frame.src == MAC_MASTER
    arp = frame[ARP]
    assert (arp.op, arp.hwsrc, arp.psrc, arp.pdst) == (1, MAC_MASTER, "0.0.0.0", "192.0.2.100")
    assert arp.hwdst == "00:00:00:00:00:00"
    reply = Ether(dst=MAC_MASTER, src=MAC_RS) / ARP(
        op=2, hwsrc=MAC_RS, psrc="192.0.2.100", hwdst=MAC_MASTER, pdst="0.0.0.0"
    )
    assert parse_arp_reply(bytes(reply)) == ("192.0.2.100", MAC_RS)
    assert parse_arp_reply(bytes(frame)) is None  # a request is no answer
    assert parse_arp_reply(b"\x00" * 20) is None


@pytest.mark.parametrize(
    ("is_master", "master", "answers", "status", "words"),
    [
        (True, None, {}, Status.OK, "only this director (master) answers"),
        (True, None, {"192.0.2.100": {MAC_RS}}, Status.FAIL, f"{MAC_RS} (192.0.2.21) answers"),
        (
            False,
            "192.0.2.11",
            {"192.0.2.100": {MAC_MASTER}, "192.0.2.11": {MAC_MASTER}},
            Status.OK,
            "only the master 192.0.2.11 answers",
        ),
        (
            False,
            "192.0.2.11",
            {"192.0.2.100": {MAC_MASTER, MAC_RS}, "192.0.2.11": {MAC_MASTER}},
            Status.FAIL,
            "besides the master 192.0.2.11",
        ),
        (False, None, {"192.0.2.100": {MAC_MASTER, MAC_RS}}, Status.FAIL, "2 MACs answer"),
        (False, None, {"192.0.2.100": {MAC_MASTER}}, Status.WARN, "status is not available"),
        (
            False,
            "192.0.2.11",
            {"192.0.2.100": set(), "192.0.2.11": {MAC_MASTER}},
            Status.WARN,
            "nobody answers",
        ),
    ],
)
def test_who_may_answer_arp_for_the_vip(
    is_master: bool, master: str | None, answers: dict[str, set[str]], status: Status, words: str
) -> None:
    names = {MAC_RS: "192.0.2.21"}
    r = judge_arp("192.0.2.100", "eth1", is_master, master, answers, names)
    assert r.status is status and words in r.message, r


def test_firewall_and_ufw_results() -> None:
    rs = parse_iptables_save("*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp -j ACCEPT\nCOMMIT\n")
    probe = Packet(True, None, "224.0.0.18", "eth1", True)
    [r] = firewall_results(rs, [("VI_1", probe)])
    assert r.status is Status.FAIL
    assert r.message == (
        "iptables: VRRP in on eth1 from any peer to 224.0.0.18 (VI_1) is dropped by "
        "the drop policy of iptables -t filter INPUT"
    )
    [r] = firewall_results(parse_iptables_save(""), [("VI_1", probe)])
    assert (r.status, r.message) == (Status.OK, "iptables: no rules on the input and output paths")

    deny = UfwStatus(True, "deny", "allow", ())
    [r] = ufw_results(deny, "*filter\nCOMMIT\n")
    assert r.status is Status.FAIL and "-A ufw-before-input -p vrrp -j ACCEPT" in r.fix
    [r] = ufw_results(deny, "-A ufw-before-input -p vrrp -j ACCEPT\n")
    assert r.status is Status.OK


def test_exit_codes_and_rendering() -> None:
    ok = Result("arp", Status.OK, "fine", "unused")
    warn = Result("rp_filter", Status.WARN, "hmm", "sysctl -w x=2")
    fail = Result("firewall", Status.FAIL, "dropped", "nft add rule ...")
    assert [exit_code([ok]), exit_code([ok, warn]), exit_code([warn, fail])] == [0, 2, 1]
    assert render([ok, warn]) == ("OK    arp: fine\nWARN  rp_filter: hmm\n      fix: sysctl -w x=2")


def test_doctor_judges_with_the_routers_own_section_7_1_checks() -> None:
    """Doctor FAILs a neighbour exactly when our router would drop its adverts."""
    config = parse_config(CONFIG)
    params = router_params(config.vrrp[0])
    variants = [
        heard("192.0.2.12"),
        heard("192.0.2.12", ttl=64),
        heard("192.0.2.12", adver_int=2),
        heard("192.0.2.12", auth_type=AUTH_NONE, auth_data=b"\0" * 8),
        heard("192.0.2.12", auth_data=pad_password(b"other")),
        heard("192.0.2.12", vips=("192.0.2.200",)),
        # section 7.1: the address owner may send another address list
        heard("192.0.2.12", vips=("192.0.2.200",), priority=255),
    ]
    for h in variants:
        router = VirtualRouter(params, "192.0.2.11")
        router.startup(0.0)
        wire = h.advert.encode()
        ip = IPv4Header(h.source, "224.0.0.18", h.ttl, IPPROTO_VRRP, 20, 20 + len(wire))
        dropped = any(isinstance(a, Discarded) for a in router.receive(1.0, ip, wire))
        [r] = vrrp_neighbour_results(config, [h], set(), 3)
        assert (r.status is Status.FAIL) == dropped, (h, r)
    [owner] = vrrp_neighbour_results(config, [variants[-1]], set(), 3)
    assert owner.status is Status.OK and "agrees" in owner.message
    [routed] = vrrp_neighbour_results(config, [variants[1]], set(), 3)
    assert "TTL 64, not 255 (routed, or forged)" in routed.message
