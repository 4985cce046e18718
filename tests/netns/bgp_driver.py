"""Stands in for lvsha in a director namespace: one speaker adapter, driven line by line.

Run as `python bgp_driver.py CONFIG_JSON`; reads commands on stdin and
answers each with one line: `routes P...` (set_routes), `run` (start run()
as a task), `close T`, `status` (JSON: status(), sessions(), how run()
ended). A process of its own, so that the tests can kill -9 or SIGSTOP
"lvsha" and watch the router.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lvsha import logs
from lvsha.adapters.bgp_speakers import speaker_for
from lvsha.config.model import BgpConfig, BgpPeerConfig
from lvsha.core.announce import Route


async def main() -> None:
    logs.configure("keyvalue")  # to stderr: stdout carries the answers
    raw = json.loads(sys.argv[1])
    raw["peers"] = tuple(BgpPeerConfig(**p) for p in raw["peers"])
    speaker = speaker_for(BgpConfig(**raw))
    task: asyncio.Task[None] | None = None
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        words = line.split()
        answer: Any = "ok"
        if words[0] == "routes":
            speaker.set_routes([Route(p) for p in words[1:]])
        elif words[0] == "run":
            task = asyncio.create_task(speaker.run())
        elif words[0] == "close":
            await speaker.close(float(words[1]))
            if task is not None:
                await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 5)
        elif words[0] == "status":
            ended = None
            if task is not None and task.done():
                ended = repr(task.exception()) if task.exception() else "returned"
            answer = {"status": speaker.status(), "sessions": speaker.sessions(), "ended": ended}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
