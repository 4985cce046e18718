"""Would the firewall let VRRP through? A small evaluator for nftables and iptables.

`lvsha doctor` asks one question per VRRP instance: does an advertisement
(IP protocol 112) from the peers (or anyone, in multicast mode) to
224.0.0.18 or to us get in, and do ours get out? Both rule languages are read
into one model (chains of rules; a rule is matches and a verdict) and a
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
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

VRRP_PROTO = frozenset({"vrrp", "112", "all", "0"})  # iptables `-p all` matches any
MAX_DEPTH = 16  # the kernel refuses jump chains deeper than this too
INBOUND_HOOKS = ("prerouting", "input", "ingress")
OUTBOUND_HOOKS = ("output", "postrouting", "egress")
IPTABLES_HOOKS = {
    "raw": {"PREROUTING": "prerouting", "OUTPUT": "output"},
    "mangle": {
        "PREROUTING": "prerouting",
        "INPUT": "input",
        "OUTPUT": "output",
        "POSTROUTING": "postrouting",
    },
    "filter": {"INPUT": "input", "OUTPUT": "output"},
    "security": {"INPUT": "input", "OUTPUT": "output"},
}
IPTABLES_TABLES = ("filter", "raw", "mangle", "nat", "security")


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


# -------------------------------------------------------------- nftables --

# Headers VRRP does not have (`th` is any transport header: VRRP has no ports).
_L4 = frozenset(
    {
        *("tcp", "udp", "udplite", "sctp", "dccp", "icmp", "igmp"),
        *("esp", "ah", "comp", "gre", "icmpv6", "th"),
    }
)


def parse_nft_json(doc: dict[str, Any], skip_tables: Iterable[tuple[str, str]] = ()) -> Ruleset:
    """`nft -j list ruleset` -> Ruleset (tables in `skip_tables` left out)."""
    skip = set(skip_tables)
    items = doc.get("nftables", []) if isinstance(doc, dict) else []
    ruleset = Ruleset("nftables")
    sets: dict[tuple[str, str], list[str]] = {}
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("set"), dict):
            s = item["set"]
            sets[(f"{s.get('family', '')} {s.get('table', '')}", s.get("name", ""))] = [
                v for e in s.get("elem", []) for v in (_nft_values(e) or [])
            ]
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("chain"), dict):
            continue
        c = item["chain"]
        family, table, name = c.get("family", ""), c.get("table", ""), c.get("name", "")
        if family not in ("ip", "inet", "netdev") or (family, table) in skip:
            continue
        where = f"{family} {table} {name}"
        key = (f"{family} {table}", name)
        ruleset.chains[key] = Chain(
            name,
            key[0],
            hook=c.get("hook"),
            policy="drop" if c.get("policy") == "drop" else "accept",
            where=where,
            fix=f"nft add rule {where} ip protocol vrrp accept",
            device=c.get("dev") if isinstance(c.get("dev"), str) else None,
            family=family,
        )
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("rule"), dict):
            continue
        r = item["rule"]
        key = (f"{r.get('family', '')} {r.get('table', '')}", r.get("chain", ""))
        chain = ruleset.chains.get(key)
        if chain is not None:
            chain.rules.extend(_nft_rules(r, chain, sets))
    return ruleset


def _nft_rules(
    r: dict[str, Any], chain: Chain, sets: dict[tuple[str, str], list[str]]
) -> list[Rule]:
    handle = r.get("handle", "?")
    where = f"rule handle {handle} in {chain.where}"
    fix = f"nft insert rule {chain.where} position {handle} ip protocol vrrp accept"
    matches: list[Match] = []
    verdicts: list[tuple[str, str]] = []
    vmaps: list[tuple[Match, str, str]] = []
    for expr in r.get("expr", []):
        if not isinstance(expr, dict) or len(expr) != 1:
            matches.append(Match("unknown", text="an expression doctor cannot read"))
            continue
        ((kind, body),) = expr.items()
        if kind == "match" and isinstance(body, dict):
            matches.append(_nft_match(body, chain, sets))
        elif kind in ("accept", "drop", "reject", "return", "continue"):
            verdicts.append((_nft_verdict(kind), ""))
        elif kind in ("jump", "goto") and isinstance(body, dict):
            verdicts.append((kind, str(body.get("target", ""))))
        elif kind == "vmap" and isinstance(body, dict):
            vmaps.extend(_nft_vmap(body, sets, chain))
        elif kind == "queue":
            verdicts.append(("unknown", ""))
        elif kind in ("limit", "quota", "xt", "fib", "socket", "osf", "synproxy"):
            matches.append(Match("unknown", text=f"`{kind}`"))
        # counter, log, meta/ct set, mangle, notrack, ...: no effect on the verdict
    rules = [Rule((*matches, m), verdict, target, where, fix) for m, verdict, target in vmaps]
    verdict, target = verdicts[-1] if verdicts else ("continue", "")
    if verdict not in ("accept", "drop", "jump", "goto", "return", "continue"):
        verdict = "unknown"
    rules.append(Rule(tuple(matches), verdict, target, where, fix))
    return rules


def _nft_verdict(kind: str) -> str:
    if kind == "reject":
        return "drop"
    return kind if kind in ("accept", "drop", "jump", "goto", "return", "continue") else "unknown"


def _nft_vmap(
    body: dict[str, Any], sets: dict[tuple[str, str], list[str]], chain: Chain
) -> list[tuple[Match, str, str]]:
    """`ct state vmap { established : accept, ... }` -> one (match, verdict) per entry."""
    fld, text = _nft_field(body.get("key")), _nft_text(body.get("key"))
    data = body.get("data")
    entries = data.get("set") if isinstance(data, dict) else None
    if fld in ("never", "l4"):
        return []  # a map on a header VRRP does not have: never applies
    if fld == "unknown" or not isinstance(entries, list):
        return [(Match("unknown", text=f"a verdict map on {text}"), "unknown", "")]
    out = []
    for entry in entries:
        ok = isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], dict)
        if not ok or len(entry[1]) != 1:
            out.append((Match("unknown", text=f"a verdict map on {text}"), "unknown", ""))
            continue
        values = _nft_values(entry[0])
        ((verdict, arg),) = entry[1].items()
        m = Match(fld, tuple(values), text=text) if values else Match("unknown", text=text)
        target = str(arg.get("target", "")) if isinstance(arg, dict) else ""
        out.append((m, _nft_verdict(verdict), target))
    return out


def _nft_values(right: Any) -> list[str] | None:
    """The literal values of a right-hand side, or None when they are not literals."""
    if isinstance(right, bool):
        return None
    if isinstance(right, str | int):
        return [str(right)]
    if isinstance(right, list):
        out: list[str] = []
        for item in right:
            values = _nft_values(item)
            if values is None:
                return None
            out += values
        return out
    if isinstance(right, dict):
        if "set" in right:
            return _nft_values(right["set"])
        if "prefix" in right and isinstance(right["prefix"], dict):
            return [f"{right['prefix'].get('addr')}/{right['prefix'].get('len')}"]
        if "range" in right and isinstance(right["range"], list) and len(right["range"]) == 2:
            return [f"{right['range'][0]}-{right['range'][1]}"]
        if "elem" in right and isinstance(right["elem"], dict):
            return _nft_values(right["elem"].get("val"))
    return None


def _nft_match(body: dict[str, Any], chain: Chain, sets: dict[tuple[str, str], list[str]]) -> Match:
    op, left, right = body.get("op", "=="), body.get("left"), body.get("right")
    text = _nft_text(left)
    if op not in ("==", "!=", "in"):
        return Match("unknown", text=f"{text} {op}")
    negate = op == "!="
    if isinstance(right, str) and right.startswith("@"):
        named = sets.get((chain.table, right[1:]))
        values: list[str] | None = named
    else:
        values = _nft_values(right)
    fld = _nft_field(left)
    if fld in ("never", "l4"):
        # a header of another protocol: VRRP never carries it (a
        # `tcp dport != 22` would still need a TCP header to match)
        return Match("never", text=text)
    if fld == "unknown" or values is None:
        return Match("unknown", text=text)
    return Match(fld, tuple(values), negate, text)


def _nft_field(left: Any) -> str:
    if not isinstance(left, dict) or len(left) != 1:
        return "unknown"
    ((kind, body),) = left.items()
    if not isinstance(body, dict):
        return "unknown"
    if kind == "payload":
        protocol, name = body.get("protocol"), str(body.get("field"))
        if protocol == "ip":
            return {"protocol": "proto", "saddr": "saddr", "daddr": "daddr"}.get(name, "unknown")
        if protocol in _L4:
            return "l4"
        if protocol in ("ip6", "arp"):
            return "never"
        return "unknown"
    if kind == "meta":
        return {
            "l4proto": "proto",
            "iifname": "iif",
            "iif": "iif",
            "oifname": "oif",
            "oif": "oif",
            "nfproto": "family",
            "protocol": "family",
            "pkttype": "pkttype",
        }.get(body.get("key", ""), "unknown")
    if kind == "ct" and body.get("key") == "state" and "dir" not in body:
        return "ctstate"
    return "unknown"


def _nft_text(left: Any) -> str:
    if isinstance(left, dict) and len(left) == 1:
        ((kind, body),) = left.items()
        if isinstance(body, dict):
            parts = [str(body.get(k)) for k in ("protocol", "field", "key") if body.get(k)]
            return f"{kind} {' '.join(parts)}".strip()
        return str(kind)
    return "an expression"


# -------------------------------------------------------------- iptables --


def parse_iptables_save(text: str) -> Ruleset:
    """`iptables-save` output -> Ruleset (filter, raw, mangle and security tables)."""
    ruleset = Ruleset("iptables")
    table = ""
    counts: dict[tuple[str, str], int] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or line == "COMMIT":
            continue
        if line.startswith("*"):
            table = line[1:]
            continue
        if line.startswith(":"):
            name, _, rest = line[1:].partition(" ")
            policy = rest.split()[0] if rest.split() else "-"
            hook = IPTABLES_HOOKS.get(table, {}).get(name)
            ruleset.chains[(table, name)] = Chain(
                name,
                table,
                hook=hook,
                policy="drop" if policy == "DROP" else "accept",
                where=f"iptables -t {table} {name}",
                fix=f"iptables -t {table} -A {name} -p vrrp -j ACCEPT",
            )
            continue
        if line.startswith("-A "):
            try:
                words = shlex.split(line)
            except ValueError:
                words = line.split()
            chain = ruleset.chains.get((table, words[1])) if len(words) > 1 else None
            if chain is None:
                continue
            counts[(table, chain.name)] = n = counts.get((table, chain.name), 0) + 1
            chain.rules.append(_iptables_rule(words[2:], table, chain.name, n))
    return ruleset


def _iptables_rule(words: list[str], table: str, chain: str, n: int) -> Rule:
    matches: list[Match] = []
    verdict, target = "continue", ""
    negate = jumped = False
    i = 0
    while i < len(words):
        word = words[i]
        if word == "!":
            negate = True
            i += 1
            continue
        args: list[str] = []
        j = i + 1
        while j < len(words) and not words[j].startswith("-") and words[j] != "!":
            args.append(words[j])
            j += 1
        value = args[0] if args else ""
        if jumped:
            pass  # options of the target (--reject-with, --log-prefix ...)
        elif word in ("-p", "--protocol"):
            matches.append(Match("proto", (value,), negate, f"-p {value}"))
        elif word in ("-s", "--source", "-d", "--destination"):
            fld = "saddr" if word in ("-s", "--source") else "daddr"
            matches.append(Match(fld, tuple(value.split(",")), negate, f"{word} {value}"))
        elif word in ("-i", "--in-interface", "-o", "--out-interface"):
            fld = "iif" if word in ("-i", "--in-interface") else "oif"
            matches.append(Match(fld, (value,), negate, f"{word} {value}"))
        elif word in ("--ctstate", "--state"):
            matches.append(Match("ctstate", tuple(value.lower().split(",")), negate, word))
        elif word == "--pkt-type":
            matches.append(Match("pkttype", (value.lower(),), negate, word))
        elif word == "--dst-type":
            matches.append(Match("addrtype", tuple(value.lower().split(",")), negate, word))
        elif word in ("-j", "--jump", "-g", "--goto"):
            verdict, target = _iptables_target(word, value)
            jumped = True
        elif word in ("-m", "--match", "--comment", "--dport", "--sport", "--dports"):
            pass  # a module name, a comment, or ports (already false through -p)
        elif word in ("-f", "--fragment"):
            matches.append(Match("unknown", (), negate, word))
        else:
            matches.append(Match("unknown", (), negate, f"{word} {' '.join(args)}".strip()))
        negate = False
        i = j
    where = f"rule {n} of {chain} in iptables table {table}"
    fix = f"iptables -t {table} -I {chain} {n} -p vrrp -j ACCEPT"
    return Rule(tuple(matches), verdict, target, where, fix)


def _iptables_target(option: str, name: str) -> tuple[str, str]:
    if option in ("-g", "--goto"):
        return "goto", name
    builtin = {"ACCEPT": "accept", "DROP": "drop", "REJECT": "drop", "RETURN": "return"}
    if name in builtin:
        return builtin[name], ""
    if name.isupper():  # LOG, MARK, CT, NFLOG, TRACE ... do not decide; NFQUEUE may
        return ("unknown", "") if name in ("NFQUEUE", "QUEUE") else ("continue", "")
    return "jump", name


# ------------------------------------------------------------------- ufw --


@dataclass(frozen=True, slots=True)
class UfwStatus:
    active: bool
    incoming: str  # allow deny reject
    outgoing: str
    vrrp_rules: tuple[str, ...]  # status lines that allow vrrp


def parse_ufw_status(text: str) -> UfwStatus:
    """`ufw status verbose` -> what matters for VRRP."""
    active = False
    incoming = outgoing = "allow"
    rules: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        low = line.lower()
        if low.startswith("status:"):
            active = low.split(":", 1)[1].strip() == "active"
        elif low.startswith("default:"):
            for part in low.split(":", 1)[1].split(","):
                words = part.replace("(", " ").replace(")", " ").split()
                if len(words) >= 2 and words[1] == "incoming":
                    incoming = words[0]
                elif len(words) >= 2 and words[1] == "outgoing":
                    outgoing = words[0]
        elif "vrrp" in low and "allow" in low:
            rules.append(line)
    return UfwStatus(active, incoming, outgoing, tuple(rules))


def ufw_before_rules_allow_vrrp(text: str) -> bool:
    """Whether /etc/ufw/before.rules accepts VRRP in ufw-before-input."""
    for raw in text.splitlines():
        words = raw.split()
        if (
            words[:2] == ["-A", "ufw-before-input"]
            and any(p in words for p in ("vrrp", "112"))
            and "ACCEPT" in words
        ):
            return True
    return False
