"""adapters/scripts.py with real processes: no shell, process-group kill, bounded output."""

from __future__ import annotations

import asyncio
import os
import pwd
from pathlib import Path

import pytest

from lvsha.adapters import scripts
from lvsha.adapters.scripts import ScriptRunner, credentials, read_track_file


async def run_one(
    runner: ScriptRunner,
    argv: tuple[str, ...],
    kill_after: float | None = None,
    user: str | None = None,
) -> int:
    done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    runner.start("t", argv, user, None, done.set_result)
    if kill_after is not None:
        await asyncio.sleep(kill_after)
        runner.kill("t")
    async with asyncio.timeout(10):
        return await done


def test_exit_codes_and_argv_without_a_shell(tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    async def main() -> None:
        runner = ScriptRunner()
        assert await run_one(runner, ("/bin/true",)) == 0
        assert await run_one(runner, ("/bin/sh", "-c", "exit 3")) == 3
        # a ; in an argument is an argument, not a command separator
        assert await run_one(runner, ("/bin/echo", f"x; touch {marker}")) == 0
        assert not marker.exists()
        assert await run_one(runner, ("/nonexistent/chk",)) == scripts.EXIT_CANNOT_START

    asyncio.run(main())


def test_kill_takes_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child"

    async def main() -> None:
        runner = ScriptRunner()
        argv = ("/bin/sh", "-c", f"sleep 60 & echo $! > {pidfile}; wait")
        me = pwd.getpwuid(os.geteuid()).pw_name  # the pid file is in our tmp_path
        code = await run_one(runner, argv, kill_after=0.5, user=me)
        assert code == -9
        child = int(pidfile.read_text())
        for _ in range(100):  # bounded: the grandchild dies with its group
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                return
            await asyncio.sleep(0.02)
        pytest.fail("the script's child survived the kill")

    asyncio.run(main())


def test_output_is_drained_and_bounded() -> None:
    async def main() -> None:
        runner = ScriptRunner(output_limit=100)
        # 1 MB of output: a script that fills its pipe must still finish
        argv = ("/bin/sh", "-c", "head -c 1000000 /dev/zero; exit 1")
        assert await run_one(runner, argv) == 1

    asyncio.run(main())


def test_never_root_unless_said() -> None:
    if os.geteuid() != 0:
        assert credentials(None, None) == scripts.Credentials(None, None)
        return
    nobody = pwd.getpwnam("nobody")
    assert credentials(None, None) == scripts.Credentials(nobody.pw_uid, nobody.pw_gid)
    assert credentials("root", None) == scripts.Credentials(None, None)
    with pytest.raises(KeyError):
        credentials("no-such-user-lvsha", None)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_a_script_runs_as_nobody_by_default(tmp_path: Path) -> None:
    async def main() -> None:
        runner = ScriptRunner()
        assert await run_one(runner, ("/bin/sh", "-c", 'test "$(id -u)" != 0')) == 0

    asyncio.run(main())


def test_track_file_reads_only_regular_files(tmp_path: Path) -> None:
    f = tmp_path / "maint"
    f.write_bytes(b"12\n" + b"x" * 1000)
    data = read_track_file(str(f))
    assert data is not None and data.startswith(b"12") and len(data) == 127
    assert read_track_file(str(tmp_path / "missing")) is None
    assert read_track_file(str(tmp_path)) is None  # a directory
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert read_track_file(str(fifo)) is None  # never blocks on a FIFO
    assert read_track_file("/dev/zero") is None
