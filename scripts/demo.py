"""A director pair in network namespaces: election, status, crash takeover.

Builds a LAN (192.0.2.0/24, RFC 5737) with two directors and a client, runs
`lvsha run` on both directors with the lvs01 VRRP settings (VRID 51,
priority 100 on both, PASS `grr02`, VIP 192.0.2.100/32), shows
`lvsha status` of each, pings the VIP from the client, kills the master with
SIGKILL and shows the backup take over and the client follow. Everything it
creates is deleted at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from lab import LVSHA, ROOT, VIP, Director, instance_toml, lab, wait_for

from lvsha.core.vrrp import master_down_interval


def say(text: str) -> None:
    print(f"\n=== {text}", flush=True)


def show_status(director: Director) -> None:
    out = subprocess.run(
        [*LVSHA, "status", "--socket", str(director.socket)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=10,
    )
    print(f"--- lvsha status on {director.host.name}")
    print(out.stdout.rstrip() or out.stderr.rstrip())


def ping(host: object) -> bool:
    result = host.run("ping", "-c", "1", "-W", "1", VIP, check=False)  # type: ignore[attr-defined]
    return bool(result.returncode == 0)


def main() -> int:
    mdi = master_down_interval(1, 100)
    with lab() as the_lab:
        say("building the LAN: director1 192.0.2.11, director2 192.0.2.12, client 192.0.2.50")
        h1 = the_lab.host("director1", "192.0.2.11")
        h2 = the_lab.host("director2", "192.0.2.12")
        client = the_lab.host("client", "192.0.2.50")
        say("starting lvsha on director1, then on director2 (VRID 51, priority 100 each)")
        d1 = the_lab.start(h1, instance_toml(100))
        d1.wait_state("MASTER", mdi + 3)
        d2 = the_lab.start(h2, instance_toml(100))
        d2.wait_state("BACKUP", 5)
        wait_for(lambda: d2.status()["instances"][0]["counters"]["adverts_received"] >= 2, 5)
        show_status(d1)
        show_status(d2)
        say(f"client pings the VIP {VIP}")
        print(
            f"ping: {'ok' if ping(client) else 'FAILED'}; "
            f"client's ARP entry for the VIP: {client.neighbour_mac(VIP)} "
            f"(director1 is {h1.mac})"
        )
        say("kill -9 of the master (director1), and its link goes down")
        killed = time.time()
        d1.kill()
        h1.link(up=False)
        d2.wait_state("MASTER", mdi + 2)
        took = d2.status()["instances"][0]["last_transition"]["at"] - killed
        print(
            f"director2 is MASTER {took:.3f} s after the kill "
            f"(protocol bound: 3 x advert_int + Skew_Time = {mdi:.3f} s after the last advert)"
        )
        wait_for(lambda: client.neighbour_mac(VIP) == h2.mac, 5)
        now_mac = client.neighbour_mac(VIP)
        print(f"client's ARP entry for the VIP now: {now_mac} (director2 is {h2.mac})")
        print(f"ping: {'ok' if ping(client) else 'FAILED'}")
        show_status(d2)
        say("stopping director2 with SIGTERM (priority 0 advert, VIP removed, exit 0)")
        print(f"exit code: {d2.terminate()}; VIP still on director2: {h2.has_vip()}")
        say("tearing down the namespaces")
    print("demo complete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
