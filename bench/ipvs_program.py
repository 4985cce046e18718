"""Time programming IPVS: lvsha's IpvsSync vs `ipvsadm-restore`, same work, same run.

Run inside a kernel with IPVS (the UML guest), from the repository root:

    scripts/run-in-kernel --rwdir "$PWD" \\
        "$PWD/.venv/bin/python bench/ipvs_program.py --runs 5 --write docs/benchmarks-ipvs.md"

Scenarios, each from a known start and repeated `--runs` times (median shown):
* full: 1,000 services x 10 destinations into an empty table, a fresh
  IpvsSync's first pass (open, verify dump, diff, batched apply);
* one change: one destination's weight changes in that full table, a pass
  of the same IpvsSync (planned against its verified view, no dump);
* health: a real server's check fails at 10,000 destinations; from the
  moment the health map changes, through desired_ipvs() of the whole config
  and IpvsSync.apply(), to the kernel's ACK of the delete (many samples);
* verify: the CPU time of the periodic full dump (thread CPU, user + system),
  as a share of one core at the verify interval.
ipvsadm-restore is given exactly the commands needed and reads nothing back.
It runs in the guest's own network namespace and flushes the IPVS table
there: run it in the throw-away guest only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from lvsha import logs
from lvsha.adapters.checker import Report
from lvsha.adapters.ipvs import Ipvs
from lvsha.config import VirtualServerConfig, parse_config
from lvsha.core.desired import (
    Destination,
    DestKey,
    IpvsTable,
    Service,
    ServiceKey,
    desired_ipvs,
    service_key,
)
from lvsha.core.health import apply_health
from lvsha.core.reconcile import AddDest, DeleteDest, diff
from lvsha.runtime.health import HealthChecker
from lvsha.runtime.ipvs_loop import IpvsLoop
from lvsha.runtime.ipvs_sync import VERIFY_CPU_SHARE, IpvsKernel, IpvsSync, verify_interval_for
from lvsha.runtime.rs_events import RealServerEvents

KICK_INTERVAL = 10.0  # the daemon's periodic pass (lvsha/runtime/ipvs_loop.py RESYNC)
HEALTH_SAMPLES = 20  # failed checks per run
VERIFY_SAMPLES = 20  # failed checks during a periodic verify: ~1 s each in the guest


def address_of(i: int) -> tuple[str, int]:
    n, port = 1 + i // 2, (80, 443)[i % 2]
    return (f"192.0.2.{n}" if n < 255 else f"203.0.113.{n - 254}"), port


def table(services: int, dests: int, bump: bool = False) -> IpvsTable:
    """Services on ports 80 and 443 of 192.0.2.x then 203.0.113.x; DR dests on the same port."""
    out = []
    for i in range(services):
        address, port = address_of(i)
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


def config(services: int, dests: int) -> tuple[VirtualServerConfig, ...]:
    """The same table as a real config, with a TCP check on every real server."""
    text = []
    for i in range(services):
        address, port = address_of(i)
        text.append(
            f'[[virtual_server]]\naddress = "{address}"\nport = {port}\nscheduler = "rr"\n'
            f'forwarding = "dr"\n'
        )
        for j in range(dests):
            text.append(
                f'[[virtual_server.real_server]]\naddress = "198.51.100.{1 + j}"\n'
                f"port = {port}\ntcp_check = {{ connect_timeout = 3 }}\n"
            )
    return parse_config("".join(text)).virtual_servers


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


async def replan(desired: IpvsTable) -> None:
    """The reconcile invariant on the real kernel, checked after each timed pass (not timed)."""
    async with Ipvs() as ipvs:
        left = diff(desired, await ipvs.dump())
    assert left == [], f"re-plan after apply must be empty: {left[:3]}"


async def lvsha_full_and_one(full: IpvsTable, bumped: IpvsTable) -> dict[str, float]:
    sync = IpvsSync()
    sync.start()
    try:
        t0 = time.perf_counter()
        await sync.apply(full, None)
        t1 = time.perf_counter()
        dump = sync.last_verify_seconds or 0.0
        await replan(full)
        t2 = time.perf_counter()
        done = await sync.apply(bumped, None)
        t3 = time.perf_counter()
        assert len(done) == 1 and sync.verifies == 1, (done, sync.verifies)
        await replan(bumped)
    finally:
        await sync.close([])
    return {"full": t1 - t0, "full dump": dump, "one": t3 - t2}


async def lvsha_health(
    vss: tuple[VirtualServerConfig, ...],
    samples: int,
    daemon_path: bool = False,
    freeze: bool = False,
) -> list[float]:
    """Failed check -> desired_ipvs -> IpvsSync.apply -> ACK, for `samples` real servers.

    `daemon_path`: derive the table as lvsha/runtime/ipvs_loop.py does,
    desired_ipvs(apply_health(...)), instead of desired_ipvs(config, health).
    `freeze`: gc.freeze() once the first pass is done, so that a full
    collection no longer walks the config and the table (the long tail).
    """
    health = {
        (service_key(vs), DestKey(r.address, r.port)): True for vs in vss for r in vs.real_servers
    }

    def desired() -> IpvsTable:
        if daemon_path:
            return desired_ipvs(apply_health(vss, health, {}))
        return desired_ipvs(vss, health)

    keys = list(health)
    sync = IpvsSync(verify_interval=1e9)  # the verify is measured on its own
    sync.start()
    out = []
    try:
        await sync.apply(desired(), None)
        if freeze:
            gc.freeze()
        step = max(1, len(keys) // samples)
        for key in keys[::step][:samples]:
            t0 = time.perf_counter()
            health[key] = False
            done = await sync.apply(desired(), None)
            out.append(time.perf_counter() - t0)
            assert done == [f"delete dest {key[1]} from {key[0]}"], done
            health[key] = True  # back up again (not timed)
            await sync.apply(desired(), None)
        await replan(desired())
    finally:
        await sync.close([])
        gc.unfreeze()
    return out


async def daemon_health(
    vss: tuple[VirtualServerConfig, ...],
    samples: int,
    kernel: Callable[[], IpvsKernel] = Ipvs,
    freeze: bool = True,
    during_verify: bool = False,
) -> list[float]:
    """Failed check -> kernel ACK through the daemon's own objects, for `samples` reals.

    The worker's report enters HealthChecker as lvsha/runtime/health.py's
    pipe reader hands it over (`_report` then `_flush_change`); on_change is
    Daemon._health_changed (kick the IPVS loop, then the notify_up/down
    events); the supervised IpvsLoop.loop() wakes, derives the table and
    awaits IpvsSync.apply() on the IPVS thread. The sample ends when that
    pass returns with the delete acknowledged. `gc.freeze()` after the first
    pass, as the daemon does after start-up.

    `during_verify`: each failed check comes while the periodic verify
    dumps the whole table beside the passes (a whole-table pass started
    it just before); samples where the dump had ended before the delete
    was acknowledged are not counted (none were, in the runs written up).
    """
    sync = IpvsSync(verify_interval=0.01 if during_verify else 1e9, kernel=kernel)
    passed: asyncio.Queue[tuple[float, list[str]]] = asyncio.Queue()
    real_apply = sync.apply
    in_flight = 0  # passes begun and not yet returned

    async def apply(*args: Any, **kwargs: Any) -> list[str]:
        nonlocal in_flight
        in_flight += 1
        try:
            done = await real_apply(*args, **kwargs)
        finally:
            in_flight -= 1
        passed.put_nowait((time.perf_counter(), done))
        return done

    sync.apply = apply  # type: ignore[method-assign]
    events = RealServerEvents(lambda runs: None, lambda: None, lambda: "bench")

    def health_changed() -> None:  # Daemon._health_changed
        services = checker.changed_services()
        ipvs_loop.kick(services)
        events.changed(vss, checker.health(), services)

    checker = HealthChecker(vss, health_changed, isolate=False)  # not started: we are the worker
    ipvs_loop = IpvsLoop(sync, lambda: checker, lambda: vss, lambda: None)
    sync.start()
    await ipvs_loop.run_pass()
    passed.get_nowait()  # the start-up pass
    events.changed(vss, checker.health())  # the daemon's baseline
    task = asyncio.create_task(ipvs_loop.loop())
    if freeze:
        gc.freeze()
    keys = [t.key for t in checker._targets]
    step = max(1, len(keys) // samples)
    out = []

    async def report(position: int, healthy: bool) -> tuple[float, list[str]]:
        now = time.time()
        reason = "bench" if not healthy else "bench up"
        checker._report(Report(position, healthy, healthy, 0.001, now, now, "bench", reason))
        checker._flush_change()
        for _ in range(100):  # the health pass: not a whole-table one that had nothing to do
            t, done = await asyncio.wait_for(passed.get(), 10)
            if done:
                return t, done
        raise RuntimeError("no pass carried the health change")

    async def start_a_verify() -> None:
        """Until a verify dumps beside and no pass is under way (a failed check then)."""
        for _ in range(100):
            if sync.verifying and not in_flight:
                return
            ipvs_loop.kick()  # a whole-table pass: it starts the due verify, or takes one
            await asyncio.wait_for(passed.get(), 10)
        raise RuntimeError("no verify started")

    try:
        for position in range(0, len(keys), step)[:samples]:
            skey, dkey = keys[position]
            if during_verify:
                await start_a_verify()
            t0 = time.perf_counter()
            t1, done = await report(position, False)
            assert done == [f"delete dest {dkey} from {skey}"], done
            if not during_verify or sync.verifying:
                out.append(t1 - t0)
            await report(position, True)  # back up again (not timed)
            if during_verify:
                await sync.verified_beside()
            await asyncio.sleep(0.005)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await sync.close([])
        gc.unfreeze()
    return out


async def bare_netlink(full: IpvsTable, samples: int) -> list[float]:
    """The reference: one IPVS_CMD_DEL_DEST sent and acknowledged, nothing else.

    The same adapter call IpvsSync ends in (adapters/ipvs.py Ipvs.apply, one
    request in one sendmsg), from a coroutine on the main loop, no lvsha
    state around it; measured in the same guest in the same run, so its
    tail is the guest's scheduling, not lvsha's work.
    """
    async with Ipvs() as ipvs:
        await ipvs.apply(diff(full, await ipvs.dump()))
        gc.freeze()
        services = full.services[:: max(1, len(full) // samples)][:samples]
        out = []
        try:
            for svc in services:
                dest = svc.destinations[0]
                t0 = time.perf_counter()
                await ipvs.apply([DeleteDest(svc.key, dest.key)])
                out.append(time.perf_counter() - t0)
                await ipvs.apply([AddDest(svc.key, dest)])  # back (not timed)
                await asyncio.sleep(0.005)
        finally:
            gc.unfreeze()
    return out


async def verify_cost(full: IpvsTable, vss: tuple[VirtualServerConfig, ...]) -> dict[str, float]:
    """A verify dump and a no-change periodic pass: CPU time of this thread, and wall."""
    async with Ipvs() as ipvs:
        c0, w0 = time.thread_time(), time.perf_counter()
        got = await ipvs.dump()
        cpu, wall = time.thread_time() - c0, time.perf_counter() - w0
    assert got == full
    health = {
        (service_key(vs), DestKey(r.address, r.port)): True for vs in vss for r in vs.real_servers
    }
    sync = IpvsSync(verify_interval=1e9)
    sync.start()
    try:
        await sync.apply(desired_ipvs(vss, health), None)
        c0 = time.process_time()  # both threads: the daemon's and the IPVS one
        assert await sync.apply(desired_ipvs(vss, health), None) == []
        kick = time.process_time() - c0
    finally:
        await sync.close([])
    return {"verify cpu": cpu, "verify wall": wall, "kick cpu": kick}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--dests", type=int, default=10)
    ap.add_argument("--write", help="write the results as Markdown to this file")
    ap.add_argument(
        "--health-only",
        action="store_true",
        help="only the failed-check rows (the daemon path and its references)",
    )
    args = ap.parse_args()
    logs.configure("keyvalue", logs.WARNING)

    full, bumped = table(args.services, args.dests), table(args.services, args.dests, True)
    vss = config(args.services, args.dests)
    assert desired_ipvs(vss) == full
    full_text = restore_lines(full)
    s_mid = bumped.services[args.services // 2]
    d0 = s_mid.destinations[0]
    one_text = (
        f"-e -t {s_mid.key.address}:{s_mid.key.port} -r {d0.address}:{d0.port} -g -w {d0.weight}\n"
    )
    r: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        r.setdefault(name, []).append(value)

    try:
        for run in range(args.runs):
            if args.health_only:
                flush()
                for sample in asyncio.run(daemon_health(vss, HEALTH_SAMPLES)):
                    add("health via daemon", sample)
                for sample in asyncio.run(daemon_health(vss, VERIFY_SAMPLES, during_verify=True)):
                    add("health during verify", sample)
                for sample in asyncio.run(bare_netlink(full, HEALTH_SAMPLES)):
                    add("bare netlink edit", sample)
                print(f"run {run + 1}/{args.runs} done", file=sys.stderr, flush=True)
                continue
            flush()
            for name, value in asyncio.run(lvsha_full_and_one(full, bumped)).items():
                add(name, value)
            flush()
            add("restore full", ipvsadm_restore(full_text))
            add("restore one", ipvsadm_restore(restore_lines(bumped)))
            add("R one", ipvsadm_restore(one_text, "ipvsadm -R"))
            flush()
            for sample in asyncio.run(lvsha_health(vss, HEALTH_SAMPLES)):
                add("health", sample)
            for sample in asyncio.run(lvsha_health(vss, HEALTH_SAMPLES, freeze=True)):
                add("health frozen", sample)
            for sample in asyncio.run(lvsha_health(vss, HEALTH_SAMPLES, daemon_path=True)):
                add("health daemon", sample)
            flush()
            for sample in asyncio.run(daemon_health(vss, HEALTH_SAMPLES)):
                add("health via daemon", sample)
            for sample in asyncio.run(daemon_health(vss, VERIFY_SAMPLES, during_verify=True)):
                add("health during verify", sample)
            for sample in asyncio.run(bare_netlink(full, HEALTH_SAMPLES)):
                add("bare netlink edit", sample)
            for name, value in asyncio.run(verify_cost(full, vss)).items():
                add(name, value)
            print(f"run {run + 1}/{args.runs} done", file=sys.stderr, flush=True)
    finally:
        flush()
    report = render_health(r) if args.health_only else render(args, r)
    print(report)
    if args.write:
        Path(args.write).parent.mkdir(parents=True, exist_ok=True)
        Path(args.write).write_text(report)


def render_health(r: dict[str, list[float]]) -> str:
    lines = []
    for name, values in r.items():
        ms = sorted(v * 1000 for v in values)
        lines.append(
            f"{name}: median {statistics.median(ms):.1f} ms, max {ms[-1]:.1f} ms, "
            f"{len(ms)} samples: " + " ".join(f"{v:.1f}" for v in ms)
        )
    return "\n".join(lines)


def render(args: argparse.Namespace, r: dict[str, list[float]]) -> str:
    def med(name: str) -> float:
        return statistics.median(r[name])

    def ms(name: str) -> str:
        return f"{med(name) * 1000:.1f}"

    def runs(name: str, scale: float = 1.0, fmt: str = ".3f") -> str:
        return " / ".join(f"{v * scale:{fmt}}" for v in r[name])

    n = args.services * (args.dests + 1)
    dests = args.services * args.dests
    interval = verify_interval_for(med("verify cpu"))
    verify_share = med("verify cpu") / interval * 100
    kick_share = med("kick cpu") / KICK_INTERVAL * 100
    full_ratio = med("full") / med("restore full")
    one_ratio = med("one") / med("R one")
    rows = "\n".join(
        (
            f"| full table from empty | {med('full'):.3f} s | {med('restore full'):.3f} s | "
            f"| at most half of ipvsadm-restore: {full_ratio:.2f}x |",
            f"| one destination changed | {ms('one')} ms | {med('restore one'):.3f} s "
            f"| {ms('R one')} ms | within 2x of `ipvsadm -R`: {one_ratio:.2f}x |",
            f"| failed check to destination gone, {dests:,} destinations, through the daemon "
            f"| median {ms('health via daemon')} ms, max {max(r['health via daemon']) * 1000:.1f}"
            " ms | | | under 50 ms |",
            f"| the same, while the periodic verify dumps the whole table "
            f"| median {ms('health during verify')} ms, "
            f"max {max(r['health during verify']) * 1000:.1f} ms | | | under 50 ms |",
            f"| reference, same run: one bare `IPVS_CMD_DEL_DEST` and its ACK "
            f"| median {ms('bare netlink edit')} ms, "
            f"max {max(r['bare netlink edit']) * 1000:.1f} ms | | | |",
            f"| the pass alone, whole-table `desired_ipvs()` + `IpvsSync.apply()` "
            f"| median {ms('health')} ms, max {max(r['health']) * 1000:.1f} ms | | | |",
            f"| the same, `gc.freeze()` after start-up "
            f"| median {ms('health frozen')} ms, max {max(r['health frozen']) * 1000:.1f} ms "
            "| | | under 50 ms |",
            f"| the same, `desired_ipvs(apply_health(...))` "
            f"| median {ms('health daemon')} ms, max {max(r['health daemon']) * 1000:.1f} ms "
            "| | | |",
            f"| periodic verify (full dump), CPU | {med('verify cpu'):.3f} s every "
            f"{interval:.0f} s = {verify_share:.2f} % of a core | | | under 2 % |",
        )
    )
    return f"""# IPVS programming benchmark

{args.services:,} TCP services x {args.dests} DR destinations ({n:,} netlink
operations from empty), then one destination's weight changed, then real
servers failing one at a time. Median of {args.runs} runs; every run starts
from an empty table (`ipvsadm -C`, not timed). lvsha is measured through
`IpvsSync.apply()`, the call the daemon makes, on its IPVS thread.

| scenario | lvsha | `ipvsadm-restore` | `ipvsadm -R`, one `-e` line | goal |
|---|---|---|---|---|
{rows}

* **Full table:** a fresh IpvsSync's first pass: open the sockets, the
  start-up verify (a dump of the empty table), the diff, and {n:,}
  operations in batches of up to 2,048 requests per `sendmsg`, each
  acknowledged and matched by sequence number. The re-plan after it, on a
  fresh dump, is checked empty (not timed).
* **One change:** the same IpvsSync's next pass, planned against its
  verified view: a diff of the {args.services:,} services and one
  `IPVS_CMD_SET_DEST`, no dump. `ipvsadm -R` has to be started as a process
  (tens of ms under UML); `ipvsadm-restore` flushes and restores the whole
  table, dropping every service for a moment.
* **Failed check, through the daemon:** {HEALTH_SAMPLES} real servers per
  run, spread over the table, each failed in turn (and restored, not timed).
  The worker's report enters the real HealthChecker as its pipe reader hands
  it over; on_change is Daemon._health_changed (kick the IPVS loop with the
  service the batch touched, then the notify_up/down events of that
  service); the supervised IpvsLoop re-derives that one service, replaces it
  in the table it derived last, and IpvsSync plans and sends only it; the
  sample ends when the pass returns with the kernel's ACK of the delete.
  {len(r["health via daemon"])} samples. The reference row, measured in
  the same guest in the same run, is the bare adapter call the pass ends in
  (one request, one ACK, no lvsha state).
* **While the periodic verify dumps:** the same path, {VERIFY_SAMPLES} real
  servers per run, each failed while a whole-table pass's verify is dumping
  all {dests:,} destinations beside the passes (started just before, no
  pass under way); only samples whose delete was acknowledged before the
  dump ended count ({len(r["health during verify"])} samples). Before
  the verify dumped beside the passes, such a change waited for the rest
  of the dump (0.5-1.1 s here).
* **The pass alone** (the rows before the incremental path): from the moment the
  health map changes, `desired_ipvs()` over the whole config ({dests:,} real
  servers), `IpvsSync.apply()` (diff against the view, one
  `IPVS_CMD_DEL_DEST`), to the kernel's ACK. {len(r["health"])} samples.
  The next row calls `gc.freeze()` once after the first pass, as a daemon
  can after loading its config, so that Python's full collections no longer
  walk the config and the tables (up to 175 ms measured on the host for one
  full collection at this size). The maxima of both rows also carry the
  host's scheduling: the UML guest is one process on a 2-core machine
  shared with other builds, and a guest that is descheduled for a moment
  shows it as a slow sample.
  The row after it derives the whole table through `core.health.apply_health()`,
  as the daemon's whole-table passes (start, reload, resync) do.
* **Verify:** one full dump of the {dests:,}-destination table (a request
  for the services, then the services' destination dumps,
  one after the other): CPU {med("verify cpu"):.3f} s (thread CPU, user +
  system), wall {med("verify wall"):.3f} s. It runs every
  {interval:.0f} s: IpvsSync sets the interval from the CPU the last dump took,
  so that verifying costs {VERIFY_CPU_SHARE * 100:.0f} % of a core on average
  (between 10 s and 5 min). The daemon's periodic {KICK_INTERVAL:.0f} s pass
  with nothing to change costs {med("kick cpu") * 1000:.1f} ms of CPU
  (`desired_ipvs()` + diff, no netlink): {kick_share:.2f} % of a core.

All runs: lvsha full {runs("full")} s (its verify dump of the empty table
{runs("full dump", 1000, ".1f")} ms); lvsha one {runs("one", 1000, ".1f")} ms;
ipvsadm-restore full {runs("restore full")} s; ipvsadm-restore one
{runs("restore one")} s; ipvsadm -R one {runs("R one", 1000, ".1f")} ms;
verify CPU {runs("verify cpu")} s, wall {runs("verify wall")} s. Failed
check through the daemon, ms, sorted: {
        " ".join(f"{v * 1000:.1f}" for v in sorted(r["health via daemon"]))
    }; the pass alone: {" ".join(f"{v * 1000:.1f}" for v in sorted(r["health"]))};
after `gc.freeze()`: {" ".join(f"{v * 1000:.1f}" for v in sorted(r["health frozen"]))}.

## Before (batched netlink and the verified view did not exist yet)

Same guest, same scenarios, `bench/ipvs_program.py --runs 5` on the earlier
code (one request at a time through pyroute2, a full dump on every pass):

| scenario | lvsha pass (dump + diff + apply) | `ipvsadm-restore` | `ipvsadm -R`, one `-e` line |
|---|---|---|---|
| full table from empty | 8.191 | 4.879 | |
| one destination changed | 2.331 | 6.045 | 0.112 |

The one-change pass was almost all dump (2.310 s); every health change paid
it, and the 10 s resync kept the guest's CPU busy about a quarter of the time.

Environment: kernel {platform.release()} under User-Mode Linux (one CPU,
every syscall trapped through ptrace, process start-up tens of ms), Python
{platform.python_version()}, on a 2-core host shared with other work.
Absolute numbers are slower than on a real director: compare the columns,
not the absolutes.

Command (from the repository root, on the host; the guest is thrown away,
so flushing its IPVS table harms nothing):

    scripts/run-in-kernel --rwdir "$PWD" \\
        "$PWD/.venv/bin/python bench/ipvs_program.py --runs {args.runs} \\
        --write docs/benchmarks-ipvs.md"
"""


if __name__ == "__main__":
    main()
