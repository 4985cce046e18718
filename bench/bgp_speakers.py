"""Time from each event at the speaker adapter to the router's kernel table, per speaker and router.

Run as root (it builds its own namespaces, named bs-*, deleted at exit):

    sudo .venv/bin/python bench/bgp_speakers.py --runs 5

For each router (BIRD 2, FRR) and director speaker (ExaBGP, BIRD) it runs
tests/netns/bgp_rig.py's rig and, `--runs` times per event, a fresh
adapter in a process of its own ("lvsha"), timing until the router's FIB
changes (polled every 5 ms):

* start: run() with the route already set, to the first route at the router;
* withdraw: set_routes([]);
* close: close(5), to the route gone (and close()'s own duration);
* kill -9: SIGKILL of "lvsha" (the helper's withdraw);
* SIGSTOP: a hung "lvsha" (the helper's liveness, 1 s: heartbeats every 1/3 s);
* restart: SIGKILL of the speaker, then run() again, to the route back.

Reference measured in the same run: `python -c pass` (an interpreter
start, which every helper costs), as the ratio of the start row.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "netns"))

from bgp_rig import LIVENESS, ROUTERS, SPEAKERS, VIP, Lvsha, Rig, rig_for
from lab import wait_for

EVENTS = ["start", "withdraw", "close", "kill -9", "SIGSTOP", "restart"]


def until(predicate: Callable[[], bool], limit: float = 30.0) -> float:
    started = time.perf_counter()
    while not predicate():
        if time.perf_counter() - started > limit:
            raise TimeoutError("the router did not follow")
        time.sleep(0.005)
    return time.perf_counter() - started


def one(rig: Rig, speaker: str, event: str, n: int) -> float:
    wait_for(rig.withdrawn, 30)
    lvsha = Lvsha(rig, speaker, f"{speaker}-{event.replace(' ', '')}-{n}")
    try:
        lvsha.ask(f"routes {VIP}/32")
        started = time.perf_counter()
        lvsha.ask("run")
        until(rig.announced)
        if event == "start":
            return time.perf_counter() - started
        time.sleep(0.5)  # settled: heartbeats running, session established
        if event == "withdraw":
            lvsha.ask("routes")
            return until(rig.withdrawn)
        if event == "close":
            started = time.perf_counter()
            lvsha.ask("close 5")
            until(rig.withdrawn)
            return time.perf_counter() - started
        if event == "kill -9":
            lvsha.proc.kill()
            return until(rig.withdrawn)
        if event == "SIGSTOP":
            os.kill(lvsha.proc.pid, signal.SIGSTOP)
            try:
                return until(rig.withdrawn)
            finally:
                os.kill(lvsha.proc.pid, signal.SIGCONT)
        os.kill(lvsha.status()["status"]["speaker_pid"], signal.SIGKILL)  # restart
        until(rig.withdrawn)
        wait_for(lambda: lvsha.status()["ended"] not in (None, "returned"), 10)
        lvsha.ask("run")
        return until(rig.announced)
    finally:
        if lvsha.proc.poll() is None:
            lvsha.proc.kill()
        lvsha.proc.wait(10)
        rig.kill_all_but_router()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    python = []
    for _ in range(args.runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        python.append(time.perf_counter() - started)
    ref = statistics.median(python)
    print(f"reference: python -c pass, median {ref * 1e3:.0f} ms; liveness {LIVENESS} s")
    print(f"{'router':<6} {'speaker':<7} {'event':<9} {'median ms':>9} {'max ms':>7} {'ratio':>6}")
    for router in ROUTERS:
        with rig_for(router) as rig:
            for speaker in SPEAKERS:
                for event in EVENTS:
                    xs = [one(rig, speaker, event, n) for n in range(args.runs)]
                    median = statistics.median(xs)
                    ratio = {"start": median / ref, "SIGSTOP": median / LIVENESS}.get(event)
                    shown = f"{ratio:>6.2f}" if ratio is not None else f"{'':>6}"
                    print(
                        f"{router:<6} {speaker:<7} {event:<9} {median * 1e3:>9.0f} "
                        f"{max(xs) * 1e3:>7.0f} {shown}",
                        flush=True,
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
