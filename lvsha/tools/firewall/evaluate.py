"""Would the firewall let VRRP through? A small evaluator for nftables and iptables.

`lvsha doctor` asks one question per VRRP instance: does an advertisement
(IP protocol 112) from the peers (or anyone, in multicast mode) to
224.0.0.18 or to us get in, and do ours get out? Both rule languages are read
into this module's model (chains of rules; a rule is matches and a verdict:
`nftables.py`, `iptables.py`; ufw in `ufw.py`) and a
probe packet is walked through every base chain on the input and output
paths, following jumps, as the kernel would.

A match is true, false or unknown: unknown when it depends on something a
probe cannot know (a rate limit, a mark, a module doctor does not read). An
unknown accept before a certain drop, or an unknown drop before an accept,
makes the answer a warning instead of a verdict. Pure: parsing and
evaluation take text and return values; `doctor` runs the tools.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from dataclasses import dataclass, field

VRRP_PROTO = frozenset({"vrrp", "112", "all", "0"})  # iptables `-p all` matches any
MAX_DEPTH = 16  # the kernel refuses jump chains deeper than this too
INBOUND_HOOKS = ("prerouting", "input", "ingress")
OUTBOUND_HOOKS = ("output", "postrouting", "egress")


@dataclass(frozen=True, slots=True)
class Packet:
    """A VRRP advertisement as a probe: what a rule can match on."""

    inbound: bool
    saddr: str | None  # None: any peer (multicast mode) or unknown local address
    daddr: str | None
    interface: str
    multicast: bool

    def describe(self) -> str:
        src = self.saddr or "any peer"
        dst = self.daddr or "us"
        if self.inbound:
            return f"VRRP in on {self.interface} from {src} to {dst}"
        return f"VRRP out on {self.interface} to {dst}"


@dataclass(frozen=True, slots=True)
class Match:
    """One condition: `field` compared with `values` (any of them)."""

    field: str  # proto saddr daddr iif oif ctstate pkttype addrtype family never unknown
    values: tuple[str, ...] = ()
    negate: bool = False
    text: str = ""


@dataclass(frozen=True, slots=True)
class Rule:
    matches: tuple[Match, ...]
    verdict: str  # accept drop jump goto return continue unknown
    target: str = ""
    where: str = ""  # "rule handle 7 in inet fw input"
    fix: str = ""  # a command that lets VRRP through before this rule


@dataclass(slots=True)
class Chain:
    name: str
    table: str
    rules: list[Rule] = field(default_factory=list)
    hook: str | None = None
    policy: str = "accept"
    where: str = ""
    fix: str = ""  # a command that accepts VRRP before the policy applies
    device: str | None = None  # netdev chains: the device, when known
    family: str = "ip"


@dataclass(slots=True)
class Ruleset:
    source: str  # "nftables" or "iptables"
    chains: dict[tuple[str, str], Chain] = field(default_factory=dict)

    def base_chains(self, inbound: bool) -> list[Chain]:
        hooks = INBOUND_HOOKS if inbound else OUTBOUND_HOOKS
        return [c for c in self.chains.values() if c.hook in hooks]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What happens to the probe: `accept` or `drop`, and how sure that is."""

    accepted: bool
    by: str  # the rule or policy that decided
    fix: str
    doubts: tuple[str, ...] = ()  # rules whose outcome doctor could not tell


# ------------------------------------------------------------ evaluation --


def _addr_in(address: str, spec: str) -> bool:
    """`spec` is an address, a prefix or `low-high`; IPv6 ones never match."""
    try:
        ip = ipaddress.IPv4Address(address)
        if "-" in spec:
            low, high = (ipaddress.IPv4Address(x.strip()) for x in spec.split("-", 1))
            return low <= ip <= high
        return ip in ipaddress.IPv4Network(spec, strict=False)
    except ValueError:
        return False


def _ifname_in(name: str, pattern: str) -> bool:
    # nftables writes wildcards as `eth*`, iptables as `eth+`
    return fnmatch.fnmatchcase(name, pattern.replace("+", "*"))


def match(m: Match, pkt: Packet) -> bool | None:
    """True, False, or None when the probe cannot tell."""
    result = _match(m, pkt)
    if result is None or not m.negate:
        return result
    return not result


def _match(m: Match, pkt: Packet) -> bool | None:
    values = {v.lower() for v in m.values}
    if m.field == "never":
        return False
    if m.field == "proto":
        return bool(values & VRRP_PROTO)
    if m.field == "family":
        return bool(values & {"ip", "ipv4", "0x0800", "ip4"})
    if m.field in ("saddr", "daddr"):
        address = pkt.saddr if m.field == "saddr" else pkt.daddr
        if address is None:
            return None
        return any(_addr_in(address, v) for v in m.values)
    if m.field in ("iif", "oif"):
        if (m.field == "iif") != pkt.inbound:
            return None  # iif on output (or oif on input) is not something a probe knows
        return any(_ifname_in(pkt.interface, v) for v in m.values)
    if m.field == "ctstate":
        # Multicast adverts never get a reply, so conntrack keeps them NEW.
        # Unicast ones between two peers look like replies of each other's.
        states = {"new"} if pkt.multicast else {"new", "established"}
        if states <= values:
            return True
        return False if not states & values else None
    if m.field == "pkttype":
        return ("multicast" if pkt.multicast else "host") in values or (
            not pkt.multicast and "unicast" in values
        )
    if m.field == "addrtype":  # iptables -m addrtype --dst-type
        if pkt.multicast:
            return "multicast" in values
        return bool(values & ({"local", "unicast"} if pkt.inbound else {"unicast"}))
    return None


def rule_matches(rule: Rule, pkt: Packet) -> bool | None:
    results = [match(m, pkt) for m in rule.matches]
    if False in results:
        return False
    return True if all(r is True for r in results) else None


@dataclass(slots=True)
class _Walk:
    outcome: str  # accept drop continue
    by: str = ""
    fix: str = ""
    maybe_accepted: list[str] = field(default_factory=list)
    maybe_dropped: list[str] = field(default_factory=list)


def _walk(ruleset: Ruleset, chain: Chain, pkt: Packet, depth: int) -> _Walk:
    state = _Walk("continue")
    if depth > MAX_DEPTH:
        state.maybe_dropped.append(f"{chain.where}: jumps nested deeper than {MAX_DEPTH}")
        return state
    for rule in chain.rules:
        hit = rule_matches(rule, pkt)
        if hit is False or rule.verdict == "continue":
            continue
        if rule.verdict in ("jump", "goto"):
            target = ruleset.chains.get((chain.table, rule.target))
            if target is None:
                continue
            sub = _walk(ruleset, target, pkt, depth + 1)
            state.maybe_accepted += sub.maybe_accepted
            state.maybe_dropped += sub.maybe_dropped
            if sub.outcome in ("accept", "drop"):
                if hit:
                    return _Walk(sub.outcome, sub.by, sub.fix, *_doubts(state))
                (state.maybe_accepted if sub.outcome == "accept" else state.maybe_dropped).append(
                    f"{sub.by} (reached through {rule.where}, which may not match)"
                )
            elif rule.verdict == "goto" and hit:
                return state  # the target fell through: so does this chain
            continue
        if rule.verdict == "return":
            if hit:
                return state
            continue
        if rule.verdict in ("accept", "drop") and hit:
            return _Walk(rule.verdict, rule.where, rule.fix, *_doubts(state))
        # unknown match, or a verdict doctor cannot read: either way a doubt
        if rule.verdict in ("accept", "unknown"):
            state.maybe_accepted.append(_why(rule, pkt))
        if rule.verdict in ("drop", "unknown"):
            state.maybe_dropped.append(_why(rule, pkt))
    return state


def _doubts(state: _Walk) -> tuple[list[str], list[str]]:
    return state.maybe_accepted, state.maybe_dropped


def _why(rule: Rule, pkt: Packet) -> str:
    unknown = [m.text or m.field for m in rule.matches if match(m, pkt) is None]
    detail = f" (depends on {', '.join(unknown)})" if unknown else ""
    return f"{rule.where}{detail}"


def evaluate(ruleset: Ruleset, pkt: Packet) -> list[Verdict]:
    """One verdict per base chain the probe crosses (a drop in any of them drops it)."""
    verdicts = []
    for chain in ruleset.base_chains(pkt.inbound):
        if chain.device is not None and chain.device != pkt.interface:
            continue
        walk = _walk(ruleset, chain, pkt, 0)
        if walk.outcome == "continue":  # the end of the base chain: its policy decides
            walk.outcome, walk.by, walk.fix = (
                chain.policy,
                f"the {chain.policy} policy of {chain.where}",
                chain.fix,
            )
        accepted = walk.outcome == "accept"
        doubts = walk.maybe_dropped if accepted else walk.maybe_accepted
        verdicts.append(Verdict(accepted, walk.by, walk.fix, tuple(doubts)))
    return verdicts
