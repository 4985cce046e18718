"""Start-up and footprint benchmark: lvsha and keepalived side by side (issue 13).

Run as root from the repository root:

    sudo .venv/bin/python bench/startup.py --runs 10

Same LAN, addresses, instance and capture as bench/takeover.py (whose
helpers it uses): a bridge in a namespace, d1 = 192.0.2.11, d2 = 192.0.2.12,
VIP 192.0.2.100/32, VRID 51, advert_int 1, PASS authentication. Each run,
interleaved so that machine noise hits every line alike:

* **reference**: the smallest Python program that opens a raw IPPROTO_VRRP
  socket (`python -c "_socket.socket(AF_INET, SOCK_RAW, 112)"`, the same
  interpreter and environment as `lvsha run`), timed like the daemons: the interpreter's own
  share of "process start -> VRRP socket open";
* **cold** (lvsha, keepalived): one director (priority 100) alone: process
  start -> VRRP socket open -> first advert -> VIP; then, idle as master,
  its memory: VmRSS and Pss summed over the daemon's processes (keepalived:
  the parent and its VRRP child);
* **preempt** (lvsha, keepalived): d1 (100) is master, d2 (150) starts:
  process start -> first priority-150 advert, and -> sole master (d2 holds
  the VIP and d1 no longer does);
* **mixed**: lvsha (150) on d1 and keepalived (100) on d2 start together,
  cold; the VIP's holders are followed in both namespaces (netlink events),
  and every moment with two holders is reported, with keepalived's adverts
  (a backup that never became master sends none).

The tree's bytecode is compiled first (`compileall`), as an installed
package's is: without it every start compiles lvsha from source (~0.1 s).

`--layout installed` (the default) runs both lvsha and the reference from a
throw-away virtual environment whose site-packages holds one plain `.pth`
line per path (this tree, the development venv's site-packages), and lvsha
through a console script like the one pip writes: the layout of a
non-editable install such as the .deb's (dh-virtualenv: `/usr/bin/lvsha` is
that console script, systemd's ExecStart runs it). `--layout editable`
runs the development venv as it is: its editable-install finder, imported
by `site` in every interpreter of that venv, the reference's included,
costs 11-15 ms of start-up that no installed director pays.
"process start" is the wall clock just before `ip netns exec` is spawned; a
raw socket of protocol 112 is looked for in /proc/PID/net/raw every 2 ms, so
that instant is good to ~2 ms either way, for every program alike.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import takeover as tk

IDLE = 3.0  # seconds as idle master before memory is read
MIXED_WATCH = 3.0  # seconds to keep watching the VIP after the cold start settled
REFERENCE = (  # _socket, as runtime/early.py: socket.py's selectors and enums cost ~9 ms
    "import _socket, time\ns = _socket.socket(_socket.AF_INET, _socket.SOCK_RAW, 112)\n"
    "time.sleep(30)\n"
)


def cpu_seconds(pids: list[int]) -> float:
    """CPU time the processes have run (/proc/PID/schedstat, ns): load-independent."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    return total / 1e9


def timed_start(
    b: tk.Bench, impl: str, host: tk.Host, priority: int
) -> tuple[tk.Director, dict[str, float]]:
    """Like takeover.start_and_time, plus the CPU time spent until the VRRP socket opened."""
    d = b.start(impl, host, priority)
    deadline = time.monotonic() + tk.START_TIMEOUT
    while not d.vrrp_socket_open():
        if d.proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(
                f"{impl} in {host.name}: no VRRP socket\n" + d.log.read_text()[-2000:]
            )
        time.sleep(0.001)
    out = {"vrrp_socket": time.time() - d.started, "cpu_to_socket": cpu_seconds(processes(d))}
    d.remember_children()
    return d, out


def memory(pids: list[int]) -> dict[str, float]:
    """VmRSS and Pss (MB) summed over `pids`."""
    rss = pss = 0.0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1]) / 1024
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss += int(line.split()[1]) / 1024
    return {"rss_mb": rss, "pss_mb": pss, "processes": float(len(pids))}


def processes(d: tk.Director) -> list[int]:
    return [d.proc.pid, *tk.children(d.proc.pid)]


PYTHON = [sys.executable]  # the interpreter of the reference: lvsha's (see --layout)

CONSOLE_SCRIPT = """#!{python}
import sys
from lvsha.cli import main
if __name__ == '__main__':
    sys.argv[0] = sys.argv[0].removesuffix('.exe')
    sys.exit(main())
"""


def installed_layout(where: Path) -> tuple[Path, Path]:
    """A venv laid out like a non-editable install: (its python, its `lvsha` console script)."""
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(where)], check=True, timeout=120)
    python = where / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout.strip()
    dev_site = next(p for p in sys.path if p.endswith("site-packages"))
    Path(site, "lvsha-bench.pth").write_text(f"{tk.ROOT}\n{dev_site}\n")
    script = where / "bin" / "lvsha"
    script.write_text(CONSOLE_SCRIPT.format(python=python))
    script.chmod(0o755)
    return python, script


def reference(b: tk.Bench, host: tk.Host) -> dict[str, float]:
    log = b.lab.workdir / "reference.log"
    started = time.time()
    env = {**os.environ, "PYTHONPATH": str(tk.ROOT), "PYTHONUNBUFFERED": "1"}  # lvsha's
    proc = host.popen([*PYTHON, "-c", REFERENCE], log, env=env)
    d = tk.Director("python", host, 0, log, log, proc, started)
    b.directors.append(d)
    tk.poll(d.vrrp_socket_open, tk.START_TIMEOUT, "reference raw socket", 0.001)
    out = {"vrrp_socket": time.time() - started, "cpu_to_socket": cpu_seconds([proc.pid])}
    d.cleanup()
    return out


def cold(b: tk.Bench, impl: str, host: tk.Host) -> dict[str, float]:
    d, out = timed_start(b, impl, host, 100)
    first = tk.wait_advert(b, host.name, d.started, f"{impl} first advert")
    vip = tk.poll(lambda: b.watchers[host.name].first(True, d.started), 5, "VIP", 0.01)
    out |= {"first_advert": first.at - d.started, "vip": vip.at - d.started}
    tk.bounded_sleep(IDLE)
    out |= memory(processes(d))
    return out


def preempt(b: tk.Bench, impl: str) -> dict[str, float]:
    h1, h2 = b.add_host("d1", "192.0.2.11"), b.add_host("d2", "192.0.2.12")
    d1, _ = tk.start_and_time(b, impl, h1, 100)
    tk.poll(lambda: b.watchers["d1"].first(True, d1.started), 10, "d1 VIP", 0.01)
    tk.bounded_sleep(0.5)
    d2, out = timed_start(b, impl, h2, 150)
    new = tk.wait_advert(b, "d2", d2.started, "priority-150 advert", lambda f: f.priority == 150)
    on = tk.poll(lambda: b.watchers["d2"].first(True, d2.started), 10, "d2 VIP", 0.01)
    off = tk.poll(lambda: b.watchers["d1"].first(False, d2.started), 10, "d1 VIP gone", 0.01)
    out |= {
        "first_advert": new.at - d2.started,
        "sole_master": max(on.at, off.at) - d2.started,
        "from_socket": new.at - d2.started - out["vrrp_socket"],
    }
    return out


def holders_overlap(b: tk.Bench, since: float, until: float) -> tuple[float, int]:
    """Seconds during which both d1 and d2 held the VIP, and how many such spells."""
    spells: dict[str, list[tuple[float, float]]] = {}
    for name in ("d1", "d2"):
        held: list[tuple[float, float]] = []
        start: float | None = None
        for e in b.watchers[name].events:
            if e.address != tk.VIP or e.at < since:
                continue
            if e.added and start is None:
                start = e.at
            elif not e.added and start is not None:
                held.append((start, e.at))
                start = None
        if start is not None:
            held.append((start, until))
        spells[name] = held
    total, count = 0.0, 0
    for a0, a1 in spells["d1"]:
        for c0, c1 in spells["d2"]:
            both = min(a1, c1) - max(a0, c0)
            if both > 0:
                total += both
                count += 1
    return total, count


def mixed(b: tk.Bench, lvsha_first: bool) -> dict[str, float]:
    """lvsha (150) on d1 and keepalived (100) on d2, started back to back, cold."""
    h1, h2 = b.add_host("d1", "192.0.2.11"), b.add_host("d2", "192.0.2.12")
    order = [("lvsha", h1, 150), ("keepalived", h2, 100)]
    if not lvsha_first:
        order.reverse()
    started = time.time()
    ds = {impl: b.start(impl, host, prio) for impl, host, prio in order}
    lv, ka = ds["lvsha"], ds["keepalived"]
    tk.poll(lambda: b.watchers["d1"].first(True, started), 15, "lvsha VIP", 0.01)
    tk.bounded_sleep(MIXED_WATCH)
    until = time.time()
    ka.remember_children()
    overlap, spells = holders_overlap(b, started, until)
    ka_adverts = [f for f in b.wire.adverts("d2", started) if f.priority > 0]
    lv_first = b.wire.first("d1", "advert", started, lambda f: f.priority == 150)
    return {
        "both_held_s": overlap,
        "both_held_spells": float(spells),
        "keepalived_adverts": float(len(ka_adverts)),
        "keepalived_vip": 1.0 if b.watchers["d2"].first(True, started) else 0.0,
        "lvsha_first_advert": (lv_first.at - lv.started) if lv_first else float("nan"),
        "start_gap": abs(ka.started - lv.started),
    }


def one_run(n: int) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    steps: list[tuple[str, Any]] = [
        ("reference", lambda b: reference(b, b.add_host("d1", "192.0.2.11"))),
        ("cold lvsha", lambda b: cold(b, "lvsha", b.add_host("d1", "192.0.2.11"))),
        ("cold keepalived", lambda b: cold(b, "keepalived", b.add_host("d1", "192.0.2.11"))),
        ("preempt lvsha", lambda b: preempt(b, "lvsha")),
        ("preempt keepalived", lambda b: preempt(b, "keepalived")),
        ("mixed", lambda b: mixed(b, lvsha_first=n % 2 == 0)),
    ]
    for name, step in steps:
        b = tk.Bench()
        try:
            results[name] = step(b)
        finally:
            b.close()
    return results


def summary(values: list[float], fmt: str = "{:.3f}") -> str:
    vals = [v for v in values if v == v]
    if not vals:
        return "n/a"
    med = statistics.median(vals)
    return f"{fmt.format(med)} ({fmt.format(min(vals))} .. {fmt.format(max(vals))})"


def report(runs: list[dict[str, dict[str, float]]]) -> str:
    def vals(step: str, key: str) -> list[float]:
        return [r[step][key] for r in runs if step in r and key in r[step]]

    def med(step: str, key: str) -> float:
        v = vals(step, key)
        return statistics.median(v) if v else float("nan")

    lines = [
        "| measure | python reference | lvsha | keepalived |",
        "|---|---|---|---|",
        f"| cold start: process start -> VRRP socket open (s) "
        f"| {summary(vals('reference', 'vrrp_socket'))} "
        f"| {summary(vals('cold lvsha', 'vrrp_socket'))} "
        f"| {summary(vals('cold keepalived', 'vrrp_socket'))} |",
    ]
    lines.append(
        f"| cold start: CPU time until the VRRP socket opened (s) "
        f"| {summary(vals('reference', 'cpu_to_socket'))} "
        f"| {summary(vals('cold lvsha', 'cpu_to_socket'))} "
        f"| {summary(vals('cold keepalived', 'cpu_to_socket'))} |"
    )
    for key, text in (
        ("first_advert", "cold start: process start -> first advert (s)"),
        ("vip", "cold start: process start -> VIP (s)"),
    ):
        lines.append(
            f"| {text} | | {summary(vals('cold lvsha', key))} "
            f"| {summary(vals('cold keepalived', key))} |"
        )
    for key, text in (
        ("vrrp_socket", "preempt: process start -> VRRP socket open (s)"),
        ("first_advert", "preempt: process start -> first priority-150 advert (s)"),
        ("sole_master", "preempt: process start -> sole master (s)"),
        ("from_socket", "preempt: VRRP socket -> first priority-150 advert (s)"),
    ):
        lines.append(
            f"| {text} | | {summary(vals('preempt lvsha', key))} "
            f"| {summary(vals('preempt keepalived', key))} |"
        )
    for key, text, fmt in (
        ("rss_mb", "idle master: VmRSS, all processes (MB)", "{:.1f}"),
        ("pss_mb", "idle master: Pss, all processes (MB)", "{:.1f}"),
        ("processes", "idle master: processes", "{:.0f}"),
    ):
        lines.append(
            f"| {text} | | {summary(vals('cold lvsha', key), fmt)} "
            f"| {summary(vals('cold keepalived', key), fmt)} |"
        )
    lines.append("")
    lines.append("| ratio of medians (lvsha / keepalived, or lvsha - keepalived) | value |")
    lines.append("|---|---|")
    for step, key, text in (
        ("cold", "vip", "cold start to VIP, lvsha - keepalived (ms)"),
        ("preempt", "first_advert", "preempt to first advert, lvsha - keepalived (ms)"),
        ("preempt", "sole_master", "preempt to sole master, lvsha - keepalived (ms)"),
    ):
        diff = (med(f"{step} lvsha", key) - med(f"{step} keepalived", key)) * 1000
        lines.append(f"| {text} | {diff:+.1f} |")
    sock = med("cold lvsha", "vrrp_socket") - med("reference", "vrrp_socket")
    lines.append(f"| lvsha's socket open beyond the python reference (ms) | {sock * 1000:+.1f} |")
    for key in ("rss_mb", "pss_mb"):
        ratio = med("cold lvsha", key) / med("cold keepalived", key)
        lines.append(f"| idle {key.split('_')[0].upper()}, lvsha / keepalived | {ratio:.2f}x |")
    lines.append("")
    both = vals("mixed", "both_held_s")
    spells = vals("mixed", "both_held_spells")
    lines.append(
        f"Mixed cold start (lvsha 150, keepalived 100), {len(both)} runs: "
        f"{sum(1 for s in spells if s)} with two VIP holders at some moment "
        f"(longest {max(both, default=0.0) * 1000:.1f} ms); keepalived adverts per run "
        f"{summary(vals('mixed', 'keepalived_adverts'), '{:.0f}')}; keepalived ever held the "
        f"VIP in {sum(1 for v in vals('mixed', 'keepalived_vip') if v)} runs; "
        f"lvsha's first advert {summary(vals('mixed', 'lvsha_first_advert'))} s after its start."
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs (default 5)")
    parser.add_argument("--json", type=Path, help="write every run's raw numbers here")
    parser.add_argument(
        "--layout",
        choices=["installed", "editable"],
        default="installed",
        help="run lvsha (and the reference) as installed (default) or from the dev venv",
    )
    parser.add_argument(
        "--no-realtime",
        dest="realtime",
        action="store_false",
        help="do not run the benchmark's own threads as SCHED_FIFO",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("needs root (network namespaces, raw sockets)")
    if not 1 <= args.runs <= 50:
        parser.error("--runs must be 1..50")
    if not Path(tk.KEEPALIVED).exists():
        parser.error(f"{tk.KEEPALIVED} is not installed")

    def interrupted(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    if args.realtime:
        # the poller and the capture threads are woken on time even on a busy
        # machine; the daemons under test (children) are reset to SCHED_OTHER
        policy = os.SCHED_FIFO | os.SCHED_RESET_ON_FORK
        os.sched_setscheduler(0, policy, os.sched_param(10))
    # an installed lvsha has its bytecode compiled (pip, the Debian package): so
    # must the tree under test, even where PYTHONDONTWRITEBYTECODE is set
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(tk.ROOT / "lvsha")], check=True, timeout=120
    )
    global PYTHON
    layout = Path(tempfile.mkdtemp(prefix="lvsha-startup-"))
    if args.layout == "installed":
        python, script = installed_layout(layout / "venv")
        PYTHON = [str(python)]
        tk.LVSHA = [str(script)]
    info = tk.machine_info()
    info["layout"] = args.layout
    info["pythondontwritebytecode"] = os.environ.get("PYTHONDONTWRITEBYTECODE", "")
    print("machine:", json.dumps(info), flush=True)
    runs: list[dict[str, dict[str, float]]] = []
    failures: list[str] = []
    began = time.monotonic()
    for n in range(args.runs):
        t0 = time.monotonic()
        try:
            result = one_run(n)
        except (RuntimeError, TimeoutError, subprocess.SubprocessError, OSError) as exc:
            failures.append(f"run {n + 1}: {exc}")
            print(f"run {n + 1} FAILED: {exc}", flush=True)
            continue
        runs.append(result)
        brief = {
            "ref": round(result["reference"]["vrrp_socket"] * 1000, 1),
            "lvsha_socket": round(result["cold lvsha"]["vrrp_socket"] * 1000, 1),
            "ka_socket": round(result["cold keepalived"]["vrrp_socket"] * 1000, 1),
            "both_held_ms": round(result["mixed"]["both_held_s"] * 1000, 1),
        }
        print(f"run {n + 1}: {time.monotonic() - t0:.1f} s {brief}", flush=True)
    info["lvsha_source_at_end"] = tk.lvsha_source()
    shutil.rmtree(layout, ignore_errors=True)
    print(f"\n## Results: median (min .. max) of {len(runs)} runs, "
          f"{time.monotonic() - began:.0f} s in all\n")  # fmt: skip
    print(report(runs))
    for failure in failures:
        print(f"\nFAILED {failure}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": info, "runs": runs, "failures": failures}))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
