"""`lvsha doctor`: what breaks LVS-DR director pairs in practice, checked on the spot.

Each check returns `Result`s (OK / WARN / FAIL, a one-line message and a
one-line fix) so that tests can call it alone; `main` runs them all:

* ip_vs: the kernel module is loaded, or at least loadable, with the
  configured schedulers;
* interfaces: the VRRP interfaces exist, are up and have an address;
* firewall: VRRP (IP protocol 112) passes nftables, iptables and ufw, in
  from the peers (or 224.0.0.18) and out (see `lvsha.tools.firewall`);
* rp_filter: strict reverse-path filtering does not drop the peers' adverts
  or the clients' packets;
* vrrp-neighbours: listening on the link (bounded) for adverts of our VRIDs
  from routers that are not our peer, or that disagree on VIPs or
  authentication (RFC 3768 section 7.1 would have them discarded);
* arp: ARP requests (RFC 5227 probes, sender 0.0.0.0, so that no neighbour
  cache changes) for each VIP; any answer from a MAC that is not the
  master's is a real server without arp_ignore, which pulls client traffic
  past the director;
* bgp: sloppy_tcp, the speaker's binary, announced VIPs only on lo
  (`lvsha.tools.doctor.bgp`).

Only the VRRP interface's own link sees traffic: ARP probes and nothing else.
Exit codes (`lvsha.exits`): 0 all OK, 1 any FAIL, 2 warnings only, 78 when
the configuration itself has problems (nothing else is checked then).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from lvsha.config import Config, load_config
from lvsha.errors import ConfigError, KernelError
from lvsha.exits import EX_CONFIG
from lvsha.tools.doctor.arp import DEFAULT_ARP_WAIT, check_arp
from lvsha.tools.doctor.bgp import check_bgp
from lvsha.tools.doctor.firewall import check_firewall
from lvsha.tools.doctor.host import check_interfaces, check_ip_vs, check_rp_filter
from lvsha.tools.doctor.neighbours import DEFAULT_LISTEN_SECONDS, check_vrrp_neighbours
from lvsha.tools.doctor.results import Result, Status, exit_code, render

__all__ = [
    "check_arp",
    "check_bgp",
    "check_firewall",
    "check_interfaces",
    "check_ip_vs",
    "check_rp_filter",
    "check_vrrp_neighbours",
    "main",
    "run_checks",
]


def run_checks(
    config: Config,
    listen_seconds: float = DEFAULT_LISTEN_SECONDS,
    arp_wait: float = DEFAULT_ARP_WAIT,
) -> list[Result]:
    """Every check, in the order an operator would fix things."""
    results = check_ip_vs({vs.scheduler for vs in config.virtual_servers})
    steps: list[tuple[str, Callable[[], list[Result]]]] = [
        ("interfaces", lambda: check_interfaces(config)),
        ("firewall", lambda: check_firewall(config)),
        ("rp_filter", lambda: check_rp_filter(config)),
        ("vrrp-neighbours", lambda: check_vrrp_neighbours(config, listen_seconds)),
        ("arp", lambda: check_arp(config, arp_wait)),
        ("bgp", lambda: check_bgp(config)),
    ]
    for name, step in steps:
        try:
            results += step()
        except (OSError, KernelError) as exc:
            results.append(Result(name, Status.WARN, f"could not check: {exc}"))
    return results


def main(
    config_path: str,
    listen_seconds: float = DEFAULT_LISTEN_SECONDS,
    arp_wait: float = DEFAULT_ARP_WAIT,
    as_json: bool = False,
) -> int:
    """`lvsha doctor`: print every result; 0 all OK, 1 any FAIL, 2 warnings, 78 bad config."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        fix = f"lvsha check-config {config_path}"
        problems = [Result("config", Status.FAIL, f"{config_path}: {p}", fix) for p in exc.problems]
        _report(problems, as_json)
        return EX_CONFIG
    results = run_checks(config, listen_seconds, arp_wait)
    _report(results, as_json)
    return exit_code(results)


def _report(results: list[Result], as_json: bool = False) -> None:
    if as_json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
        return
    print(render(results))
    counts = {s: sum(r.status is s for r in results) for s in Status}
    print(f"{counts[Status.FAIL]} FAIL, {counts[Status.WARN]} WARN, {counts[Status.OK]} OK")
