"""Typed reading of one TOML table, recording every problem under its key path.

Everything here must survive any value TOML can hold: integers of thousands
of digits (Python refuses to print those), arrays nested as deep as the
parser allows, keys with control characters. A problem message is built
with `shown()`, never with a bare `str()` or `repr()` of the value.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from typing import Any, TypeVar

from lvsha.config.limits import Bounds, IntBounds

T = TypeVar("T")

Check = Callable[[T], str | None]

# Longer values are cut in messages; longer keys get no "did you mean".
SHOWN_MAX = 80
HINT_MAX = 64
BIG_INT_DIGITS = 30


class Table:
    """Typed access to one TOML table that records problems under its path."""

    def __init__(self, data: Any, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        self.data: dict[str, Any] = data if isinstance(data, dict) else {}
        self.known: set[str] = set()
        if not isinstance(data, dict):
            self.problem("", f"must be a table, not {type_name(data)}")

    def key(self, name: str) -> str:
        part = key_part(name)
        return f"{self.path}.{part}" if self.path else part

    def problem(self, name: str, message: str) -> None:
        where = self.key(name) if name else self.path
        self.problems.append(f"{where}: {message}")

    def get(self, name: str, kind: type[T], default: T, check: Check[T] | None = None) -> T:
        self.known.add(name)
        if name not in self.data:
            return default
        value = self.data[name]
        ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = _as_float(value), True
            if isinstance(value, int) and check is None:  # too big for a float
                self.problem(name, f"must be a number a float can hold, not {shown(value)}")
                return default
        if isinstance(value, float) and math.isnan(value):
            self.problem(name, "must be a number, not nan")
            return default
        if not ok:
            self.problem(name, f"must be {kind_name(kind)}, not {type_name(value)}")
            return default
        if check is not None and (message := check(value)) is not None:
            self.problem(name, message)
            return default
        return value  # type: ignore[no-any-return]

    def required(self, name: str, kind: type[T], default: T, check: Check[T] | None = None) -> T:
        if name not in self.data:
            self.known.add(name)
            self.problem(name, "is required")
            return default
        return self.get(name, kind, default, check)

    def strings(self, name: str, check: Check[str] | None = None) -> tuple[str, ...]:
        items = self.get(name, list, [])
        out: list[str] = []
        for i, item in enumerate(items):
            if not isinstance(item, str):
                self.problem(f"{name}[{i}]", f"must be a string, not {type_name(item)}")
            elif check is not None and (message := check(item)) is not None:
                self.problem(f"{name}[{i}]", message)
            else:
                out.append(item)
        return tuple(out)

    def argv(self, name: str, check: Check[str] | None = None) -> tuple[str, ...]:
        """A command as argv: run without a shell, so no quoting surprises."""
        argv = self.strings(name, check)
        raw = self.data.get(name)
        if name in self.data and (
            not isinstance(raw, list)
            or not raw
            or any(not s or not isinstance(s, str) for s in raw)
        ):
            self.problem(name, "must be a non-empty array of non-empty strings (argv, no shell)")
        return argv

    def finish(self) -> None:
        """Report every key nobody asked for, with the nearest valid name."""
        for name in self.data:
            if name in self.known:
                continue
            near = []
            if len(name) <= HINT_MAX:
                near = difflib.get_close_matches(name, sorted(self.known), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            self.problem(name, f"unknown key{hint}")


def _as_float(value: int) -> float | int:
    """An integer where a number goes; one too big for a float stays an integer.

    The range check that follows refuses it and names it by its digits.
    """
    try:
        return float(value)
    except OverflowError:
        return value


def key_part(name: str) -> str:
    """One key of a path as written, quoted (JSON-style) if it would garble a terminal."""
    if name.isprintable() and len(name) <= SHOWN_MAX:
        return name
    return shown(name)


def shown(value: object) -> str:
    """A value for a message: repr() for short ones, a summary for monsters."""
    if isinstance(value, bool):
        return repr(value).lower()
    if isinstance(value, int):
        digits = _digits(value)
        return f"an integer of {digits} digits" if digits > BIG_INT_DIGITS else str(value)
    if isinstance(value, float):
        return str(value)
    if isinstance(value, str):
        text = value if len(value) <= SHOWN_MAX else value[:SHOWN_MAX] + "..."
        return ascii(text) if not text.isprintable() else repr(text)
    return type_name(value)


def _digits(value: int) -> int:
    """Decimal digits without str(), which refuses more than 4300 of them."""
    return max(1, math.ceil(abs(value).bit_length() * math.log10(2)))


def kind_name(kind: type) -> str:
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        list: "an array",
        dict: "a table",
    }.get(kind, kind.__name__)


def type_name(value: object) -> str:
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "a boolean",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def between(bounds: Bounds | IntBounds) -> Check[Any]:
    """A range check; the message gives the whole range in digits."""

    def check(value: Any) -> str | None:
        if value in bounds:
            return None
        return f"must be {_num(bounds.low)}..{_num(bounds.high)}, not {shown(value)}"

    return check


def one_of(choices: tuple[str, ...] | list[str]) -> Check[str]:
    def check(value: str) -> str | None:
        if value in choices:
            return None
        return f"must be one of {', '.join(choices)}, not {shown(value)}"

    return check


def _num(value: float) -> str:
    """2147483647, not 2.14748e+09; 0.1 stays 0.1; inf stays inf."""
    if math.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return f"{value:g}"
