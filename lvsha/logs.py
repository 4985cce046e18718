"""Structured logs: readable on a terminal, key=value or JSON for files, and
journald fields (`LVSHA_INSTANCE`, `LVSHA_STATE`, ...) under systemd.

`auto` picks journald when systemd started us (JOURNAL_STREAM is set) and
systemd-python is installed, a readable console on a terminal, and key=value
otherwise.

An event is a name and keyword fields (`log.info("transition", instance=...)`).
The key=value and JSON lines are those structlog's KeyValueRenderer and
JSONRenderer wrote, which this module replaced: structlog and what it
imports (uuid, platform, pickle, datetime) were ~1.3 MB of a VRRP-only
director's idle memory and ~15 ms of its start (issue 13,
docs/benchmarks-vrrp.md "Third pass"), for four renderers of a few lines.
"""

from __future__ import annotations

import _thread
import os
import sys
import time
from collections.abc import Callable
from typing import Any

DEBUG, INFO, WARNING, ERROR, CRITICAL = 10, 20, 30, 40, 50  # the logging module's numbers
LEVELS = {"debug": DEBUG, "info": INFO, "warning": WARNING, "error": ERROR, "critical": CRITICAL}
SYSLOG_PRIORITY = {"debug": 7, "info": 6, "warning": 4, "error": 3, "critical": 2}
CONSOLE_LEVEL_WIDTH = 9  # structlog's console padding ("exception")
CONSOLE_EVENT_WIDTH = 30

Renderer = Callable[[dict[str, Any]], "str | None"]  # None: the renderer sent it itself


def timestamp(now: float | None = None) -> str:
    """ISO 8601 in UTC with microseconds, e.g. 2026-12-01T15:21:19.123456Z."""
    now = time.time() if now is None else now
    seconds = int(now)
    micros = round((now - seconds) * 1e6)
    if micros == 1_000_000:
        seconds, micros = seconds + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros:06d}Z"


def keyvalue(event: dict[str, Any]) -> str:
    """timestamp='...' level='info' event='...' then the fields in call order, each repr()."""
    first = [(k, event.pop(k)) for k in ("timestamp", "level", "event") if k in event]
    return " ".join(f"{k}={v!r}" for k, v in [*first, *event.items()])


def json_line(event: dict[str, Any]) -> str:
    import json

    return json.dumps(event, default=repr)


def console(event: dict[str, Any]) -> str:
    """For a person at a terminal: time, [level], the event, then sorted key=value."""
    stamp = event.pop("timestamp", "")
    level = str(event.pop("level", ""))
    name = str(event.pop("event", ""))
    fields = " ".join(
        f"{k}={v if isinstance(v, str) else repr(v)}" for k, v in sorted(event.items())
    )
    if fields:
        name = name.ljust(CONSOLE_EVENT_WIDTH)
    return f"{stamp} [{level.ljust(CONSOLE_LEVEL_WIDTH)}] {name} {fields}".rstrip()


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

    def __call__(self, event: dict[str, Any]) -> None:
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


class _Output:
    """Where every logger writes: one renderer, one threshold, one lock."""

    def __init__(self) -> None:
        self.render: Renderer = keyvalue
        self.threshold = INFO
        self.lock = _thread.allocate_lock()

    def emit(self, level: str, name: str, fields: dict[str, Any]) -> None:
        if LEVELS[level] < self.threshold:
            return
        event = {**fields, "event": name, "level": level, "timestamp": timestamp()}
        line = self.render(event)
        if line is None:
            return
        with self.lock:
            stream = sys.stderr
            stream.write(line + "\n")
            stream.flush()


_output = _Output()


class Logger:
    """`log.info("event", key=value, ...)`; the level and format are chosen by configure."""

    def __init__(self, name: str) -> None:
        self.name = name

    def debug(self, event: str, **fields: Any) -> None:
        _output.emit("debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        _output.emit("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        _output.emit("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        _output.emit("error", event, fields)

    def critical(self, event: str, **fields: Any) -> None:
        _output.emit("critical", event, fields)


def choose_format(requested: str) -> str:
    if requested != "auto":
        return requested
    if os.environ.get("JOURNAL_STREAM") and _journal() is not None:
        return "journald"
    return "console" if sys.stderr.isatty() else "keyvalue"


def configure(log_format: str = "auto", level: int = INFO) -> str:
    """Choose the format and threshold for the daemon's lifetime; returns the format used."""
    chosen = choose_format(log_format)
    render: Renderer
    if chosen == "journald" and (journal := _journal()) is not None:
        render = JournaldRenderer(journal)
    elif chosen == "json":
        render = json_line
    elif chosen == "console":
        render = console
    else:
        chosen = "keyvalue"  # also journald without systemd-python
        render = keyvalue
    _output.render, _output.threshold = render, level
    return chosen


def get(name: str) -> Logger:
    return Logger(name)
