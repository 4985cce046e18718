"""BIRD's parent: stops BIRD (which withdraws everything) when lvsha dies or hangs.

BIRD keeps announcing what it was told whatever happens to lvsha, so lvsha
does not run BIRD directly but this keeper, which runs BIRD as its child
and holds a unix-socket connection to lvsha (`{state_dir}/bird.sock`).
When that connection drops (lvsha exited or was killed: the kernel closes
its socket) or lvsha stays silent longer than the liveness (it hangs, or
SIGSTOP; it sends a heartbeat every liveness/3), the keeper sends BIRD
SIGTERM: BIRD shuts its sessions down with a Cease NOTIFICATION (RFC 4486
"Administrative Shutdown"), and the peer withdraws every route learnt from
it at once (RFC 4271 section 8). SIGKILL follows if BIRD does not go.
The keeper forwards SIGTERM/SIGINT to BIRD and exits with BIRD's status;
a keeper killed outright takes BIRD with it (PR_SET_PDEATHSIG).

Stdlib only, nothing from lvsha: `python -S bird_keeper.py SOCKET LIVENESS -- bird ...`.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable

HEARTBEAT = "heartbeat"
CONNECT_TRIES = 20  # x 50 ms
STOP_GRACE = 2.0  # s from SIGTERM to SIGKILL of BIRD
POLL = 0.2  # s between looks at BIRD when lvsha is quiet
PR_SET_PDEATHSIG = 1


class Keeper:
    """When lvsha counts as gone, on an injected clock (no I/O here)."""

    def __init__(self, liveness: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.liveness = liveness
        self.clock = clock
        self.last_heard = clock()

    def heard(self) -> None:
        self.last_heard = self.clock()

    def silent(self) -> bool:
        return self.clock() - self.last_heard > self.liveness

    def timeout(self) -> float:
        return min(POLL, max(0.0, self.liveness - (self.clock() - self.last_heard)))


def stop(proc: subprocess.Popen[bytes], why: str) -> int:
    with contextlib.suppress(OSError):
        proc.terminate()
    try:
        proc.wait(STOP_GRACE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    # last: our stderr is a pipe to lvsha, which may be gone (EPIPE)
    with contextlib.suppress(OSError):
        sys.stderr.write(f"lvsha-keeper: {why}: stopped BIRD (pid {proc.pid})\n")
        sys.stderr.flush()
    return 1


def _connect(path: str) -> socket.socket | None:
    for _ in range(CONNECT_TRIES):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
            return sock
        except OSError:
            sock.close()
            time.sleep(0.05)
    return None


def _die_with_parent() -> None:
    """In BIRD, before exec: SIGTERM when the keeper dies, even by SIGKILL (prctl(2))."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def main(argv: list[str]) -> int:
    path, liveness, command = argv[0], float(argv[1]), argv[3:]
    keeper = Keeper(liveness)
    sock = _connect(path)  # first: without lvsha, BIRD never starts
    if sock is None:
        with contextlib.suppress(OSError):
            sys.stderr.write(f"lvsha-keeper: cannot connect to lvsha at {path}\n")
        return 1
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
    terminated: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _frame: terminated.append(signum))
    signal.signal(signal.SIGINT, lambda signum, _frame: terminated.append(signum))
    sock.sendall(f"hello {os.getpid()} {proc.pid}\n".encode())
    while True:
        if terminated:
            stop(proc, f"signal {terminated[0]}")
            return 0
        code = proc.poll()
        if code is not None:
            return code
        try:
            ready, _, _ = select.select([sock], [], [], keeper.timeout())
        except InterruptedError:
            continue
        if ready:
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                return stop(proc, "lost the connection to lvsha")
            keeper.heard()
        elif keeper.silent():
            return stop(proc, f"lvsha silent for {liveness} s")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
