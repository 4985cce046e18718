"""Shared test setup: make `tests/lab.py` importable as `lab`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
