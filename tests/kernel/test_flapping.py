"""A real server that flaps every second: rise/fall keep the IPVS table calm.

The server listens for one second, then refuses for one second, for a
bounded number of cycles. With delay_loop 1 and rise = fall = 3 the checks
never see three failures (or successes) in a row, so lvsha never changes the
table; the same server with rise = fall = 1 does move it, which shows the
sampling would have seen a change. Both run with retry = 0.
"""

from __future__ import annotations

import sys
import time

from lab import Host, Lab, instance_toml, wait_for
from test_daemon_end_to_end import SERVICE, dests, real_server, serve

FLAPPER = """
import socket, sys, time
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 80)); s.listen(64); s.settimeout(0.05)
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        try:
            c, _ = s.accept(); c.close()
        except OSError:
            pass
    s.close()
    time.sleep(1.0)
"""


def service(rise_fall: int) -> str:
    """The end-to-end test's service; the checks keys apply to rs2, the flapper."""
    # retry = 0: keepalived's default retry (1, after 1 s) would itself hide
    # a one-second flap, and this test is about rise and fall.
    return SERVICE + f"rise = {rise_fall}\nfall = {rise_fall}\nretry = 0\n"


def sample_tables(host: Host, seconds: float) -> list[frozenset[str]]:
    samples = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        samples.append(frozenset(dests(host)))
        time.sleep(0.2)
    return samples


def run_flapping(lab: Lab, rise_fall: int) -> list[frozenset[str]]:
    serve(real_server(lab, "rs1", "192.0.2.21"))
    rs2 = real_server(lab, "rs2", "192.0.2.22")
    d1 = lab.start(lab.host("d1", "192.0.2.11"), instance_toml(100) + service(rise_fall))
    both = frozenset({"192.0.2.21:80", "192.0.2.22:80"})
    wait_for(lambda: frozenset(dests(d1.host)) == both, 20)
    rs2.popen([sys.executable, "-c", FLAPPER, "8"], lab.workdir / "flapper.log")
    return sample_tables(d1.host, 12)


def test_rise_and_fall_keep_ipvs_calm_under_a_flapping_server(lab: Lab) -> None:
    samples = run_flapping(lab, 3)
    assert len(samples) > 30
    assert set(samples) == {frozenset({"192.0.2.21:80", "192.0.2.22:80"})}


def test_without_rise_and_fall_the_same_flapping_moves_ipvs(lab: Lab) -> None:
    samples = run_flapping(lab, 1)
    assert frozenset({"192.0.2.21:80"}) in set(samples)
    assert frozenset({"192.0.2.21:80", "192.0.2.22:80"}) in set(samples)
