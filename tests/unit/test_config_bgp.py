"""`[bgp]`, `[[bgp.peer]]` and `announce = "bgp"`: the keys of issue 14 as written.

Every problem is reported at once under its key path; the numbers are the
RFCs' (RFC 6793 AS numbers, RFC 4271 section 4.2 hold time, RFC 1997
communities, RFC 5880 BFD). In BGP mode the scheduler defaults to IPVS `mh`
with the flags the kernel path takes (mh-port, mh-fallback).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lvsha.config import load_config, parse_config
from lvsha.config.model import BgpConfig, BgpPeerConfig
from lvsha.core.desired import SVC_F_SCHED1, SVC_F_SCHED2, desired_ipvs
from lvsha.errors import ConfigError

# The shape of issue 14, verbatim.
ISSUE = """
[bgp]
local_as = 64513
router_id = "192.0.2.11"
speaker = "exabgp"        # or "bird"
hold_time = 3

[[bgp.peer]]
address = "192.0.2.1"
peer_as = 64512

[[virtual_server]]
address = "203.0.113.100"
port = 80
protocol = "tcp"
scheduler = "mh"
forwarding = "dr"
announce = "bgp"          # announced over BGP while healthy, instead of a VRRP VIP
"""

BGP = """
[bgp]
local_as = 64513
router_id = "192.0.2.11"

[[bgp.peer]]
address = "192.0.2.1"
peer_as = 64512
"""

INSTANCE = """
[vrrp.VI_1]
interface = "eth1"
virtual_router_id = 51
virtual_ipaddress = ["192.0.2.100/32"]
"""


def service(address: str = "203.0.113.100", port: int = 80, extra: str = "") -> str:
    return f"""
[[virtual_server]]
address = "{address}"
port = {port}
{extra}
"""


ANNOUNCED = service(extra='announce = "bgp"')


def problems(text: str, director: bool = True) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, director=director)
    return info.value.problems


# ------------------------------------------------------------- the issue --


def test_the_issue_example_parses_as_written() -> None:
    cfg = parse_config(ISSUE, director=True)
    assert cfg.vrrp == () and cfg.warnings == ()
    assert cfg.bgp == BgpConfig(
        local_as=64513,
        router_id="192.0.2.11",
        peers=(BgpPeerConfig("192.0.2.1", 64512),),
        speaker="exabgp",
        hold_time=3,
    )
    (vs,) = cfg.virtual_servers
    assert (vs.announce, vs.scheduler, vs.scheduler_flags) == (
        "bgp",
        "mh",
        ("mh-port", "mh-fallback"),
    )


def test_every_key_is_read_with_its_value() -> None:
    text = (
        """
[bgp]
local_as = 4200000000
router_id = "192.0.2.11"
speaker = "bird"
speaker_path = "/usr/sbin/bird"
hold_time = 0
bfd = true
bfd_interval = 0.05
bfd_multiplier = 5
communities = ["64513:100", "0:65535"]
med = 4294967295
next_hop = "192.0.2.11"
drain_file = "/run/lvsha/maintenance"
state_dir = "/var/lib/lvsha/bgp"
liveness = 0.5
reannounce_delay = 2.5

[[bgp.peer]]
address = "192.0.2.1"
peer_as = 64512
local_address = "192.0.2.11"
hold_time = 9
bfd = false
multihop = 2
passive = true

[[bgp.peer]]
address = "2001:DB8::1"
peer_as = 64512
local_address = "2001:db8:0::11"
"""
        + ANNOUNCED
    )
    bgp = parse_config(text, director=True).bgp
    assert bgp == BgpConfig(
        local_as=4200000000,
        router_id="192.0.2.11",
        peers=(
            BgpPeerConfig("192.0.2.1", 64512, "192.0.2.11", 9, False, 2, True),
            BgpPeerConfig("2001:db8::1", 64512, "2001:db8::11"),
        ),
        speaker="bird",
        speaker_path="/usr/sbin/bird",
        hold_time=0,
        bfd=True,
        bfd_interval=0.05,
        bfd_multiplier=5,
        communities=((64513, 100), (0, 65535)),
        med=4294967295,
        next_hop="192.0.2.11",
        drain_file="/run/lvsha/maintenance",
        state_dir="/var/lib/lvsha/bgp",
        liveness=0.5,
        reannounce_delay=2.5,
    )


def test_defaults() -> None:
    bgp = parse_config(BGP + ANNOUNCED).bgp
    assert bgp is not None
    assert (bgp.speaker, bgp.speaker_path, bgp.hold_time, bgp.bfd) == ("exabgp", None, 3, False)
    assert (bgp.bfd_interval, bgp.bfd_multiplier, bgp.communities, bgp.med) == (0.1, 3, (), None)
    assert (bgp.next_hop, bgp.drain_file, bgp.state_dir) == (
        None,
        "/var/lib/lvsha/drain",
        "/run/lvsha/bgp",
    )
    assert (bgp.liveness, bgp.reannounce_delay) == (1.0, 1.0)
    assert parse_config(INSTANCE).bgp is None


# --------------------------------------------------------------- problems --


def test_every_problem_at_once_with_its_key_path() -> None:
    text = (
        """
[bgp]
local_as = 0
router_id = "2001:db8::1"
hold_time = 2
bfd = true
bfd_multiplier = 0
communities = ["64512:100", "65536:1", "foo", "64512:100", 7]
med = -1
next_hop = "224.0.0.1"
liveness = 0
drain_file = "relative"
colour = "blue"

[[bgp.peer]]
address = "192.0.2.1"
peer_as = 4294967296
local_address = "2001:db8::2"
hold_time = 1
bfd = true
multihop = 0
passive = "yes"
foo = 1

[[bgp.peer]]
address = "192.0.2.1"
peer_as = 64512

[[bgp.peer]]
address = "192.0.2.2"
local_address = "192.0.2.2"
"""
        + ANNOUNCED
    )
    assert problems(text) == [
        "bgp.hold_time: must be 0 or 3..65535 seconds (RFC 4271 section 4.2), not 2",
        'bgp.bfd: needs speaker = "bird": ExaBGP has no BFD (RFC 5880)',
        "bgp.local_as: must be an AS number 1..4294967295 (RFC 6793), not 0",
        "bgp.router_id: '2001:db8::1' is not an IPv4 address (the BGP Identifier, "
        "RFC 4271 section 4.2)",
        "bgp.peer[0].local_address: 2001:db8::2 is not IPv4, the family of 192.0.2.1",
        'bgp.peer[0].bfd: needs speaker = "bird": ExaBGP has no BFD (RFC 5880)',
        "bgp.peer[0].peer_as: must be an AS number 1..4294967295 (RFC 6793), not 4294967296",
        "bgp.peer[0].hold_time: must be 0 or 3..65535 seconds (RFC 4271 section 4.2), not 1",
        "bgp.peer[0].multihop: must be 1..255, not 0",
        "bgp.peer[0].passive: must be true or false, not a string",
        "bgp.peer[0].foo: unknown key",
        "bgp.peer[1].address: 192.0.2.1 is already bgp.peer[0]",
        "bgp.peer[2].local_address: 192.0.2.2 is the peer's own address",
        "bgp.peer[2].peer_as: is required",
        "bgp.bfd_multiplier: must be 1..255, not 0",
        "bgp.communities[4]: must be a string, not an integer",
        "bgp.communities[1]: must be \"ASN:VALUE\", two numbers 0..65535 (RFC 1997), not '65536:1'",
        "bgp.communities[2]: must be \"ASN:VALUE\", two numbers 0..65535 (RFC 1997), not 'foo'",
        "bgp.communities[3]: 64512:100 is listed twice",
        "bgp.med: must be 0..4294967295, not -1",
        "bgp.next_hop: 224.0.0.1 is a multicast address, not a host",
        "bgp.drain_file: 'relative' is not an absolute path",
        "bgp.liveness: must be 0.1..60, not 0.0",
        "bgp.colour: unknown key",
    ]


@pytest.mark.parametrize(
    ("peers", "expected"),
    [
        ("", "bgp.peer: is required: at least one [[bgp.peer]]"),
        ("peer = []", "bgp.peer: must be an array of tables, at least one [[bgp.peer]]"),
        ("peer = 3", "bgp.peer: must be an array of tables, at least one [[bgp.peer]]"),
        ("peer = [1]", "bgp.peer[0]: must be a table, not an integer"),
    ],
)
def test_peers_are_required_and_must_be_tables(peers: str, expected: str) -> None:
    text = f'[bgp]\nlocal_as = 64513\nrouter_id = "192.0.2.11"\n{peers}\n' + ANNOUNCED
    assert expected in problems(text)


def test_bgp_not_a_table_is_one_problem() -> None:
    assert problems("bgp = 5\n") == ["bgp: must be a table, not an integer"]


def test_bfd_needs_bird_and_its_timers_need_bfd() -> None:
    bird = BGP.replace("[bgp]", '[bgp]\nspeaker = "bird"')
    cfg = parse_config(bird.replace("peer_as = 64512", "peer_as = 64512\nbfd = true") + ANNOUNCED)
    assert cfg.bgp is not None and cfg.bgp.peers[0].bfd is True
    assert problems(BGP.replace("[bgp]", "[bgp]\nbfd_interval = 0.2") + ANNOUNCED) == [
        "bgp.bfd_interval: is only used with bfd = true (here or on a peer)"
    ]
    # a bad speaker is one problem, not also "no BFD" on every table
    bad = BGP.replace("[bgp]", '[bgp]\nspeaker = "quagga"\nbfd = true')
    bad = bad.replace("peer_as = 64512", "peer_as = 64512\nbfd = true")
    assert problems(bad + ANNOUNCED) == ["bgp.speaker: must be one of exabgp, bird, not 'quagga'"]


def test_hostile_numbers_name_their_key() -> None:
    text = BGP.replace("local_as = 64513", "local_as = 1" + "0" * 5000) + ANNOUNCED
    assert problems(text) == [
        "bgp.local_as: must be an AS number 1..4294967295 (RFC 6793), not an integer of 5001 digits"
    ]


# ------------------------------------------------------------ mh defaults --


@pytest.mark.parametrize(
    ("extra", "scheduler", "flags"),
    [
        ('announce = "bgp"', "mh", ("mh-port", "mh-fallback")),
        ('announce = "bgp"\nscheduler = "mh"', "mh", ("mh-port", "mh-fallback")),
        ('announce = "bgp"\nscheduler_flags = ["mh-port"]', "mh", ("mh-port",)),
        ('announce = "bgp"\nscheduler_flags = []', "mh", ()),
        ('announce = "bgp"\nscheduler = "wlc"', "wlc", ()),
        ('scheduler = "mh"', "mh", ()),
        ("", "wlc", ()),
    ],
)
def test_bgp_mode_defaults_to_mh_with_port_and_fallback(
    extra: str, scheduler: str, flags: tuple[str, ...]
) -> None:
    vs = parse_config(BGP + service(extra=extra)).virtual_servers[0]
    assert (vs.scheduler, vs.scheduler_flags) == (scheduler, flags)


def test_the_default_flags_are_the_kernels_mh_bits() -> None:
    """IP_VS_SVC_F_SCHED_MH_FALLBACK is SCHED1, MH_PORT is SCHED2 (include/uapi/linux/ip_vs.h)."""
    (svc,) = desired_ipvs(parse_config(BGP + ANNOUNCED).virtual_servers).services
    assert (svc.scheduler, svc.flags) == ("mh", SVC_F_SCHED1 | SVC_F_SCHED2)


# ---------------------------------------------------------- cross checks --


def test_a_director_needs_vrrp_or_bgp() -> None:
    assert problems(service()) == [
        "(config): neither a [vrrp.NAME] instance nor [bgp]: a director needs VRRP to hold "
        "its VIPs, or [bgp] to announce them, or both"
    ]
    assert parse_config(service()).vrrp == ()  # a fragment (tests, benchmarks) is fine
    assert problems('vrrp = "x"\n') == ["vrrp: must be a table, not a string"]  # said once


def test_load_config_reads_a_whole_director(tmp_path: Path) -> None:
    path = tmp_path / "lvsha.toml"
    path.write_text("[daemon]\nname = 'd1'\n")
    with pytest.raises(ConfigError, match=r"neither a \[vrrp.NAME\] instance nor \[bgp\]"):
        load_config(path)


def test_bgp_only_vrrp_only_and_both_are_valid() -> None:
    assert parse_config(BGP + ANNOUNCED, director=True).warnings == ()
    parse_config(INSTANCE + service("192.0.2.100"), director=True)
    both = parse_config(INSTANCE + service("192.0.2.100") + BGP + ANNOUNCED, director=True)
    assert both.warnings == ()  # the announced address is no VRRP VIP, and needs not be
    assert [vs.announce for vs in both.virtual_servers] == [None, "bgp"]


def test_bgp_with_nothing_announced_is_a_warning() -> None:
    cfg = parse_config(BGP + service(), director=True)
    assert cfg.warnings == (
        'bgp: no virtual_server has announce = "bgp"; nothing will be announced',
    )


def test_announce_needs_bgp_an_address_and_a_known_word() -> None:
    text = INSTANCE + ANNOUNCED + '[[virtual_server]]\nfwmark = 5\nannounce = "bgp"\n'
    text += service(port=443, extra='announce = "ospf"')
    assert problems(text) == [
        "virtual_server[2].announce: must be one of bgp, not 'ospf'",
        'virtual_server[0].announce: "bgp" needs a [bgp] table (the speaker and its peers)',
        'virtual_server[1].announce: "bgp" needs a [bgp] table (the speaker and its peers)',
        "virtual_server[1].announce: a firewall-mark service has no address to announce; "
        "announce a service with an address",
        "virtual_server[2].announce: 203.0.113.100 is announced by virtual_server[0]; every "
        'service on an announced address needs announce = "bgp" (the route carries them all)',
    ]


def test_an_address_is_a_vrrp_vip_or_announced_not_both() -> None:
    text = INSTANCE + BGP + service("192.0.2.100", extra='announce = "bgp"')
    assert problems(text) == [
        "virtual_server[0].announce: 192.0.2.100 is also a VIP of vrrp.VI_1; an address is "
        "either held by VRRP or announced over BGP, not both"
    ]


def test_a_scheduler_that_is_no_flow_hash_is_a_warning_in_bgp_mode() -> None:
    text = BGP + service(extra='announce = "bgp"\nscheduler = "wlc"')
    text += service(port=443, extra='announce = "bgp"\nscheduler = "sh"')
    assert parse_config(text).warnings == (
        'virtual_server[0].scheduler: "wlc" is not a hash of the flow: a flow that ECMP moves '
        'to another director lands on another real server (use "mh", the default with '
        'announce = "bgp")',
    )


def test_hold_time_zero_without_bfd_is_a_warning() -> None:
    text = BGP.replace("[bgp]", '[bgp]\nhold_time = 0\nspeaker = "bird"')
    text += '[[bgp.peer]]\naddress = "192.0.2.2"\npeer_as = 64512\nbfd = true\n'
    text += '[[bgp.peer]]\naddress = "192.0.2.3"\npeer_as = 64512\nhold_time = 9\n'
    assert parse_config(text + ANNOUNCED).warnings == (
        "bgp.hold_time: 0 turns keepalives off and bgp.peer[0] has no BFD: a director that "
        "goes silent keeps its routes at 192.0.2.1 until its TCP connection fails",
    )
    text = BGP.replace("peer_as = 64512", "peer_as = 64512\nhold_time = 0")
    assert parse_config(text + ANNOUNCED).warnings[0].startswith("bgp.peer[0].hold_time: 0 turns")


def test_the_connection_sync_daemon_among_n_directors() -> None:
    """`[bgp] sync_daemon_interface` runs a master and a backup sync daemon on each director."""
    sync = 'sync_daemon_interface = "eth1"\nsync_daemon_id = 7\n'
    bgp = parse_config(BGP.replace("[bgp]\n", f"[bgp]\n{sync}") + ANNOUNCED).bgp
    assert bgp is not None and (bgp.sync_daemon_interface, bgp.sync_daemon_id) == ("eth1", 7)
    bad = problems(BGP.replace("[bgp]\n", "[bgp]\nsync_daemon_id = 300\n") + ANNOUNCED)
    assert any(p.startswith("bgp.sync_daemon_id:") for p in bad)


def test_announced_services_keep_a_failed_real_server_at_weight_zero_by_default() -> None:
    """mh's table follows the order destinations were added: removing and re-adding a
    recovered server would remap flows on one director only (docs/scale-out.md)."""
    config = parse_config(BGP + ANNOUNCED + service("203.0.113.101", extra="") + INSTANCE)
    announced, plain = config.virtual_servers
    assert announced.inhibit_on_failure is True and plain.inhibit_on_failure is False
    chosen = parse_config(BGP + service(extra='announce = "bgp"\ninhibit_on_failure = false'))
    assert chosen.virtual_servers[0].inhibit_on_failure is False
