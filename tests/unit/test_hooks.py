"""Notify hooks: keepalived's arguments, in order, bounded, never through a shell."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lvsha.adapters.hooks import NOT_INHERITED, HookRun, HookRunner, hooks_for

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


# -- issue 10 #5 and #11: a hook can never take the runner, or the shutdown, with it --

ENV_DUMP = "import json, os, sys; open(sys.argv[1], 'w').write(json.dumps(dict(os.environ)))"


def test_a_nul_byte_in_argv_or_instance_is_a_failed_hook_not_a_dead_runner(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    runner = HookRunner(timeout=10)
    runs = [
        HookRun(("/bin/true\0rm",), "VI_1", "MASTER", 100, "r"),  # NUL in argv
        HookRun(("/bin/true",), "VI\0_1", "MASTER", 100, "r"),  # NUL in LVSHA_INSTANCE
        HookRun((sys.executable, "-c", RECORD, str(out)), "VI_1", "BACKUP", 100, "after"),
    ]

    async def go() -> bool:
        runner.submit(runs)
        done = await runner.drain(20)
        await runner.close()  # must not raise
        return done

    assert asyncio.run(go())
    assert (runner.ran, runner.failed) == (1, 2)
    assert out.read_text() == "[] BACKUP after\n"  # the runner lived on


def test_close_never_raises_and_kills_what_runs(tmp_path: Path) -> None:
    runner = HookRunner(timeout=30)
    runs = [  # an argv no other process on a shared machine has ("sleep 30" was seen)
        HookRun(("sleep", "29.0417"), "VI_1", "STOP", 100, "r"),
        HookRun(("/bin/true",), "VI_1", "STOP", 100, "r"),
    ]

    async def go() -> bool:
        runner.submit(runs)
        done = await runner.drain(0.3)
        await runner.close()
        return done

    started = time.monotonic()
    assert asyncio.run(go()) is False
    assert time.monotonic() - started < 10
    assert runner.dropped == 1  # the queued one, counted and logged
    assert (
        "sleep 29.0417"
        not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    )


def test_hooks_do_not_inherit_systemds_plumbing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NOTIFY_SOCKET", "WATCHDOG_PID", "WATCHDOG_USEC", "LISTEN_FDS", "LISTEN_PID"):
        monkeypatch.setenv(name, "/run/systemd/notify" if name == "NOTIFY_SOCKET" else "1")
    monkeypatch.setenv("LVSHA_TEST_KEPT", "yes")
    out = tmp_path / "env.json"
    runner = HookRunner(timeout=10)
    run_all(
        runner, [HookRun((sys.executable, "-c", ENV_DUMP, str(out)), "VI_1", "MASTER", 1, "r")], 20
    )
    env = json.loads(out.read_text())
    assert not {k for k in env if k in NOT_INHERITED}
    assert env["LVSHA_TEST_KEPT"] == "yes" and env["LVSHA_STATE"] == "MASTER"


BOUNDED = """
import asyncio, resource, sys
from lvsha.adapters.hooks import HookRun, HookRunner
loud = ("import os, sys\\nchunk = b'e' * 65536\\n"
        "for _ in range(%d): os.write(2, chunk); os.write(1, chunk)\\nsys.exit(3)")
async def go():
    r = HookRunner(timeout=60)
    r.submit([HookRun((sys.executable, "-c", loud % int(sys.argv[1])), "VI_1", "MASTER", 1, "r")])
    await r.drain(60)
    await r.close()
    return r
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
r = asyncio.run(go())
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(r.ran, r.failed, (after - before) // 1024)
"""


def test_a_loud_hook_is_read_to_its_end_but_not_kept(tmp_path: Path) -> None:
    """256 MiB on each of stdout and stderr: the runner's memory does not follow."""
    out = subprocess.run(
        [sys.executable, "-c", BOUNDED, "4096"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    ran, failed, grown_mib = (int(x) for x in out.stdout.splitlines()[-1].split())
    assert (ran, failed) == (1, 1)  # ran to its end (exit 3), it was not killed by a full pipe
    assert grown_mib < 64, f"the runner grew {grown_mib} MiB reading the hook's output"
    assert "more bytes not kept" in out.stdout + out.stderr
