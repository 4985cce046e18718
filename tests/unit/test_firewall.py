"""The firewall evaluator behind `lvsha doctor`: rulesets in, VRRP verdicts out.

The nftables documents are what `nft -j list ruleset` (1.0.6) printed for
the rules quoted above each; the iptables text is ufw's ruleset as
`iptables-save` prints it. The namespace tier runs the same checks against
rules loaded into a real kernel.
"""

from __future__ import annotations

import json

from lvsha.tools.firewall.evaluate import Packet, Ruleset, Verdict, evaluate
from lvsha.tools.firewall.iptables import parse_iptables_save
from lvsha.tools.firewall.nftables import parse_nft_json
from lvsha.tools.firewall.ufw import parse_ufw_status, ufw_before_rules_allow_vrrp

MULTICAST_IN = Packet(True, None, "224.0.0.18", "eth1", True)
MULTICAST_OUT = Packet(False, "192.0.2.11", "224.0.0.18", "eth1", True)


def unicast_in(peer: str) -> Packet:
    return Packet(True, peer, "192.0.2.11", "eth1", False)


def nft(*items: str) -> Ruleset:
    return parse_nft_json({"nftables": [json.loads(i) for i in items]})


def one(ruleset: Ruleset, pkt: Packet) -> Verdict:
    [verdict] = evaluate(ruleset, pkt)
    return verdict


def chain(policy: str = "accept", hook: str = "input", name: str = "input") -> str:
    return json.dumps(
        {
            "chain": {
                "family": "inet",
                "table": "fw",
                "name": name,
                "handle": 1,
                "type": "filter",
                "hook": hook,
                "prio": 0,
                "policy": policy,
            }
        }
    )


def rule(handle: int, *expr: str, name: str = "input") -> str:
    body = ", ".join(expr)
    return (
        f'{{"rule": {{"family": "inet", "table": "fw", "chain": "{name}", '
        f'"handle": {handle}, "expr": [{body}]}}}}'
    )


ACCEPT, DROP = '{"accept": null}', '{"drop": null}'
PROTO_VRRP = (
    '{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "protocol"}},'
    ' "right": "vrrp"}}'
)
CT_ESTABLISHED = (
    '{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}'
)
SADDR_PREFIX = (
    '{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},'
    ' "right": {"set": [{"prefix": {"addr": "192.0.2.0", "len": 25}}]}}}'
)
TCP_22 = (
    '{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}},'
    ' "right": 22}}'
)


def test_a_rule_dropping_vrrp_is_a_sure_drop_with_an_insert_fix() -> None:
    # tcp dport 22 accept; ip protocol vrrp drop
    rs = nft(chain(), rule(3, TCP_22, ACCEPT), rule(4, PROTO_VRRP, DROP))
    v = one(rs, MULTICAST_IN)
    assert (v.accepted, v.by, v.doubts) == (False, "rule handle 4 in inet fw input", ())
    assert v.fix == "nft insert rule inet fw input position 4 ip protocol vrrp accept"
    # `ip protocol != vrrp drop` leaves VRRP alone
    negated = PROTO_VRRP.replace('"op": "=="', '"op": "!="')
    assert one(nft(chain(), rule(3, negated, DROP)), MULTICAST_IN).accepted


def test_drop_policy_without_a_vrrp_accept_drops_multicast_for_sure() -> None:
    # policy drop; ct state established,related accept; tcp dport 22 accept
    rs = nft(chain("drop"), rule(3, CT_ESTABLISHED, ACCEPT), rule(4, TCP_22, ACCEPT))
    v = one(rs, MULTICAST_IN)
    # multicast adverts get no reply: conntrack never calls them established
    assert (v.accepted, v.by, v.doubts) == (False, "the drop policy of inet fw input", ())
    assert v.fix == "nft add rule inet fw input ip protocol vrrp accept"
    # unicast ones between two peers may: a doubt, so a warning, not a verdict
    v = one(rs, unicast_in("192.0.2.12"))
    assert not v.accepted
    assert v.doubts == ("rule handle 3 in inet fw input (depends on ct state)",)


def test_an_accept_limited_to_some_sources_decides_per_peer() -> None:
    # ip protocol vrrp ip saddr { 192.0.2.0/25 } accept; meta l4proto vrrp drop
    l4_vrrp = '{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "vrrp"}}'
    rs = nft(chain(), rule(6, PROTO_VRRP, SADDR_PREFIX, ACCEPT), rule(7, l4_vrrp, DROP))
    assert one(rs, unicast_in("192.0.2.12")).accepted
    v = one(rs, unicast_in("192.0.2.200"))
    assert (v.accepted, v.by, v.doubts) == (False, "rule handle 7 in inet fw input", ())
    # any peer (multicast): the accept may or may not match
    v = one(rs, MULTICAST_IN)
    assert not v.accepted
    assert v.doubts == ("rule handle 6 in inet fw input (depends on payload ip saddr)",)


def test_output_drop_to_the_group_catches_our_own_adverts() -> None:
    daddr = (
        '{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}},'
        ' "right": "224.0.0.18"}}'
    )
    rs = nft(chain(hook="output", name="out"), rule(2, daddr, DROP, name="out"))
    assert not one(rs, MULTICAST_OUT).accepted
    assert evaluate(rs, MULTICAST_IN) == []  # no input chain: nothing to say
    assert one(rs, Packet(False, "192.0.2.11", "192.0.2.12", "eth1", False)).accepted


def test_verdict_maps_are_read_entry_by_entry() -> None:
    ct_vmap = (
        '{"vmap": {"key": {"ct": {"key": "state"}}, "data": {"set": [["invalid", {"drop": null}],'
        ' ["established", {"accept": null}], ["related", {"accept": null}]]}}}'
    )
    l4_vmap = (
        '{"vmap": {"key": {"meta": {"key": "l4proto"}}, "data": {"set": '
        '[["tcp", {"accept": null}], ["vrrp", {"drop": null}]]}}}'
    )
    rs = nft(chain("drop"), rule(4, ct_vmap))
    assert one(rs, MULTICAST_IN).by == "the drop policy of inet fw input"
    v = one(nft(chain(), rule(13, l4_vmap)), MULTICAST_IN)
    assert (v.accepted, v.by) == (False, "rule handle 13 in inet fw input")


def test_named_sets_jumps_and_unknown_matches() -> None:
    peers = (
        '{"set": {"family": "inet", "name": "peers", "table": "fw", "type": "ipv4_addr", '
        '"handle": 2, "elem": ["192.0.2.12"]}}'
    )
    saddr_set = (
        '{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},'
        ' "right": "@peers"}}'
    )
    vrrp_chain = json.dumps({"chain": {"family": "inet", "table": "fw", "name": "vrrp"}})
    rs = nft(
        peers,
        chain("drop"),
        vrrp_chain,
        rule(5, PROTO_VRRP, '{"jump": {"target": "vrrp"}}'),
        rule(6, saddr_set, ACCEPT, name="vrrp"),
    )
    assert one(rs, unicast_in("192.0.2.12")).accepted
    assert not one(rs, unicast_in("192.0.2.13")).accepted
    # a rate limit in front of the accept: doctor cannot tell, so it says so
    limit = '{"limit": {"rate": 5, "burst": 5, "per": "second"}}'
    v = one(nft(chain("drop"), rule(8, PROTO_VRRP, limit, ACCEPT)), MULTICAST_IN)
    assert not v.accepted and v.doubts == ("rule handle 8 in inet fw input (depends on `limit`)",)


def test_iptables_nft_tables_can_be_left_to_iptables_save() -> None:
    doc = {
        "nftables": [
            {"chain": {"family": "ip", "table": "filter", "name": "INPUT", "hook": "input"}},
            {"chain": {"family": "inet", "table": "filter", "name": "input", "hook": "input"}},
        ]
    }
    rs = parse_nft_json(doc, skip_tables=[("ip", "filter")])
    assert [c.where for c in rs.chains.values()] == ["inet filter input"]


UFW_IPTABLES_SAVE = """\
# Generated by iptables-save v1.8.9 (nf_tables)
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:ufw-after-input - [0:0]
:ufw-after-logging-input - [0:0]
:ufw-before-input - [0:0]
:ufw-before-output - [0:0]
:ufw-logging-deny - [0:0]
:ufw-not-local - [0:0]
:ufw-skip-to-policy-input - [0:0]
:ufw-track-output - [0:0]
:ufw-user-input - [0:0]
:ufw-user-output - [0:0]
-A INPUT -j ufw-before-input
-A INPUT -j ufw-after-input
-A INPUT -j ufw-after-logging-input
-A OUTPUT -j ufw-before-output
-A OUTPUT -j ufw-track-output
-A ufw-after-input -p udp -m udp --dport 137 -j ufw-skip-to-policy-input
-A ufw-after-input -m addrtype --dst-type BROADCAST -j ufw-skip-to-policy-input
-A ufw-after-logging-input -m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix "[UFW BLOCK]"
-A ufw-before-input -i lo -j ACCEPT
-A ufw-before-input -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A ufw-before-input -m conntrack --ctstate INVALID -j ufw-logging-deny
-A ufw-before-input -m conntrack --ctstate INVALID -j DROP
-A ufw-before-input -p icmp -m icmp --icmp-type 3 -j ACCEPT
-A ufw-before-input -j ufw-not-local
-A ufw-before-input -d 224.0.0.251/32 -p udp -m udp --dport 5353 -j ACCEPT
-A ufw-before-input -j ufw-user-input
-A ufw-before-output -o lo -j ACCEPT
-A ufw-before-output -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A ufw-before-output -j ufw-user-output
-A ufw-logging-deny -m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix "[UFW BLOCK] "
-A ufw-not-local -m addrtype --dst-type LOCAL -j RETURN
-A ufw-not-local -m addrtype --dst-type MULTICAST -j RETURN
-A ufw-not-local -m addrtype --dst-type BROADCAST -j RETURN
-A ufw-not-local -m limit --limit 3/min --limit-burst 10 -j ufw-logging-deny
-A ufw-not-local -j DROP
-A ufw-skip-to-policy-input -j DROP
-A ufw-track-output -p tcp -m conntrack --ctstate NEW -j ACCEPT
-A ufw-user-input -p tcp -m tcp --dport 22 -j ACCEPT
COMMIT
"""


def test_ufw_through_iptables_save_drops_vrrp_by_its_policy() -> None:
    rs = parse_iptables_save(UFW_IPTABLES_SAVE)
    v = one(rs, MULTICAST_IN)
    assert (v.accepted, v.by, v.doubts) == (
        False,
        "the drop policy of iptables -t filter INPUT",
        (),
    )
    assert v.fix == "iptables -t filter -A INPUT -p vrrp -j ACCEPT"
    assert one(rs, MULTICAST_OUT).accepted
    # with before.rules' VRRP line, ufw-before-input accepts it
    fixed = UFW_IPTABLES_SAVE.replace(
        "-A ufw-before-input -i lo -j ACCEPT\n",
        "-A ufw-before-input -i lo -j ACCEPT\n-A ufw-before-input -p vrrp -j ACCEPT\n",
    )
    v = one(parse_iptables_save(fixed), MULTICAST_IN)
    assert (v.accepted, v.by) == (True, "rule 2 of ufw-before-input in iptables table filter")


def test_iptables_rules_numbers_negation_and_targets() -> None:
    rs = parse_iptables_save(
        "*filter\n:INPUT ACCEPT [0:0]\n"
        '-A INPUT -m comment --comment "log everything" -j LOG --log-prefix "in: "\n'
        "-A INPUT ! -s 192.0.2.0/24 -j DROP\n"
        "-A INPUT -s 192.0.2.12/32 -p vrrp -j ACCEPT\n"
        "-A INPUT -p 112 -j REJECT --reject-with icmp-port-unreachable\n"
        "COMMIT\n"
    )
    assert one(rs, unicast_in("192.0.2.12")).accepted
    v = one(rs, unicast_in("198.51.100.7"))
    assert (v.accepted, v.by) == (False, "rule 2 of INPUT in iptables table filter")
    v = one(rs, unicast_in("192.0.2.13"))
    assert (v.accepted, v.by) == (False, "rule 4 of INPUT in iptables table filter")
    assert v.fix == "iptables -t filter -I INPUT 4 -p vrrp -j ACCEPT"
    # any peer: the source-address rules may go either way
    v = one(rs, MULTICAST_IN)
    assert not v.accepted and len(v.doubts) == 1 and "-s 192.0.2.12/32" in v.doubts[0]


def test_ufw_status_and_before_rules() -> None:
    status = parse_ufw_status(
        "Status: active\nLogging: on (low)\n"
        "Default: deny (incoming), allow (outgoing), disabled (routed)\n"
        "New profiles: skip\n\nTo                         Action      From\n"
        "--                         ------      ----\n"
        "22/tcp                     ALLOW IN    Anywhere\n"
    )
    assert (status.active, status.incoming, status.outgoing) == (True, "deny", "allow")
    assert status.vrrp_rules == ()
    assert not parse_ufw_status("Status: inactive\n").active
    assert ufw_before_rules_allow_vrrp("*filter\n-A ufw-before-input -p vrrp -j ACCEPT\nCOMMIT\n")
    assert not ufw_before_rules_allow_vrrp("# -A ufw-before-input -p vrrp -j ACCEPT\n")
