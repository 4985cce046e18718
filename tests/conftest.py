"""Shared test setup: make `tests/lab.py` importable as `lab`, and its fixture."""

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lab as lab_module


@pytest.fixture
def lab() -> Iterator[lab_module.Lab]:
    """A LAN of namespaces, deleted when the test ends, also on failure."""
    with lab_module.lab() as the_lab:
        yield the_lab
