"""An asyncio event loop on a virtual clock: time moves only when the loop is idle.

When nothing is ready, the selector does not sleep: it moves the loop's clock
straight to the next timer. Every sleep, timeout and call_at of the code
under test then runs in virtual time, so an hour of VRRP takes milliseconds
and a test reads exact times. Only in-memory fakes may do I/O under it.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _Selector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    def __init__(self, loop: VirtualClockLoop) -> None:
        super().__init__()
        self._vloop = loop

    def select(self, timeout: float | None = None) -> list[Any]:
        events: list[Any] = super().select(0)
        if events:
            return events
        if timeout is None:
            raise RuntimeError("virtual clock: nothing scheduled and nothing to wait for")
        self._vloop.now += max(timeout, 0.0)
        return []


class VirtualClockLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self.now = 1000.0
        super().__init__(selector=_Selector(self))

    def time(self) -> float:
        return self.now


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion on a fresh virtual-clock loop."""
    loop = VirtualClockLoop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
