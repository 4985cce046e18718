"""ExaBGP's API process: relays lvsha's commands, and takes the routes down with lvsha.

ExaBGP runs this (`process lvsha { run ... }` in the generated config) with
its commands on our stdout and its answers on our stdin. We connect to the
unix socket lvsha serves in its state directory and relay both ways:
`announce route ...` / `withdraw route ...` lines from lvsha to ExaBGP,
ExaBGP's acks (`done` / `error`) and neighbour state changes (JSON) back.

The route dies with lvsha: when the connection drops (lvsha exited or was
killed) or lvsha stays silent longer than the liveness (it hangs, SIGSTOP:
it sends a heartbeat every liveness/3), we write a withdraw for every route
we relayed, wait (bounded) for ExaBGP's acks, then SIGTERM ExaBGP, our
parent, and exit. ExaBGP keeps its RIB when an API process dies (it even
respawns it), so exiting alone would leave the route announced; ExaBGP
going away closes the BGP session, and the peer drops every route learnt
from it (RFC 4271 section 6, 8): the withdraw is the fast path, the session
close the guarantee. A relay respawned by ExaBGP while lvsha is gone cannot
connect and stops ExaBGP the same way.

Stdlib only and imports nothing from lvsha: it starts in ~50 ms (about 1 s
under UML), run as `python -S path/to/exabgp_relay.py SOCKET LIVENESS`.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable

HEARTBEAT = "heartbeat"
ACK_WAIT = 1.0  # seconds to wait for ExaBGP's acks of the last withdraws
CONNECT_TRIES = 20  # x 50 ms: lvsha serves the socket before ExaBGP starts
LINE_LIMIT = 64 * 1024


class Relay:
    """The relay's decisions, on an injected clock (no I/O here)."""

    def __init__(self, liveness: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.liveness = liveness
        self.clock = clock
        self.last_heard = clock()
        self.routes: dict[tuple[str, ...], str] = {}  # (selector..., prefix) -> withdraw line

    def from_lvsha(self, line: str) -> str | None:
        """A line from lvsha: the command to write to ExaBGP, or None."""
        self.last_heard = self.clock()
        words = line.split()
        if not words or words[0] == HEARTBEAT:
            return None
        for i, word in enumerate(words):
            if word in ("announce", "withdraw") and words[i + 1 : i + 2] == ["route"]:
                if len(words) < i + 3:
                    return None
                key = (*words[:i], words[i + 2])
                if word == "announce":
                    self.routes[key] = " ".join([*words[:i], "withdraw", "route", words[i + 2]])
                else:
                    self.routes.pop(key, None)
                return line
        return line  # another ExaBGP command: relayed as it is

    def silent(self) -> bool:
        """lvsha said nothing for longer than the liveness."""
        return self.clock() - self.last_heard > self.liveness

    def timeout(self) -> float:
        """Seconds until lvsha's silence counts as death."""
        return max(0.0, self.liveness - (self.clock() - self.last_heard))

    def withdraw_all(self) -> list[str]:
        """The withdraws of every route relayed and not withdrawn (forgotten here)."""
        lines = list(self.routes.values())
        self.routes.clear()
        return lines


def _write(fd: int, text: str) -> None:
    data = text.encode()
    while data:
        data = data[os.write(fd, data) :]


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


def _die(relay: Relay, out: int, inp: int, parent: int, why: str) -> int:
    """Withdraw everything, wait for the acks (bounded), stop ExaBGP."""
    lines = relay.withdraw_all()
    pending = len(lines)
    with contextlib.suppress(OSError):
        _write(out, "".join(line + "\n" for line in lines))
        deadline = time.monotonic() + ACK_WAIT
        while pending > 0 and time.monotonic() < deadline:
            ready, _, _ = select.select([inp], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            data = os.read(inp, 65536)
            if not data:
                break
            pending -= sum(w in ("done", "error") for w in data.decode(errors="replace").split())
    if parent > 1 and os.getppid() == parent:
        with contextlib.suppress(OSError):
            os.kill(parent, signal.SIGTERM)
    # last: our stderr is ExaBGP's, a pipe to lvsha that may be gone (EPIPE)
    with contextlib.suppress(OSError):
        sys.stderr.write(f"lvsha-relay: {why}: withdrew {len(lines)} route(s), stopped ExaBGP\n")
        sys.stderr.flush()
    return 1


def main(argv: list[str]) -> int:
    path, liveness = argv[0], float(argv[1])
    inp, out, parent = sys.stdin.fileno(), sys.stdout.fileno(), os.getppid()
    relay = Relay(liveness)
    sock = _connect(path)
    if sock is None:
        return _die(relay, out, inp, parent, f"cannot connect to lvsha at {path}")
    # a stopped lvsha stops reading: a send that blocks longer than the liveness is its death
    sock.settimeout(max(liveness, 0.1))
    sock.sendall(f"hello {os.getpid()} {parent}\n".encode())
    from_lvsha = b""
    from_speaker = b""
    while True:
        ready, _, _ = select.select([sock, inp], [], [], relay.timeout())
        if not ready and relay.silent():
            return _die(relay, out, inp, parent, f"lvsha silent for {liveness} s")
        if sock in ready:
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                return _die(relay, out, inp, parent, "lost the connection to lvsha")
            from_lvsha += data
            *lines, from_lvsha = from_lvsha.split(b"\n")
            if len(from_lvsha) > LINE_LIMIT:
                return _die(relay, out, inp, parent, "oversized line from lvsha")
            commands = [relay.from_lvsha(raw.decode(errors="replace").strip()) for raw in lines]
            text = "".join(c + "\n" for c in commands if c)
            if text:
                _write(out, text)
        if inp in ready:
            data = os.read(inp, 65536)
            if not data:  # ExaBGP is gone: nothing left to withdraw through
                return 0
            from_speaker += data
            *lines, from_speaker = from_speaker.split(b"\n")
            from_speaker = from_speaker[-LINE_LIMIT:]
            try:
                sock.sendall(b"".join(raw + b"\n" for raw in lines))
            except OSError:
                return _die(relay, out, inp, parent, "lost the connection to lvsha")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))  # SIGPIPE stays ignored (Python's default): EPIPE is an OSError
