"""The ExaBGP relay withdraws even when nobody reads its stderr (lvsha was killed).

ExaBGP's stdout and stderr are pipes to lvsha, and the relay inherits them.
After a kill -9 of lvsha nobody reads them: a note written there first, with
SIGPIPE at its default, killed the relay before its withdraws, and ExaBGP
kept the route until it gave up respawning the relay (6 to 9 s in the BGP
kernel tier). Here a stand-in ExaBGP runs the relay with such a stderr.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import lvsha.adapters.exabgp_relay as relay_module

RELAY = str(Path(relay_module.__file__))
ROUTE = "announce route 203.0.113.100/32 next-hop self"

# ExaBGP's part: run the relay with a stderr nobody reads, print what it
# writes on its stdout, and report the SIGTERM the relay sends its parent.
FAKE_EXABGP = r"""
import os, signal, subprocess, sys
signal.signal(signal.SIGTERM, lambda *_: (print("SIGTERM", flush=True), os._exit(0)))
r, w = os.pipe()
os.close(r)
relay = subprocess.Popen([sys.executable, "-S", sys.argv[1], sys.argv[2], "5"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=w, text=True)
for line in relay.stdout:
    print("relay:", line.strip(), flush=True)
    if "withdraw" in line:
        relay.stdin.write("done\n"); relay.stdin.flush()
relay.wait(10)
print("relay exited", relay.returncode, flush=True)
"""


def test_relay_withdraws_and_stops_exabgp_with_a_dead_stderr(tmp_path: Path) -> None:
    path = str(tmp_path / "relay.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    server.settimeout(10)
    fake = subprocess.Popen(
        [sys.executable, "-c", FAKE_EXABGP, RELAY, path], stdout=subprocess.PIPE, text=True
    )
    try:
        conn, _ = server.accept()
        with conn:
            conn.sendall(ROUTE.encode() + b"\n")
            out = fake.stdout
            assert out is not None
            assert out.readline().strip() == f"relay: {ROUTE}"
        # The connection dropped, as when lvsha is killed.
        rest, _ = fake.communicate(timeout=10)
    finally:
        fake.kill()
        server.close()
    assert "relay: withdraw route 203.0.113.100/32" in rest, rest
    assert "SIGTERM" in rest, rest
