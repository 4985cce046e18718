"""Wall time of `lvsha status` from the shell, against references measured in the same run.

Run as root (it starts one director in a network namespace):

    sudo .venv/bin/python bench/status_latency.py --runs 30

References: the bare interpreter (`python -c pass`), the same interpreter
importing pyroute2 (what status would cost if it imported the daemon's
stack), and `lvsha --version` (the CLI's own start-up). Medians of `--runs`
runs, interleaved so that machine noise hits every command alike.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from lab import LVSHA, ROOT, instance_toml, lab


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, cwd=ROOT, timeout=30)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with lab() as the_lab:
        director = the_lab.start(the_lab.host("d1", "192.0.2.11"), instance_toml(100))
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "python -c 'import pyroute2'": [sys.executable, "-c", "import pyroute2"],
            "lvsha --version": [*LVSHA, "--version"],
            "lvsha status": [*LVSHA, "status", "--socket", str(director.socket)],
            "lvsha status --json": [*LVSHA, "status", "--json", "--socket", str(director.socket)],
        }
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, argv in commands.items():
                samples[name].append(timed(argv))
    base = statistics.median(samples["python -c pass"])
    print(f"{'command':<30} {'median ms':>10} {'min ms':>8} {'max ms':>8} {'x python':>9}")
    for name, values in samples.items():
        median = statistics.median(values)
        print(
            f"{name:<30} {median * 1e3:>10.1f} {min(values) * 1e3:>8.1f} "
            f"{max(values) * 1e3:>8.1f} {median / base:>9.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
