"""VRRP takeover benchmark: lvsha and keepalived side by side, timed on the wire.

Run as root from the repository root:

    sudo .venv/bin/python bench/takeover.py --runs 5
    sudo .venv/bin/python bench/takeover.py --runs 5 --vrrp-version 3 --advert-int 0.05

With `--vrrp-version 3` both implementations speak VRRPv3 (RFC 5798: no
authentication, keepalived's `vrrp_version 3`) at `--advert-int` seconds,
and the bounds are RFC 5798 section 6.1's: Skew_Time = (256 - Priority) *
Master_Adver_Interval / 256.

Issue 12's runs (docs/benchmarks-vrrp.md) add: `--priorities 150/100` (d1
150, d2 100: the crash and graceful takeovers are by the 100, and d1
preempts back between them), `--client-probe` (a client namespace pings the
VIP every 2 ms: the client outage), `--family 6` (an IPv6 VIP, link-local
adverts, unsolicited NAs), `--steady S` (the master's advert lateness for S
seconds), `--cpu-load N` (N busy loops meanwhile) and `--rt` (both daemons
real-time, as the systemd unit runs lvsha). A crash takes the master's port
on the bridge down before the SIGKILL, so that the VIP it leaves in its
kernel cannot answer the client.

Each run builds a fresh LAN of network namespaces (tests/lab.py: a bridge,
director d1 = 192.0.2.11 and d2 = 192.0.2.12, VIP 192.0.2.100/32, VRID 51,
advert_int 1, PASS authentication "grr02") and walks one chain of scenarios:

1. cold start: d1 (priority 100) starts alone and becomes master;
2. d2 (priority 100) joins as backup;
3. crash takeover: d1 gets SIGKILL, d2 takes over;
4. d1 restarts and stays backup (equal priority, lower address);
5. graceful takeover: d2 gets SIGTERM (priority-0 advert), d1 takes over;
6. preemption: d2 restarts with priority 150 and preempts d1.

Every time comes from the wire or the kernel, never from a log line, so both
implementations are measured the same way:

* an AF_PACKET socket in the bridge's namespace sees every frame as it
  enters the bridge from a director's port, with a kernel timestamp
  (SO_TIMESTAMPNS): VRRP adverts (sender, priority) and gratuitous ARPs;
* a netlink socket in each director's namespace sees the VIP come and go;
* "VRRP socket open" is the first moment a raw IPPROTO_VRRP socket exists in
  the director's namespace (/proc/PID/net/raw), for either implementation;
  lvsha's "ready" is its control socket answering a status request.

The protocol bounds (RFC 3768 section 6.1) are Master_Down_Interval =
3 * Advertisement_Interval + Skew_Time after the last advert, and Skew_Time
after a priority-0 advert; Skew_Time = (256 - Priority) / 256 s.

Nothing leaves the namespaces: addresses are 192.0.2.0/24 only. Every wait is
bounded, and every namespace and process (keepalived's VRRP child too) is
removed when a run ends, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from lab import LVSHA, VIP, Host, Lab, instance_toml, sh  # noqa: E402
from takeover_probe import ClientProbe, CpuLoad, link_local_ready  # noqa: E402
from takeover_wire import AddressWatcher, Frame, Sniffer, enter_netns  # noqa: E402

KEEPALIVED = "/usr/sbin/keepalived"
ADVERT_INT = 1.0  # --advert-int
VRRP_VERSION = 2  # --vrrp-version
NS_PREFIX = "tb"  # --ns-prefix: every namespace's name starts with it
FAMILY = 4  # --family: 6 runs the instance over IPv6 (link-local adverts to ff02::12)
VIP_ADDRESS, VIP_PREFIX = VIP, 32  # the IPv6 VIP with --family 6
VIP6, VIP6_PREFIX, CLIENT6 = "2001:db8::100", 64, "2001:db8::50"
PRIORITIES = (100, 100)  # --priorities HIGH/LOW: d1's and d2's
CLIENT_PROBE = False  # --client-probe
PROBE_INTERVAL = 0.002  # --probe-interval, seconds
STEADY = 0.0  # --steady SECONDS: the master's advert lateness with a backup listening
REALTIME = False  # --rt: both daemons at SCHED_FIFO 10, as the unit (packaging/systemd)
STATUS_EVERY = 0.0  # --status-every S: lvsha status requests to the master during --steady
_labs = itertools.count(1)
VRID = 51
IMPLS = ("lvsha", "keepalived")


START_TIMEOUT = 15.0  # process start to VRRP socket, generous on a loaded machine
TAKEOVER_TIMEOUT = 10.0  # any takeover; the slowest bound is 3.61 s


def skew_time(priority: int) -> float:
    if VRRP_VERSION == 3:  # RFC 5798 section 6.1, in centiseconds
        return (256 - priority) * round(ADVERT_INT * 100) / 25600
    return (256 - priority) / 256


def lvsha_instance(priority: int) -> str:
    if VRRP_VERSION == 2:
        return instance_toml(priority)
    return (
        '[vrrp.VI_1]\ninterface = "eth1"\nversion = 3\n'
        f"virtual_router_id = {VRID}\npriority = {priority}\nadvert_int = {ADVERT_INT}\n"
        f'virtual_ipaddress = ["{VIP_ADDRESS}/{VIP_PREFIX}"]\n'
    )


def keepalived_conf(name: str, priority: int) -> str:
    text = KEEPALIVED_CONF.format(name=name, vrid=VRID, priority=priority, vip=VIP_ADDRESS)
    text = text.replace(f"{VIP_ADDRESS}/32", f"{VIP_ADDRESS}/{VIP_PREFIX}")
    if REALTIME:  # keepalived's own switch: its VRRP child at SCHED_RR 10
        text = text.replace(
            f"    router_id {name}\n", f"    router_id {name}\n    vrrp_rt_priority 10\n"
        )
    if VRRP_VERSION == 2:
        return text
    auth = "    authentication {\n        auth_type PASS\n        auth_pass grr02\n    }\n"
    return (
        text.replace(auth, "")
        .replace("    advert_int 1\n", f"    advert_int {ADVERT_INT:g}\n")
        .replace(f"    router_id {name}\n", f"    router_id {name}\n    vrrp_version 3\n")
    )


def master_down_interval(priority: int) -> float:
    return 3 * ADVERT_INT + skew_time(priority)


# ------------------------------------------------------------- directors --

KEEPALIVED_CONF = """\
global_defs {{
    router_id {name}
}}

vrrp_instance VI_1 {{
    state BACKUP
    interface eth1
    virtual_router_id {vrid}
    priority {priority}
    advert_int 1
    authentication {{
        auth_type PASS
        auth_pass grr02
    }}
    virtual_ipaddress {{
        {vip}/32
    }}
}}
"""


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):
        # a zombie is dead for our purposes
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@dataclass
class Director:
    """One running daemon (lvsha or keepalived) in a lab host."""

    impl: str
    host: Host
    priority: int
    config: Path
    log: Path
    proc: subprocess.Popen[bytes]
    started: float  # wall clock just before the process was spawned
    control_socket: Path | None = None
    vrrp_pid_file: Path | None = None
    extra_pids: set[int] = field(default_factory=set)

    @property
    def name(self) -> str:
        return self.host.name

    def vrrp_socket_open(self) -> bool:
        """A raw IPPROTO_VRRP socket (IPv4, or IPv6 with --family 6) exists in its namespace."""
        table = "raw6" if FAMILY == 6 else "raw"
        try:
            lines = Path(f"/proc/{self.proc.pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            return False
        return any(line.split()[1].endswith(":0070") for line in lines if len(line.split()) > 1)

    def control_answers(self) -> bool:
        if self.control_socket is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(1.0)
                sock.connect(str(self.control_socket))
                sock.sendall(b'{"command": "status"}\n')
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
            return bool(json.loads(data or b"{}").get("instances"))
        except (OSError, ValueError):
            return False

    def remember_children(self) -> None:
        """keepalived's VRRP child: killed at cleanup even if the parent is gone."""
        if self.impl == "keepalived" and self.proc.poll() is None:
            self.extra_pids.update(children(self.proc.pid))

    def vrrp_child(self) -> int | None:
        if self.vrrp_pid_file is None:
            return None
        try:
            pid = int(self.vrrp_pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        self.extra_pids.add(pid)
        return pid

    def crash(self) -> None:
        """kill -9 of every process of the daemon, without letting it say goodbye.

        keepalived's VRRP child gets SIGTERM when its parent dies (and the
        parent respawns a dead child), so the parent is frozen first, then
        the child and the parent are killed.
        """
        if self.impl == "keepalived":
            self.remember_children()
            child = self.vrrp_child()
            os.kill(self.proc.pid, signal.SIGSTOP)
            for pid in [child, *self.extra_pids]:
                if pid is not None and pid_alive(pid) and str(self.config) in cmdline(pid):
                    os.kill(pid, signal.SIGKILL)
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 5.0) -> int:
        os.kill(self.proc.pid, signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def cleanup(self) -> None:
        for pid in sorted(self.extra_pids):
            if pid_alive(pid) and str(self.config) in cmdline(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGCONT)
                self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)


class Bench:
    """One lab (fresh namespaces), its capture, and every director started in it."""

    def __init__(self) -> None:
        self.lab = Lab(prefix=f"{NS_PREFIX}{os.getpid() % 100000}x{next(_labs)}")
        self.directors: list[Director] = []
        self.watchers: dict[str, AddressWatcher] = {}
        self.sniffer: Sniffer | None = None
        self._seq = 0

    def add_host(self, name: str, address: str) -> Host:
        host = self.lab.host(name, address)
        if FAMILY == 6:  # the source of IPv6 adverts (RFC 5798 5.1.2.1), after DAD
            poll(lambda: link_local_ready(host), 10, f"{name}'s link-local address", 0.02)
        watcher = AddressWatcher(host.ns, VIP_ADDRESS)
        self.watchers[name] = watcher
        watcher.start()
        if self.sniffer is None:
            self.sniffer = Sniffer(self.lab.switch, {host.port: name}, VRID, VIP_ADDRESS)
            self.sniffer.start()
        else:
            self.sniffer.add_port(host.port, name)
        return host

    def start(self, impl: str, host: Host, priority: int) -> Director:
        self._seq += 1
        tag = f"{host.name}-{self._seq}"
        workdir = self.lab.workdir
        log = workdir / f"{tag}.log"
        if impl == "lvsha":
            config, sock = self.lab.write_config(host, lvsha_instance(priority))
            env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
            argv = [*LVSHA, "run", "--config", str(config), "--log-format", "keyvalue"]
            if REALTIME:  # the unit's CPUSchedulingPolicy=fifo, Priority=10, ResetOnFork
                argv = ["chrt", "--fifo", "--reset-on-fork", "10", *argv]
            started = time.time()
            proc = host.popen(argv, log, env=env)
            director = Director(impl, host, priority, config, log, proc, started, sock)
        elif impl == "keepalived":
            config = workdir / f"{tag}.conf"
            config.write_text(keepalived_conf(tag, priority))
            vrrp_pid = workdir / f"{tag}.vrrp.pid"
            argv = [
                KEEPALIVED, "-n", "-l", "-D", "-P", "-f", str(config),
                "-p", str(workdir / f"{tag}.pid"), "-r", str(vrrp_pid),
                "-c", str(workdir / f"{tag}.checkers.pid"),
            ]  # fmt: skip
            started = time.time()
            proc = host.popen(argv, log)
            director = Director(
                impl, host, priority, config, log, proc, started, vrrp_pid_file=vrrp_pid
            )
        else:
            raise ValueError(impl)
        self.directors.append(director)
        return director

    def close(self) -> None:
        for d in self.directors:
            d.remember_children()
            d.vrrp_child()
            d.cleanup()
        for w in self.watchers.values():
            w.stop()
        if self.sniffer is not None:
            self.sniffer.stop()
        self.lab.close()

    @property
    def wire(self) -> Sniffer:
        assert self.sniffer is not None
        return self.sniffer


class ExitWaiter:
    """Waits for a process in a thread, to time its exit while the caller polls."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.returncode: int | None = None
        self.at = float("nan")
        self._thread = threading.Thread(target=self._run, name="exit-waiter", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.returncode = self.proc.wait(timeout=30)
            self.at = time.time()

    def result(self, timeout: float) -> tuple[int, float]:
        self._thread.join(timeout)
        if self.returncode is None:
            raise TimeoutError(f"pid {self.proc.pid} did not exit within {timeout} s")
        return self.returncode, self.at


def poll(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.002) -> Any:
    """Bounded poll; returns the first truthy value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not within {timeout} s")
        time.sleep(interval)


def cpu_pressure() -> float:
    """The machine's CPU pressure (PSI "some" avg10, %): how noisy the box was."""
    try:
        fields = Path("/proc/pressure/cpu").read_text().split("\n")[0].split()
        return float(dict(f.split("=") for f in fields[1:])["avg10"])
    except (OSError, KeyError, ValueError):
        return float("nan")


def bounded_sleep(seconds: float) -> None:
    time.sleep(max(0.0, min(seconds, 10.0)))


# ------------------------------------------------------------- scenarios --


def start_and_time(
    b: Bench, impl: str, host: Host, priority: int
) -> tuple[Director, dict[str, float]]:
    """Start a daemon; time its VRRP socket (both) and control socket (lvsha)."""
    d = b.start(impl, host, priority)
    out: dict[str, float] = {}
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if d.proc.poll() is not None:
            raise RuntimeError(
                f"{impl} in {host.name} exited {d.proc.returncode}:\n"
                + d.log.read_text(errors="replace")[-2000:]
            )
        now = time.time()
        if "vrrp_socket" not in out and d.vrrp_socket_open():
            out["vrrp_socket"] = now - d.started
        if impl == "lvsha" and "ready" not in out and d.control_answers():
            out["ready"] = time.time() - d.started
        if "vrrp_socket" in out and (impl != "lvsha" or "ready" in out):
            break
        time.sleep(0.002)
    else:
        raise TimeoutError(f"{impl} in {host.name}: no VRRP socket within {START_TIMEOUT} s")
    d.remember_children()
    return d, out


def wait_advert(
    b: Bench,
    host: str,
    since: float,
    what: str,
    pred: Callable[[Frame], bool] = lambda f: f.priority > 0,
) -> Frame:
    found = poll(lambda: b.wire.first(host, "advert", since, pred), TAKEOVER_TIMEOUT, what, 0.01)
    assert isinstance(found, Frame)
    return found


def settle_as_backup(b: Bench, backup: Director, master: str, since: float | None = None) -> None:
    """Wait until the backup has heard a few adverts, then a random phase.

    The backup must not have advertised (a non-zero priority) since `since`
    (default: its start): two masters would be a split brain.
    """
    heard = time.time()
    poll(lambda: len(b.wire.adverts(master, heard)) >= 2, 5, f"adverts from {master}", 0.01)
    bounded_sleep(random.uniform(0.0, ADVERT_INT))
    quiet_since = backup.started if since is None else since
    if [f for f in b.wire.adverts(backup.name, quiet_since) if f.priority > 0]:
        raise RuntimeError(f"{backup.name} ({backup.impl}) advertised while it should be backup")


def status_load(d: Director, seconds: float) -> threading.Thread | None:
    """`lvsha status` requests to the master every STATUS_EVERY s, in a thread (lvsha only)."""
    if d.impl != "lvsha":
        return None

    def ask() -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:  # bounded by the steady phase
            d.control_answers()
            time.sleep(STATUS_EVERY)

    thread = threading.Thread(target=ask, name="status-load", daemon=True)
    thread.start()
    return thread


def run_chain(impl1: str, impl2: str, scenarios: set[str]) -> dict[str, dict[str, float]]:
    """One run: cold start, crash, graceful, preemption (see the module docstring)."""
    results: dict[str, dict[str, float]] = {}
    high, low = PRIORITIES
    b = Bench()
    probe: ClientProbe | None = None
    try:
        h1 = b.add_host("d1", "192.0.2.11")
        h2 = b.add_host("d2", "192.0.2.12")

        # 1. cold start of d1, alone: starts as backup, master after Master_Down_Interval.
        d1, cold = start_and_time(b, impl1, h1, high)
        first = wait_advert(b, "d1", d1.started, "d1 first advert")
        garp = poll(lambda: b.wire.first("d1", "garp", d1.started), 5, "d1 garp", 0.01)
        vip = poll(lambda: b.watchers["d1"].first(True, d1.started), 5, "d1 VIP", 0.01)
        cold |= {
            "first_advert": first.at - d1.started,
            "first_garp": garp.at - d1.started,
            "vip": vip.at - d1.started,
            "advert_after_socket": first.at - d1.started - cold["vrrp_socket"],
        }
        cold["excess_ms"] = (cold["advert_after_socket"] - master_down_interval(high)) * 1000
        results["cold"] = cold
        if CLIENT_PROBE:
            client = b.add_host("c", "192.0.2.50")
            if FAMILY == 6:
                client.run("ip", "-6", "addr", "add", f"{CLIENT6}/64", "dev", "eth1", "nodad")
            probe = ClientProbe(client.ns, VIP_ADDRESS, enter_netns, PROBE_INTERVAL, FAMILY)
            probe.start()
            asked = time.time()
            poll(lambda: probe.reply_after(asked), 5, "the VIP answers the client", 0.01)

        # 2. d2 joins as backup.
        d2, _ = start_and_time(b, impl2, h2, low)
        settle_as_backup(b, d2, "d1")
        if STEADY > 0:  # the master's advert lateness, the backup listening
            since = time.time()
            asked = status_load(d1, STEADY) if STATUS_EVERY > 0 else None
            bounded_sleep(STEADY)
            if asked is not None:
                asked.join(timeout=STEADY + 10)
            gaps = sorted(
                y.at - x.at
                for x, y in itertools.pairwise(b.wire.adverts("d1", since))
                if x.priority > 0 and y.priority > 0
            )
            if gaps:
                late = [(g - ADVERT_INT) * 1000 for g in gaps]
                results["steady"] = {
                    "late_p99_ms": late[min(len(late) - 1, int(len(late) * 0.99))],
                    "late_max_ms": late[-1],
                    "adverts": float(len(gaps) + 1),
                    "cpu_pressure": cpu_pressure(),
                }
            if b.wire.adverts("d2", d2.started):
                raise RuntimeError(f"d2 ({d2.impl}) advertised while d1 was master")

        # 3. crash takeover: d1 vanishes from the LAN (its port down) and is killed -9.
        killed = time.time()
        sh("ip", "-n", b.lab.switch, "link", "set", h1.port, "down")
        d1.crash()
        new = wait_advert(b, "d2", killed, "d2 takeover advert")
        last = max(
            (f for f in b.wire.adverts("d1", d1.started) if f.at < new.at and f.priority > 0),
            key=lambda f: f.at,
        )
        garp = poll(lambda: b.wire.first("d2", "garp", killed), 5, "d2 garp", 0.01)
        vip = poll(lambda: b.watchers["d2"].first(True, killed), 5, "d2 VIP", 0.01)
        takeover = new.at - last.at
        results["crash"] = {
            "takeover": takeover,
            "excess_ms": (takeover - master_down_interval(low)) * 1000,
            "kill_to_advert": new.at - killed,
            "first_garp": garp.at - last.at,
            "vip": vip.at - last.at,
            "cpu_pressure": cpu_pressure(),
        }
        if probe is not None:
            poll(lambda: probe.reply_after(new.at), 5, "the client reaches the VIP on d2", 0.005)
            results["crash"]["outage"] = probe.outage(killed, new.at + 0.2)

        # 4. d1 comes back (the VIP it died with removed, as a reboot would).
        h1.run("ip", "addr", "del", f"{VIP_ADDRESS}/{VIP_PREFIX}", "dev", "eth1", check=False)
        sh("ip", "-n", b.lab.switch, "link", "set", h1.port, "up")
        if FAMILY == 6:  # the carrier came back: the link-local goes through DAD again
            poll(lambda: link_local_ready(h1), 10, "d1's link-local address", 0.02)
        d1, start = start_and_time(b, impl1, h1, high)
        if high > low:  # it preempts d2 (the preemption of step 6, the other way round)
            pre = wait_advert(
                b, "d1", d1.started, "d1 preempting advert", lambda f: f.priority == high
            )
            after_sock = pre.at - d1.started - start["vrrp_socket"]
            results["preempt"] = {
                "from_start": pre.at - d1.started,
                "from_socket": after_sock,
                "excess_ms": (after_sock - master_down_interval(high)) * 1000,
            }
            bounded_sleep(ADVERT_INT * 2.5)  # d2 has gone quiet
            old, heir = d1, d2  # d1 is master; it will be stopped, d2 takes over
            settle_as_backup(b, d2, "d1", since=pre.at + ADVERT_INT)
        else:  # equal priority, lower address: d2 keeps mastership
            settle_as_backup(b, d1, "d2")
            old, heir = d2, d1

        # 5. graceful takeover: SIGTERM of the master sends priority 0.
        exit_waiter = ExitWaiter(old.proc)  # its exit time, while we watch the wire
        termed = time.time()
        os.kill(old.proc.pid, signal.SIGTERM)
        zero = wait_advert(b, old.name, termed, f"{old.name} priority 0", lambda f: f.priority == 0)
        new = wait_advert(b, heir.name, zero.at, f"{heir.name} takeover advert")
        rc, exited = exit_waiter.result(timeout=10)
        garp = poll(lambda: b.wire.first(heir.name, "garp", zero.at), 5, "heir garp", 0.01)
        vip_on = poll(lambda: b.watchers[heir.name].first(True, zero.at), 5, "heir VIP", 0.01)
        vip_off = b.watchers[old.name].first(False, termed)
        takeover = new.at - zero.at
        zeros = [f for f in b.wire.adverts(old.name, zero.at) if f.priority == 0 and f.at < new.at]
        results["graceful"] = {
            "takeover": takeover,
            "excess_ms": (takeover - skew_time(heir.priority)) * 1000,
            "term_to_zero": zero.at - termed,
            "zeros": float(len(zeros)),
            "from_last_zero": new.at - zeros[-1].at,
            "term_to_exit": exited - termed,
            "first_garp": garp.at - zero.at,
            "vip": vip_on.at - zero.at,
            "vip_gap": (vip_on.at - vip_off.at) if vip_off else float("nan"),
            "exit_code": float(rc),
            "cpu_pressure": cpu_pressure(),
        }
        if probe is not None:
            poll(lambda: probe.reply_after(new.at), 5, "the client reaches the VIP", 0.005)
            results["graceful"]["outage"] = probe.outage(termed, new.at + 0.2)

        # 6. preemption: d2 comes back with priority 150 while d1 (100) is master.
        if "preempt" in scenarios and high == low:
            d2, start = start_and_time(b, impl2, h2, 150)
            new = wait_advert(
                b, "d2", d2.started, "d2 preempting advert", lambda f: f.priority == 150
            )
            bounded_sleep(ADVERT_INT * 2.5)  # let the old master go quiet, or not
            vip_on = poll(lambda: b.watchers["d2"].first(True, d2.started), 5, "d2 VIP", 0.01)
            vip_off = b.watchers["d1"].first(False, d2.started)
            # from the preempting process's start: the old master is in steady state
            ads = sorted(
                (f for f in b.wire.adverts(None, d2.started) if f.priority > 0),
                key=lambda f: f.at,
            )
            gaps = [b2.at - a.at for a, b2 in itertools.pairwise(ads)]
            old_ads = [f for f in ads if f.host == "d1"]
            after_sock = new.at - d2.started - start["vrrp_socket"]
            results["preempt"] = {
                "from_start": new.at - d2.started,
                "from_socket": after_sock,
                "excess_ms": (after_sock - master_down_interval(150)) * 1000,
                "old_master_last_after": old_ads[-1].at - new.at if old_ads else float("nan"),
                "max_advert_gap": max(gaps) if gaps else float("nan"),
                "vip_gap": (vip_on.at - vip_off.at) if vip_off else float("nan"),
            }
    finally:
        if probe is not None:
            probe.stop()
        b.close()
    return results


# ------------------------------------------------------------- reporting --


def lvsha_source() -> str:
    """The commit lvsha runs from, and whether lvsha/ has uncommitted edits.

    Each run starts a fresh `lvsha run` from the working tree, so a tree that
    moves during the benchmark is recorded at its start and at its end.
    """
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "lvsha"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"
    return f"{head}{' + uncommitted edits in lvsha/' if dirty else ''}"


def machine_info() -> dict[str, str]:
    def first_line(*argv: str) -> str:
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
            return (out.stdout or out.stderr).splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"

    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "keepalived": first_line(KEEPALIVED, "--version") or "?",
        "lvsha": first_line(*LVSHA, "--version"),
        "lvsha_source": lvsha_source(),
        "loadavg": Path("/proc/loadavg").read_text().strip(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def rows() -> list[tuple[str, str, str, float | None, str]]:
    """The table's rows; the bounds follow --vrrp-version, --advert-int and --priorities."""
    high, low = PRIORITIES
    preempting = high if high > low else 150
    return [
    # scenario, key, label, bound (s) or None, unit
    ("cold", "vrrp_socket", "cold start: process start -> VRRP socket open", None, "s"),
    ("cold", "ready", "cold start: process start -> control socket answers", None, "s"),
    ("cold", "first_advert", "cold start: process start -> first advert", None, "s"),
    ("cold", "vip", "cold start: process start -> VIP on d1", None, "s"),
    ("cold", "advert_after_socket", "cold start: VRRP socket -> first advert",
     master_down_interval(high), "s"),
    ("cold", "excess_ms", "cold start: excess over Master_Down_Interval", None, "ms"),
    ("steady", "late_p99_ms", "steady: master's advert lateness, p99", None, "ms"),
    ("steady", "late_max_ms", "steady: master's advert lateness, max", None, "ms"),
    ("steady", "adverts", "steady: adverts timed", None, "n"),
    ("steady", "cpu_pressure", "steady: CPU pressure (PSI some avg10)", None, "%"),
    ("crash", "takeover", "crash: last advert -> new master's first advert",
     master_down_interval(low), "s"),
    ("crash", "excess_ms", "crash: excess over the bound", None, "ms"),
    ("crash", "cpu_pressure", "crash: CPU pressure at takeover (PSI some avg10)", None, "%"),
    ("crash", "first_garp", "crash: last advert -> first gratuitous ARP", None, "s"),
    ("crash", "vip", "crash: last advert -> VIP on the new master", None, "s"),
    ("crash", "outage", "crash: client outage (longest gap between echo replies)", None, "s"),
    ("graceful", "takeover", "graceful: priority-0 advert -> new master's first advert",
     skew_time(low), "s"),
    ("graceful", "excess_ms", "graceful: excess over the bound", None, "ms"),
    ("graceful", "cpu_pressure", "graceful: CPU pressure (PSI some avg10)", None, "%"),
    ("graceful", "term_to_zero", "graceful: SIGTERM -> priority-0 advert", None, "s"),
    ("graceful", "zeros", "graceful: priority-0 adverts before the takeover", None, "n"),
    ("graceful", "from_last_zero", "graceful: last priority-0 advert -> new master's first advert",
     skew_time(low), "s"),
    ("graceful", "term_to_exit", "graceful: SIGTERM -> old master exited", None, "s"),
    ("graceful", "vip", "graceful: priority-0 advert -> VIP on the new master", None, "s"),
    ("graceful", "vip_gap", "graceful: VIP gone on old -> VIP on new", None, "s"),
    ("graceful", "outage", "graceful: client outage (longest gap between echo replies)",
     None, "s"),
    ("preempt", "from_start", f"preempt: process start -> first priority-{preempting} advert",
     None, "s"),
    ("preempt", "from_socket", f"preempt: VRRP socket -> first priority-{preempting} advert",
     master_down_interval(preempting), "s"),
    ("preempt", "excess_ms", "preempt: excess over the bound", None, "ms"),
    ("preempt", "old_master_last_after", "preempt: old master's last advert, after new's first",
     None, "s"),
    ("preempt", "max_advert_gap", "preempt: longest gap between master adverts", ADVERT_INT, "s"),
    ("preempt", "vip_gap", "preempt: VIP gone on old -> VIP on new", None, "s"),
    ]  # fmt: skip


def summary(values: list[float], unit: str) -> str:
    vals = [v for v in values if v == v]  # drop NaN
    if not vals:
        return "n/a"
    fmt = {"ms": "{:.1f}", "%": "{:.0f}", "n": "{:.0f}"}.get(unit, "{:.3f}")
    med = fmt.format(statistics.median(vals))
    lo, hi = fmt.format(min(vals)), fmt.format(max(vals))
    return f"{med} ({lo} .. {hi})"


def table(runs: dict[str, list[dict[str, dict[str, float]]]], labels: list[str]) -> str:
    head = "| measure | bound | " + " | ".join(labels) + " |"
    sep = "|---|---|" + "---|" * len(labels)
    lines = [head, sep]
    for scenario, key, text, bound, unit in rows():
        cells = []
        any_value = False
        for label in labels:
            vals = [r[scenario][key] for r in runs[label] if key in r.get(scenario, {})]
            any_value |= bool(vals)
            cells.append(summary(vals, unit))
        if not any_value:
            continue
        b = f"{bound:.6f}".rstrip("0").rstrip(".") + " s" if bound is not None else ""
        lines.append(f"| {text} ({unit}) | {b} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per pairing (default 5)")
    parser.add_argument(
        "--impl",
        choices=IMPLS,
        action="append",
        help="only this implementation (repeatable); default both",
    )
    parser.add_argument(
        "--no-mixed", action="store_true", help="skip the mixed lvsha/keepalived pairs"
    )
    parser.add_argument("--json", type=Path, help="write every run's raw numbers here")
    parser.add_argument("--vrrp-version", type=int, choices=(2, 3), default=2)
    parser.add_argument("--advert-int", type=float, default=1.0, help="seconds (v3: 0.01..40.95)")
    parser.add_argument(
        "--ns-prefix", default="tb", help="namespace names start with this (default tb)"
    )
    parser.add_argument(
        "--priorities",
        default="100/100",
        help="d1's and d2's priority, HIGH/LOW (default 100/100; 150/100: d1 preempts)",
    )
    parser.add_argument(
        "--client-probe", action="store_true", help="a client pings the VIP: the outage"
    )
    parser.add_argument("--probe-interval", type=float, default=0.002, help="seconds (0.002)")
    parser.add_argument(
        "--steady", type=float, default=0.0, help="seconds of master adverts timed (lateness)"
    )
    parser.add_argument("--family", type=int, choices=(4, 6), default=4, help="6: IPv6 (v3)")
    parser.add_argument(
        "--status-every", type=float, default=0.0, help="s between status requests (--steady)"
    )
    parser.add_argument("--cpu-load", type=int, default=0, help="busy-loop processes meanwhile")
    parser.add_argument(
        "--rt", action="store_true", help="both daemons real-time (SCHED_FIFO/RR 10), as the unit"
    )
    args = parser.parse_args()
    global ADVERT_INT, VRRP_VERSION, NS_PREFIX, PRIORITIES, CLIENT_PROBE, PROBE_INTERVAL
    global STEADY, REALTIME, FAMILY, VIP_ADDRESS, VIP_PREFIX
    FAMILY = args.family
    if FAMILY == 6:
        VIP_ADDRESS, VIP_PREFIX = VIP6, VIP6_PREFIX
    ADVERT_INT, VRRP_VERSION, NS_PREFIX = args.advert_int, args.vrrp_version, args.ns_prefix
    CLIENT_PROBE, PROBE_INTERVAL = args.client_probe, args.probe_interval
    STEADY, REALTIME = args.steady, args.rt
    global STATUS_EVERY
    STATUS_EVERY = args.status_every
    if not (STATUS_EVERY == 0 or 0.005 <= STATUS_EVERY <= 10):
        parser.error("--status-every: 0 (off) or 0.005..10 s")
    try:
        high, low = (int(p) for p in args.priorities.split("/"))
    except ValueError:
        parser.error("--priorities: HIGH/LOW, two integers")
    if not 1 <= low <= high <= 254:
        parser.error("--priorities: 1 <= LOW <= HIGH <= 254")
    PRIORITIES = (high, low)
    if not 0.0005 <= PROBE_INTERVAL <= 0.1 or not 0 <= STEADY <= 60 or not 0 <= args.cpu_load <= 8:
        parser.error("--probe-interval 0.0005..0.1, --steady 0..60, --cpu-load 0..8")
    if not (NS_PREFIX.replace("-", "").isalnum() and len(NS_PREFIX) <= 4):
        parser.error("--ns-prefix: up to 4 letters, digits or '-'")
    if VRRP_VERSION == 2 and ADVERT_INT != 1.0:
        parser.error("the VRRPv2 chain runs at advert_int 1")
    if VRRP_VERSION == 2 and FAMILY == 6:
        parser.error("IPv6 is VRRPv3's (--vrrp-version 3)")
    if os.geteuid() != 0:
        parser.error("needs root (network namespaces, raw sockets)")
    if not 1 <= args.runs <= 50:
        parser.error("--runs must be 1..50")
    impls = args.impl or list(IMPLS)
    if "keepalived" in impls and not Path(KEEPALIVED).exists():
        parser.error(f"{KEEPALIVED} is not installed")

    # SIGTERM/SIGHUP unwind through every finally: no namespace or process is left.
    def interrupted(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)

    pairings: list[tuple[str, str, str]] = [(f"{i} pair", i, i) for i in impls]
    if not args.no_mixed and len(impls) == 2:
        pairings += [
            ("lvsha -> keepalived", "lvsha", "keepalived"),
            ("keepalived -> lvsha", "keepalived", "lvsha"),
        ]
    info = machine_info()
    print("machine:", json.dumps(info), flush=True)
    runs: dict[str, list[dict[str, dict[str, float]]]] = {p[0]: [] for p in pairings}
    failures: dict[str, list[str]] = {p[0]: [] for p in pairings}
    began = time.monotonic()
    load = CpuLoad(args.cpu_load, limit=3600.0)
    with load:
        run_all(args.runs, pairings, runs, failures)
    elapsed = time.monotonic() - began
    info["options"] = " ".join(sys.argv[1:])
    info["lvsha_source_at_end"] = lvsha_source()
    return report(args, info, pairings, runs, failures, elapsed)


def run_all(
    count: int,
    pairings: list[tuple[str, str, str]],
    runs: dict[str, list[dict[str, dict[str, float]]]],
    failures: dict[str, list[str]],
) -> None:
    for n in range(count):
        # interleave the pairings so that machine noise hits them alike
        for label, impl1, impl2 in pairings:
            mixed = impl1 != impl2
            scenarios = {"cold", "crash", "graceful"} | (set() if mixed else {"preempt"})
            t0 = time.monotonic()
            try:
                result = run_chain(impl1, impl2, scenarios)
            except (RuntimeError, TimeoutError, subprocess.SubprocessError, OSError) as exc:
                failures[label].append(f"run {n + 1}: {exc}")
                print(f"[{label}] run {n + 1} FAILED: {exc}", flush=True)
                continue
            runs[label].append(result)
            brief = {s: round(v.get("excess_ms", float("nan")), 1) for s, v in result.items()}
            took = time.monotonic() - t0
            print(f"[{label}] run {n + 1}: {took:.1f} s, excess ms {brief}", flush=True)


def report(
    args: argparse.Namespace,
    info: dict[str, str],
    pairings: list[tuple[str, str, str]],
    runs: dict[str, list[dict[str, dict[str, float]]]],
    failures: dict[str, list[str]],
    elapsed: float,
) -> int:
    print("lvsha source at the end:", info["lvsha_source_at_end"])

    same = [p[0] for p in pairings if p[1] == p[2]]
    mixed_labels = [p[0] for p in pairings if p[1] != p[2]]
    print()
    print(f"## Results: median (min .. max) of {args.runs} runs, {elapsed:.0f} s in all\n")
    print(table(runs, same))
    if mixed_labels:
        print("\n### Mixed pairs: d1 -> d2 (crash: d2 takes over; graceful: d1 takes back)\n")
        print(table(runs, mixed_labels))
    print("\n### Every run's excess over the bound (ms), in run order\n")
    for label in runs:
        for scenario in ("crash", "graceful"):
            vals = [r[scenario]["excess_ms"] for r in runs[label] if scenario in r]
            print(f"- {label}, {scenario}: " + ", ".join(f"{v:.1f}" for v in vals))
    for label, errs in failures.items():
        for err in errs:
            print(f"\nFAILED [{label}] {err}")
    if args.json:
        raw = {"machine": info, "runs": runs, "failures": failures, "elapsed": elapsed}
        args.json.write_text(json.dumps(raw, indent=1))
    return 1 if any(failures.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
