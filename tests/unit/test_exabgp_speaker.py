"""The ExaBGP adapter: its config, its command diff, the relay that ties routes to lvsha.

The relay runs for real under a stand-in parent (its "ExaBGP"), so that its
SIGTERM to the parent is seen; the adapter runs against a fake ExaBGP that
runs the relay from the generated config and acks every command, as
ExaBGP 4.2 does with `api.ack` (the real one is in tests/netns).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lvsha.adapters import exabgp_relay
from lvsha.adapters.bgp_child import stop_stale
from lvsha.adapters.exabgp import ExabgpSpeaker, commands, render_config, speaker_argv
from lvsha.adapters.exabgp_relay import Relay
from lvsha.config.model import BgpConfig, BgpPeerConfig
from lvsha.core.announce import Route

PEER4 = BgpPeerConfig("192.0.2.1", 64512)
PEER4B = BgpPeerConfig("192.0.2.2", 64514, hold_time=9, multihop=2, passive=True)
PEER6 = BgpPeerConfig("2001:db8::1", 64512, local_address="2001:db8::11")


def config(tmp_path: Path, *peers: BgpPeerConfig, **kw: object) -> BgpConfig:
    return BgpConfig(
        local_as=64513,
        router_id="192.0.2.11",
        peers=peers or (PEER4,),
        state_dir=str(tmp_path / "state"),
        **kw,  # type: ignore[arg-type]
    )


def block(text: str, head: str) -> str:
    start = text.index(head)
    return text[start : text.index("\n}", start)]


def test_config_has_each_peer_with_its_own_settings(tmp_path: Path) -> None:
    cfg = config(tmp_path, PEER4, PEER4B, PEER6, hold_time=3)
    text = render_config(cfg, ["/usr/bin/python3", "-S", "/x/exabgp_relay.py", "/s/x.sock", "1.0"])
    assert "run /usr/bin/python3 -S /x/exabgp_relay.py /s/x.sock 1.0;" in block(
        text, "process lvsha"
    )
    assert "encoder json;" in block(text, "process lvsha")
    first = block(text, "neighbor 192.0.2.1 {")
    for line in (
        "router-id 192.0.2.11;",
        "local-as 64513;",
        "peer-as 64512;",
        "hold-time 3;",
        "local-address 192.0.2.11;",  # router_id for an IPv4 peer
        "family { ipv4 unicast; }",
        "processes [ lvsha ];",
        "neighbor-changes;",
        "host-name lvsha;",  # no FQDN lookup for the OPEN's hostname capability
    ):
        assert line in first
    assert "passive" not in first and "outgoing-ttl" not in first
    second = block(text, "neighbor 192.0.2.2 {")
    assert "peer-as 64514;" in second and "hold-time 9;" in second
    assert "outgoing-ttl 2;" in second and "passive true;" in second
    v6 = block(text, "neighbor 2001:db8::1 {")
    assert "local-address 2001:db8::11;" in v6 and "family { ipv6 unicast; }" in v6


def test_commands_diff_the_sets_per_family_with_attributes(tmp_path: Path) -> None:
    cfg = config(tmp_path, PEER4, PEER6, communities=((64513, 100),), med=10)
    a = Route("203.0.113.100/32")
    b = Route(
        "203.0.113.101/32", next_hop="192.0.2.50", communities=((65000, 1), (65000, 2)), med=7
    )
    c = Route("2001:db8::100/128")
    first = commands(cfg, {}, {r.prefix: r for r in (a, b, c)})
    assert sorted(first) == [
        "neighbor 192.0.2.1 announce route 203.0.113.100/32 next-hop self "
        "community [64513:100] med 10",
        "neighbor 192.0.2.1 announce route 203.0.113.101/32 next-hop 192.0.2.50 "
        "community [65000:1 65000:2] med 7",
        "neighbor 2001:db8::1 announce route 2001:db8::100/128 next-hop self "
        "community [64513:100] med 10",
    ]
    # unchanged routes are not sent again; a gone one is withdrawn, a changed one re-announced
    b2 = Route(b.prefix, med=8)
    again = commands(cfg, {r.prefix: r for r in (a, b, c)}, {a.prefix: a, b.prefix: b2})
    assert sorted(again) == [
        "neighbor 192.0.2.1 announce route 203.0.113.101/32 next-hop self "
        "community [64513:100] med 8",
        "neighbor 2001:db8::1 withdraw route 2001:db8::100/128 next-hop self "
        "community [64513:100] med 10",
    ]
    assert commands(cfg, {a.prefix: a}, {a.prefix: a}) == []


def test_bgp_next_hop_default_applies(tmp_path: Path) -> None:
    cfg = config(tmp_path, next_hop="192.0.2.60")
    assert commands(cfg, {}, {"203.0.113.1/32": Route("203.0.113.1/32")}) == [
        "neighbor 192.0.2.1 announce route 203.0.113.1/32 next-hop 192.0.2.60"
    ]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_relay_is_silent_only_after_the_liveness() -> None:
    clock = Clock()
    relay = Relay(1.0, clock)
    clock.now += 0.9
    assert not relay.silent() and relay.timeout() == pytest.approx(0.1)
    assert relay.from_lvsha("heartbeat") is None  # a heartbeat is not relayed
    clock.now += 0.9
    assert not relay.silent()  # the heartbeat reset it
    clock.now += 1.01
    assert relay.silent() and relay.timeout() == 0.0


def test_relay_withdraws_what_it_relayed_and_nothing_else() -> None:
    relay = Relay(1.0, Clock())
    a = "neighbor 192.0.2.1 announce route 203.0.113.100/32 next-hop self med 5"
    assert relay.from_lvsha(a) == a
    relay.from_lvsha("neighbor 192.0.2.2 announce route 203.0.113.100/32 next-hop self")
    relay.from_lvsha("neighbor 192.0.2.1 announce route 203.0.113.101/32 next-hop self")
    relay.from_lvsha("neighbor 192.0.2.1 withdraw route 203.0.113.101/32 next-hop self")
    assert sorted(relay.withdraw_all()) == [
        "neighbor 192.0.2.1 withdraw route 203.0.113.100/32",
        "neighbor 192.0.2.2 withdraw route 203.0.113.100/32",
    ]
    assert relay.withdraw_all() == []


PARENT = textwrap.dedent(
    """
    import subprocess, sys, time
    # stands in for ExaBGP: runs the relay with pipes, records what it writes, acks it;
    # the relay's stderr leads nowhere, as ExaBGP's does to a killed lvsha (EPIPE)
    out = open(sys.argv[1], "w")
    proc = subprocess.Popen(
        sys.argv[2:], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    proc.stderr.close()
    for line in proc.stdout:
        out.write(line.decode()); out.flush()
        proc.stdin.write(b"done\\n"); proc.stdin.flush()
    time.sleep(30)
    """
)


def relay_under_parent(
    tmp_path: Path, liveness: float
) -> tuple[subprocess.Popen[bytes], socket.socket, Path]:
    sock_path = tmp_path / "relay.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock_path))
    server.listen(1)
    server.settimeout(10)
    written = tmp_path / "written"
    relay = [sys.executable, "-S", exabgp_relay.__file__, str(sock_path), str(liveness)]
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(written), *relay])
    conn, _ = server.accept()
    conn.settimeout(10)
    server.close()
    assert conn.recv(100).startswith(b"hello ")
    conn.sendall(b"neighbor 192.0.2.1 announce route 203.0.113.100/32 next-hop self\n")
    assert conn.recv(100) == b"done\n"  # ExaBGP's ack comes back to lvsha
    return parent, conn, written


def ended(proc: subprocess.Popen[bytes], timeout: float) -> int:
    return proc.wait(timeout=timeout)


def test_relay_withdraws_and_stops_exabgp_when_lvsha_goes(tmp_path: Path) -> None:
    parent, conn, written = relay_under_parent(tmp_path, 30.0)
    try:
        conn.close()  # lvsha exits or is killed: the kernel closes its socket
        assert ended(parent, 10) == -signal.SIGTERM
    finally:
        parent.kill()
    assert written.read_text().splitlines() == [
        "neighbor 192.0.2.1 announce route 203.0.113.100/32 next-hop self",
        "neighbor 192.0.2.1 withdraw route 203.0.113.100/32",
    ]


def test_relay_withdraws_and_stops_exabgp_when_lvsha_is_silent(tmp_path: Path) -> None:
    parent, conn, written = relay_under_parent(tmp_path, 0.5)
    try:
        start = time.monotonic()
        assert ended(parent, 10) == -signal.SIGTERM  # no heartbeat: a hung lvsha
        assert time.monotonic() - start >= 0.4
    finally:
        parent.kill()
        conn.close()
    assert (
        written.read_text().splitlines()[-1] == "neighbor 192.0.2.1 withdraw route 203.0.113.100/32"
    )


def test_relay_without_lvsha_stops_exabgp(tmp_path: Path) -> None:
    relay = [sys.executable, "-S", exabgp_relay.__file__, str(tmp_path / "none.sock"), "1"]
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path / "w"), *relay])
    try:
        assert ended(parent, 10) == -signal.SIGTERM  # a respawned relay after lvsha died
    finally:
        parent.kill()


FAKE_EXABGP = textwrap.dedent(
    """\
    #!/usr/bin/python3
    import json, re, signal, subprocess, sys
    # a fake ExaBGP 4.2: runs the API process of the config, acks its commands, records them
    conf = open(sys.argv[1]).read()
    run = re.search(r"run (.*);", conf).group(1).split()
    peer = re.search(r"neighbor (\\S+) {", conf).group(1)
    log = open(sys.argv[1] + ".commands", "a")
    proc = subprocess.Popen(run, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    def up(state):
        neighbor = {"address": {"local": "x", "peer": peer}, "state": state}
        msg = {"type": "state", "neighbor": neighbor}
        proc.stdin.write(json.dumps(msg).encode() + b"\\n"); proc.stdin.flush()
    up("up")
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    for line in proc.stdout:
        log.write(line.decode()); log.flush()
        proc.stdin.write(b"error\\n" if b"bad" in line else b"done\\n"); proc.stdin.flush()
    """
)


def fake_speaker(tmp_path: Path) -> ExabgpSpeaker:
    fake = tmp_path / "exabgp"
    fake.write_text(FAKE_EXABGP)
    fake.chmod(0o755)
    return ExabgpSpeaker(config(tmp_path, speaker_path=str(fake), liveness=5.0))


async def until(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.02)


def test_routes_set_before_run_are_sent_and_sent_again_after_a_restart(tmp_path: Path) -> None:
    speaker = fake_speaker(tmp_path)
    log = Path(speaker.conf.as_posix() + ".commands")

    def sent() -> list[str]:
        return log.read_text().splitlines() if log.exists() else []

    async def go() -> None:
        speaker.set_routes([Route("203.0.113.100/32")])  # before run(): kept, sent on connect
        task = asyncio.create_task(speaker.run())
        await until(lambda: len(sent()) == 1)
        assert speaker.sessions()[0]["state"] == "established"
        assert speaker.status()["announced"] == ["203.0.113.100/32"]
        speaker.set_routes([Route("203.0.113.100/32"), Route("203.0.113.101/32")])
        await until(lambda: len(sent()) == 2)
        pid = speaker.status()["pid"]
        os.kill(pid, signal.SIGKILL)  # the speaker dies: run() raises
        with pytest.raises(RuntimeError, match="exabgp exited"):
            await asyncio.wait_for(task, 10)
        assert speaker.status()["announced"] == [] and speaker.sessions()[0]["state"] == "idle"
        task = asyncio.create_task(speaker.run())  # the supervisor's restart
        await until(lambda: len(sent()) == 4)
        assert speaker.status()["restarts"] == 1 and speaker.status()["pid"] != pid
        await speaker.close(5)
        await asyncio.wait_for(task, 5)  # run() returns after close()
        assert speaker.status()["pid"] is None

    asyncio.run(go())
    lines = sent()
    assert lines[2:4] == [  # the whole set again, to the new ExaBGP
        "neighbor 192.0.2.1 announce route 203.0.113.100/32 next-hop self",
        "neighbor 192.0.2.1 announce route 203.0.113.101/32 next-hop self",
    ]
    assert sorted(lines[4:]) == [  # close() withdrew everything before stopping it
        "neighbor 192.0.2.1 withdraw route 203.0.113.100/32 next-hop self",
        "neighbor 192.0.2.1 withdraw route 203.0.113.101/32 next-hop self",
    ]
    assert not (tmp_path / "state" / "exabgp.sock").exists()


def test_refused_command_is_reported(tmp_path: Path) -> None:
    speaker = fake_speaker(tmp_path)

    async def go() -> None:
        task = asyncio.create_task(speaker.run())
        await until(lambda: speaker.tether.writer is not None)
        speaker.set_routes([Route("203.0.113.100/32", next_hop="bad")])
        await until(lambda: speaker.status()["errors"] == 1)
        await speaker.close(5)
        await asyncio.wait_for(task, 5)

    asyncio.run(go())
    assert (
        "refused" in speaker.status()["last_error"]
        and "next-hop bad" in speaker.status()["last_error"]
    )


def test_a_stale_speaker_is_stopped_but_never_a_stranger(tmp_path: Path) -> None:
    pid_file = tmp_path / "exabgp.pid"
    marker = str(tmp_path / "exabgp.conf")
    stranger = subprocess.Popen(["sleep", "30"])
    stale = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", marker])
    try:
        deadline = time.monotonic() + 10
        while marker.encode() not in Path(f"/proc/{stale.pid}/cmdline").read_bytes():
            assert time.monotonic() < deadline, "the stale process did not start"
            time.sleep(0.01)  # until it has exec'd python
        pid_file.write_text(f"{stranger.pid}\n")
        assert stop_stale(pid_file, marker) is None and stranger.poll() is None
        pid_file.write_text(f"{stale.pid}\n")
        assert stop_stale(pid_file, marker) == stale.pid
        assert stale.wait(5) == -signal.SIGTERM
    finally:
        stranger.kill()
        stale.kill()


def test_a_python_exabgp_runs_under_the_fqdn_guard(tmp_path: Path) -> None:
    script = tmp_path / "exabgp"
    script.write_text("#!/usr/bin/python3\nimport socket; print(socket.getfqdn())\n")
    argv = speaker_argv(str(script), tmp_path / "c.conf")
    assert argv[:2] == ["/usr/bin/python3", "-c"] and argv[-2:] == [
        str(script),
        str(tmp_path / "c.conf"),
    ]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=True)
    assert out.stdout.strip() == socket.gethostname()  # no resolver round trip


FLOODING_PARENT = textwrap.dedent(
    """
    import subprocess, sys, threading, time
    # an ExaBGP with a lot to say (4 MB of lines) to an lvsha that does not read,
    # once the relay has handed it lvsha's announce (before, the relay could block
    # on the flood first and never read it: then there was nothing to withdraw)
    out = open(sys.argv[1], "w")
    proc = subprocess.Popen(sys.argv[2:], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    def flood():
        try:
            for _ in range(4000):
                proc.stdin.write(b"x" * 999 + b"\\n")
            proc.stdin.flush()
        except OSError:
            pass
    out.write(proc.stdout.readline().decode()); out.flush()
    threading.Thread(target=flood, daemon=True).start()
    for line in proc.stdout:
        out.write(line.decode()); out.flush()
    time.sleep(30)
    """
)


def test_relay_gives_up_on_an_lvsha_that_does_not_read(tmp_path: Path) -> None:
    sock_path = tmp_path / "relay.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock_path))
    server.listen(1)
    server.settimeout(10)
    written = tmp_path / "written"
    relay = [sys.executable, "-S", exabgp_relay.__file__, str(sock_path), "0.5"]
    parent = subprocess.Popen([sys.executable, "-c", FLOODING_PARENT, str(written), *relay])
    conn, _ = server.accept()
    server.close()
    try:
        conn.sendall(b"neighbor 192.0.2.1 announce route 203.0.113.100/32 next-hop self\n")
        deadline = time.monotonic() + 10
        while parent.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(OSError):  # the relay may be gone, its parent not yet
                conn.sendall(b"heartbeat\n")  # alive, but never reading what the relay sends
            time.sleep(0.1)
        assert parent.returncode == -signal.SIGTERM
    finally:
        parent.kill()
        conn.close()
    lines = written.read_text().splitlines()
    assert lines[0] == "neighbor 192.0.2.1 announce route 203.0.113.100/32 next-hop self"
    assert lines[-1] == "neighbor 192.0.2.1 withdraw route 203.0.113.100/32"
