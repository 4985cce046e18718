"""`iptables-save` output read into the evaluator's model.

The filter, raw, mangle and security tables, each built-in chain on the
hook nftables would give it (`IPTABLES_HOOKS`), so that one walk serves
both rule languages.
"""

from __future__ import annotations

import shlex

from lvsha.tools.firewall.evaluate import Chain, Match, Rule, Ruleset

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
