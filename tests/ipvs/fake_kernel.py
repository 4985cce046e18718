"""An in-memory IPVS kernel for IpvsSync tests: the kernel's rules, every dump counted."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

from lvsha.adapters.ipvs import IpvsBatchError, StatsKey
from lvsha.core.desired import IpvsTable
from lvsha.core.reconcile import AddService, EditService, Operation, apply_to_table

SCHEDULERS = frozenset({"rr", "wrr", "lc", "wlc", "sh", "mh"})


class FakeIpvs:
    """Like adapters.ipvs.Ipvs: each operation answered on its own, the rest applied."""

    def __init__(self, table: IpvsTable | None = None) -> None:
        self.table = table or IpvsTable()
        self.stats: dict[StatsKey, dict[str, int]] = {}
        self.dumps = 0
        self.batches: list[list[Operation]] = []
        self.sync_daemon: str | None = None
        self.opened = self.closed = 0
        self.hold = threading.Event()  # set: a dump beside stops half-way (see dump)
        self.at_hold = threading.Event()
        self.dump_error: Exception | None = None  # raised by a dump beside

    async def open(self) -> None:
        self.opened += 1

    def close(self) -> None:
        self.closed += 1

    async def dump(self, beside: bool = False) -> IpvsTable:
        """The table; beside, with `hold` set: the first half, a wait, then the rest.

        A test holds a dump beside the passes in the middle (`at_hold` is set
        there), makes passes, then lets it go on: like the real one, it read
        its services at different moments.
        """
        self.dumps += 1
        if beside and self.dump_error is not None:
            raise self.dump_error
        if not beside or not self.hold.is_set():
            return self.table
        first = self.table.services[: len(self.table) // 2]
        self.at_hold.set()
        for _ in range(10_000):  # 10 s at most
            if not self.hold.is_set():
                break
            await asyncio.sleep(0.001)
        else:
            raise TimeoutError("the test never let the dump go on")
        rest = [s for s in self.table if s.key > first[-1].key] if first else list(self.table)
        return IpvsTable((*first, *rest))

    async def apply(self, ops: Sequence[Operation]) -> list[str]:
        self.batches.append(list(ops))
        applied: list[Operation] = []
        failed: list[tuple[Operation, str]] = []
        for op in ops:
            if isinstance(op, AddService | EditService) and op.service.scheduler not in SCHEDULERS:
                failed.append((op, "ENOENT (No such file or directory)"))
                continue
            try:
                self.table = apply_to_table(self.table, [op])
            except ValueError as exc:
                failed.append((op, f"refused: {exc}"))
            else:
                applied.append(op)
        if failed:
            raise IpvsBatchError(applied, failed)
        return [str(op) for op in applied]

    async def set_sync_daemon(self, state: str | None, interface: str, syncid: int = 0) -> None:
        self.sync_daemon = state
