"""adapters/heap.py: freed heap really goes back to the kernel (RssAnon drops)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lvsha.adapters import heap


def rss_anon_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    raise AssertionError("no RssAnon in /proc/self/status")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc and /proc")
def test_trim_returns_freed_heap_to_the_kernel() -> None:
    chunks = [bytes(1000) + bytes([i % 256]) for i in range(30_000)]  # ~30 MB of malloc'd blocks
    pinned = bytes(1000) + b"top"  # allocated last: the heap cannot simply shrink from the top
    del chunks
    before = rss_anon_kb()
    assert heap.trim() is True
    after = rss_anon_kb()
    assert before - after > 10_000, (before, after)
    assert pinned.endswith(b"top")
