"""The tether's server side (adapters/bgp_child.py): heartbeats, one helper at a time."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from lvsha.adapters.bgp_child import SEND_BUFFER, Tether


def test_heartbeats_and_the_newest_helper_wins(tmp_path: Path) -> None:
    lines: list[str] = []
    connects: list[float] = []

    async def go() -> None:
        tether = Tether(tmp_path / "t.sock", 0.3, lines.append, lambda: connects.append(1))
        await tether.start()
        r1, w1 = await asyncio.open_unix_connection(str(tmp_path / "t.sock"))
        start = time.monotonic()
        assert await asyncio.wait_for(r1.readline(), 5) == b"heartbeat\n"
        assert await asyncio.wait_for(r1.readline(), 5) == b"heartbeat\n"
        assert time.monotonic() - start >= 0.05  # every liveness/3, not a flood
        w1.write(b"done\n")
        await w1.drain()
        r2, w2 = await asyncio.open_unix_connection(str(tmp_path / "t.sock"))
        assert await asyncio.wait_for(r2.readline(), 5) == b"heartbeat\n"
        # the old helper is let go: it sees EOF (and withdraws what it still holds)
        while await asyncio.wait_for(r1.readline(), 5):
            pass
        assert tether.send("announce route 203.0.113.100/32 next-hop self")
        assert (await asyncio.wait_for(r2.readline(), 5)).startswith(b"announce")
        await tether.close()
        assert not (tmp_path / "t.sock").exists()
        w1.close()
        w2.close()

    asyncio.run(go())
    assert lines == ["done"] and len(connects) == 2


def test_a_helper_that_does_not_read_is_dropped(tmp_path: Path) -> None:
    async def go() -> bool:
        tether = Tether(tmp_path / "t.sock", 30, lambda line: None)
        await tether.start()
        _reader, writer = await asyncio.open_unix_connection(str(tmp_path / "t.sock"))
        await asyncio.sleep(0.05)
        chunk = "x" * 65536
        sent = 0
        while tether.send(chunk) and sent < 4 * SEND_BUFFER:  # never read by the helper
            sent += len(chunk)
            await asyncio.sleep(0)
        dropped = tether.writer is None or tether.writer.is_closing()
        writer.close()
        await tether.close()
        return dropped and sent < 4 * SEND_BUFFER

    assert asyncio.run(go())
