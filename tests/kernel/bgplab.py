"""The BGP scale-out topology for the kernel tier and bench/scale_out.py.

    client 198.51.100.2 -- router 198.51.100.1 | 192.0.2.1 -- LAN bridge
                          (BIRD 2 or FRR:          |-- d1 192.0.2.11  lvsha + speaker, IPVS mh
                           dynamic neighbours,     |-- d2 192.0.2.12  (the same)
                           ECMP, L4 hash)          |-- d3 192.0.2.13  (the same)
                                                   |-- rs1 192.0.2.21 VIP on lo, DR
                                                   `-- rs2 192.0.2.22 (the same)

The directors run the real `lvsha run` with `[bgp]`: each announces
203.0.113.100/32 (AS 64513) to the router (AS 64512), which takes any
director on the LAN as a dynamic neighbour and installs one kernel route
with a next hop per director (BIRD `merge paths`, FRR `maximum-paths`),
spread by an L4 hash (fib_multipath_hash_policy=1). The recipe, and its
traps, come from the team's bgp-rig (docs/scale-out.md). Names carry the
lab's prefix; `close()` kills every process in the lab's namespaces and
deletes them, also after a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lab import LVSHA, ROOT, Director, Host, Interactive, Lab, sh

VIP = "203.0.113.100"
ROUTER = "192.0.2.1"
ROUTER_UP = "198.51.100.1"
CLIENT = "198.51.100.2"
DIRECTORS = {"d1": "192.0.2.11", "d2": "192.0.2.12", "d3": "192.0.2.13"}
REAL_SERVERS = {"rs1": "192.0.2.21", "rs2": "192.0.2.22"}
AS_ROUTER, AS_DIRECTORS = 64512, 64513
HERE = Path(__file__).resolve().parent
FLOWS = str(HERE / "bgpflows.py")
ROUTEWATCH = str(HERE / "routewatch.py")
POLL = 0.02  # the router's kernel table is read every 20 ms
BFD_TX_MS, BFD_MULT = 100, 3


def bird_router_conf(workdir: Path, hold: int) -> str:
    """BIRD 2 as the upstream router: dynamic neighbours, merged ECMP paths, BFD."""
    return f"""
log "{workdir}/rtr.bird.log" all;
router id {ROUTER};
protocol device {{ scan time 10; }}
protocol bfd {{
  interface "eth1" {{
    min rx interval {BFD_TX_MS} ms; min tx interval {BFD_TX_MS} ms; multiplier {BFD_MULT};
  }};
}}
protocol kernel {{
  ipv4 {{ import none; export where source = RTS_BGP; }};
  merge paths on limit 16;     # one kernel route, one next hop per director
}}
protocol bgp directors {{
  debug {{ states, events }};  # logs "BFD session down", names each peer's address
  local {ROUTER} as {AS_ROUTER};
  neighbor range 192.0.2.0/24 as {AS_DIRECTORS};   # any director may peer
  dynamic name "dir";
  hold time {hold}; keepalive time {max(1, hold // 3)};
  error wait time 1, 10;       # the default 60 s locks a recovered director out
  bfd on;                      # used by directors that run BFD
  ipv4 {{ import where net ~ [ 203.0.113.0/24{{32,32}} ]; export none; }};
}}
"""


def frr_router_confs(workdir: Path, hold: int) -> dict[str, str]:
    """FRR (zebra + bgpd + bfdd) as the upstream router, the same policy as BIRD's."""
    frr = workdir / "frr"
    return {
        "zebra.conf": f"hostname rtr\nlog file {frr}/zebra.log\n",
        "bgpd.conf": f"""frr defaults datacenter
hostname rtr
log file {frr}/bgpd.log
router bgp {AS_ROUTER}
 bgp router-id {ROUTER}
 no bgp ebgp-requires-policy
 bgp log-neighbor-changes
 neighbor DIR peer-group
 neighbor DIR remote-as {AS_DIRECTORS}
 neighbor DIR timers {max(1, hold // 3)} {hold}
 neighbor DIR bfd profile fast
 bgp listen range 192.0.2.0/24 peer-group DIR
 address-family ipv4 unicast
  maximum-paths 16
 exit-address-family
""",
        "bfdd.conf": f"""hostname rtr
log file {frr}/bfdd.log
bfd
 profile fast
  receive-interval {BFD_TX_MS}
  transmit-interval {BFD_TX_MS}
  detect-multiplier {BFD_MULT}
""",
    }


def director_toml(
    name: str,
    workdir: Path,
    speaker: str = "exabgp",
    hold: int = 3,
    bfd: bool = False,
    real_servers: tuple[str, ...] = tuple(REAL_SERVERS.values()),
) -> str:
    """The issue's `[bgp]` shape, with each director's drain file and state dir."""
    bfd_line = "bfd = true\n" if bfd else ""
    reals = "".join(
        f"""
[[virtual_server.real_server]]
address = "{address}"
port = 80
tcp_check = {{ connect_timeout = 0.5 }}
"""
        for address in real_servers
    )
    return f"""
[bgp]
local_as = {AS_DIRECTORS}
router_id = "{DIRECTORS[name]}"
speaker = "{speaker}"
hold_time = {hold}
{bfd_line}drain_file = "{workdir}/{name}.drain"
state_dir = "{workdir}/{name}.bgp"

[[bgp.peer]]
address = "{ROUTER}"
peer_as = {AS_ROUTER}

[[virtual_server]]
address = "{VIP}"
port = 80
protocol = "tcp"
scheduler = "mh"
forwarding = "dr"
announce = "bgp"
delay_loop = 0.5
{reals}"""


@dataclass
class RouteWatch:
    """The router's kernel route to the VIP, sampled every 20 ms by routewatch.py."""

    pipe: Interactive
    samples: list[tuple[float, frozenset[str]]] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        stdout = self.pipe.proc.stdout
        assert stdout is not None
        for line in stdout:
            t, hops = line.split()
            with self.cond:
                self.samples.append(
                    (float(t), frozenset() if hops == "-" else frozenset(hops.split(",")))
                )
                self.cond.notify_all()

    def hops(self) -> frozenset[str]:
        with self.cond:
            return self.samples[-1][1] if self.samples else frozenset()

    def wait(
        self, want: Callable[[frozenset[str]], bool], timeout: float, since: float | None = None
    ) -> float:
        """The time of the first sample in force at or after `since` (default: now) where
        `want(hops)`; bounded. Never an older sample: history must not pass for the present."""
        deadline = time.monotonic() + timeout
        if since is None:
            since = time.monotonic()
        with self.cond:
            while True:
                for i, (t, hops) in enumerate(self.samples):
                    # the sample in force at `since` counts, then every change after it
                    nxt = self.samples[i + 1][0] if i + 1 < len(self.samples) else float("inf")
                    if nxt >= since and want(hops):
                        return max(t, since)
                left = deadline - time.monotonic()
                if left <= 0:
                    last = sorted(self.hops())
                    raise TimeoutError(f"the route never matched within {timeout} s; last: {last}")
                self.cond.wait(min(left, 0.5))

    def steady(self, want: Callable[[frozenset[str]], bool], seconds: float) -> None:
        """Assert `want(hops)` holds for every sample over the next `seconds`."""
        start = time.monotonic()
        self.wait(want, 0)
        end = start + seconds
        while time.monotonic() < end:
            with self.cond:
                self.cond.wait(end - time.monotonic() if end > time.monotonic() else 0)
                bad = [(t, sorted(h)) for t, h in self.samples if t >= start and not want(h)]
            assert not bad, f"the route changed: {bad}"


@dataclass
class Sessions:
    """Long-lived keep-alive flows from fixed source ports, asking every 100 ms."""

    pipe: Interactive

    def state(self) -> dict[int, dict[str, object]]:
        out: dict[str, dict[str, object]] = json.loads(self.pipe.ask("check", timeout=20))
        return {int(k): v for k, v in out.items()}

    def assert_kept(self) -> None:
        """Every flow still answers, always from the one real server it started on."""
        state = self.state()
        broken = {
            p: s for p, s in state.items() if s["error"] is not None or len(s["servers"]) != 1
        }  # type: ignore[arg-type]
        assert not broken, f"long-lived flows broken or moved: {broken}"

    def stop(self) -> None:
        self.pipe.stop()


class BgpLab:
    """The topology, the router's daemons and the directors' lvsha processes."""

    def __init__(self, router: str, hold: int = 3) -> None:
        self.router_kind = router
        self.hold = hold
        self.lab = Lab(prefix=f"bt{os.getpid() % 100000}x{id(self) % 1000}")
        os.chmod(self.lab.workdir, 0o755)  # FRR's daemons run as the frr user
        self.workdir = self.lab.workdir
        self.directors: dict[str, Director] = {}
        self.options: dict[str, dict[str, object]] = {}
        self.cli_drained: set[str] = set()
        self._ports = iter(range(20000, 60000, 500))
        self.hosts: dict[str, Host] = {}

    def build(self) -> None:
        """Namespaces, links, real servers, the router's daemons and the route watch."""
        self.rtr = self.lab.host("rtr", ROUTER)
        self.client_ns = self.lab._namespace("cli")
        sh(
            "ip",
            "link",
            "add",
            "eth2",
            "netns",
            self.rtr.ns,
            "type",
            "veth",
            "peer",
            "name",
            "eth1",
            "netns",
            self.client_ns,
        )
        self._batch(self.rtr.ns, f"addr add {ROUTER_UP}/24 dev eth2", "link set eth2 up")
        self._batch(
            self.client_ns,
            f"addr add {CLIENT}/24 dev eth1",
            "link set eth1 up",
            f"route add default via {ROUTER_UP}",
        )
        self.rtr.run(
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
            "net.ipv4.fib_multipath_hash_policy=1",
            "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.default.rp_filter=0",
        )
        for name, address in REAL_SERVERS.items():
            host = self.lab.host(name, address)
            self._batch(host.ns, f"addr add {VIP}/32 dev lo", f"route add default via {ROUTER}")
            host.run(
                "sysctl",
                "-qw",
                "net.ipv4.conf.all.arp_ignore=1",
                "net.ipv4.conf.all.arp_announce=2",
                "net.ipv4.conf.eth1.arp_ignore=1",
                "net.ipv4.conf.eth1.arp_announce=2",
                "net.ipv4.conf.all.rp_filter=0",
                "net.ipv4.conf.eth1.rp_filter=0",
            )
            self.hosts[name] = host
            self.serve(name)
        for name, address in DIRECTORS.items():
            self.hosts[name] = self.lab.host(name, address)
        self._start_router()
        self.route = RouteWatch(
            self.rtr.popen_pipe([sys.executable, ROUTEWATCH, f"{VIP}/32", str(POLL)])
        )

    # ------------------------------------------------------------ plumbing --
    @staticmethod
    def _batch(ns: str, *commands: str) -> None:
        subprocess.run(
            ["ip", "-n", ns, "-batch", "-"],
            input="\n".join(commands) + "\n",
            text=True,
            check=True,
            capture_output=True,
        )

    def ports(self) -> int:
        """A fresh block of 500 source ports: no two uses of the lab share a 5-tuple."""
        return next(self._ports)

    def serve(self, name: str) -> subprocess.Popen[bytes]:
        host = self.hosts[name]
        proc = host.popen(
            [sys.executable, FLOWS, "serve", name, "80"], self.workdir / f"{name}.serve.log"
        )
        ok = wait_until(lambda: ":80 " in host.run("ss", "-Hltn").stdout, 20)
        assert ok, f"{name}: the server did not start"
        return proc

    def _start_router(self) -> None:
        if self.router_kind == "bird":
            conf = self.workdir / "rtr.bird.conf"
            conf.write_text(bird_router_conf(self.workdir, self.hold))
            self.rtr.popen(
                ["bird", "-f", "-c", str(conf), "-s", str(self.workdir / "rtr.bird.ctl")],
                self.workdir / "rtr.bird.out",
            )
            return
        frr = self.workdir / "frr"
        frr.mkdir()
        for fname, text in frr_router_confs(self.workdir, self.hold).items():
            (frr / fname).write_text(text)
        sh("chown", "-R", "frr:frr", str(frr))
        common = ["-P", "0", "--vty_socket", str(frr), "-z", str(frr / "zserv.api")]
        for daemon in ("zebra", "bgpd", "bfdd"):
            self.rtr.popen(
                [
                    f"/usr/lib/frr/{daemon}",
                    *common,
                    "-f",
                    str(frr / f"{daemon}.conf"),
                    "-i",
                    str(frr / f"{daemon}.pid"),
                ],
                frr / f"{daemon}.out",
            )
            if daemon == "zebra":
                assert wait_until((frr / "zserv.api").exists, 20), "zebra did not start"

    def router_cli(self, *words: str) -> str:
        """The router daemon's own view (birdc / vtysh), for failure messages."""
        if self.router_kind == "bird":
            argv = ["birdc", "-s", str(self.workdir / "rtr.bird.ctl"), *words]
        else:
            argv = ["vtysh", "--vty_socket", str(self.workdir / "frr"), "-c", " ".join(words)]
        return self.rtr.run(*argv, check=False, timeout=10).stdout

    def router_log(self) -> str:
        path = self.workdir / ("rtr.bird.log" if self.router_kind == "bird" else "frr/bgpd.log")
        return path.read_text(errors="replace") if path.exists() else ""

    def bfd_sessions(self) -> str:
        if self.router_kind == "bird":
            return self.router_cli("show", "bfd", "sessions")
        return self.router_cli("show", "bfd", "peers", "brief")

    def bfd_up(self, address: str) -> bool:
        """The router's BFD session to this address is up."""
        for line in self.bfd_sessions().splitlines():
            words = line.split()
            if address in words and ("Up" in words or "up" in words):
                return True
        return False

    def router_says_bfd_dropped(self, address: str) -> bool:
        """The router's log says BFD, not the hold timer, took this peer's session down."""
        log = self.router_log()
        if self.router_kind == "frr":  # bgp log-neighbor-changes
            return bool(re.search(rf"neighbor {re.escape(address)}\b.*BFD [Dd]own", log))
        peer_of: dict[str, str] = {}  # BIRD reuses dynamic names: follow them in order
        pending = ""  # "directors: Incoming connection from X" names the next dirN spawned
        for line in log.splitlines():
            m = re.search(r"(\w+): Incoming connection from (\S+) \(port \d+\) accepted", line)
            if m:
                pending = m.group(2)
                if m.group(1) != "directors":
                    peer_of[m.group(1)] = pending
            m = re.search(r"(dir\d+): Initializing", line)
            if m and pending:
                peer_of[m.group(1)] = pending
            m = re.search(r"(dir\d+): BFD session down", line)
            if m and peer_of.get(m.group(1)) == address:
                return True
        return False

    # ----------------------------------------------------------- directors --
    def start(self, name: str, **options: object) -> Director:
        """`lvsha run` on a director with its generated TOML (options: director_toml's)."""
        body = director_toml(name, self.workdir, **options)  # type: ignore[arg-type]
        director = self.lab.start(self.hosts[name], body, wait=False)
        self.directors[name] = director
        self.options[name] = options

        def up() -> bool:
            if director.proc.poll() is not None:
                raise RuntimeError(f"lvsha exited in {name}:\n{director.log_text()}")
            try:
                return director.socket.exists() and bool(director.status())
            except (RuntimeError, ValueError):
                return False

        wait_until(up, 30)
        return director

    def lvsha(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        """An lvsha command against a director's control socket (drain, undrain, status)."""
        director = self.directors[name]
        if args[0] == "drain":
            self.cli_drained.add(name)
        elif args[0] == "undrain":
            self.cli_drained.discard(name)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        return subprocess.run(
            [*LVSHA, *args, "--socket", str(director.socket)],
            capture_output=True,
            text=True,
            timeout=20,
            cwd=ROOT,
            env=env,
            check=False,
        )

    def drain_file(self, name: str) -> Path:
        return self.workdir / f"{name}.drain"

    def block_checks(self, name: str, *real_servers: str) -> None:
        """The director's health checks to these real servers are dropped (none: restored).

        Only the checks: DR traffic keeps the VIP as its destination address,
        so the director still forwards flows to those servers. A tc flower
        filter, since Debian's UML kernel cannot load nftables' ip family.
        """
        host = self.hosts[name]
        host.run("tc", "qdisc", "del", "dev", "eth1", "clsact", check=False)
        if not real_servers:
            return
        host.run("tc", "qdisc", "add", "dev", "eth1", "clsact")
        for rs in real_servers:
            host.run(
                "tc", "filter", "add", "dev", "eth1", "egress", "protocol", "ip", "flower",
                "ip_proto", "tcp", "dst_ip", REAL_SERVERS[rs], "dst_port", "80", "action", "drop",
            )  # fmt: skip

    def switch_port(self, name: str, up: bool) -> None:
        """A silent director: its switch port stops forwarding (no FIN, no NOTIFICATION)."""
        sh(
            "ip",
            "-n",
            self.lab.switch,
            "link",
            "set",
            self.hosts[name].port,
            "up" if up else "down",
        )

    def restore(self, timeout: float = 60) -> None:
        """Back to every director announcing: checks pass, no drain, ports up, lvsha running."""
        for name, director in self.directors.items():
            self.block_checks(name)
            self.drain_file(name).unlink(missing_ok=True)
            self.switch_port(name, up=True)
            if director.proc.poll() is None:
                director.signal(signal.SIGCONT)
                if name in self.cli_drained:
                    self.lvsha(name, "undrain")
            else:
                self.start(name, **self.options[name])
        self.wait_hops(self.all_up(), timeout)

    def all_up(self) -> frozenset[str]:
        return frozenset(DIRECTORS[n] for n in self.directors)

    def wait_hops(
        self, hops: set[str] | frozenset[str], timeout: float = 30, since: float | None = None
    ) -> float:
        try:
            return self.route.wait(lambda h: h == hops, timeout, since)
        except TimeoutError as exc:
            words = ("show", "ip", "bgp") if self.router_kind == "frr" else ("show", "protocols")
            raise AssertionError(f"{exc}\nrouter:\n{self.router_cli(*words)}") from None

    # ------------------------------------------------------------- traffic --
    def client(self, *args: str, timeout: float = 120) -> str:
        return sh(
            "ip", "netns", "exec", self.client_ns, sys.executable, FLOWS, *args, timeout=timeout
        ).stdout

    def flows(self, base: int, n: int) -> dict[int, str]:
        """n short flows from fixed ports; {port: real server}."""
        out = json.loads(self.client("flows", CLIENT, VIP, "80", str(base), str(n)))
        return {int(k): v for k, v in out.items()}

    def conns(self, name: str) -> dict[int, str]:
        """The director's IPVS connections from the client: {client port: real server}."""
        out = self.hosts[name].run("ipvsadm", "-Lnc").stdout
        found = re.findall(rf"{re.escape(CLIENT)}:(\d+)\s+{re.escape(VIP)}:80\s+(\S+):80", out)
        by_address = {a: n for n, a in REAL_SERVERS.items()}
        return {int(port): by_address.get(rs, rs) for port, rs in found}

    def sessions(self, k: int = 8) -> Sessions:
        base = self.ports()
        pipe = Interactive(
            subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    self.client_ns,
                    sys.executable,
                    FLOWS,
                    "sessions",
                    CLIENT,
                    VIP,
                    "80",
                    str(base),
                    str(k),
                    "100",
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                bufsize=1,
            )
        )
        self.lab.processes.append(pipe.proc)  # type: ignore[arg-type]
        line = pipe.readline(30)
        assert line == "connected", f"sessions: {line!r}"
        return Sessions(pipe)

    # ------------------------------------------------------------- cleanup --
    def close(self) -> None:
        for proc in self.lab.processes:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        # what the daemons started (speakers, helpers) lives on in the namespaces
        for ns in self.lab.namespaces:
            pids = sh("ip", "netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
        self.lab.close()


def wait_until(check: Callable[[], object], timeout: float, interval: float = 0.05) -> bool:
    """Poll `check` until truthy or the deadline; True if it came true."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


@contextlib.contextmanager
def bgp_lab(router: str, hold: int = 3) -> Iterator[BgpLab]:
    the_lab = BgpLab(router, hold)
    try:
        the_lab.build()
        yield the_lab
    finally:
        the_lab.close()
