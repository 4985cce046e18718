"""HealthChecker against real servers on 127.0.0.1, in a worker process and inline.

A server is a separate process killed with SIGKILL and started again on the
same port. Every wait polls with a bounded deadline; the bounds asserted are
the documented ones: out within `fall x delay_loop + connect_timeout` (the
connection is refused at once, retry = 0), back within `connect_timeout +
rise x delay_loop`, and not before `rise` checks.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from lvsha.config import Config, parse_config
from lvsha.core.desired import DestKey, ServiceKey, desired_ipvs
from lvsha.runtime.health import HealthChecker

LOCAL = "127.0.0.1"
SERVICE = ServiceKey("tcp", "192.0.2.84", 80)
DELAY_LOOP = 0.25
TIMEOUT = 0.5

SERVER = """
import socket, sys
port, status = int(sys.argv[1]), sys.argv[2]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(128)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.settimeout(1)
    try:
        data = b""
        while b"\\r\\n\\r\\n" not in data:
            more = c.recv(4096)
            if not more:
                break
            data += more
        if data:
            c.sendall(("HTTP/1.0 %s X\\r\\nContent-Length: 2\\r\\n\\r\\nok" % status).encode())
    except OSError:
        pass
    c.close()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOCAL, 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def server(port: int, status: int = 200) -> Iterator[subprocess.Popen[str]]:
    """An HTTP (so also TCP) server in its own process; killed with SIGKILL on exit."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port), str(status)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        yield proc
    finally:
        proc.kill()
        proc.wait()


def config(*reals: str, service: str = "", delay_loop: float = DELAY_LOOP) -> Config:
    text = f"""
[[virtual_server]]
address = "{SERVICE.address}"
port = 80
delay_loop = {delay_loop}
{service}
"""
    for body in reals:
        text += f"[[virtual_server.real_server]]\naddress = '{LOCAL}'\n{body}\n"
    return parse_config(text)


def tcp(port: int, extra: str = "") -> str:
    check = f"tcp_check = {{ connect_timeout = {TIMEOUT} }}"
    return f"port = {port}\nwarmup = 0\nretry = 0\n{check}\n{extra}"


async def until(condition: Callable[[], bool], timeout: float) -> float:
    """Poll `condition` until true; return the seconds it took; fail at `timeout`."""
    start = time.monotonic()
    for _ in range(int(timeout / 0.005) + 1):
        if condition():
            return time.monotonic() - start
        await asyncio.sleep(0.005)
    raise AssertionError(f"not true within {timeout} s")


@asynccontextmanager
async def checking(cfg: Config, isolate: bool) -> AsyncIterator[tuple[HealthChecker, list[Any]]]:
    changes: list[Any] = []
    checker = HealthChecker(
        cfg.virtual_servers, lambda: changes.append(checker.health()), isolate=isolate
    )
    checker.start()
    try:
        yield checker, changes
    finally:
        checker.stop()
        await checker.wait_stopped()


def in_ipvs(checker: HealthChecker, port: int) -> bool:
    (service,) = desired_ipvs(checker.effective_virtual_servers())
    return any(d.port == port and d.weight > 0 for d in service.destinations)


def checked(checker: HealthChecker, port: int) -> bool:
    st = checker.status()[(SERVICE, DestKey(LOCAL, port))]
    return st.checked_at is not None


@pytest.mark.parametrize("isolate", [True, False], ids=["worker", "inline"])
def test_killed_server_leaves_and_returns_after_rise(isolate: bool) -> None:
    port = free_port()
    fall, rise = 2, 3
    cfg = config(tcp(port, f"fall = {fall}\nrise = {rise}"))

    async def go() -> None:
        async with checking(cfg, isolate) as (checker, changes):
            with server(port) as proc:
                await until(lambda: checked(checker, port), 5.0)
                assert in_ipvs(checker, port)
                proc.kill()
                proc.wait()
                took = await until(lambda: not in_ipvs(checker, port), 5.0)
            assert took <= fall * DELAY_LOOP + TIMEOUT
            st = checker.status()[(SERVICE, DestKey(LOCAL, port))]
            assert (st.healthy, st.last_ok, st.detail) == (False, False, "connection refused")
            assert st.reason == "2 failed checks: connection refused"
            assert changes and changes[-1] == {(SERVICE, DestKey(LOCAL, port)): False}
            with server(port):
                took = await until(lambda: in_ipvs(checker, port), 5.0)
                assert (rise - 1) * DELAY_LOOP <= took <= TIMEOUT + rise * DELAY_LOOP
                st = checker.status()[(SERVICE, DestKey(LOCAL, port))]
                assert st.healthy and st.reason == "3 good checks: connected"
                assert st.latency is not None and 0 < st.latency < TIMEOUT
                assert abs(st.since - time.time()) < 2.0

    asyncio.run(go())


def test_http_500_leaves_and_initial_down_waits_for_proof() -> None:
    port_ok, port_500 = free_port(), free_port()
    http = "warmup = 0\nretry = 0\ninitial_state = 'down'\nhttp_get = { connect_timeout = 0.5 }"
    cfg = config(f"port = {port_ok}\n{http}", f"port = {port_500}\n{http}")

    async def go() -> None:
        with server(port_ok), server(port_500, status=500):
            async with checking(cfg, True) as (checker, _):
                assert not in_ipvs(checker, port_ok)  # down until proven
                await until(lambda: in_ipvs(checker, port_ok), 5.0)
                await until(lambda: checked(checker, port_500), 5.0)
                assert not in_ipvs(checker, port_500)
                st = checker.status()[(SERVICE, DestKey(LOCAL, port_500))]
                assert st.detail == "HTTP 500, expected 200" and st.check == "http_get"

    asyncio.run(go())


def test_quorum_loss_brings_the_sorry_server_and_inhibit_keeps_weight_zero() -> None:
    a, b = free_port(), free_port()
    service = (
        "quorum = 2\ninhibit_on_failure = true\n"
        "sorry_server = { address = '203.0.113.9', port = 8080 }"
    )
    cfg = config(tcp(a), tcp(b), service=service)

    def table(checker: HealthChecker) -> list[tuple[str, int, int]]:
        (svc,) = desired_ipvs(checker.effective_virtual_servers())
        return [(d.address, d.port, d.weight) for d in svc.destinations]

    async def go() -> None:
        with server(a), server(b) as b_proc:
            async with checking(cfg, True) as (checker, _):
                await until(lambda: checked(checker, a) and checked(checker, b), 5.0)
                assert sorted(table(checker)) == sorted([(LOCAL, a, 1), (LOCAL, b, 1)])
                assert checker.quorum() == {SERVICE: (True, 2)}
                b_proc.kill()
                await until(lambda: checker.quorum()[SERVICE] == (False, 1), 5.0)
                assert sorted(table(checker)) == sorted(
                    [(LOCAL, a, 0), (LOCAL, b, 0), ("203.0.113.9", 8080, 1)]
                )

    asyncio.run(go())


def test_reload_keeps_the_health_of_unchanged_real_servers() -> None:
    dead, alive = free_port(), free_port()
    first = config(tcp(dead))
    second = config(tcp(dead), tcp(alive))

    async def go() -> None:
        with server(alive):
            async with checking(first, True) as (checker, _):
                await until(lambda: not in_ipvs(checker, dead), 5.0)
                checker.update(second.virtual_servers)
                assert not in_ipvs(checker, dead)  # no flap back to the initial state
                assert in_ipvs(checker, alive)
                await until(lambda: checked(checker, alive), 5.0)
                assert not in_ipvs(checker, dead) and in_ipvs(checker, alive)

    asyncio.run(go())


def test_a_killed_worker_is_restarted_with_the_last_health() -> None:
    dead, alive = free_port(), free_port()
    cfg = config(tcp(dead), tcp(alive))

    async def go() -> None:
        with server(alive):
            async with checking(cfg, True) as (checker, changes):
                await until(lambda: not in_ipvs(checker, dead), 5.0)
                proc = checker._proc
                assert proc is not None
                os.kill(proc.pid, signal.SIGKILL)
                await until(lambda: checker.restarts == 1 and checker._proc is not None, 5.0)
                seen = len(changes)
                before = checker.reports
                await until(lambda: checker.reports >= before + 4, 5.0)  # checking again
                assert len(changes) == seen  # no flap while restarting
                assert not in_ipvs(checker, dead) and in_ipvs(checker, alive)

    asyncio.run(go())


def test_stop_ends_the_worker_and_its_commands(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    argv = f"['sh', '-c', 'echo $$ > {pidfile}; exec sleep 30']"
    misc = f"misc_check = {{ argv = {argv}, timeout = 20 }}"
    cfg = config(f"port = 1\nwarmup = 0\n{misc}")

    async def go() -> None:
        async with checking(cfg, True) as (checker, _):
            await until(lambda: pidfile.exists() and pidfile.read_text().strip() != "", 10.0)
            worker = checker._proc
            assert worker is not None
        assert checker._proc is None and worker.returncode is not None
        pid = int(pidfile.read_text())
        await until(lambda: not _running(pid), 5.0)

    asyncio.run(go())


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_no_checks_means_no_worker() -> None:
    cfg = config("port = 80")

    async def go() -> None:
        async with checking(cfg, True) as (checker, _):
            await asyncio.sleep(0.05)
            assert checker._proc is None and checker._task is None
            assert checker.health() == {} and checker.status() == {}
            assert in_ipvs(checker, 80)  # unchecked: always in

    asyncio.run(go())


def test_engine_never_runs_more_probes_than_allowed() -> None:
    from lvsha.adapters.checker import CheckEngine, Report

    ports = [free_port() for _ in range(5)]
    cfg = config(*(tcp(p) for p in ports))
    seen: list[Report] = []
    peak = [0]

    class Watched(CheckEngine):
        def _launch(self, *args: Any) -> None:
            super()._launch(*args)
            peak[0] = max(peak[0], self.in_flight)

    async def go() -> None:
        engine = Watched(cfg.virtual_servers, seen.append, max_in_flight=1)
        engine.start()
        try:
            await until(lambda: len({r.position for r in seen}) == len(ports), 2.0)
        finally:
            engine.stop()

    asyncio.run(go())
    assert peak[0] == 1
    assert {r.position for r in seen} == set(range(len(ports)))
    assert all(r.detail == "connection refused" for r in seen)


def test_worker_outlives_sigterm_to_the_group_until_the_daemon_stops_it() -> None:
    port = free_port()
    cfg = config(tcp(port))

    async def go() -> None:
        async with checking(cfg, True) as (checker, _):
            await until(lambda: checked(checker, port), 5.0)
            proc = checker._proc
            assert proc is not None
            os.kill(proc.pid, signal.SIGTERM)
            os.kill(proc.pid, signal.SIGINT)
            before = checker.reports
            await until(lambda: checker.reports >= before + 3, 5.0)
            assert checker._proc is proc and checker.restarts == 0
        assert proc.returncode == 0  # stopped by EOF, cleanly

    asyncio.run(go())


def test_a_reload_resynchronises_health_from_the_worker() -> None:
    """A change the worker reported under the old generation is not lost.

    delay_loop is long: no later check can repair the parent's view in time.
    """
    dead = free_port()
    cfg = config(tcp(dead), delay_loop=60)
    key = (SERVICE, DestKey(LOCAL, dead))

    async def go() -> None:
        async with checking(cfg, True) as (checker, _):
            await until(lambda: not checker.health()[key], 5.0)
            checker._health[key] = True  # as if the change had been dropped
            checker._status[key].healthy = True
            assert in_ipvs(checker, dead)
            checker.update(cfg.virtual_servers)
            await until(lambda: not checker.health()[key], 2.0)
            assert not in_ipvs(checker, dead) and not checker.status()[key].healthy

    asyncio.run(go())


def test_blackholed_server_leaves_within_fall_checks_of_timeout() -> None:
    """SYNs dropped (a full accept queue): each check costs connect_timeout."""
    hole = socket.socket()
    hole.bind((LOCAL, 0))
    hole.listen(0)
    port = hole.getsockname()[1]
    fillers = []
    for _ in range(3):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex((LOCAL, port))
        fillers.append(c)
    timeout, fall = 0.3, 2
    cfg = config(
        f"port = {port}\nwarmup = 0\nretry = 0\nfall = {fall}\n"
        f"tcp_check = {{ connect_timeout = {timeout} }}"
    )

    async def go() -> None:
        async with checking(cfg, True) as (checker, _):
            took = await until(lambda: not in_ipvs(checker, port), 5.0)
            # from start: worker start-up (< 0.5 s), then fall checks of one timeout each
            assert fall * timeout <= took <= fall * (DELAY_LOOP + timeout + 0.05) + 0.5
            st = checker.status()[(SERVICE, DestKey(LOCAL, port))]
            assert st.detail == f"no answer within {timeout:g} s"

    try:
        asyncio.run(go())
    finally:
        for s in (hole, *fillers):
            s.close()
