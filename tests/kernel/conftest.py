"""Kernel tier: tests that need a kernel with IPVS, run inside User-Mode Linux.

On the host these tests are skipped (the host kernel may have no IPVS); run
them with `scripts/test-kernel`, which boots the UML kernel and runs pytest
inside it with RUN_IN_KERNEL set. Every test works in network namespaces it
creates and always deletes, with addresses from the documentation ranges only.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ipvslab import Peer, run

IN_KERNEL = bool(os.environ.get("RUN_IN_KERNEL"))
SKIP_REASON = "needs a kernel with IPVS: run scripts/test-kernel (boots User-Mode Linux)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.kernel)
            if not IN_KERNEL:
                item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


_counter = itertools.count()


@pytest.fixture
def netns() -> Iterator[Callable[[str], str]]:
    """Factory: netns("lb") -> a fresh namespace name with lo up; all deleted after."""
    made: list[str] = []

    def make(role: str) -> str:
        name = f"lvsha-{role}-{os.getpid()}-{next(_counter)}"
        run("ip", "netns", "add", name)
        made.append(name)
        # a fresh netns has no local table until lo is up: IPVS would refuse dests
        run("ip", "-n", name, "link", "set", "lo", "up")
        return name

    try:
        yield make
    finally:
        for name in reversed(made):
            run("ip", "netns", "del", name, check=False)


@pytest.fixture
def peers() -> Iterator[Callable[..., Peer]]:
    """Factory: peers(ns, "server", "rs1", "80") -> a running peers.py; all stopped after.

    Requested after `netns`, so processes stop before their namespaces go.
    """
    started: list[Peer] = []

    def start(ns: str, *args: str) -> Peer:
        peer = Peer(ns, *args)
        started.append(peer)
        return peer

    try:
        yield start
    finally:
        for peer in started:
            peer.stop()
