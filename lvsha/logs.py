"""Structured logs: key=value on a terminal, JSON when asked or not on a tty."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog


def configure(log_format: str = "auto", level: int = logging.INFO) -> None:
    """Set up structlog once for the daemon's lifetime."""
    if log_format == "auto":
        log_format = "console" if sys.stderr.isatty() else "keyvalue"
    renderer: Any
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer()
    elif log_format == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    else:
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


def get(name: str) -> Any:
    return structlog.get_logger(name)
