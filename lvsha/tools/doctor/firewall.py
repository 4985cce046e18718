"""`lvsha doctor`'s firewall check: does VRRP (IP protocol 112) pass nftables, iptables and ufw?

It runs `nft -j list ruleset`, `iptables-save` and `ufw status verbose`,
builds one probe per advert each instance must receive and send, and walks
them through the rules with the pure evaluator in `lvsha.tools.firewall`.
"""

from __future__ import annotations

import json
from pathlib import Path

from lvsha.adapters import hostnet
from lvsha.config import Config
from lvsha.config.router import router_params
from lvsha.core.packet import (
    VRRP_MULTICAST_GROUP,
)
from lvsha.errors import KernelError
from lvsha.tools.doctor.host import own_addresses, run_tool, tool
from lvsha.tools.doctor.results import Result, Status
from lvsha.tools.firewall.evaluate import Packet, Ruleset, evaluate
from lvsha.tools.firewall.iptables import IPTABLES_TABLES, parse_iptables_save
from lvsha.tools.firewall.nftables import parse_nft_json
from lvsha.tools.firewall.ufw import UfwStatus, parse_ufw_status, ufw_before_rules_allow_vrrp


def vrrp_probes(config: Config) -> list[tuple[str, Packet]]:
    """The adverts each instance must receive and send, as firewall probes."""
    try:
        held = hostnet.addresses()
    except KernelError:
        held = []
    probes = []
    for inst in config.vrrp:
        if router_params(inst).family == 6:
            continue  # the evaluator models IPv4 only: ipv6_unchecked() says so
        own = own_addresses(inst, held)
        local = inst.unicast_src_ip or (own[0] if own else None)
        iface = inst.interface
        if inst.unicast_peers:
            for peer in inst.unicast_peers:
                probes.append((inst.name, Packet(True, peer, local, iface, False)))
                probes.append((inst.name, Packet(False, local, peer, iface, False)))
        else:
            group = VRRP_MULTICAST_GROUP
            probes.append((inst.name, Packet(True, None, group, iface, True)))
            probes.append((inst.name, Packet(False, local, group, iface, True)))
    return probes


def firewall_results(ruleset: Ruleset, probes: list[tuple[str, Packet]]) -> list[Result]:
    """Walk every probe through the ruleset: FAIL on a sure drop, WARN on a doubt."""
    results = []
    source = ruleset.source
    for instance, pkt in probes:
        verdicts = evaluate(ruleset, pkt)
        drops = [v for v in verdicts if not v.accepted]
        sure = [v for v in drops if not v.doubts]
        what = f"{source}: {pkt.describe()} ({instance})"
        if sure:
            results.append(
                Result("firewall", Status.FAIL, f"{what} is dropped by {sure[0].by}", sure[0].fix)
            )
        elif drops:
            v = drops[0]
            results.append(
                Result(
                    "firewall",
                    Status.WARN,
                    f"{what} is dropped by {v.by} unless {'; '.join(v.doubts)} accepts it",
                    v.fix,
                )
            )
        elif doubtful := [d for v in verdicts for d in v.doubts]:
            results.append(
                Result(
                    "firewall",
                    Status.WARN,
                    f"{what} is accepted, unless {'; '.join(doubtful)} drops it first",
                    "make sure VRRP is accepted before those rules (ip protocol vrrp accept)",
                )
            )
    if not results:
        chains = len(ruleset.base_chains(True)) + len(ruleset.base_chains(False))
        message = (
            f"{source}: VRRP passes in and out ({chains} base chains on those paths)"
            if chains
            else f"{source}: no rules on the input and output paths"
        )
        results.append(Result("firewall", Status.OK, message))
    return results


def ufw_results(status: UfwStatus, before_rules: str | None) -> list[Result]:
    """ufw has no rule for VRRP by default; its before.rules is where one goes."""
    if not status.active:
        return [Result("firewall", Status.OK, "ufw: inactive")]
    allowed = bool(status.vrrp_rules) or (
        before_rules is not None and ufw_before_rules_allow_vrrp(before_rules)
    )
    results = []
    if status.incoming in ("deny", "reject") and not allowed:
        results.append(
            Result(
                "firewall",
                Status.FAIL,
                f"ufw: incoming is {status.incoming} by default and no rule allows VRRP",
                "add `-A ufw-before-input -p vrrp -j ACCEPT` to /etc/ufw/before.rules "
                "(before COMMIT), then `ufw reload`",
            )
        )
    if status.outgoing in ("deny", "reject"):
        results.append(
            Result(
                "firewall",
                Status.WARN,
                f"ufw: outgoing is {status.outgoing} by default: our adverts may not leave",
                "add `-A ufw-before-output -p vrrp -j ACCEPT` to /etc/ufw/before.rules, "
                "then `ufw reload`",
            )
        )
    return results or [Result("firewall", Status.OK, "ufw: VRRP allowed")]


def ipv6_unchecked(config: Config) -> list[Result]:
    """A WARN per IPv6 instance: its adverts (ff02::12) are not walked through ip6 rules."""
    return [
        Result(
            "firewall",
            Status.WARN,
            f"{inst.name} is IPv6: doctor walks IPv4 VRRP only, so its adverts (IPv6 next "
            "header 112, to ff02::12 or its unicast peers) were not checked against the "
            "ip6 / inet rules",
            "check them yourself: nft list ruleset (ip6, inet tables), ip6tables-save; "
            "accept with `meta l4proto vrrp accept` / `ip6tables -I INPUT -p vrrp -j ACCEPT`",
        )
        for inst in config.vrrp
        if router_params(inst).family == 6
    ]


def check_firewall(config: Config, *, root: Path = Path("/")) -> list[Result]:
    """Read nftables, iptables and ufw as they are now and evaluate the VRRP probes."""
    probes = vrrp_probes(config)
    results: list[Result] = ipv6_unchecked(config)
    if results and not probes:  # only IPv6 instances: nothing the evaluator can say
        return results
    iptables_save = tool("iptables-save")
    nft = tool("nft")
    if nft is not None:
        rc, out, err = run_tool([nft, "-j", "list", "ruleset"])
        try:
            doc = json.loads(out or "{}") if rc == 0 else None
        except ValueError:
            doc, err = None, "its JSON output does not parse"
        if doc is None:
            results.append(
                Result("firewall", Status.WARN, f"nftables: cannot read the ruleset: {err}", "")
            )
        else:
            # iptables-nft keeps its tables in nftables too: read them once, as iptables
            skip = [("ip", t) for t in IPTABLES_TABLES] if iptables_save else []
            results += firewall_results(parse_nft_json(doc, skip), probes)
    if iptables_save is not None:
        rc, out, err = run_tool([iptables_save])
        if rc != 0:
            results.append(Result("firewall", Status.WARN, f"iptables-save failed: {err}"))
        else:
            results += firewall_results(parse_iptables_save(out), probes)
    ufw = tool("ufw")
    if ufw is not None:
        rc, out, err = run_tool([ufw, "status", "verbose"])
        if rc != 0:
            results.append(Result("firewall", Status.WARN, f"ufw status failed: {err}"))
        else:
            try:
                before = (root / "etc/ufw/before.rules").read_text(errors="replace")
            except OSError:
                before = None
            results += ufw_results(parse_ufw_status(out), before)
    if nft is None and iptables_save is None and ufw is None:
        results.append(Result("firewall", Status.OK, "no nft, iptables-save or ufw: no firewall"))
    return results
