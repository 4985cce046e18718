"""`nft -j list ruleset` (libnftables JSON) read into the evaluator's model.

Each rule becomes matches and a verdict; an expression doctor cannot
judge becomes an `unknown` match, so that the answer is a doubt rather
than a guess.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lvsha.tools.firewall.evaluate import Chain, Match, Rule, Ruleset

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
