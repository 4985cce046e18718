"""The BIRD adapter: its generated config, the control-socket protocol, and the keeper.

The keeper runs for real with a stand-in BIRD (a process that records the
signal it gets); BirdControl talks to a fake control socket that answers
as BIRD 2.0.12 does (replies captured from it). Real BIRD: tests/netns.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lvsha.adapters import bird_keeper
from lvsha.adapters.bird import BirdSpeaker, protocol_name, render_config
from lvsha.adapters.bird_control import BirdControl, BirdError, ReplyParser, protocol_rows
from lvsha.adapters.bird_keeper import Keeper
from lvsha.config.model import BgpConfig, BgpPeerConfig
from lvsha.core.announce import Route

PEERS = (
    BgpPeerConfig("192.0.2.1", 64512),
    BgpPeerConfig("192.0.2.2", 64514, hold_time=9, multihop=2, passive=True, bfd=False),
    BgpPeerConfig("2001:db8::1", 64512, local_address="2001:db8::11"),
)


def config(tmp_path: Path, **kw: object) -> BgpConfig:
    return BgpConfig(
        local_as=64513,
        router_id="192.0.2.11",
        peers=PEERS,
        state_dir=str(tmp_path / "state"),
        **kw,  # type: ignore[arg-type]
    )


def block(text: str, head: str) -> str:
    start = text.index(head)
    return text[start : text.index("\n}", start)]


def test_config_has_each_peer_timers_and_bfd(tmp_path: Path) -> None:
    cfg = config(tmp_path, hold_time=3, bfd=True, bfd_interval=0.05, bfd_multiplier=4)
    text = render_config(cfg, {}, set())
    assert "router id 192.0.2.11;" in text
    assert 'interface "*" { min rx interval 50 ms; min tx interval 50 ms; multiplier 4; }' in text
    first = block(text, "protocol bgp peer1 {")
    for line in (
        "local 192.0.2.11 as 64513;",
        "neighbor 192.0.2.1 as 64512;",
        "hold time 3;",
        "connect delay time 1;",  # the rig: BIRD's 5 s slows every rejoin
        "error wait time 1, 10;",
        "bfd on;",
        "ipv4 { import none; export where source = RTS_STATIC; };",
    ):
        assert line in first
    second = block(text, "protocol bgp peer2 {")
    assert "neighbor 192.0.2.2 as 64514;" in second and "hold time 9;" in second
    assert "multihop 2;" in second and "passive on;" in second and "bfd on" not in second
    third = block(text, "protocol bgp peer3 {")
    assert "local 2001:db8::11 as 64513;" in third and "ipv6 { import none;" in third
    assert "protocol bfd" not in render_config(config(tmp_path), {}, set())


def test_config_has_a_static_per_prefix_with_its_attributes(tmp_path: Path) -> None:
    cfg = config(tmp_path, communities=((64513, 100),), med=10)
    routes = {
        "203.0.113.100/32": Route("203.0.113.100/32"),
        "203.0.113.101/32": Route("203.0.113.101/32", "192.0.2.50", ((65000, 1), (65000, 2)), 7),
        "2001:db8::100/128": Route("2001:db8::100/128"),
    }
    text = render_config(cfg, routes, {"203.0.113.101/32"})
    a = block(text, "protocol static vip_203_0_113_100_32 {")
    assert "disabled;" in a and "ipv4;" in a
    assert (
        "route 203.0.113.100/32 blackhole { bgp_community.add((64513,100)); bgp_med = 10; };" in a
    )
    b = block(text, "protocol static vip_203_0_113_101_32 {")
    assert "disabled" not in b  # announced when the config was written
    assert (
        "route 203.0.113.101/32 blackhole { bgp_next_hop = 192.0.2.50; "
        "bgp_community.add((65000,1)); bgp_community.add((65000,2)); bgp_med = 7; };"
    ) in b
    c = block(text, "protocol static vip_2001_db8__100_128 {")
    assert "ipv6;" in c and "route 2001:db8::100/128 blackhole" in c
    assert protocol_name("2001:db8::100/128") == "vip_2001_db8__100_128"


# replies as BIRD 2.0.12 sends them (captured over its control socket)
SHOW_PROTOCOLS = (
    "2002-Name       Proto      Table      State  Since         Info\n"
    "1002-device1    Device     ---        up     12:26:17.520  \n"
    " peer1      BGP        ---        up     12:27:04.953  Established   \n"
    " peer2      BGP        ---        start  12:27:16.638  Active        "
    "Socket: Connection refused\n"
    " vip_203_0_113_100_32 Static     master4    down   12:27:04.953  \n"
    "0000 \n"
)


def parse(text: str) -> ReplyParser:
    parser = ReplyParser()
    for line in text.splitlines(keepends=True):
        assert not parser.done
        parser.feed(line)
    return parser


def test_reply_parser_carries_codes_onto_continuation_lines() -> None:
    parser = parse(SHOW_PROTOCOLS)
    assert parser.done and parser.reply().code == 0
    rows = protocol_rows(parser.reply())
    assert rows["peer1"] == {"proto": "BGP", "state": "up", "info": "Established", "error": ""}
    assert rows["peer2"]["info"] == "Active"
    assert rows["peer2"]["error"] == "Socket: Connection refused"
    assert rows["vip_203_0_113_100_32"]["state"] == "down"
    assert parse("0001 BIRD 2.0.12 ready.\n").reply().code == 1
    assert parse("9001 syntax error, unexpected CF_SYM_UNDEFINED\n").reply().code == 9001
    with pytest.raises(BirdError):
        ReplyParser().feed("garbage\n")


ANSWERS = {
    b"enable vip_a\n": b"0011-vip_a: enabled\n0000 \n",
    b"disable vip_a\n": b"0009-vip_a: disabled\n0000 \n",
    b"show protocols\n": SHOW_PROTOCOLS.encode(),
    b"enable nosuch\n": b"9001 syntax error, unexpected CF_SYM_UNDEFINED\n",
}


async def fake_bird(path: Path, hang_up_after: int | None = None) -> asyncio.Server:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"0001 BIRD 2.0.12 ready.\n")
        served = 0
        while line := await reader.readline():
            if hang_up_after is not None and served == hang_up_after:
                break
            writer.write(ANSWERS[line])
            served += 1
        writer.close()

    return await asyncio.start_unix_server(serve, str(path))


def test_control_speaks_birds_protocol_and_reconnects(tmp_path: Path) -> None:
    path = tmp_path / "bird.ctl"

    async def go() -> None:
        server = await fake_bird(path, hang_up_after=2)
        control = BirdControl(str(path), timeout=5)
        assert (await control.command("enable vip_a")).lines == ((11, "vip_a: enabled"), (0, ""))
        with pytest.raises(BirdError, match="syntax error"):
            await control.command("enable nosuch")  # an error code, the connection stays
        with pytest.raises(BirdError, match="closed"):
            await control.command("disable vip_a")  # BIRD went away mid-command
        server.close()
        server = await fake_bird(path)  # BIRD restarted: the next command reconnects
        assert (await control.command("disable vip_a")).code == 0
        assert "peer1" in protocol_rows(await control.command("show protocols"))
        control.close()
        server.close()

    asyncio.run(go())


def test_control_without_bird_raises(tmp_path: Path) -> None:
    control = BirdControl(str(tmp_path / "none.ctl"), timeout=1)
    with pytest.raises(BirdError, match="cannot reach"):
        asyncio.run(control.command("show status"))


class Clock:
    def __init__(self) -> None:
        self.now = 5.0

    def __call__(self) -> float:
        return self.now


def test_keeper_counts_lvsha_gone_only_after_the_liveness() -> None:
    clock = Clock()
    keeper = Keeper(1.5, clock)
    clock.now += 1.4
    assert not keeper.silent()
    keeper.heard()
    clock.now += 1.4
    assert not keeper.silent() and keeper.timeout() == pytest.approx(0.1)
    clock.now += 0.2
    assert keeper.silent() and keeper.timeout() == 0.0


FAKE_BIRD = textwrap.dedent(
    """
    import signal, sys, time
    # stands in for BIRD: records the signal that stops it
    def stop(signum, frame):
        open(sys.argv[1], "w").write(str(signum)); sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    open(sys.argv[1] + ".started", "w").close()
    time.sleep(float(sys.argv[2]))
    sys.exit(7)
    """
)


def keeper_with_fake_bird(
    tmp_path: Path, liveness: float, life: float = 30
) -> tuple[subprocess.Popen[bytes], socket.socket, Path]:
    sock_path = tmp_path / "bird.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock_path))
    server.listen(1)
    server.settimeout(10)
    record = tmp_path / "signal"
    argv = [sys.executable, "-S", bird_keeper.__file__, str(sock_path), str(liveness), "--"]
    keeper = subprocess.Popen(
        [*argv, sys.executable, "-c", FAKE_BIRD, str(record), str(life)], stderr=subprocess.PIPE
    )
    assert keeper.stderr is not None
    keeper.stderr.close()  # its stderr leads nowhere, as to a killed lvsha (EPIPE)
    conn, _ = server.accept()
    server.close()
    conn.settimeout(10)
    assert conn.recv(100).startswith(b"hello ")
    deadline = time.monotonic() + 10
    while not Path(str(record) + ".started").exists():
        assert time.monotonic() < deadline, "the fake BIRD did not start"
        time.sleep(0.02)
    return keeper, conn, record


def test_keeper_stops_bird_when_lvsha_goes(tmp_path: Path) -> None:
    keeper, conn, record = keeper_with_fake_bird(tmp_path, 30.0)
    try:
        conn.close()
        assert keeper.wait(10) == 1
    finally:
        keeper.kill()
    assert record.read_text() == str(signal.SIGTERM)


def test_keeper_stops_bird_when_lvsha_is_silent_not_while_it_beats(tmp_path: Path) -> None:
    keeper, conn, record = keeper_with_fake_bird(tmp_path, 0.6)
    try:
        for _ in range(10):  # 1 s of heartbeats every 0.1 s: BIRD stays
            conn.sendall(b"heartbeat\n")
            time.sleep(0.1)
        assert keeper.poll() is None and not record.exists()
        assert keeper.wait(10) == 1  # then silence
    finally:
        keeper.kill()
        conn.close()
    assert record.read_text() == str(signal.SIGTERM)


def test_keeper_exits_with_birds_status(tmp_path: Path) -> None:
    keeper, conn, record = keeper_with_fake_bird(tmp_path, 30.0, life=0.2)
    try:
        assert keeper.wait(10) == 7
    finally:
        keeper.kill()
        conn.close()
    assert not record.exists()


def test_speaker_keeps_routes_set_before_run(tmp_path: Path) -> None:
    speaker = BirdSpeaker(config(tmp_path))
    speaker.set_routes([Route("203.0.113.100/32")])
    assert speaker.status()["desired"] == ["203.0.113.100/32"]
    assert speaker.status()["announced"] == [] and speaker.status()["pid"] is None
    assert [s["state"] for s in speaker.sessions()] == ["idle", "idle", "idle"]
    assert [s["peer"] for s in speaker.sessions()] == [p.address for p in PEERS]
