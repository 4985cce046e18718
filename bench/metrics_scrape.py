"""Does scraping /metrics delay VRRP adverts? A real master, 10,000 real servers, on the wire.

Run as root from the repository root:

    sudo .venv/bin/python bench/metrics_scrape.py --runs 3

Each run builds a fresh LAN of network namespaces (tests/lab.py): director
d1 (192.0.2.11, priority 150) is the master of VRID 51 (advert_int 1, PASS
authentication, the lab's VIP) and checks `--reals` real servers (tcp_check,
`--delay-loop`) that a helper process holds as listening sockets on
127.0.0.1 inside d1's namespace (bench/health_checks.py `serve`; there is
no IPVS on this kernel, so the IPVS passes fail and are retried, as they
would be without ip_vs); d1 serves `[daemon] metrics` on 127.0.0.1:9650. d2
(192.0.2.12, priority 100) is the backup. Like the shipped systemd unit,
both run at SCHED_FIFO 10 with reset-on-fork (`--fifo 0`: ordinary
priority).

After `--settle` seconds, two phases of `--seconds` each, in the same run:
`idle` (nobody scrapes), then `scrape` (`--clients` threads in d1's
namespace GET /metrics as fast as they can, each on a new connection). An
AF_PACKET socket in the bridge's namespace timestamps every advert as it
enters the bridge (bench/takeover.py's Sniffer); per phase:

* the gaps between two consecutive adverts of d1, less advert_int: advert
  lateness p50 / p99 / max, in ms (goal: max under 20 ms);
* adverts d2 sent (any one means the backup took over: the master changed);
* scrapes per second answered 200, refused 503, failed (reset, timeout).

Medians over `--runs`. `--lvsha-root` runs the daemon from another tree
(e.g. an export of an older commit), to measure the code before a change.
Nothing leaves the namespaces; every wait is bounded; every process and
namespace is removed at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from lab import Host, Lab, instance_toml, wait_for  # noqa: E402
from takeover import Sniffer  # noqa: E402

ADVERT_INT = 1.0
METRICS_PORT = 9650
GOAL_MS = 20.0


# ------------------------------------------------------------ scrapers --


def scrape(clients: int, seconds: float, port: int) -> dict[str, Any]:
    """`clients` threads GET /metrics back to back for `seconds`; counts by outcome."""
    counts = {"ok": 0, "busy": 0, "failed": 0, "bytes": 0}
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    request = b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"

    def one() -> tuple[str, int]:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(request)
            buf = bytearray(1 << 20)
            view = memoryview(buf)
            total, head = 0, b""
            while n := s.recv_into(view):
                if not head:
                    head = bytes(view[:12])
                total += n
        if head.startswith(b"HTTP/1.0 200"):
            return "ok", total
        return ("busy" if head.startswith(b"HTTP/1.0 503") else "failed"), total

    def client() -> None:
        while time.monotonic() < stop:
            try:
                outcome, size = one()
            except OSError:
                outcome, size = "failed", 0
                time.sleep(0.01)  # a refused connect must not spin
            with lock:
                counts[outcome] += 1
                counts["bytes"] += size

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 30)
    elapsed = time.monotonic() - started
    return {**counts, "seconds": elapsed}


# --------------------------------------------------------------- a run --


def reals_config(ports: list[int], delay_loop: float) -> str:
    text = f"[[virtual_server]]\naddress = '192.0.2.200'\nport = 80\ndelay_loop = {delay_loop}\n"
    for port in ports:
        text += (
            "[[virtual_server.real_server]]\naddress = '127.0.0.1'\n"
            f"port = {port}\ntcp_check = {{ connect_timeout = 3 }}\n"
        )
    return text


# `--gc-freeze-after S`: the daemon as is, but S s after start every object it
# has is moved out of the cyclic collector's reach (gc.freeze), as the runtime
# could do once started: a measurement of that remedy, not a change to lvsha
FROZEN = (
    "import gc, runpy, sys, threading; "
    "threading.Timer(float(sys.argv[1]), lambda: (gc.collect(), gc.freeze())).start(); "
    "sys.argv = ['lvsha', *sys.argv[2:]]; runpy.run_module('lvsha.cli', run_name='__main__')"
)


def start_lvsha(
    lab: Lab, host: Host, body: str, daemon: str, root: Path, args: argparse.Namespace
) -> tuple[subprocess.Popen[bytes], Path]:
    """`lvsha run` from `root` (its own tree first on sys.path), as the unit runs it."""
    config, sock = lab.write_config(host, body, daemon)
    log = lab.workdir / f"{host.name}.log"
    chrt = ["chrt", "--reset-on-fork", "--fifo", str(args.fifo)] if args.fifo else []
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONUNBUFFERED": "1"}
    lvsha = ["-m", "lvsha.cli"]
    if args.gc_freeze_after is not None:
        lvsha = ["-c", FROZEN, str(args.gc_freeze_after)]
    argv = [*chrt, sys.executable, *lvsha, "run", "--config", str(config)]
    with log.open("ab") as handle:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", host.ns, *argv, "--log-format", "keyvalue"],
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=root,
            env=env,
        )
    lab.processes.append(proc)
    return proc, sock


def status(sock: Path, root: Path) -> dict[str, Any] | None:
    out = subprocess.run(
        [sys.executable, "-m", "lvsha.cli", "status", "--json", "--socket", str(sock)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=root,
        check=False,
    )
    if out.returncode != 0:
        return None
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def state(sock: Path, root: Path) -> str | None:
    st = status(sock, root)
    return None if st is None else str(st["instances"][0]["state"])


def lateness(adverts: list[float]) -> list[float]:
    return [1e3 * (b - a - ADVERT_INT) for a, b in itertools.pairwise(adverts)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def one_run(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    lab = Lab()
    sniffer: Sniffer | None = None
    try:
        d1 = lab.host("d1", "192.0.2.11")
        d2 = lab.host("d2", "192.0.2.12")
        sniffer = Sniffer(lab.switch, {d1.port: "d1", d2.port: "d2"})
        sniffer.start()
        ports_file = lab.workdir / "ports.json"
        server_argv = [sys.executable, str(ROOT / "bench" / "health_checks.py"), "serve"]
        server_argv += ["--count", str(args.reals), "--ports-file", str(ports_file)]
        lab.processes.append(
            subprocess.Popen(
                ["ip", "netns", "exec", d1.ns, *server_argv],
                stdin=subprocess.DEVNULL,
            )
        )
        wait_for(lambda: ports_file.exists() and ports_file.stat().st_size, 120, 0.2)
        ports = json.loads(ports_file.read_text())
        root = Path(args.lvsha_root).resolve()
        _, sock1 = start_lvsha(
            lab,
            d1,
            instance_toml(150) + reals_config(ports, args.delay_loop),
            f'metrics = "127.0.0.1:{METRICS_PORT}"\n',
            root,
            args,
        )
        wait_for(lambda: state(sock1, root) == "MASTER", 120, 0.5)
        _, sock2 = start_lvsha(lab, d2, instance_toml(100), "", root, args)
        wait_for(lambda: state(sock2, root) == "BACKUP", 60, 0.5)
        time.sleep(args.settle)  # checks warmed up, first IPVS retries done
        phases: dict[str, dict[str, Any]] = {}
        for phase in ("idle", "scrape"):
            t0 = time.time()
            if phase == "scrape":
                script = f"import sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); "
                script += "import metrics_scrape as m, json; "
                script += (
                    f"print(json.dumps(m.scrape({args.clients}, {args.seconds}, {METRICS_PORT})))"
                )
                out = d1.run(sys.executable, "-c", script, timeout=args.seconds + 120)
                load = json.loads(out.stdout.strip().splitlines()[-1])
            else:
                time.sleep(args.seconds)
                load = {"ok": 0, "busy": 0, "failed": 0, "bytes": 0, "seconds": args.seconds}
            t1 = time.time()
            mine = [f.at for f in sniffer.adverts("d1", since=t0) if f.at <= t1 and f.priority]
            theirs = [f for f in sniffer.adverts("d2", since=t0) if f.at <= t1]
            late = lateness(mine)
            phases[phase] = {
                "late_over_10ms": [
                    (round(at, 3), round(x, 1))
                    for at, x in zip(mine[1:], late, strict=True)
                    if x > 10
                ],
                "adverts": len(mine),
                "over_goal": sum(1 for x in late if x > GOAL_MS),
                "late_p50_ms": percentile(late, 0.50),
                "late_p99_ms": percentile(late, 0.99),
                "late_max_ms": max(late) if late else float("nan"),
                "backup_adverts": len(theirs),
                "scrapes_per_s": load["ok"] / load["seconds"],
                "busy_per_s": load["busy"] / load["seconds"],
                "failed": load["failed"],
                "mib_per_s": load["bytes"] / load["seconds"] / (1 << 20),
            }
        st2 = status(sock2, root) or {"instances": [{"state": "?", "counters": {}}]}
        phases["scrape"]["backup_state"] = st2["instances"][0]["state"]
        phases["scrape"]["backup_became_master"] = st2["instances"][0]["counters"].get(
            "became_master", -1
        )
        phases["scrape"].update(own_metrics(d1))
        return phases
    finally:
        if sniffer is not None:
            sniffer.stop()
        lab.close()


def own_metrics(host: Host) -> dict[str, float]:
    """The endpoint's own gauges (after the change only): the cost of a refresh."""
    code = (
        "import urllib.request,sys;sys.stdout.write(urllib.request.urlopen("
        f"'http://127.0.0.1:{METRICS_PORT}/metrics',timeout=30).read().decode())"
    )
    text = host.run(sys.executable, "-c", code, check=False, timeout=60).stdout
    found: dict[str, float] = {}
    for name in ("loop_seconds", "source_seconds", "render_seconds"):
        match = re.search(rf"^lvsha_metrics_{name} (\S+)$", text, re.M)
        found[name.replace("_seconds", "_ms")] = (
            1e3 * float(match.group(1)) if match else float("nan")
        )
    match = re.search(r"^lvsha_metrics_refused_total (\S+)$", text, re.M)
    found["refused_total"] = float(match.group(1)) if match else float("nan")
    return found


# ------------------------------------------------------------ the table --

KEYS = [
    "adverts", "over_goal", "late_p50_ms", "late_p99_ms", "late_max_ms", "backup_adverts",
    "scrapes_per_s", "busy_per_s", "failed", "mib_per_s",
]  # fmt: skip


def table(runs: list[dict[str, dict[str, Any]]], args: argparse.Namespace) -> str:
    lines = [
        f"{args.reals} real servers, delay_loop {args.delay_loop:g}, {args.clients} clients, "
        f"{args.seconds:g} s per phase, SCHED_FIFO {args.fifo or 'off'}, "
        f"gc.freeze {'off' if args.gc_freeze_after is None else 'on'}, "
        f"lvsha from {args.lvsha_root}; medians of "
        f"{len(runs)} runs (max of the maxima in brackets)",
        "",
        "| phase | adverts | gaps over +20 ms (all runs) | late p50 ms | p99 ms | max ms "
        "| backup adverts | scrapes/s | 503/s | failed | MiB/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for phase in ("idle", "scrape"):
        med = {k: statistics.median(r[phase][k] for r in runs) for k in KEYS}
        worst = max(r[phase]["late_max_ms"] for r in runs)
        takeovers = sum(r[phase]["backup_adverts"] for r in runs)
        over = sum(r[phase]["over_goal"] for r in runs)
        lines.append(
            f"| {phase} | {med['adverts']:.0f} | {over} | {med['late_p50_ms']:.2f} "
            f"| {med['late_p99_ms']:.2f} | {med['late_max_ms']:.2f} ({worst:.2f}) "
            f"| {med['backup_adverts']:.0f} (total {takeovers}) | {med['scrapes_per_s']:.1f} "
            f"| {med['busy_per_s']:.1f} | {med['failed']:.0f} | {med['mib_per_s']:.1f} |"
        )
    last = [r["scrape"] for r in runs]
    lines.append("")
    lines.append(
        "backup at the end: "
        + ", ".join(
            f"{r['backup_state']} (became_master {r['backup_became_master']})" for r in last
        )
        + "; per refresh, event-loop ms: "
        + ", ".join(f"{r['loop_ms']:.1f}" for r in last)
        + "; status document ms: "
        + ", ".join(f"{r['source_ms']:.1f}" for r in last)
        + "; render ms: "
        + ", ".join(f"{r['render_ms']:.0f}" for r in last)
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reals", type=int, default=10_000)
    parser.add_argument("--delay-loop", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--settle", type=float, default=10.0)
    parser.add_argument("--fifo", type=int, default=10, help="SCHED_FIFO priority, 0 = off")
    parser.add_argument("--lvsha-root", default=str(ROOT), help="tree to run lvsha from")
    parser.add_argument(
        "--gc-freeze-after",
        type=float,
        default=None,
        help="gc.freeze() in the daemons this many seconds after they start (a remedy measured)",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces, AF_PACKET)", file=sys.stderr)
        return 77
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))  # finally blocks clean up
    runs = []
    for i in range(args.runs):
        result = one_run(args)
        runs.append(result)
        print(f"run {i + 1}: {json.dumps(result)}", file=sys.stderr, flush=True)
    print(table(runs, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
