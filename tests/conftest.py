"""Shared test setup: make `tests/lab.py` importable as `lab`, and its fixture."""

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lab import Lab


@pytest.fixture
def lab() -> Iterator[Lab]:
    """A LAN of namespaces, deleted when the test ends, also on failure."""
    the_lab = Lab()
    try:
        yield the_lab
    finally:
        the_lab.close()
