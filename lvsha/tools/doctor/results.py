"""What every `lvsha doctor` check returns, and how the findings are told.

A `Result` is one finding: OK / WARN / FAIL, a one-line message and a
one-line fix, so that each check can be called and tested alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from lvsha.exits import EX_FAILURE, EX_OK, EX_WARNINGS

MAX_FRAMES = 100_000  # bounded work, even on a flooded link


class Status(StrEnum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True, slots=True)
class Result:
    """One finding: which check, how bad, what it saw, and the one-line fix."""

    check: str
    status: Status
    message: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "check": self.check,
            "status": self.status.value,
            "message": self.message,
            "fix": self.fix,
        }


def exit_code(results: Iterable[Result]) -> int:
    """0 all OK, 1 any FAIL, 2 warnings only."""
    statuses = {r.status for r in results}
    if Status.FAIL in statuses:
        return EX_FAILURE
    return EX_WARNINGS if Status.WARN in statuses else EX_OK


def render(results: Iterable[Result]) -> str:
    lines = []
    for r in results:
        lines.append(f"{r.status.value:<5} {r.check}: {r.message}")
        if r.fix and r.status is not Status.OK:
            lines.append(f"      fix: {r.fix}")
    return "\n".join(lines)
