"""Conformance on the wire: lvsha's adverts and ARPs, decoded by scapy and tcpdump.

tcpdump captures in a lab namespace: a third host on the bridge for
multicast (224.0.0.0/24 is flooded to every port), the unicast peer's own
namespace for unicast (the bridge delivers unicast frames to one port only).
Every frame is then decoded twice, by scapy's VRRP and ARP layers and by
`tcpdump -r -vv`, neither of which shares code with lvsha, and checked field
by field against RFC 3768 section 5 (the advert) and section 8.1.2 with RFC
5227 section 3 (the gratuitous ARP).

The strongest interop check: keepalived 2.2, given the same VRID, priority,
password and VIP, puts the very same VRRP octets on the wire as lvsha.
"""

from __future__ import annotations

import itertools
import re
import sys
from collections.abc import Iterator

import pytest
from keepalived_peer import (
    KEEPALIVED,
    TCPDUMP,
    Capture,
    Keepalived,
    start_capture,
    start_keepalived,
)
from lab import VIP, Host, Lab, instance_toml, wait_for
from scapy.layers.inet import IP
from scapy.layers.l2 import ARP, Ether
from scapy.layers.vrrp import VRRP
from scapy.packet import Packet, Raw
from scapy.utils import checksum

from lvsha.core.vrrp import master_down_interval

pytestmark = pytest.mark.skipif(
    TCPDUMP is None, reason="tcpdump is not installed (Debian: apt-get install tcpdump)"
)
needs_keepalived = pytest.mark.skipif(
    KEEPALIVED is None, reason="keepalived is not installed (Debian: apt-get install keepalived)"
)

LVSHA_ADDRESS = "192.0.2.11"
PEER_ADDRESS = "192.0.2.21"
SNIFFER_ADDRESS = "192.0.2.30"
GROUP = "224.0.0.18"
GROUP_MAC = "01:00:5e:00:00:12"  # RFC 1112 section 6.4: 01:00:5e + low 23 bits
BROADCAST = "ff:ff:ff:ff:ff:ff"
GRR02 = b"grr02\x00\x00\x00"
IPPROTO_VRRP = 112
START_TIMEOUT = master_down_interval(1, 100) + 3
# IP precedence 6, "internetwork control" (RFC 791): keepalived's TOS, and lvsha's
TOS_INTERNETWORK_CONTROL = 0xC0


@pytest.fixture
def peers(lab: Lab) -> Iterator[list[Keepalived]]:
    started: list[Keepalived] = []
    try:
        yield started
    finally:
        for peer in started:
            peer.stop()


def adverts(packets: list[Packet], source: str | None = None) -> list[Packet]:
    return [
        p
        for p in packets
        if IP in p and p[IP].proto == IPPROTO_VRRP and (source is None or p[IP].src == source)
    ]


def garps(packets: list[Packet], mac: str) -> list[Packet]:
    return [p for p in packets if ARP in p and p[Ether].src == mac and p[ARP].psrc == VIP]


def vrrp_octets(packet: Packet) -> bytes:
    """The VRRP packet as received: the IP payload, trimmed to the IP length."""
    ip = packet[IP]
    return bytes(ip.payload)[: ip.len - ip.ihl * 4]


def assert_rfc3768_advert(
    packet: Packet, source: str, mac: str, destination: str, dst_mac: str, priority: int
) -> None:
    """Every field of RFC 3768 section 5, from scapy's independent decoder."""
    ether, ip = packet[Ether], packet[IP]
    assert (ether.src, ether.dst, ether.type) == (mac, dst_mac, 0x0800)
    # Section 5.2: IPv4 fields.
    assert ip.version == 4 and ip.ihl == 5  # no options
    assert ip.tos == TOS_INTERNETWORK_CONTROL  # not in the RFC; as keepalived
    assert ip.src == source  # 5.2.1: the primary address of the interface
    assert ip.dst == destination  # 5.2.2: 224.0.0.18, or the unicast peer
    assert ip.ttl == 255  # 5.2.3
    assert ip.proto == IPPROTO_VRRP  # 5.2.4
    assert ip.len == 20 + 8 + 4 + 8  # header, one address, authentication data
    assert ip.frag == 0 and ip.flags.MF == 0
    assert checksum(bytes(ip)[:20]) == 0  # the IP header checksum verifies
    # Section 5.3: the VRRP packet.
    octets = vrrp_octets(packet)
    assert len(octets) == 20
    vrrp = VRRP(octets)
    assert vrrp.version == 2  # 5.3.1
    assert vrrp.type == 1  # 5.3.2: ADVERTISEMENT
    assert vrrp.vrid == 51  # 5.3.3
    assert vrrp.priority == priority  # 5.3.4
    assert vrrp.ipcount == 1  # 5.3.5
    assert vrrp.authtype == 1  # 5.3.6: type 1, simple text password (RFC 2338)
    assert vrrp.adv == 1  # 5.3.7
    assert vrrp.addrlist == [VIP]  # 5.3.9
    # 5.3.10: authentication data, "grr02" zero padded to 8 octets.
    assert octets[-8:] == GRR02
    assert vrrp.auth1.to_bytes(4, "big") + vrrp.auth2.to_bytes(4, "big") == GRR02
    # 5.3.8: the checksum, verified and recomputed by scapy.
    assert checksum(octets) == 0
    rebuilt = vrrp.copy()
    rebuilt.chksum = None
    assert bytes(rebuilt) == octets
    assert not isinstance(vrrp.payload, Raw)  # nothing after the authentication data


# `tcpdump -n -vv -e -r FILE`: a frame line, then the VRRP line for IPv4.
TCPDUMP_IP = re.compile(
    r"(?P<smac>[0-9a-f:]{17}) > (?P<dmac>[0-9a-f:]{17}), ethertype IPv4 \(0x0800\), "
    r"length 54: \(tos (?P<tos>0x[0-9a-f]+), ttl (?P<ttl>\d+), id \d+, offset 0, "
    r"flags \[(?P<flags>[^\]]*)\], proto VRRP \(112\), length (?P<len>\d+)\)$"
)
TCPDUMP_VRRP = re.compile(
    r"^\s+(?P<src>[\d.]+) > (?P<dst>[\d.]+): VRRPv(?P<version>\d), (?P<type>\w+), "
    r"vrid (?P<vrid>\d+), prio (?P<prio>\d+), authtype (?P<authtype>\w+), "
    r"intvl (?P<intvl>\d+)s, length (?P<length>\d+), addrs: (?P<addrs>[\d. ]+?) "
    r"auth \"(?P<auth>[^\"]*)\"$"
)
TCPDUMP_ARP = re.compile(
    r"(?P<smac>[0-9a-f:]{17}) > (?P<dmac>[0-9a-f:]{17}), ethertype ARP \(0x0806\), "
    r"length 42: Ethernet \(len 6\), IPv4 \(len 4\), Request who-has (?P<target>[\d.]+)"
    r"(?: \((?P<tha>[0-9a-f:]{17})\))? tell (?P<sender>[\d.]+), length 28$"
)


def tcpdump_adverts(capture: Capture) -> list[dict[str, str]]:
    """tcpdump's own reading of every VRRP frame: the frame line and the VRRP line."""
    lines = capture.text().splitlines()
    found = []
    for first, second in itertools.pairwise(lines):
        frame = TCPDUMP_IP.search(first)
        if frame is None:
            continue
        vrrp = TCPDUMP_VRRP.match(second)
        assert vrrp is not None, f"tcpdump could not read a VRRP advert: {second!r}"
        found.append(frame.groupdict() | vrrp.groupdict())
    return found


def tcpdump_garps(capture: Capture) -> list[dict[str, str | None]]:
    found = []
    for line in capture.text().splitlines():
        match = TCPDUMP_ARP.search(line)
        if match is not None:
            found.append(match.groupdict())
    return found


def assert_tcpdump_advert(
    seen: dict[str, str], source: str, mac: str, destination: str, dst_mac: str, priority: int
) -> None:
    assert seen["smac"] == mac and seen["dmac"] == dst_mac
    assert (seen["src"], seen["dst"]) == (source, destination)
    assert (seen["tos"], seen["ttl"], seen["len"]) == ("0xc0", "255", "40")
    assert (seen["version"], seen["type"], seen["vrid"]) == ("2", "Advertisement", "51")
    assert seen["prio"] == str(priority)
    assert (seen["authtype"], seen["auth"]) == ("simple", "grr02")
    assert (seen["intvl"], seen["length"], seen["addrs"]) == ("1", "20", VIP)


def wait_adverts(
    capture: Capture, source: str, count: int, timeout: float, priority: int | None = None
) -> list[Packet]:
    def wanted(p: Packet) -> bool:
        return bool(
            adverts([p], source) and (priority is None or VRRP(vrrp_octets(p)).priority == priority)
        )

    return capture.wait_packets(wanted, count, timeout)


def when(packet: Packet) -> float:
    """The capture time of a frame, in seconds (scapy keeps a Decimal)."""
    return float(packet.time)


def priority_of(packet: Packet) -> int:
    return int(VRRP(vrrp_octets(packet)).priority)


# ------------------------------------------------------ lvsha, multicast --


def test_lvsha_multicast_adverts_garp_and_priority_zero(lab: Lab) -> None:
    sniffer = lab.host("sniffer", SNIFFER_ADDRESS)
    host = lab.host("d1", LVSHA_ADDRESS)
    mac = host.mac
    capture = start_capture(sniffer, "ip proto 112 or arp", "multicast")
    director = lab.start(host, instance_toml(100))
    director.wait_state("MASTER", START_TIMEOUT)
    wait_adverts(capture, LVSHA_ADDRESS, 4, timeout=5)  # before the delayed GARP burst
    garp_sent = director.status()["instances"][0]["counters"]["garp_sent"]
    assert director.terminate(timeout=3) == 0
    wait_adverts(capture, LVSHA_ADDRESS, 1, timeout=3, priority=0)
    packets = capture.stop()

    sent = adverts(packets, LVSHA_ADDRESS)
    assert adverts(packets) == sent  # nobody else speaks VRRP here
    *running, last = sent
    assert len(running) >= 4
    for packet in running:
        assert_rfc3768_advert(packet, LVSHA_ADDRESS, mac, GROUP, GROUP_MAC, priority=100)
    # RFC 3768 section 6.4.3: on Shutdown the master sends priority 0, once, last.
    assert_rfc3768_advert(last, LVSHA_ADDRESS, mac, GROUP, GROUP_MAC, priority=0)
    assert [priority_of(p) for p in sent].count(0) == 1
    # Advertisement_Interval: one second apart, on the wire.
    gaps = [when(b) - when(a) for a, b in itertools.pairwise(running)]
    assert all(0.9 <= gap <= 1.1 for gap in gaps), gaps
    # The same packets, read by tcpdump.
    seen = tcpdump_adverts(capture)
    assert len(seen) == len(sent)
    for line in seen[:-1]:
        assert_tcpdump_advert(line, LVSHA_ADDRESS, mac, GROUP, GROUP_MAC, priority=100)
    assert_tcpdump_advert(seen[-1], LVSHA_ADDRESS, mac, GROUP, GROUP_MAC, priority=0)

    # Section 8.1.2: on becoming master, gratuitous ARP for the VIP.
    announced = garps(packets, mac)
    assert len(announced) == garp_sent  # every one lvsha counted reached the wire
    burst = [p for p in announced if when(p) - when(announced[0]) < 0.5]
    assert len(burst) == 5  # garp_master_repeat, keepalived's default
    assert when(announced[0]) - when(running[0]) < 0.2  # right after the first advert
    for packet in announced:
        ether, arp = packet[Ether], packet[ARP]
        assert (ether.dst, ether.src, ether.type) == (BROADCAST, mac, 0x0806)
        assert (arp.hwtype, arp.ptype, arp.hwlen, arp.plen) == (1, 0x0800, 6, 4)
        assert arp.op == 1  # a request ("who-has"): RFC 5227 section 3's announcement
        assert arp.psrc == arp.pdst == VIP
        assert arp.hwsrc == mac
        assert arp.hwdst == "00:00:00:00:00:00"  # RFC 5227 section 2.1.1: zero, ignored
    for garp in tcpdump_garps(capture):
        assert (garp["smac"], garp["dmac"]) == (mac, BROADCAST)
        assert garp["target"] == garp["sender"] == VIP


# -------------------------------------------------------- lvsha, unicast --


def test_lvsha_unicast_adverts_reach_the_peer_with_ttl_255(lab: Lab) -> None:
    # The peer is a bare namespace: what it receives is what lvsha sent.
    peer = lab.host("peer", PEER_ADDRESS)
    host = lab.host("d1", LVSHA_ADDRESS)
    mac = host.mac
    capture = start_capture(peer, "ip proto 112", "unicast")
    director = lab.start(host, instance_toml(100, extra=f'unicast_peers = ["{PEER_ADDRESS}"]\n'))
    director.wait_state("MASTER", START_TIMEOUT)
    wait_adverts(capture, LVSHA_ADDRESS, 3, timeout=5)
    assert director.terminate(timeout=3) == 0
    wait_adverts(capture, LVSHA_ADDRESS, 1, timeout=3, priority=0)
    packets = capture.stop()

    sent = adverts(packets, LVSHA_ADDRESS)
    assert sent == adverts(packets)
    for packet in sent[:-1]:
        assert_rfc3768_advert(packet, LVSHA_ADDRESS, mac, PEER_ADDRESS, peer.mac, priority=100)
    assert_rfc3768_advert(sent[-1], LVSHA_ADDRESS, mac, PEER_ADDRESS, peer.mac, priority=0)
    assert not [p for p in packets if IP in p and p[IP].dst == GROUP]  # unicast only
    seen = tcpdump_adverts(capture)
    assert [s["dst"] for s in seen] == [PEER_ADDRESS] * len(sent)
    assert_tcpdump_advert(seen[0], LVSHA_ADDRESS, mac, PEER_ADDRESS, peer.mac, priority=100)
    assert_tcpdump_advert(seen[-1], LVSHA_ADDRESS, mac, PEER_ADDRESS, peer.mac, priority=0)


# -------------------------------------------- lvsha and keepalived, octets --


@needs_keepalived
@pytest.mark.keepalived
@pytest.mark.parametrize("mode", ["multicast", "unicast"])
def test_lvsha_and_keepalived_send_identical_vrrp_octets(
    lab: Lab, peers: list[Keepalived], mode: str
) -> None:
    """Same VRID, priority, password and VIP: the same 20 octets, checksum included.

    lvsha is master first, hands over to keepalived with its priority-0
    advert, and keepalived in turn stops with its own.
    """
    unicast = mode == "unicast"
    host = lab.host("d1", LVSHA_ADDRESS)
    other = lab.host("k1", PEER_ADDRESS)
    # Multicast: a bystander sees both. Unicast: lvsha's namespace sees both
    # (its own adverts leaving, keepalived's arriving).
    tap = host if unicast else lab.host("sniffer", SNIFFER_ADDRESS)
    capture = start_capture(tap, "ip proto 112 or arp", f"octets-{mode}")
    extra = f'unicast_peers = ["{PEER_ADDRESS}"]\n' if unicast else ""
    director = lab.start(host, instance_toml(100, extra=extra))
    director.wait_state("MASTER", START_TIMEOUT)
    wait_adverts(capture, LVSHA_ADDRESS, 2, timeout=4)
    peer = start_keepalived(lab, other, 100, unicast_peers=(LVSHA_ADDRESS,) if unicast else ())
    peers.append(peer)
    peer.wait_state("BACKUP", 5)
    assert director.terminate(timeout=3) == 0
    peer.wait_state("MASTER", 3)
    wait_adverts(capture, PEER_ADDRESS, 2, timeout=4, priority=100)
    assert peer.terminate() == 0
    wait_adverts(capture, PEER_ADDRESS, 1, timeout=3, priority=0)
    packets = capture.stop()

    ours, theirs = adverts(packets, LVSHA_ADDRESS), adverts(packets, PEER_ADDRESS)
    assert [priority_of(p) for p in ours][-1] == 0
    assert [priority_of(p) for p in theirs][-1] == 0
    ours_up = {vrrp_octets(p) for p in ours if priority_of(p) == 100}
    theirs_up = {vrrp_octets(p) for p in theirs if priority_of(p) == 100}
    ours_zero = {vrrp_octets(p) for p in ours if priority_of(p) == 0}
    theirs_zero = {vrrp_octets(p) for p in theirs if priority_of(p) == 0}
    assert len(ours_up) == len(theirs_up) == len(ours_zero) == len(theirs_zero) == 1
    assert ours_up == theirs_up, (ours_up, theirs_up)
    assert ours_zero == theirs_zero, (ours_zero, theirs_zero)
    # Both pass the same checks, IP header (TOS included) and all.
    if unicast:
        assert_rfc3768_advert(ours[0], LVSHA_ADDRESS, host.mac, PEER_ADDRESS, other.mac, 100)
        assert_rfc3768_advert(theirs[0], PEER_ADDRESS, other.mac, LVSHA_ADDRESS, host.mac, 100)
    else:
        assert_rfc3768_advert(ours[0], LVSHA_ADDRESS, host.mac, GROUP, GROUP_MAC, 100)
        assert_rfc3768_advert(theirs[0], PEER_ADDRESS, other.mac, GROUP, GROUP_MAC, 100)

    # Gratuitous ARP: both announce with a burst of 5 requests, psrc == pdst ==
    # VIP, broadcast. keepalived puts ff:ff:ff:ff:ff:ff in the ARP target
    # hardware address, lvsha zeros (RFC 5227 section 2.1.1); receivers ignore
    # it in a request, so both update every neighbour table alike.
    for mac in (host.mac, other.mac):
        announced = garps(packets, mac)
        burst = [p for p in announced if when(p) - when(announced[0]) < 0.5]
        assert len(burst) == 5, mac
        for packet in announced:
            assert packet[Ether].dst == BROADCAST
            assert (packet[ARP].op, packet[ARP].pdst, packet[ARP].hwsrc) == (1, VIP, mac)


# -------------------------------- the reaction to a lower-priority advert --


def forge_advert(host: Host, priority: int) -> None:
    """Send one valid advert (PASS grr02) from `host` to 224.0.0.18, built by scapy."""
    vrrp = VRRP(
        vrid=51,
        priority=priority,
        ipcount=1,
        authtype=1,
        adv=1,
        addrlist=[VIP],
        auth1=int.from_bytes(GRR02[:4], "big"),
        auth2=int.from_bytes(GRR02[4:], "big"),
    )
    code = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)\n"
        f"s.bind(('{host.address}', 0))\n"
        "s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)\n"
        "s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,"
        f" socket.inet_aton('{host.address}'))\n"
        f"s.sendto(bytes.fromhex('{bytes(vrrp).hex()}'), ('{GROUP}', 0))\n"
    )
    host.run(sys.executable, "-c", code)


def reaction_to_lower_priority(
    capture: Capture, speaker: str, forger: Host
) -> tuple[float, list[float]]:
    """Forge a priority-50 advert just after one of `speaker`'s.

    Returns when the speaker's last advert before the forged one left, and
    when its next two left, all in seconds after the forged one.
    """
    forged_before = len(adverts(capture.packets(), forger.address))
    before = len(adverts(capture.packets(), speaker))
    wait_adverts(capture, speaker, before + 1, timeout=3)  # one more: the rhythm is fresh
    forge_advert(forger, 50)
    forged = wait_adverts(capture, forger.address, forged_before + 1, timeout=3)[-1]
    assert priority_of(forged) == 50
    at = when(forged)

    def two_after() -> list[float]:
        times = [when(p) - at for p in adverts(capture.packets(), speaker)]
        return times if len([t for t in times if t > 0]) >= 2 else []

    times = wait_for(two_after, timeout=4)
    last = max(t for t in times if t < 0)
    after = [t for t in times if t > 0]
    return last, after


@needs_keepalived
@pytest.mark.keepalived
def test_reaction_to_a_lower_priority_advert(lab: Lab, peers: list[Keepalived]) -> None:
    """keepalived, as master, answers a lower-priority advert at once.

    RFC 3768 section 6.4.3 has a master discard a lower-priority advert.
    keepalived 2.2 by default (no `vrrp_lower_prio_no_advert`) sends its own
    advert at once, to win the election back, and restarts its advert timer
    from there: its rhythm shifts. Whether lvsha answers too is its own
    design choice, not asserted here; on the wire it must stay master and
    keep its one-second schedule.
    """
    sniffer = lab.host("sniffer", SNIFFER_ADDRESS)
    capture = start_capture(sniffer, "ip proto 112", "lower")
    director = lab.start(lab.host("d1", LVSHA_ADDRESS), instance_toml(100))
    director.wait_state("MASTER", START_TIMEOUT)
    last, after = reaction_to_lower_priority(capture, LVSHA_ADDRESS, sniffer)
    assert any(abs(t - (last + 1)) <= 0.1 for t in after), (last, after)  # on schedule
    assert director.state() == "MASTER"
    assert director.status()["instances"][0]["counters"]["discarded"] == {}
    assert director.terminate(timeout=3) == 0

    peer = start_keepalived(lab, lab.host("k1", PEER_ADDRESS), 100)
    peers.append(peer)
    peer.wait_state("MASTER", START_TIMEOUT)
    last, after = reaction_to_lower_priority(capture, PEER_ADDRESS, sniffer)
    assert after[0] < 0.05, (last, after)  # an immediate answer ...
    assert 0.9 <= after[1] - after[0] <= 1.1  # ... and its rhythm restarts from it
    assert not any(abs(t - (last + 1)) <= 0.05 for t in after)  # the old slot is gone
    assert "lower priority" in peer.log_text()
    assert peer.state() == "MASTER"
    capture.stop()
