"""A health change re-derives and plans only its own services (runtime/ipvs_loop.py).

The real HealthChecker (inline, not started: the test plays the worker and
hands it reports as its pipe reader does) feeds the real IpvsLoop, wired as
Daemon._health_changed wires them. Whatever sequence of flips, the table a
pass hands to IPVS equals the whole table derived from scratch, and the
pass names the services whose real servers flipped (and no service whose
real servers were not reported).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lvsha.adapters.checker import Report
from lvsha.config import parse_config
from lvsha.core.desired import IpvsTable, ServiceKey, desired_ipvs
from lvsha.core.health import QuorumGates, apply_health
from lvsha.runtime.health import HealthChecker
from lvsha.runtime.ipvs_loop import RESYNC, IpvsLoop
from tests.runtime import vclock

SERVICES = (
    "",  # plain: a failed real is removed
    "inhibit_on_failure = true\n",  # kept at weight 0
    "quorum = 2\nsorry_server = { address = '203.0.113.9', port = 8080 }\n",
)
REALS = 3


def config_text() -> str:
    text = []
    for i, extra in enumerate(SERVICES):
        text.append(f'[[virtual_server]]\naddress = "192.0.2.{i + 1}"\nport = 80\n{extra}')
        for j in range(REALS):
            text.append(
                f'[[virtual_server.real_server]]\naddress = "198.51.100.{j + 1}"\nport = 80\n'
                f"weight = {j + 1}\ntcp_check = {{ connect_timeout = 1 }}\n"
            )
    return "".join(text)


VSS = parse_config(config_text()).virtual_servers


class RecordingIpvs:
    """ports.Ipvs that keeps what each pass asked for."""

    def __init__(self) -> None:
        self.error: str | None = None
        self.passes = 0
        self.stats: dict[Any, dict[str, int]] = {}
        self.on_verified: Callable[[], None] = lambda: None
        self.calls: list[tuple[IpvsTable, frozenset[ServiceKey] | None]] = []

    def start(self) -> None:
        pass

    def verify_soon(self) -> None:
        pass

    async def apply(
        self, desired: IpvsTable, role: Any, changed: frozenset[ServiceKey] | None = None
    ) -> list[str]:
        self.passes += 1
        self.calls.append((desired, changed))
        return []

    async def close(self, cleanup: Any) -> list[str]:
        return []

    def status(self) -> dict[str, Any]:
        return {}


def rig() -> tuple[HealthChecker, IpvsLoop, RecordingIpvs]:
    ipvs = RecordingIpvs()

    def health_changed() -> None:  # as Daemon._health_changed
        loop.kick(checker.changed_services())

    checker = HealthChecker(VSS, health_changed, isolate=False)
    loop = IpvsLoop(ipvs, lambda: checker, lambda: VSS, lambda: None)
    return checker, loop, ipvs


def from_scratch(checker: HealthChecker) -> IpvsTable:
    """The whole table from the health map alone (hysteresis 0: the quorum is stateless)."""
    gates = QuorumGates()
    gates.update(VSS, checker.health())
    return desired_ipvs(apply_health(VSS, checker.health(), gates.up))


def report(checker: HealthChecker, position: int, healthy: bool) -> None:
    now = time.time()
    checker._report(Report(position, healthy, healthy, 0.001, now, now, "test", "test"))


flips = st.lists(
    st.lists(
        st.tuples(st.integers(0, len(SERVICES) * REALS - 1), st.booleans()),
        min_size=1,
        max_size=4,
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=80, deadline=None)
@given(flips)
def test_each_pass_holds_the_whole_table_and_names_only_the_reported_services(
    batches: list[list[tuple[int, bool]]],
) -> None:
    checker, loop, ipvs = rig()
    keys = [t.key for t in checker._targets]

    async def go() -> None:
        await loop.run_pass()  # start-up: the whole table
        assert ipvs.calls[-1][1] is None
        for batch in batches:
            before = dict(checker.health())
            for position, healthy in batch:
                report(checker, position, healthy)
            checker._flush_change()  # the end of one frame from the worker
            now = checker.health()
            flipped = {keys[p][0] for p, _ in batch if before[keys[p]] != now[keys[p]]}
            reported = {keys[p][0] for p, _ in batch}
            await loop.run_pass()
            desired, changed = ipvs.calls[-1]
            assert desired == from_scratch(checker)
            assert changed is not None and flipped <= changed <= reported

    asyncio.run(go())


def test_a_reload_or_a_failed_pass_makes_the_next_pass_whole() -> None:
    checker, loop, ipvs = rig()

    async def go() -> None:
        await loop.run_pass()
        report(checker, 0, False)
        checker._flush_change()
        await loop.run_pass()
        assert ipvs.calls[-1][1] == frozenset({ServiceKey("tcp", "192.0.2.1", 80)})
        checker.update(VSS)  # a reload: any service may have changed
        await loop.run_pass()
        assert ipvs.calls[-1][1] is None
        loop.kick()  # VRRP, an operator: the whole table
        await loop.run_pass()
        assert ipvs.calls[-1][1] is None
        report(checker, 3, False)
        checker._flush_change()
        real_apply = ipvs.apply

        async def refuse(*args: Any) -> list[str]:
            raise OSError("refused")

        ipvs.apply = refuse  # type: ignore[method-assign]
        assert not await loop.run_pass()
        ipvs.apply = real_apply  # type: ignore[method-assign]
        await loop.run_pass()
        desired, changed = ipvs.calls[-1]
        assert changed is None
        assert desired == from_scratch(checker)

    asyncio.run(go())


def test_a_whole_table_pass_comes_every_resync_however_often_health_kicks() -> None:
    """Health passes leave the verify to the periodic whole pass: it must never starve."""
    _checker, loop, ipvs = rig()
    service = ServiceKey("tcp", "192.0.2.1", 80)

    async def go() -> list[float]:
        clock = asyncio.get_running_loop()
        task = asyncio.create_task(loop.loop())
        whole: list[float] = []
        seen = 0
        try:
            for _ in range(int(3.5 * RESYNC)):  # a health change every second
                await asyncio.sleep(1.0)
                loop.kick({service})
                await asyncio.sleep(0)
                for _desired, changed in ipvs.calls[seen:]:
                    if changed is None:
                        whole.append(clock.time())
                seen = len(ipvs.calls)
        finally:
            task.cancel()
        return whole

    whole = vclock.run(go())
    assert len(whole) >= 3
    assert all(b - a <= RESYNC + 1.0 for a, b in itertools.pairwise(whole))


def test_a_verify_made_beside_the_passes_asks_for_a_whole_table_pass() -> None:
    """IpvsSync's on_verified is the loop's whole kick: the pass that takes the dump."""
    checker, loop, ipvs = rig()

    async def go() -> None:
        await loop.run_pass()
        report(checker, 0, False)
        checker._flush_change()  # a health kick, for one service
        ipvs.on_verified()  # the dump beside is done
        await loop.run_pass()
        assert ipvs.calls[-1][1] is None

    asyncio.run(go())
