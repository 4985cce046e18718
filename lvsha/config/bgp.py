"""`[bgp]` and `[[bgp.peer]]`: the speaker that announces `announce = "bgp"` VIPs.

lvsha decides (core/announce.py) and an existing speaker speaks: ExaBGP or
BIRD, run as lvsha's child (docs/scale-out.md). Numbers follow the RFCs:
four-octet AS numbers (RFC 6793), a hold time of 0 or at least 3 seconds
(RFC 4271 section 4.2), communities as `"ASN:VALUE"` (RFC 1997), BFD
timers (RFC 5880). Problems are reported under `bgp.KEY` and
`bgp.peer[I].KEY`, every one at once, like every other table.
"""

from __future__ import annotations

import ipaddress
import re

from lvsha.config import limits, values, vrrp_version
from lvsha.config._table import Table, between, one_of, shown
from lvsha.config.model import BgpConfig, BgpPeerConfig

_COMMUNITY = re.compile(r"([0-9]{1,5}):([0-9]{1,5})")


def bgp_config(root: Table, problems: list[str]) -> BgpConfig | None:
    """The `[bgp]` table, or None when the file has none."""
    root.known.add("bgp")
    if "bgp" not in root.data:
        return None
    t = Table(root.data["bgp"], "bgp", problems)
    if not isinstance(root.data["bgp"], dict):
        return None  # said: must be a table
    speaker = t.get("speaker", str, "exabgp", one_of(limits.SPEAKERS))
    # a bad speaker is said once, not again as "no BFD" on every peer
    known = t.data.get("speaker", speaker) == speaker
    hold_time = t.get("hold_time", int, 3, _hold_time)
    bfd = t.get("bfd", bool, False)
    if bfd and speaker != "bird" and known:
        t.problem("bfd", _NO_BFD)
    cfg = BgpConfig(
        local_as=t.required("local_as", int, 0, _asn),
        router_id=t.required("router_id", str, "0.0.0.0", _router_id),
        peers=_peers(t, speaker if known else None),
        speaker=speaker,
        speaker_path=t.get("speaker_path", str, None, _absolute_path),  # type: ignore[arg-type]
        hold_time=hold_time,
        bfd=bfd,
        bfd_interval=t.get("bfd_interval", float, 0.1, between(limits.BFD_INTERVAL)),
        bfd_multiplier=t.get("bfd_multiplier", int, 3, between(limits.BFD_MULTIPLIER)),
        communities=_communities(t),
        med=t.get("med", int, None, between(limits.MED)),
        next_hop=_normal(t.get("next_hop", str, None, vrrp_version.unicast)),  # type: ignore[arg-type]
        drain_file=t.get("drain_file", str, "/var/lib/lvsha/drain", _absolute_path),
        state_dir=t.get("state_dir", str, "/run/lvsha/bgp", _absolute_path),
        liveness=t.get("liveness", float, 1.0, between(limits.LIVENESS)),
        reannounce_delay=t.get("reannounce_delay", float, 1.0, between(limits.REANNOUNCE_DELAY)),
        sync_daemon_interface=t.get("sync_daemon_interface", str, None, values.ifname),  # type: ignore[arg-type]
        sync_daemon_id=t.get("sync_daemon_id", int, 0, between(limits.SYNC_ID)),
    )
    for key in ("bfd_interval", "bfd_multiplier"):
        if key in t.data and not _any_bfd(cfg):
            t.problem(key, "is only used with bfd = true (here or on a peer)")
    t.finish()
    return cfg


_NO_BFD = 'needs speaker = "bird": ExaBGP has no BFD (RFC 5880)'


def _any_bfd(cfg: BgpConfig) -> bool:
    return cfg.bfd or any(p.bfd for p in cfg.peers)


def _peers(t: Table, speaker: str | None) -> tuple[BgpPeerConfig, ...]:
    t.known.add("peer")
    if "peer" not in t.data:
        t.problem("peer", "is required: at least one [[bgp.peer]]")
        return ()
    bodies = t.data["peer"]
    if not isinstance(bodies, list) or not bodies:
        t.problem("peer", "must be an array of tables, at least one [[bgp.peer]]")
        return ()
    if len(bodies) > limits.MAX_BGP_PEERS:
        t.problem("peer", f"at most {limits.MAX_BGP_PEERS} peers")
        return ()
    peers: list[BgpPeerConfig] = []
    first: dict[str, int] = {}
    for i, body in enumerate(bodies):
        p = Table(body, f"bgp.peer[{i}]", t.problems)
        peer = _peer(p, speaker)
        p.finish()
        if not peer.address:
            continue  # its problem is said
        if peer.address in first:
            p.problem("address", f"{peer.address} is already bgp.peer[{first[peer.address]}]")
        else:
            first[peer.address] = i
        peers.append(peer)
    return tuple(peers)


def _peer(p: Table, speaker: str | None) -> BgpPeerConfig:
    address = _normal(p.required("address", str, "", vrrp_version.unicast)) or ""
    local = _normal(p.get("local_address", str, None, vrrp_version.unicast))  # type: ignore[arg-type]
    if address and local is not None:
        family = ipaddress.ip_address(address).version
        if ipaddress.ip_address(local).version != family:
            p.problem("local_address", f"{local} is not IPv{family}, the family of {address}")
        elif local == address:
            p.problem("local_address", f"{local} is the peer's own address")
    bfd = p.get("bfd", bool, None)
    if bfd and speaker not in ("bird", None):
        p.problem("bfd", _NO_BFD)
    return BgpPeerConfig(
        address=address,
        peer_as=p.required("peer_as", int, 0, _asn),
        local_address=local,
        hold_time=p.get("hold_time", int, None, _hold_time),  # type: ignore[arg-type]
        bfd=bfd,
        multihop=p.get("multihop", int, None, between(limits.MULTIHOP_TTL)),
        passive=p.get("passive", bool, False),
    )


def _communities(t: Table) -> tuple[tuple[int, int], ...]:
    """RFC 1997 communities, `"64512:100"`: two numbers 0..65535; each once."""
    out: list[tuple[int, int]] = []
    specs = t.strings("communities")
    if len(specs) > limits.MAX_COMMUNITIES:
        t.problem("communities", f"at most {limits.MAX_COMMUNITIES} communities")
        return ()
    for i, spec in enumerate(specs):
        m = _COMMUNITY.fullmatch(spec)
        low, high = limits.COMMUNITY_PART
        if m is None or not all(low <= int(g) <= high for g in m.groups()):
            t.problem(
                f"communities[{i}]",
                f'must be "ASN:VALUE", two numbers {low}..{high} (RFC 1997), not {shown(spec)}',
            )
            continue
        community = (int(m.group(1)), int(m.group(2)))
        if community in out:
            t.problem(f"communities[{i}]", f"{spec} is listed twice")
        else:
            out.append(community)
    return tuple(out)


def _asn(value: int) -> str | None:
    if value in limits.ASN:
        return None
    low, high = limits.ASN
    return f"must be an AS number {low}..{high} (RFC 6793), not {shown(value)}"


def _hold_time(value: int) -> str | None:
    if value == 0 or value in limits.HOLD_TIME:
        return None
    low, high = limits.HOLD_TIME
    return f"must be 0 or {low}..{high} seconds (RFC 4271 section 4.2), not {shown(value)}"


def _router_id(value: str) -> str | None:
    """A BGP Identifier: four octets written as an IPv4 address (RFC 4271 section 4.2)."""
    if values.ipv4(value) is not None:
        return f"{shown(value)} is not an IPv4 address (the BGP Identifier, RFC 4271 section 4.2)"
    if int(ipaddress.IPv4Address(value)) == 0:
        return "0.0.0.0 is not a valid BGP Identifier (RFC 6286 section 2.1)"
    return None


def _absolute_path(value: str) -> str | None:
    if not value.startswith("/") or value.rstrip("/") == "":
        return f"{shown(value)} is not an absolute path"
    return values.text(value)


def _normal(address: str | None) -> str | None:
    return None if not address else vrrp_version.normal(address)


# Maglev hashing (IPVS `mh`): every director of an ECMP group picks the same
# real server for a flow. `mh-port` hashes the source port too, so flows
# from one client spread; `mh-fallback` sends a flow to another real server
# when its own is quiesced (weight 0) instead of dropping it.
BGP_SCHEDULER = "mh"
BGP_MH_FLAGS = ("mh-port", "mh-fallback")


def default_scheduler(announce: str | None) -> str:
    """`mh` for an announced service, keepalived's `wlc` otherwise."""
    return BGP_SCHEDULER if announce == "bgp" else "wlc"


def default_scheduler_flags(announce: str | None, scheduler: str) -> tuple[str, ...]:
    """The flags of a service that names none: `mh-port`, `mh-fallback` for `mh` in BGP mode."""
    return BGP_MH_FLAGS if announce == "bgp" and scheduler == BGP_SCHEDULER else ()


def default_inhibit_on_failure(announce: str | None) -> bool:
    """True in BGP mode: a failed real server stays at weight 0 instead of leaving IPVS.

    Linux builds its mh lookup table in the order destinations were added,
    so a server removed and added back (a check that failed and recovered)
    moves to the end and remaps flows on this director only: the directors
    then disagree on a flow's real server (196 of 200 flows measured).
    Weight 0 and back keeps the order and every director's table equal.
    """
    return announce == "bgp"
