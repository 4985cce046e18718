"""Structured logs: readable on a terminal, key=value or JSON for files, and
journald fields (`LVSHA_INSTANCE`, `LVSHA_STATE`, ...) under systemd.

`auto` picks journald when systemd started us (JOURNAL_STREAM is set) and
systemd-python is installed, a readable console on a terminal, and key=value
otherwise.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import structlog

SYSLOG_PRIORITY = {"debug": 7, "info": 6, "warning": 4, "error": 3, "critical": 2}


def _journal() -> Any:
    try:
        from systemd import journal
    except ImportError:
        return None
    return journal


class JournaldRenderer:
    """Send each event to journald with its keys as upper-case LVSHA_* fields."""

    def __init__(self, journal: Any) -> None:
        self.journal = journal

    def __call__(self, logger: Any, name: str, event: dict[str, Any]) -> str:
        message = str(event.pop("event", ""))
        level = str(event.pop("level", "info"))
        event.pop("timestamp", None)
        fields = {f"LVSHA_{k.upper()}": str(v) for k, v in event.items()}
        details = " ".join(f"{k}={v}" for k, v in event.items())
        self.journal.send(
            f"{message} {details}".strip(),
            PRIORITY=str(SYSLOG_PRIORITY.get(level, 6)),
            SYSLOG_IDENTIFIER="lvsha",
            **fields,
        )
        raise structlog.DropEvent


def choose_format(requested: str) -> str:
    if requested != "auto":
        return requested
    if os.environ.get("JOURNAL_STREAM") and _journal() is not None:
        return "journald"
    return "console" if sys.stderr.isatty() else "keyvalue"


def configure(log_format: str = "auto", level: int = logging.INFO) -> str:
    """Set up structlog once for the daemon's lifetime; returns the format used."""
    chosen = choose_format(log_format)
    renderer: Any
    if chosen == "journald" and (journal := _journal()) is not None:
        renderer = JournaldRenderer(journal)
    elif chosen == "json":
        renderer = structlog.processors.JSONRenderer()
    elif chosen == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    else:
        chosen = "keyvalue" if chosen == "journald" else chosen  # no systemd-python
        renderer = structlog.processors.KeyValueRenderer(
            key_order=["timestamp", "level", "event"], drop_missing=True
        )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    return chosen


def get(name: str) -> Any:
    return structlog.get_logger(name)
