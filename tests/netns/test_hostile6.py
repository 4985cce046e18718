"""A flood of forged IPv6 VRRPv3 adverts: the IPv6 receiver's two queues keep the master.

A pair of `lvsha run` directors speaks VRRPv3 over IPv6 (VI_1, VRID 51,
advert_int 1, link-local sources to ff02::12, VIP 2001:db8::100/64; d1
priority 150 is master, d2 priority 100 backup) on a LAN with an attacker.
Two attacker processes send forged adverts (forge6.py: built with scapy,
sent from the attacker's link-local address) to ff02::12 as fast as they can
for 10 s, each claiming priority 255: a hop limit of 64, another version, an
unknown VRID, a truncated header. Any of them would take over if it were
accepted, and together they arrive faster than lvsha reads.

adapters/vrrp_socket6.py sorts the datagrams in the kernel
(`expected_advert_filter6`) into a queue for what may be a real advert of
VRID 51 and one for the rest, as the IPv4 receiver does (test_hostile.py).
The flood fills only the second queue, so the backup goes on hearing every
advert of the master; with one shared queue (before this) the flood crowds
the master's adverts out of it. Every forged datagram is still counted: by
its reason, or as `overflow` when the kernel dropped it from a full queue.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections import Counter
from typing import Any

from forge6 import advert6, sender_argv6, write_lines
from lab import Director, Host, Lab, wait_for
from test_hostile import drops, instance
from test_keepalived_v3_ipv6 import has_vip6, link_local_ready, lvsha_toml

from lvsha.adapters.control_client import request

FLOOD_COUNT = 1_000_000
FLOOD_SECONDS = 10.0
FLOOD_SENDERS = 2


def host6(lab: Lab, name: str, address: str) -> Host:
    host = lab.host(name, address)
    wait_for(lambda: link_local_ready(host), timeout=10, interval=0.1)
    return host


def attacker_link_local(host: Host) -> str:
    out = host.run("ip", "-j", "-6", "addr", "show", "dev", "eth1", "scope", "link").stdout
    return str(json.loads(out)[0]["addr_info"][0]["local"])


def status(d: Director) -> dict[str, Any]:
    result: dict[str, Any] = request(str(d.socket), "status", timeout=10)
    return result


def test_ipv6_flood_keeps_the_master_and_every_drop_is_counted(lab: Lab) -> None:
    d1 = lab.start(host6(lab, "d1", "192.0.2.11"), lvsha_toml(150, 1.0))
    d1.wait_state("MASTER", 10)
    d2 = lab.start(host6(lab, "d2", "192.0.2.12"), lvsha_toml(100, 1.0))
    d2.wait_state("BACKUP", 5)
    wait_for(lambda: instance(d2)["counters"]["adverts_received"] >= 1, 3)
    wait_for(lambda: has_vip6(d1.host), 3)
    evil = host6(lab, "evil", "192.0.2.66")
    src = attacker_link_local(evil)
    mix = [  # (hop limit, datagram)
        (64, advert6(src)),
        (255, advert6(src, version=2)),
        (255, advert6(src, vrid=52)),
        (255, advert6(src, keep=6)),
    ]
    path = write_lines(lab.workdir / "flood6.txt", mix)
    directors = {"d1": d1, "d2": d2}
    before = {name: status(d) for name, d in directors.items()}
    argv = sender_argv6(sys.executable, path, FLOOD_COUNT, FLOOD_SECONDS)
    floods = [
        subprocess.Popen(["ip", "netns", "exec", evil.ns, *argv], stdout=subprocess.PIPE, text=True)
        for _ in range(FLOOD_SENDERS)
    ]
    states: set[tuple[str, str]] = set()
    try:
        deadline = time.monotonic() + FLOOD_SECONDS + 5
        while any(f.poll() is None for f in floods) and time.monotonic() < deadline:  # bounded
            states.add((instance(d1)["state"], instance(d2)["state"]))
            time.sleep(0.2)
        results = [json.loads(f.communicate(timeout=10)[0]) for f in floods]
    finally:
        for f in floods:
            if f.poll() is None:
                f.kill()
                f.wait(timeout=10)
    sent = sum(int(r["sent"]) for r in results)
    elapsed = max(float(r["elapsed"]) for r in results)

    def drops_since(name: str) -> Counter[str]:
        return drops(status(directors[name])) - drops(before[name])

    with contextlib.suppress(TimeoutError):  # the queues are read to the end
        wait_for(lambda: all(drops_since(n).total() >= sent for n in directors), 10, interval=0.2)
    after = {name: status(d) for name, d in directors.items()}

    def delta(name: str, counter: str) -> int:
        return int(
            after[name]["instances"][0]["counters"][counter]
            - before[name]["instances"][0]["counters"][counter]
        )

    report = {
        name: {
            "drops": dict(drops(after[name]) - drops(before[name])),
            "adverts_sent": delta(name, "adverts_sent"),
            "adverts_received": delta(name, "adverts_received"),
        }
        for name in directors
    }
    print(f"\nIPv6 flood: {sent} datagrams in {elapsed:.2f} s = {sent / elapsed:.0f}/s; {report}")
    assert sent > 10 * FLOOD_SECONDS * 1000, "the flood was too slow to mean anything"
    assert states == {("MASTER", "BACKUP")}, states
    for name, d in directors.items():
        got = drops(after[name]) - drops(before[name])
        overflow = got.pop("overflow", 0)
        assert sent <= got.total() + overflow <= sent + delta(name, "adverts_received"), report
        assert "vrrp socket filter" not in d.log_text()  # the kernel took both programs
    # The master went on advertising, and the backup heard every advert it
    # sent while both were flooded (one may be on the wire at either end).
    assert delta("d1", "adverts_sent") >= int(elapsed) - 1, report
    assert delta("d2", "adverts_received") >= delta("d1", "adverts_sent") - 1, report
    s1, s2 = instance(d1), instance(d2)
    assert (s1["counters"]["became_master"], s2["counters"]["became_master"]) == (1, 0)
    assert has_vip6(d1.host) and not has_vip6(d2.host)
