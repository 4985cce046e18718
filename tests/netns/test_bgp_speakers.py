"""The speaker adapters against real routers: ExaBGP and BIRD directors, BIRD and FRR routers.

Two namespaces on a bridge: `r`, a router with dynamic neighbours (any
director on 192.0.2.0/24 may peer, as in docs/scale-out.md), BIRD 2 or FRR
(zebra + bgpd, `bgp listen range`), and `d`,
the director, where tests/netns/bgp_driver.py stands in for lvsha with one
adapter. The proof is the router's kernel table: the route is there after
set_routes, gone after set_routes([]), after close(), after kill -9 of
"lvsha", after SIGSTOP of it (within the liveness and a slack), and back
after the speaker child is killed and run() is called again. Every wait is
a bounded poll; everything in the namespaces is killed before they go.
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
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lab import ROOT, Host, Lab, sh, wait_for

VIP = "203.0.113.100"
ROUTER = "192.0.2.1"
DIRECTOR = "192.0.2.11"
ROUTER6 = "2001:db8::1"
DIRECTOR6 = "2001:db8::11"
VIP6 = "2001:db8:100::100"
LIVENESS = 1.0
KILL_SLACK = 3.0  # s for a helper to start, withdraw and stop its speaker on a loaded host
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

pytestmark = pytest.mark.skipif(
    not (shutil.which("bird") and Path("/usr/sbin/exabgp").exists()),
    reason="needs Debian's bird2 and exabgp (scripts/bootstrap installs them)",
)


class Rig:
    """The router, the director's namespace, and "lvsha" (the driver) in it."""

    def __init__(self, lab: Lab, router: str) -> None:
        self.lab = lab
        self.router = lab.host("r", ROUTER)
        self.director = lab.host("d", DIRECTOR)
        for host, address in ((self.router, ROUTER6), (self.director, DIRECTOR6)):
            host.run("ip", "addr", "add", f"{address}/64", "dev", "eth1", "nodad")
        if router == "bird":
            self._bird()
        else:
            self._frr()

    def _bird(self) -> None:
        conf = self.lab.workdir / "router.conf"
        conf.write_text(ROUTER_BIRD.format(log=self.lab.workdir / "router.log"))
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

    def kill_all(self) -> None:
        for host in (self.director, self.router):
            out = sh("ip", "netns", "pids", host.ns, check=False).stdout
            for pid in out.split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)


class Lvsha:
    """The driver process: one adapter, commands on stdin, answers on stdout."""

    def __init__(self, rig: Rig, speaker: str, name: str, v6: bool = False) -> None:
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
            "liveness": LIVENESS,
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


@pytest.fixture(params=ROUTERS)
def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    lab = Lab(prefix=f"bs-{os.getpid() % 100000}-")
    try:
        the_rig = Rig(lab, request.param)
        yield the_rig
        the_rig.kill_all()
    finally:
        lab.close()


def up(rig: Rig, lvsha: Lvsha) -> None:
    lvsha.ask(f"routes {VIP}/32")  # before run(): kept and sent once the speaker is up
    lvsha.ask("run")
    try:
        wait_for(rig.announced, 30, interval=0.05)
    except TimeoutError:
        raise AssertionError(f"no route at the router:\n{lvsha.log_text()}") from None


SPEAKERS = ["exabgp", "bird"]


@pytest.mark.parametrize("speaker", SPEAKERS)
def test_route_follows_set_routes_and_close(rig: Rig, speaker: str) -> None:
    lvsha = Lvsha(rig, speaker, "a")
    up(rig, lvsha)
    wait_for(lambda: lvsha.status()["sessions"][0]["state"] == "established", 10)
    assert lvsha.status()["status"]["announced"] == [f"{VIP}/32"]
    lvsha.ask("routes")
    wait_for(rig.withdrawn, 10)
    lvsha.ask(f"routes {VIP}/32")
    wait_for(rig.announced, 10)
    lvsha.ask("close 5")  # withdraws, then stops the speaker; the router's FIB follows
    wait_for(rig.withdrawn, 5)
    status = lvsha.status()
    assert status["ended"] == "returned" and status["status"]["pid"] is None
    wait_for(lambda: len(rig.speaker_pids()) == 1, 5)  # only the driver is left


@pytest.mark.parametrize("speaker", SPEAKERS)
def test_route_dies_with_a_killed_lvsha(rig: Rig, speaker: str) -> None:
    lvsha = Lvsha(rig, speaker, "b")
    up(rig, lvsha)
    lvsha.proc.kill()  # kill -9: no close(), only the tether's socket closing
    lvsha.proc.wait(10)
    # the helper's withdraw (the rig: ~0.1 s); ExaBGP respawning a helper that
    # cannot connect, 5 times before it gives up, would take over 5 s
    wait_for(rig.withdrawn, KILL_SLACK)
    wait_for(lambda: rig.speaker_pids() == [], 10)  # and the speaker does not linger


@pytest.mark.parametrize("speaker", SPEAKERS)
def test_route_dies_with_a_hung_lvsha(rig: Rig, speaker: str) -> None:
    lvsha = Lvsha(rig, speaker, "c")
    up(rig, lvsha)
    os.kill(lvsha.proc.pid, signal.SIGSTOP)  # a hung daemon: its socket stays open
    try:
        start = time.monotonic()
        wait_for(rig.withdrawn, LIVENESS + KILL_SLACK)
        assert time.monotonic() - start >= LIVENESS * 0.5  # not before it went silent
    finally:
        os.kill(lvsha.proc.pid, signal.SIGCONT)
    # lvsha is back: its run() saw the speaker die; the supervisor's restart brings the route back
    wait_for(lambda: lvsha.status()["ended"] not in (None, "returned"), 10)
    lvsha.ask("run")
    wait_for(rig.announced, 30, interval=0.05)
    lvsha.ask("close 5")


@pytest.mark.parametrize("speaker", SPEAKERS)
def test_route_comes_back_after_the_speaker_is_killed(rig: Rig, speaker: str) -> None:
    lvsha = Lvsha(rig, speaker, "d")
    up(rig, lvsha)
    pid = lvsha.status()["status"]["speaker_pid"]  # ExaBGP, or BIRD itself
    os.kill(pid, signal.SIGKILL)
    wait_for(rig.withdrawn, 10)  # the session closed with the speaker
    wait_for(lambda: lvsha.status()["ended"] not in (None, "returned"), 10)
    assert "exited" in lvsha.status()["ended"]
    lvsha.ask("run")  # what the supervisor does: the whole set is sent again
    wait_for(rig.announced, 30, interval=0.05)
    status = lvsha.status()["status"]
    assert status["restarts"] == 1 and status["speaker_pid"] != pid
    lvsha.ask("close 5")
    wait_for(rig.withdrawn, 5)


def test_bird_goes_with_its_keeper(rig: Rig) -> None:
    lvsha = Lvsha(rig, "bird", "e")
    up(rig, lvsha)
    os.kill(lvsha.status()["status"]["pid"], signal.SIGKILL)  # the keeper, not BIRD
    wait_for(rig.withdrawn, 10)
    wait_for(lambda: lvsha.status()["ended"] not in (None, "returned"), 10)
    lvsha.ask("close 5")


@pytest.mark.parametrize("speaker", SPEAKERS)
def test_prefixes_added_and_removed_at_run_time(rig: Rig, speaker: str) -> None:
    other = "203.0.113.101"
    lvsha = Lvsha(rig, speaker, "f")
    up(rig, lvsha)
    lvsha.ask(f"routes {VIP}/32 {other}/32")  # BIRD: a new static, a new config, `configure`
    wait_for(lambda: rig.nexthops(other) == [DIRECTOR], 10)
    assert rig.announced()  # the first one stayed
    lvsha.ask(f"routes {other}/32")
    wait_for(rig.withdrawn, 10)
    assert rig.nexthops(other) == [DIRECTOR]
    assert lvsha.status()["status"]["announced"] == [f"{other}/32"]
    lvsha.ask("close 5")
    wait_for(lambda: rig.nexthops(other) == [], 5)


@pytest.mark.parametrize("speaker", SPEAKERS)
def test_ipv6_prefix_goes_to_the_ipv6_peer(rig: Rig, speaker: str) -> None:
    lvsha = Lvsha(rig, speaker, "g", v6=True)
    lvsha.ask(f"routes {VIP}/32 {VIP6}/128")
    lvsha.ask("run")
    # RFC 2545 section 3: FRR installs the link-local next hop BIRD also sends
    mine = {DIRECTOR6, wait_for(lambda: rig.link_local(rig.director), 10)}
    wait_for(lambda: rig.announced() and rig.nexthops6() and set(rig.nexthops6()) <= mine, 30)
    assert len(rig.nexthops6()) == 1
    lvsha.ask(f"routes {VIP}/32")
    wait_for(lambda: rig.nexthops6() == [], 10)
    assert rig.announced()
    lvsha.ask("close 5")
    wait_for(rig.withdrawn, 5)
