"""A private event loop in a thread, for kernel work that must not delay VRRP.

Dumping and parsing a large IPVS table through pyroute2 takes CPU time in
Python; done on the daemon's loop it would hold back advertisement timers.
Here it runs on its own loop in its own thread; the daemon awaits the result.
The GIL still serialises Python code, but it is released every few
milliseconds (sys.getswitchinterval), not after a whole dump.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """Runs coroutines on a dedicated loop; objects made there stay there."""

    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the thread's loop; await its result from the caller's loop."""
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return await asyncio.wrap_future(future)

    def stop(self, timeout: float = 1.0) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
        if not self._thread.is_alive():
            self._loop.close()
