"""Time programming IPVS: lvsha's reconciler vs `ipvsadm-restore`, same work.

Run inside a kernel with IPVS (the UML guest), from the repository root:

    scripts/run-in-kernel --rwdir "$PWD" \\
        "$PWD/.venv/bin/python bench/ipvs_program.py --runs 5 --write docs/benchmarks-ipvs.md"

Scenarios, each from a known start and repeated `--runs` times (median shown):
* full: 1,000 services x 10 destinations into an empty table;
* one change: one destination's weight changes in that full table.
lvsha's time is a whole reconcile pass (dump, diff, apply), as the daemon
runs it; the split is shown too. ipvsadm-restore is given exactly the
commands needed and reads nothing back. It runs in the guest's own network
namespace and flushes the IPVS table there: run it in the throw-away guest only.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import structlog

from lvsha.adapters.ipvs import Ipvs, IpvsReconciler
from lvsha.core.desired import Destination, IpvsTable, Service, ServiceKey
from lvsha.core.reconcile import diff


def table(services: int, dests: int, bump: bool = False) -> IpvsTable:
    """Services on ports 80 and 443 of 192.0.2.x then 203.0.113.x; DR dests on the same port."""
    out = []
    for i in range(services):
        n, port = 1 + i // 2, (80, 443)[i % 2]
        address = f"192.0.2.{n}" if n < 255 else f"203.0.113.{n - 254}"
        key = ServiceKey("tcp", address, port)
        ds = tuple(Destination(f"198.51.100.{1 + j}", port, 1, "dr") for j in range(dests))
        out.append(Service(key, "rr", destinations=ds))
    t = IpvsTable(tuple(out))
    if bump:  # the middle service's first destination gets weight 5
        mid = t.services[services // 2]
        first, *rest = mid.destinations
        changed = replace(mid, destinations=(replace(first, weight=5), *rest))
        t = IpvsTable(tuple(changed if s.key == mid.key else s for s in t))
    return t


def restore_lines(t: IpvsTable) -> str:
    lines = []
    for s in t:
        vs = f"{s.key.address}:{s.key.port}"
        lines.append(f"-A -t {vs} -s {s.scheduler}")
        lines += [f"-a -t {vs} -r {d.address}:{d.port} -g -w {d.weight}" for d in s.destinations]
    return "\n".join(lines) + "\n"


def flush() -> None:
    """Start a scenario from an empty table (not timed)."""
    subprocess.run(["ipvsadm", "-C"], check=True)


def ipvsadm_restore(text: str, command: str = "ipvsadm-restore") -> float:
    """Time `ipvsadm-restore` (a wrapper: `ipvsadm -C` then `ipvsadm -R`) or `ipvsadm -R`."""
    start = time.perf_counter()
    subprocess.run(command.split(), input=text, text=True, check=True)
    return time.perf_counter() - start


async def lvsha_pass(desired: IpvsTable) -> dict[str, float]:
    async with Ipvs() as ipvs:
        t0 = time.perf_counter()
        observed = await ipvs.dump()
        t1 = time.perf_counter()
        ops = diff(desired, observed)
        t2 = time.perf_counter()
        await ipvs.apply(ops)
        t3 = time.perf_counter()
        check = await IpvsReconciler(ipvs).sync(desired)
        assert check == [], "re-plan after apply must be empty"
    return {"total": t3 - t0, "dump": t1 - t0, "diff": t2 - t1, "apply": t3 - t2, "ops": len(ops)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--dests", type=int, default=10)
    ap.add_argument("--write", help="write the results as Markdown to this file")
    args = ap.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    full, bumped = table(args.services, args.dests), table(args.services, args.dests, True)
    full_text = restore_lines(full)
    s_mid = bumped.services[args.services // 2]
    d0 = s_mid.destinations[0]
    one_text = (
        f"-e -t {s_mid.key.address}:{s_mid.key.port} -r {d0.address}:{d0.port} -g -w {d0.weight}\n"
    )
    results: dict[str, list[dict[str, float]]] = {
        "lvsha full": [],
        "lvsha one": [],
        "restore full": [],
        "restore one": [],
        "R one": [],
    }
    try:
        for run in range(args.runs):
            flush()
            results["lvsha full"].append(asyncio.run(lvsha_pass(full)))
            results["lvsha one"].append(asyncio.run(lvsha_pass(bumped)))
            flush()
            results["restore full"].append({"total": ipvsadm_restore(full_text)})
            results["restore one"].append({"total": ipvsadm_restore(restore_lines(bumped))})
            results["R one"].append({"total": ipvsadm_restore(one_text, "ipvsadm -R")})
            print(f"run {run + 1}/{args.runs} done", file=sys.stderr, flush=True)
    finally:
        flush()

    def med(name: str, part: str = "total") -> float:
        return statistics.median(r[part] for r in results[name])

    def runs(name: str) -> str:
        return " / ".join(f"{r['total']:.3f}" for r in results[name])

    n = args.services * (args.dests + 1)
    report = f"""# IPVS programming benchmark

{args.services:,} TCP services x {args.dests} DR destinations ({n:,} netlink
operations from empty), then one destination's weight changed. Median of
{args.runs} runs, in seconds; every run starts from an empty table
(`ipvsadm -C`, not timed).

| scenario | lvsha pass (dump + diff + apply) | `ipvsadm-restore` | `ipvsadm -R`, one `-e` line |
|---|---|---|---|
| full table from empty | {med("lvsha full"):.3f} | {med("restore full"):.3f} | |
| one destination changed | {med("lvsha one"):.3f} | {med("restore one"):.3f} | {med("R one"):.3f} |

`ipvsadm-restore` is a shell wrapper that runs `ipvsadm -C` (flush) and then
`ipvsadm -R`: to change one destination with it, the operator restores the
whole edited table, and the flush drops every service for a moment (their
connections lose their destinations, counters restart). That is the middle
column. The last column is the incremental alternative an operator has to
write by hand: `ipvsadm -R` fed exactly the one `-e` command, reading
nothing back.

lvsha's split (medians): from empty, dump {med("lvsha full", "dump"):.3f}, diff
{med("lvsha full", "diff"):.3f}, apply {med("lvsha full", "apply"):.3f}
({int(med("lvsha full", "ops")):,} operations); one change, dump
{med("lvsha one", "dump"):.3f} (the whole table: one request for the services,
then one per service for its destinations), diff {med("lvsha one", "diff"):.3f},
apply {med("lvsha one", "apply"):.3f} ({int(med("lvsha one", "ops"))} operation).
lvsha reads the table on every pass because it must not trust its memory of
the kernel (drift repair, adoption); the one-change pass is almost all dump.
After each lvsha pass the benchmark re-plans and checks the plan is empty
(not timed).

All runs (total seconds): lvsha full {runs("lvsha full")}; lvsha one
{runs("lvsha one")}; ipvsadm-restore full {runs("restore full")};
ipvsadm-restore one {runs("restore one")}; ipvsadm -R one {runs("R one")}.

Environment: kernel {platform.release()} under User-Mode Linux (one CPU,
every syscall trapped through ptrace, process start-up tens of ms), Python
{platform.python_version()}. Absolute numbers are slower than on a real
director: compare the columns, not the absolutes.

Command (from the repository root, on the host; the guest is thrown away,
so flushing its IPVS table harms nothing):

    scripts/run-in-kernel --rwdir "$PWD" \\
        "$PWD/.venv/bin/python bench/ipvs_program.py --runs {args.runs} \\
        --write docs/benchmarks-ipvs.md"
"""
    print(report)
    if args.write:
        Path(args.write).write_text(report)


if __name__ == "__main__":
    main()
