"""How many real servers one lvsha process checks at a 1 s interval, and what it does to VRRP.

    .venv/bin/python bench/health_checks.py --reals 0 1000 10000 --modes process inline \
        --runs 3 --seconds 30

No privileges needed; loopback only. One process holds the real servers:
listening sockets on 127.0.0.1 that accept and close, pinned to CPU 1. Each
measured run is a fresh process pinned to CPU 0 (its health-check worker
inherits the pin: one core for all of lvsha). It runs

* `ROUTERS` real `lvsha.core.vrrp.VirtualRouter`s as address owners
  (priority 255, adver_int 1), driven exactly as lvsha/runtime/vrrp_driver.py drives them
  (`loop.call_at(router.deadline)`, `timer_fired`, encode and send the
  advert, here as UDP to 127.0.0.1:9), phases spread over the second; the
  lateness of each advert timer callback behind its deadline is the jitter;
* a `HealthChecker` over N real servers (tcp_check, delay_loop 1,
  connect_timeout 3, warmup 1 so the checks are spread), in one of:
  `process` (the default: a niced worker process), `inline` (the same event
  loop as VRRP) or `thread` (a second event loop in a thread of the same
  process, for comparison).

Reported per mode and N, as medians of `--runs` runs: checks per second
(against N per second wanted), CPU of the lvsha process and of its worker
(percent of one core), advert lateness p50 / p99 / max in ms, and real
servers that changed health although every server stayed up (false
failures). The first `--settle` seconds of each run are not measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ROUTERS = 20
LVSHA_CPU = 0
SERVERS_CPU = 1
PORTS_PER_SERVICE = 10_000


def raise_nofile() -> int:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# ------------------------------------------------------------- servers --


def serve(count: int, ports_file: Path) -> None:
    """Listen on `count` ports of 127.0.0.1; accept and close whatever connects."""
    os.sched_setaffinity(0, {SERVERS_CPU})
    limit = raise_nofile()
    if count + 32 > limit:
        raise SystemExit(f"{count} listening sockets need RLIMIT_NOFILE > {count + 32}")
    sel = selectors.EpollSelector()
    ports = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(128)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        ports.append(s.getsockname()[1])
    ports_file.write_text(json.dumps(ports))
    while True:
        for key, _ in sel.select():
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            for _ in range(64):  # bounded per wake-up
                try:
                    conn, _ = sock.accept()
                except BlockingIOError:
                    break
                conn.close()


# ----------------------------------------------------------------- run --


def config_text(ports: list[int], reals: int) -> str:
    """`reals` real servers over the ports; beyond one service's worth, more services."""
    text = ""
    for start in range(0, reals, len(ports) or 1):
        n = min(len(ports), reals - start)
        service = start // max(len(ports), 1)
        text += (
            f"[[virtual_server]]\naddress = '192.0.2.{1 + service}'\nport = 80\ndelay_loop = 1\n"
        )
        for port in ports[:n]:
            text += (
                "[[virtual_server.real_server]]\naddress = '127.0.0.1'\n"
                f"port = {port}\nwarmup = 1\ntcp_check = {{ connect_timeout = 3 }}\n"
            )
    return text


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def cpu_pressure() -> float:
    """PSI `some avg10` of the CPU: how much other work on this machine waited for a CPU."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except OSError:
        return float("nan")
    return float(line.split()[1].split("=")[1])


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(
    mode: str,
    reals: int,
    ports: list[int],
    seconds: float,
    settle: float,
    worker_nice: int | None = None,
    worker_idle: bool = False,
) -> dict[str, Any]:
    from lvsha.adapters.checker import CheckEngine, Report
    from lvsha.config import parse_config
    from lvsha.core.packet import AUTH_NONE
    from lvsha.core.vrrp import RouterParams, SendAdvert, VirtualRouter
    from lvsha.runtime.health import HealthChecker

    loop = asyncio.get_running_loop()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.setblocking(False)
    lateness: list[float] = []
    measuring = False

    def fire(router: VirtualRouter, deadline: float) -> None:
        now = loop.time()
        if measuring:
            lateness.append(now - deadline)
        for action in router.timer_fired(now):
            if isinstance(action, SendAdvert):
                with contextlib.suppress(OSError):
                    udp.sendto(action.advert.encode(), ("127.0.0.1", 9))
        arm(router)

    def arm(router: VirtualRouter) -> None:
        deadline = router.deadline
        if deadline is not None:
            loop.call_at(deadline, fire, router, deadline)

    for i in range(ROUTERS):
        params = RouterParams(
            name=f"VI_{i}",
            vrid=1 + i,
            priority=255,
            adver_int=1,
            addresses=(f"192.0.2.{100 + i}",),
            auth_type=AUTH_NONE,
            garp_master_delay=0.0,
        )
        router = VirtualRouter(params, "127.0.0.1")
        router.startup(loop.time())
        router.adver_at = loop.time() + i / ROUTERS  # spread the phases over the second
        arm(router)

    cfg = parse_config(config_text(ports, reals))
    counter = {"reports": 0, "changed": 0}
    checker: HealthChecker | None = None
    worker_pid: int | None = None
    if mode in ("process", "inline"):
        checker = HealthChecker(cfg.virtual_servers, lambda: None, isolate=mode == "process")
        checker.start()
    elif mode == "thread":

        def count(report: Report) -> None:
            counter["reports"] += 1
            if report.reason is not None:
                counter["changed"] += 1

        def run_thread() -> None:
            async def engine_main() -> None:
                engine = CheckEngine(cfg.virtual_servers, count)
                engine.start()
                await asyncio.Event().wait()

            asyncio.run(engine_main())

        threading.Thread(target=run_thread, daemon=True).start()

    await asyncio.sleep(settle)
    if checker is not None and checker._proc is not None:
        worker_pid = checker._proc.pid
        if worker_nice is not None:
            os.setpriority(os.PRIO_PROCESS, worker_pid, worker_nice)
        if worker_idle:
            os.sched_setscheduler(worker_pid, os.SCHED_IDLE, os.sched_param(0))
    reports0 = checker.reports if checker is not None else counter["reports"]
    cpu0 = sum(os.times()[:2])
    wcpu0 = proc_cpu(worker_pid) if worker_pid else 0.0
    t0 = time.monotonic()
    measuring = True
    await asyncio.sleep(seconds)
    measuring = False
    elapsed = time.monotonic() - t0
    cpu = sum(os.times()[:2]) - cpu0
    wcpu = (proc_cpu(worker_pid) - wcpu0) if worker_pid else 0.0
    reports = (checker.reports if checker is not None else counter["reports"]) - reports0
    if checker is not None:
        changed = sum(1 for st in checker.status().values() if st.reason)
        checker.stop()
        await checker.wait_stopped()
    else:
        changed = counter["changed"]
    ms = [x * 1e3 for x in lateness]
    return {
        "mode": mode,
        "reals": reals,
        "checks_per_s": reports / elapsed,
        "wanted_per_s": float(reals),
        "cpu_lvsha_pct": 100 * cpu / elapsed,
        "cpu_worker_pct": 100 * wcpu / elapsed,
        "adverts": len(ms),
        "late_p50_ms": percentile(ms, 0.50),
        "late_p99_ms": percentile(ms, 0.99),
        "late_max_ms": max(ms) if ms else float("nan"),
        "false_failures": changed,
        "cpu_pressure_avg10": cpu_pressure(),
        # CPU time per check, whoever ran it: immune to waiting for a busy CPU
        "cpu_us_per_check": 1e6 * (cpu + wcpu) / reports if reports else float("nan"),
    }


def run_one(args: argparse.Namespace) -> None:
    os.sched_setaffinity(0, {LVSHA_CPU})
    if args.vrrp_nice:  # children (the worker) inherit it, and add their own +5
        os.setpriority(os.PRIO_PROCESS, 0, args.vrrp_nice)
    if args.vrrp_fifo:  # as keepalived's vrrp_rt_priority; children start as SCHED_OTHER
        policy = os.SCHED_FIFO | os.SCHED_RESET_ON_FORK
        os.sched_setscheduler(0, policy, os.sched_param(args.vrrp_fifo))
    raise_nofile()
    ports = json.loads(Path(args.ports_file).read_text())
    result = asyncio.run(
        measure(
            args.mode,
            args.reals,
            ports,
            args.seconds,
            args.settle,
            args.worker_nice,
            args.worker_idle,
        )
    )
    print(json.dumps(result))


# ---------------------------------------------------------- orchestrate --


def orchestrate(args: argparse.Namespace) -> None:
    ports_file = Path(f"/tmp/lvsha-bench-ports-{os.getpid()}.json")
    count = min(max(args.reals), PORTS_PER_SERVICE)
    servers = subprocess.Popen(
        [sys.executable, __file__, "serve", "--count", str(count), "--ports-file", str(ports_file)]
    )
    try:
        for _ in range(600):  # bounded: 60 s to open the sockets
            if ports_file.exists() and ports_file.stat().st_size:
                break
            time.sleep(0.1)
        results: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for run in range(args.runs):
            for mode in args.modes:
                for reals in args.reals:
                    argv = [
                        sys.executable, __file__, "run", "--mode", mode, "--reals", str(reals),
                        "--ports-file", str(ports_file), "--seconds", str(args.seconds),
                        "--settle", str(args.settle),
                        *(["--worker-nice", str(args.worker_nice)] if args.worker_nice else []),
                        "--vrrp-fifo", str(args.vrrp_fifo),
                        "--vrrp-nice", str(args.vrrp_nice),
                        *(["--worker-idle"] if args.worker_idle else []),
                    ]  # fmt: skip
                    out = subprocess.run(argv, check=True, capture_output=True, text=True)
                    result = json.loads(out.stdout.strip().splitlines()[-1])
                    results.setdefault((mode, reals), []).append(result)
                    print(f"run {run + 1}: {json.dumps(result)}", file=sys.stderr, flush=True)
    finally:
        servers.kill()
        servers.wait()
        ports_file.unlink(missing_ok=True)
    keys = [
        "checks_per_s", "cpu_lvsha_pct", "cpu_worker_pct", "late_p50_ms", "late_p99_ms",
        "late_max_ms", "false_failures", "cpu_pressure_avg10", "cpu_us_per_check",
    ]  # fmt: skip
    print(
        f"| mode | real servers | checks/s | interval s | lvsha CPU % | worker CPU % "
        f"| advert late p50 ms "
        f"| p99 ms | max ms | false failures | CPU pressure % | CPU us/check |"
        f"  (medians of {args.runs} runs, {args.seconds:g} s each)"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (mode, reals), runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in keys}
        rate = med["checks_per_s"]
        interval = f"{reals / rate:.2f}" if reals and rate else "-"
        print(
            f"| {mode} | {reals} | {med['checks_per_s']:.0f} | {interval} "
            f"| {med['cpu_lvsha_pct']:.0f} "
            f"| {med['cpu_worker_pct']:.0f} | {med['late_p50_ms']:.2f} | {med['late_p99_ms']:.2f} "
            f"| {med['late_max_ms']:.2f} | {med['false_failures']:.0f} "
            f"| {med['cpu_pressure_avg10']:.0f} | {med['cpu_us_per_check']:.0f} |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    serve_p = sub.add_parser("serve")
    serve_p.add_argument("--count", type=int, required=True)
    serve_p.add_argument("--ports-file", required=True)
    run_p = sub.add_parser("run")
    run_p.add_argument("--mode", choices=["process", "inline", "thread"], required=True)
    run_p.add_argument("--reals", type=int, required=True)
    run_p.add_argument("--ports-file", required=True)
    run_p.add_argument("--seconds", type=float, default=30)
    run_p.add_argument("--settle", type=float, default=5)
    run_p.add_argument("--worker-nice", type=int, default=None)
    run_p.add_argument("--vrrp-fifo", type=int, default=0)
    run_p.add_argument("--vrrp-nice", type=int, default=0)
    run_p.add_argument("--worker-idle", action="store_true")
    parser.add_argument("--reals", type=int, nargs="+", default=[0, 1000, 10000])
    parser.add_argument("--modes", nargs="+", default=["process", "inline"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--settle", type=float, default=5)
    parser.add_argument(
        "--worker-nice", type=int, default=None, help="renice the worker (default: its own)"
    )
    parser.add_argument(
        "--vrrp-fifo",
        type=int,
        default=0,
        help="run the VRRP side as SCHED_FIFO at this priority (root; 0 = SCHED_OTHER)",
    )
    parser.add_argument(
        "--worker-idle", action="store_true", help="run the worker as SCHED_IDLE instead"
    )
    parser.add_argument(
        "--vrrp-nice", type=int, default=0, help="nice value of the VRRP side (root for < 0)"
    )
    args = parser.parse_args()
    if args.command == "serve":
        serve(args.count, Path(args.ports_file))
    elif args.command == "run":
        run_one(args)
    else:
        orchestrate(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
