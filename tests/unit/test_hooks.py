"""Notify hooks: keepalived's arguments, in order, bounded, never through a shell."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from lvsha.adapters.hooks import HookRun, HookRunner, hooks_for

RECORD = (
    "import os, sys; open(sys.argv[1], 'a').write(repr(sys.argv[2:]) + ' ' + "
    "os.environ['LVSHA_STATE'] + ' ' + os.environ['LVSHA_REASON'] + '\\n')"
)


def test_hooks_for_follows_keepalived() -> None:
    runs = hooks_for(("/bin/notify",), {"MASTER": ("/bin/m", "x")}, "VI_1", "MASTER", 100, "why")
    assert [r.argv for r in runs] == [
        ("/bin/m", "x"),
        ("/bin/notify", "INSTANCE", "VI_1", "MASTER", "100"),
    ]
    assert hooks_for((), {"MASTER": ("/bin/m",)}, "VI_1", "BACKUP", 100, "why") == []


def run_all(runner: HookRunner, runs: list[HookRun], timeout: float) -> None:
    async def go() -> None:
        runner.submit(runs)
        await runner.drain(timeout)
        await runner.close()

    asyncio.run(go())


def test_hooks_run_in_order_without_a_shell(tmp_path: Path) -> None:
    out = tmp_path / "out"
    marker = tmp_path / "injected"
    runner = HookRunner(timeout=10)
    runs = [
        HookRun(
            (sys.executable, "-c", RECORD, str(out), state, f"; touch {marker}"),
            "VI_1",
            state,
            100,
            f"reason {i}",
        )
        for i, state in enumerate(["BACKUP", "MASTER", "FAULT", "BACKUP"])
    ]
    run_all(runner, runs, timeout=20)
    lines = out.read_text().splitlines()
    assert lines == [
        f"['{state}', '; touch {marker}'] {state} reason {i}"
        for i, state in enumerate(["BACKUP", "MASTER", "FAULT", "BACKUP"])
    ]
    assert not marker.exists()  # the argument stayed an argument
    assert (runner.ran, runner.failed, runner.timed_out) == (4, 0, 0)


def test_a_hook_that_hangs_is_killed_at_its_timeout(tmp_path: Path) -> None:
    out = tmp_path / "out"
    runner = HookRunner(timeout=0.3)
    hang = HookRun(("sleep", "30"), "VI_1", "MASTER", 100, "r")
    after = HookRun((sys.executable, "-c", RECORD, str(out)), "VI_1", "BACKUP", 100, "next")
    started = time.monotonic()
    run_all(runner, [hang, after], timeout=20)
    assert time.monotonic() - started < 10
    assert runner.timed_out == 1 and runner.ran == 1
    assert out.read_text() == "[] BACKUP next\n"


def test_a_failing_or_missing_hook_is_counted(tmp_path: Path) -> None:
    runner = HookRunner(timeout=5)
    runs = [
        HookRun(("false",), "VI_1", "MASTER", 100, "r"),
        HookRun((str(tmp_path / "missing"),), "VI_1", "MASTER", 100, "r"),
    ]
    run_all(runner, runs, timeout=10)
    assert (runner.ran, runner.failed) == (1, 2)
