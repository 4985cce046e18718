"""The translator's notes and value readers: keepalived words -> checked Python values.

Every reader takes the `Notes` of the translation: a bad value is recorded
there as `FILE:LINE: keyword: message` (all of them, not the first one) and
the reader returns None, so that one run lists every problem.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from typing import Any

from lvsha.tools.keepalived.reader import WHITE_SPACE, Statement, quoted_escaped_words

# keepalived's defaults where they differ from lvsha's: written out explicitly.
KA_CONNECT_TIMEOUT = 5.0
KA_HTTP_STATUS = tuple(range(200, 300))
KA_FORWARDING = "nat"
KA_PERSISTENCE_TIMEOUT = 360

Table = dict[str, Any]

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\Z")
_INTEGER = re.compile(r"[+-]?\d+\Z")
_TRUE = ("on", "true", "yes")
_FALSE = ("off", "false", "no")
_SHELL_SYNTAX = re.compile(r"[|&;<>`$*?(){}\[\]~]")


MAX_DIGITS = 30


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:40] + "..."


class Notes:
    """What the translation could not carry over, and what it changed, plus fatal problems."""

    def __init__(self) -> None:
        self.untranslated: list[str] = []
        self.warnings: list[str] = []
        self.problems: list[str] = []
        self.critical: list[str] = []  # untranslated, and failover changes without it

    def skip(self, path: str, why: str) -> None:
        self.untranslated.append(f"{path}: {why}")

    def critical_skip(self, path: str, why: str) -> None:
        """Left out, and the pair fails over differently without it: the import fails."""
        self.skip(path, why)
        self.critical.append(f"{path}: {why}")

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(f"{path}: {message}")

    def bad(self, stmt: Statement, message: str) -> None:
        self.problems.append(f"{stmt.where}: {stmt.keyword}: {message}")

    def unknown(self, path: str, stmt: Statement) -> None:
        self.skip(f"{path}.{stmt.keyword}", f"unknown keyword at {stmt.where}, ignored")


# ----------------------------------------------------------------- values --


def arg(notes: Notes, stmt: Statement, index: int = 1) -> str | None:
    if len(stmt.words) <= index:
        notes.bad(stmt, "is missing its value")
        return None
    return stmt.words[index]


def int_arg(notes: Notes, stmt: Statement, low: int, high: int, index: int = 1) -> int | None:
    text = arg(notes, stmt, index)
    if text is None:
        return None
    if not _INTEGER.match(text):
        notes.bad(stmt, f"{_short(text)!r} is not an integer")
        return None
    if len(text.lstrip("+-0")) > MAX_DIGITS:  # int() refuses 4300 digits; nothing needs 30
        notes.bad(stmt, f"an integer of {len(text)} digits is outside {low}..{high}")
        return None
    value = int(text)
    if not low <= value <= high:
        notes.bad(stmt, f"{value} is outside {low}..{high}")
        return None
    return value


def float_arg(
    notes: Notes, stmt: Statement, low: float, high: float, index: int = 1
) -> float | None:
    text = arg(notes, stmt, index)
    if text is None:
        return None
    if not _NUMBER.match(text):
        notes.bad(stmt, f"{_short(text)!r} is not a number")
        return None
    if len(text) > MAX_DIGITS * 4:
        notes.bad(stmt, f"{_short(text)!r} is outside {low:g}..{high:g}")
        return None
    value = float(text)
    if not low <= value <= high:
        notes.bad(stmt, f"{_short(text)} is outside {low:g}..{high:g}")
        return None
    return value


def flag_arg(notes: Notes, stmt: Statement) -> bool | None:
    """`keyword [<BOOL>]`: no value means true."""
    if len(stmt.words) < 2:
        return True
    word = stmt.words[1].lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    notes.bad(stmt, f"{stmt.words[1]!r} is not one of on/off/true/false/yes/no")
    return None


def ipv4_arg(notes: Notes, stmt: Statement, text: str) -> str | None:
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        notes.bad(stmt, f"{text!r} is not an IPv4 address")
        return None


def is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Interface(text)
    except ValueError:
        return False
    return True


def ifname_arg(notes: Notes, stmt: Statement, text: str) -> str | None:
    if not text or len(text) > 15 or "/" in text or any(c in WHITE_SPACE for c in text):
        notes.bad(stmt, f"{text!r} is not an interface name")
        return None
    return text


def command_arg(notes: Notes, stmt: Statement, path: str) -> list[str] | None:
    """A keepalived script line -> argv: re-split the raw line as keepalived does, then shlex."""
    try:
        words = quoted_escaped_words(stmt.raw)
    except ValueError as exc:
        notes.bad(stmt, f"cannot split the command: {exc}")
        return None
    if len(words) < 2 or not words[1].strip():
        notes.bad(stmt, "is missing its command")
        return None
    try:
        argv = shlex.split(words[1])
    except ValueError as exc:
        notes.bad(stmt, f"cannot split {words[1]!r} into arguments: {exc}")
        return None
    if len(words) > 2:
        notes.skip(
            f"{path}.{stmt.keyword}",
            f"runs as user {' '.join(words[2:4])} in keepalived; lvsha runs it as its own user "
            "(root). If those words were meant as arguments, quote the command with them",
        )
    message = f"runs as argv {argv} without a shell"
    if _SHELL_SYNTAX.search(words[1]):
        message += " (it contains shell syntax, which is now passed literally: wrap it in a script)"
    notes.warn(f"{path}.{stmt.keyword}", message)
    return argv


def set_key(table: Table, key: str, value: object) -> None:
    if value is not None:
        table[key] = value


def ordered(table: Table, order: tuple[str, ...]) -> Table:
    return {k: table[k] for k in order if k in table} | {
        k: v for k, v in table.items() if k not in order
    }
