"""Give the heap freed by start-up back to the kernel: glibc's malloc_trim(3).

Loading the daemon allocates and frees a few megabytes (compiling, import
machinery); glibc keeps the freed pages in its arenas, so an idle director
would carry ~1 MB of RSS it never uses again (docs/benchmarks-vrrp.md,
"Lean start"). Called once, after start-up. Other C libraries (musl) have no
malloc_trim: then nothing happens.
"""

from __future__ import annotations

import ctypes


def trim() -> bool:
    """malloc_trim(0); True when memory was released, False otherwise or when absent."""
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.malloc_trim(0))
    except (OSError, AttributeError):
        return False
