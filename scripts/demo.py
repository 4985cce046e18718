"""The lvs01 pair on one machine: two directors, two real servers, a client.

Builds the topology in network namespaces on one LAN (192.0.2.0/24, RFC
5737): a client, two directors running `lvsha run` with the lvs01 settings
(VRRP VI_1, VRID 51, priority 100 on both, PASS `grr02`, VIP 192.0.2.100/32,
one TCP/80 service, rr, DR, delay_loop 20 with a TCP check), and two real
servers prepared with `lvsha realserver setup` and running a small HTTP
server. It shows `lvsha status` of each director, sends requests through the
VIP and shows how they spread, kills the master and shows the takeover, then
tears everything down (also on failure or Ctrl-C).

It needs a kernel with IPVS; scripts/demo runs it inside the User-Mode Linux
kernel of the tests when this machine's kernel has none.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from lab import LVSHA, ROOT, VIP, Director, Host, Lab, instance_toml, lab, wait_for

from lvsha.core.vrrp import master_down_interval

SERVICE = f"""
[[virtual_server]]
address = "{VIP}"
port = 80
protocol = "tcp"
scheduler = "rr"
forwarding = "dr"
persistence_timeout = 0
delay_loop = 20

[[virtual_server.real_server]]
address = "192.0.2.21"
port = 80
weight = 1
tcp_check = {{ connect_timeout = 3 }}

[[virtual_server.real_server]]
address = "192.0.2.22"
port = 80
weight = 1
tcp_check = {{ connect_timeout = 3 }}
"""

GET = (
    "import collections, json, sys, urllib.request\n"
    "seen = collections.Counter()\n"
    "for _ in range(int(sys.argv[2])):\n"
    "    with urllib.request.urlopen(f'http://{sys.argv[1]}/', timeout=5) as r:\n"
    "        seen[r.read().decode().strip()] += 1\n"
    "print(json.dumps(dict(sorted(seen.items()))))\n"
)


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
    print(out.stdout.rstrip() or out.stderr.rstrip(), flush=True)


def real_server(the_lab: Lab, name: str, address: str) -> Host:
    host = the_lab.host(name, address)
    out = host.run(*LVSHA, "realserver", "setup", "--vip", VIP)
    print(f"{name}: lvsha realserver setup --vip {VIP}")
    for line in out.stdout.splitlines():
        print(f"    {line}")
    site = the_lab.workdir / f"{name}-www"
    site.mkdir()
    (site / "index.html").write_text(f"{name}\n")
    host.popen(
        [sys.executable, "-m", "http.server", "80", "--directory", str(site)],
        the_lab.workdir / f"{name}-http.log",
    )
    return host


def spread(client: Host, n: int) -> Counter[str]:
    out = client.run(sys.executable, "-c", GET, VIP, str(n), timeout=120)
    counts: Counter[str] = Counter(json.loads(out.stdout))
    print(
        f"{n} HTTP requests to http://{VIP}/ answered by: "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())),
        flush=True,
    )
    return counts


def ipvs_table(director: Director) -> str:
    return director.host.run("ipvsadm", "-Ln").stdout.rstrip()


def main() -> int:
    mdi = master_down_interval(1, 100)
    with lab() as the_lab:
        say("the LAN 192.0.2.0/24: client .50, director1 .11, director2 .12, rs1 .21, rs2 .22")
        client = the_lab.host("client", "192.0.2.50")
        h1 = the_lab.host("director1", "192.0.2.11")
        h2 = the_lab.host("director2", "192.0.2.12")
        say("real servers: the VIP on lo and the ARP sysctls, then an HTTP server")
        for name, address in (("rs1", "192.0.2.21"), ("rs2", "192.0.2.22")):
            rs = real_server(the_lab, name, address)
            wait_for(lambda rs=rs: "LISTEN" in rs.run("ss", "-ltn", "sport", "= :80").stdout, 10)

        say("lvsha on director1, then on director2 (VI_1: VRID 51, priority 100 on both)")
        config = instance_toml(100) + SERVICE
        d1 = the_lab.start(h1, config)
        d1.wait_state("MASTER", mdi + 10)
        d2 = the_lab.start(h2, config)
        d2.wait_state("BACKUP", 15)
        reals = {"192.0.2.21", "192.0.2.22"}
        wait_for(lambda: all(r in ipvs_table(d) for d in (d1, d2) for r in reals), 20)
        wait_for(lambda: d2.status()["instances"][0]["counters"]["adverts_received"] >= 2, 10)
        show_status(d1)
        show_status(d2)
        print("--- ipvsadm -Ln on director2 (the standby is warm)")
        print(ipvs_table(d2))

        say("the client sends requests to the VIP; director1 forwards them (DR)")
        before = spread(client, 20)

        say("kill -9 of the master (director1), and its link goes down")
        killed = time.time()
        d1.kill()
        h1.link(up=False)
        d2.wait_state("MASTER", mdi + 5)
        took = d2.status()["instances"][0]["last_transition"]["at"] - killed
        print(
            f"director2 is MASTER {took:.3f} s after the kill "
            f"(bound: 3 x advert_int + Skew_Time = {mdi:.3f} s after the last advert)"
        )
        wait_for(lambda: client.neighbour_mac(VIP) == h2.mac, 10)
        print(f"the client's ARP entry for the VIP moved to director2 ({h2.mac})")
        after = spread(client, 20)
        show_status(d2)

        say("result")
        ok = set(before) == set(after) == {"rs1", "rs2"}
        print(
            f"master before: director1; after: director2; requests reached "
            f"{' and '.join(sorted(set(before) | set(after)))} -- {'OK' if ok else 'FAILED'}"
        )
        say("tearing down the namespaces")
    print("demo complete", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
