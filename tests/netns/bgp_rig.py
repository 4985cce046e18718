"""A router and a director in namespaces, and "lvsha" driving one speaker adapter.

The router is BIRD 2 or FRR (zebra + bgpd) with dynamic neighbours (any
director on 192.0.2.0/24 or 2001:db8::/64 may peer, as in docs/scale-out.md);
the director runs tests/netns/bgp_driver.py, a process of its own, so that
it can be killed or stopped. Used by tests/netns/test_bgp_speakers.py and
bench/bgp_speakers.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lab import ROOT, Host, Lab, sh, wait_for

VIP = "203.0.113.100"
ROUTER = "192.0.2.1"
DIRECTOR = "192.0.2.11"
ROUTER6 = "2001:db8::1"
DIRECTOR6 = "2001:db8::11"
VIP6 = "2001:db8:100::100"
LIVENESS = 1.0
DRIVER = Path(__file__).resolve().parent / "bgp_driver.py"

ROUTER_BIRD = """\
log "{log}" all;
router id 192.0.2.1;
protocol device {{ scan time 10; }}
protocol kernel {{
  ipv4 {{ import none; export where source = RTS_BGP; }};
  merge paths on limit 16;
}}
protocol bgp directors {{
  local 192.0.2.1 as 64512;
  neighbor range 192.0.2.0/24 as 64513;
  dynamic name "dir";
  hold time 3;
  error wait time 1, 10;
  ipv4 {{ import where net ~ [ 203.0.113.0/24{{32,32}} ]; export none; }};
}}
protocol kernel {{ ipv6 {{ import none; export where source = RTS_BGP; }}; }}
protocol bgp directors6 {{
  local 2001:db8::1 as 64512;
  neighbor range 2001:db8::/64 as 64513;
  dynamic name "dirv6";
  hold time 3;
  error wait time 1, 10;
  ipv6 {{ import where net ~ [ 2001:db8:100::/48{{128,128}} ]; export none; }};
}}
"""

BFD_ROUTER = """\
protocol bfd {
  interface "*" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; };
}
"""

FRR_BGPD = """\
frr defaults datacenter
hostname bs-router
log file {dir}/bgpd.log
router bgp 64512
 bgp router-id 192.0.2.1
 no bgp ebgp-requires-policy
 bgp log-neighbor-changes
 neighbor DIR peer-group
 neighbor DIR remote-as 64513
 neighbor DIR timers 1 3
 bgp listen range 192.0.2.0/24 peer-group DIR
 bgp listen range 2001:db8::/64 peer-group DIR
 address-family ipv4 unicast
  maximum-paths 16
 exit-address-family
 address-family ipv6 unicast
  neighbor DIR activate
  maximum-paths 16
 exit-address-family
"""
FRR = Path("/usr/lib/frr")


class Rig:
    """The router, the director's namespace, and "lvsha" (the driver) in it."""

    def __init__(self, lab: Lab, router: str, bfd: bool = False) -> None:
        self.lab = lab
        self.router = lab.host("r", ROUTER)
        self.director = lab.host("d", DIRECTOR)
        for host, address in ((self.router, ROUTER6), (self.director, DIRECTOR6)):
            host.run("ip", "addr", "add", f"{address}/64", "dev", "eth1", "nodad")
        if router == "bird":
            self._bird(bfd)
        else:
            self._frr()

    def _bird(self, bfd: bool) -> None:
        conf = self.lab.workdir / "router.conf"
        text = ROUTER_BIRD.format(log=self.lab.workdir / "router.log")
        if bfd:  # RFC 5880/5882: BFD at 100 ms x 3 for every director's session
            text = text.replace("error wait time 1, 10;", "error wait time 1, 10; bfd on;")
            text += BFD_ROUTER
        conf.write_text(text)
        ctl = self.lab.workdir / "router.ctl"
        self.router.popen(
            ["bird", "-f", "-c", str(conf), "-s", str(ctl)], self.lab.workdir / "r.out"
        )

    def _frr(self) -> None:
        """zebra (the kernel's routes) and bgpd, as FRR's own user (it refuses root)."""
        d = self.lab.workdir / "frr"
        d.mkdir()
        self.lab.workdir.chmod(0o755)
        (d / "zebra.conf").write_text(f"hostname bs-router\nlog file {d}/zebra.log\n")
        (d / "bgpd.conf").write_text(FRR_BGPD.format(dir=d))
        shutil.chown(d, "frr", "frr")
        for f in d.iterdir():
            shutil.chown(f, "frr", "frr")
        common = ["-P", "0", "--vty_socket", str(d), "-z", str(d / "zserv.api")]
        zebra = [str(FRR / "zebra"), *common, "-f", str(d / "zebra.conf"), "-i", str(d / "z.pid")]
        self.router.popen(zebra, d / "zebra.out")
        wait_for((d / "zserv.api").exists, 10)
        bgpd = [str(FRR / "bgpd"), *common, "-f", str(d / "bgpd.conf"), "-i", str(d / "b.pid")]
        self.router.popen(bgpd, d / "bgpd.out")

    def nexthops(self, vip: str = VIP) -> list[str]:
        out = self.router.run("ip", "-j", "-4", "route", "show", f"{vip}/32").stdout
        routes = json.loads(out or "[]")
        hops = [h["gateway"] for r in routes for h in r.get("nexthops", [])]
        return hops or [r["gateway"] for r in routes if "gateway" in r]

    def nexthops6(self) -> list[str]:
        out = self.router.run("ip", "-j", "-6", "route", "show", f"{VIP6}/128").stdout
        routes = json.loads(out or "[]")
        hops = [h["gateway"] for r in routes for h in r.get("nexthops", [])]
        return hops or [r["gateway"] for r in routes if "gateway" in r]

    @staticmethod
    def link_local(host: Host) -> str | None:
        out = host.run("ip", "-j", "-6", "addr", "show", "dev", "eth1").stdout
        found = [a.get("local", "") for link in json.loads(out) for a in link.get("addr_info", [])]
        return next((a for a in found if a.startswith("fe80:")), None)

    def announced(self) -> bool:
        return self.nexthops() == [DIRECTOR]

    def withdrawn(self) -> bool:
        return self.nexthops() == []

    def speaker_pids(self) -> list[int]:
        """Processes left in the director's namespace besides the driver."""
        out = sh("ip", "netns", "pids", self.director.ns, check=False).stdout
        return [int(p) for p in out.split()]

    def bfd_sessions(self) -> dict[str, str]:
        """The BIRD router's BFD sessions: address -> state."""
        ctl = str(self.lab.workdir / "router.ctl")
        out = self.router.run("birdc", "-s", ctl, "show", "bfd", "sessions", check=False).stdout
        rows = [line.split() for line in out.splitlines()]
        return {r[0]: r[2] for r in rows if len(r) >= 3 and r[0][0].isdigit()}

    def kill_all_but_router(self) -> None:
        for pid in self.speaker_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def kill_all(self) -> None:
        for host in (self.director, self.router):
            out = sh("ip", "netns", "pids", host.ns, check=False).stdout
            for pid in out.split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)


class Lvsha:
    """The driver process: one adapter, commands on stdin, answers on stdout."""

    def __init__(
        self,
        rig: Rig,
        speaker: str,
        name: str,
        v6: bool = False,
        liveness: float = LIVENESS,
        extra: dict[str, Any] | None = None,
    ) -> None:
        state = rig.lab.workdir / f"state-{name}"
        peers: list[dict[str, Any]] = [{"address": ROUTER, "peer_as": 64512}]
        if v6:
            peers.append({"address": ROUTER6, "peer_as": 64512, "local_address": DIRECTOR6})
        cfg = {
            "local_as": 64513,
            "router_id": DIRECTOR,
            "peers": peers,
            "speaker": speaker,
            "hold_time": 3,
            "state_dir": str(state),
            "liveness": liveness,
            **(extra or {}),
        }
        self.log = rig.lab.workdir / f"lvsha-{name}.log"
        with self.log.open("ab") as err:
            self.proc = subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    rig.director.ns,
                    sys.executable,
                    str(DRIVER),
                    json.dumps(cfg),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                bufsize=1,
                cwd=ROOT,
            )
        rig.lab.processes.append(self.proc)  # type: ignore[arg-type]

    def ask(self, line: str, timeout: float = 20) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError(f"lvsha did not answer {line!r}:\n{self.log_text()}")
        return json.loads(self.proc.stdout.readline())

    def status(self) -> dict[str, Any]:
        answer: dict[str, Any] = self.ask("status")
        return answer

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


ROUTERS = ["bird", "frr"] if (FRR / "bgpd").exists() else ["bird"]
SPEAKERS = ["exabgp", "bird"]


def have_daemons() -> bool:
    return bool(shutil.which("bird")) and Path("/usr/sbin/exabgp").exists()


@contextlib.contextmanager
def rig_for(router: str, bfd: bool = False) -> Iterator[Rig]:
    """A fresh rig with `router`; every process in it killed, its namespaces deleted."""
    lab = Lab(prefix=f"bs-{os.getpid() % 100000}-")
    try:
        the_rig = Rig(lab, router, bfd)
        try:
            yield the_rig
        finally:
            the_rig.kill_all()
    finally:
        lab.close()
