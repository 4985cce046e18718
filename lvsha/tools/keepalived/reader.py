"""The keepalived.conf reader: text (and its includes) -> a tree of statements.

It reproduces keepalived's own parser (lib/parser.c of keepalived 2.2):
`!` and `#` comments outside double quotes, `"quoted words"`, braces that
split a line wherever they stand, `include` with globs relative to the
including file, brace expansion in include patterns, `$NAME=VALUE`
parameters and `@id` conditional lines. Each statement remembers its file
and line, so that every later message can point at it.

Bad input (unbalanced braces or quotes, an include loop) raises
`KeepalivedImportError` listing every problem as `FILE:LINE: message`.
"""

from __future__ import annotations

import glob
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from lvsha.errors import LvshaError

MAX_INCLUDE_DEPTH = 16
MAX_SUBSTITUTIONS = 32
MAX_FILE_BYTES = 4 * 1024 * 1024  # per file read; keepalived.conf files are kilobytes
MAX_TOTAL_BYTES = 16 * 1024 * 1024  # of all files and includes together
MAX_LINE = 64 * 1024  # characters of one line after $VAR substitution
MAX_ALTERNATIVES = 1024  # {a,b} alternatives of one include pattern
WHITE_SPACE = " \t\f\n\r\v"


class KeepalivedImportError(LvshaError):
    """The keepalived configuration cannot be read; each problem is `FILE:LINE: message`."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True, slots=True)
class Where:
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(slots=True)
class Statement:
    """One keepalived line (or the part of it between braces), with its block if any."""

    words: tuple[str, ...]
    raw: str  # the text before word splitting: scripts are re-split from it
    where: Where
    block: list[Statement] | None = None

    @property
    def keyword(self) -> str:
        return self.words[0]


@dataclass(frozen=True, slots=True)
class _Piece:
    text: str
    where: Where


_DEFINITION = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*(.*)\Z", re.S)
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)(?=[ \t,)]|\Z)")
INCLUDES = ("include", "includer", "includem", "includew", "includeb", "includea")


class _Reader:
    """keepalived's read_line(): comments, conditionals, parameters, includes, braces."""

    def __init__(self, config_id: str | None) -> None:
        self.config_id = config_id
        self.defs: dict[str, str] = {"_HASH": "#", "_BANG": "!"}
        if config_id is not None:
            self.defs["_INSTANCE"] = config_id
        self.pieces: list[_Piece] = []
        self.warnings: list[str] = []
        self.conditionals: list[Where] = []
        self.total = 0  # bytes read, over every include

    def read(self, path: Path, depth: int = 0, where: Where | None = None) -> None:
        prefix = f"{where}: " if where else ""
        try:
            data = _read_regular(path)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise KeepalivedImportError([f"{prefix}cannot read {path}: {reason}"]) from None
        self.total += len(data)
        if self.total > MAX_TOTAL_BYTES:
            raise KeepalivedImportError(
                [f"{prefix}{path}: the files read add up to more than {MAX_TOTAL_BYTES} bytes"]
            )
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("latin-1")  # keepalived reads bytes; old files may be Latin-1
            self.warnings.append(f"{path}: not UTF-8; read as Latin-1")
        pwd = self.defs.get("_PWD")
        self.defs["_PWD"] = str(path.parent.resolve())
        for number, line in enumerate(text.split("\n"), 1):
            self._line(line.rstrip("\r"), Where(str(path), number), path.parent, depth)
        if pwd is None:
            del self.defs["_PWD"]
        else:
            self.defs["_PWD"] = pwd

    def _fail(self, where: Where, message: str) -> NoReturn:
        raise KeepalivedImportError([f"{where}: {message}"])

    def _line(self, line: str, where: Where, directory: Path, depth: int) -> None:
        text = _decomment(line)
        if text is None:
            self._fail(where, "unterminated double quote")
        for _ in range(MAX_SUBSTITUTIONS):
            if not text:
                return
            if text.startswith("@"):
                kept = self._conditional(text, where)
                if kept is None:
                    return
                text = kept
            if text.startswith("$") and (match := _DEFINITION.match(text)):
                name, value = match.groups()
                if value.endswith("\\"):
                    self._fail(
                        where,
                        f"multi-line parameter ${name} is not supported: expand it by hand",
                    )
                self.defs[name] = value
                return
            if text.startswith("~"):
                self._fail(where, "~SEQ / ~LST blocks are not supported: expand them by hand")
            if "$" not in text:
                break
            replaced = _REFERENCE.sub(lambda m: self._value(m), text)
            if replaced == text:
                break
            if len(replaced) > MAX_LINE:
                self._fail(
                    where,
                    f"parameter substitution makes the line longer than {MAX_LINE} characters",
                )
            text = replaced
        else:
            self._fail(
                where, f"parameter substitution does not end after {MAX_SUBSTITUTIONS} rounds"
            )
        words = _split_words(text)
        if words is not None and len(words) == 2 and words[0] in INCLUDES:
            self._include(words[1], where, directory, depth)
            return
        for piece in _split_braces(text):
            self.pieces.append(_Piece(piece, where))

    def _value(self, match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return self.defs.get(name, match.group(0))

    def _conditional(self, text: str, where: Where) -> str | None:
        """`@id line` is read only on the node whose config id is `id`; `@^id` on the others."""
        negate = text.startswith("@^")
        rest = text[2:] if negate else text[1:]
        parts = re.split(r"[ \t]", rest, maxsplit=1)
        if len(parts) < 2:
            return None
        ident, line = parts
        if self.config_id is None:
            self.conditionals.append(where)
            return None
        if (ident == self.config_id) == negate:
            return None
        return line.lstrip(" \t")

    def _include(self, pattern: str, where: Where, directory: Path, depth: int) -> None:
        if depth >= MAX_INCLUDE_DEPTH:
            self._fail(where, f"includes nested deeper than {MAX_INCLUDE_DEPTH} (a loop?)")
        found = 0
        alternatives = _expand_braces(pattern)
        if alternatives is None:
            self._fail(where, f"include {pattern[:80]}: more than {MAX_ALTERNATIVES} alternatives")
        for alternative in alternatives:
            full = alternative if alternative.startswith("/") else str(directory / alternative)
            for name in sorted(glob.glob(full)):
                path = Path(name)
                if path.is_dir():
                    continue
                found += 1
                self.read(path, depth + 1, where)
        if not found:
            self.warnings.append(
                f"{where}: include {pattern}: no file matched (keepalived skips it too)"
            )


def _decomment(line: str) -> str | None:
    """Strip `!`/`#` comments outside double quotes (`\\#`, `\\!`: literal). None: open quote."""
    text = line.lstrip(" \t")
    out: list[str] = []
    quote = False
    i = 0
    while i < len(text):
        char = text[i]
        if char == '"':
            quote = not quote
        elif char == "\\" and i + 1 < len(text):
            if not quote and text[i + 1] in "#!":
                out.append(text[i + 1])
            else:
                out.append(text[i : i + 2])
            i += 2
            continue
        elif char in "#!" and not quote:
            break
        out.append(char)
        i += 1
    if quote:
        return None
    return "".join(out).rstrip(" \t")


def _split_braces(text: str) -> Iterator[str]:
    """A `{` or `}` outside double quotes is a line of its own, as in keepalived."""
    while text:
        if text[0] in "{}":
            yield text[0]
            text = text[1:].lstrip(" \t")
            continue
        i, cut = 0, -1
        while i < len(text):
            if text[i] == '"':
                close = text.find('"', i + 1)
                if close < 0:
                    break
                i = close + 1
                continue
            if text[i] in "{}":
                cut = i
                break
            i += 1
        if cut < 0:
            yield text.rstrip(" \t")
            return
        head = text[:cut].rstrip(" \t")
        if head:
            yield head
        text = text[cut:]


def _split_words(text: str) -> tuple[str, ...] | None:
    """keepalived's alloc_strvec: words split at blanks, `"..."` kept whole. None: open quote."""
    words: list[str] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in WHITE_SPACE:
            i += 1
        if i >= n:
            return tuple(words)
        if text[i] == '"':
            close = text.find('"', i + 1)
            if close < 0:
                return None
            words.append(text[i + 1 : close])
            i = close + 1
        else:
            start = i
            while i < n and text[i] not in WHITE_SPACE and text[i] != '"':
                i += 1
            words.append(text[start:i])


_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "E": "\x1b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
}


def quoted_escaped_words(text: str) -> list[str]:
    """keepalived's alloc_strvec_quoted_escaped: shell-like words for script lines.

    Both quote characters group words, and a backslash escapes like C. Raises
    ValueError on an unterminated quote.
    """
    words: list[str] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in WHITE_SPACE:
            i += 1
        if i >= n:
            return words
        word: list[str] = []
        quote = ""
        while i < n:
            char = text[i]
            if char == "\\":
                i, decoded = _escape(text, i + 1)
                word.append(decoded)
                continue
            if quote:
                if char == quote:
                    quote = ""
                else:
                    word.append(char)
                i += 1
                continue
            if char in "\"'":
                quote = char
                i += 1
                continue
            if char in WHITE_SPACE:
                break
            word.append(char)
            i += 1
        if quote:
            raise ValueError(f"missing terminating {quote}")
        words.append("".join(word))


def _escape(text: str, i: int) -> tuple[int, str]:
    """Decode the escape after a backslash at text[i]; return (next index, character)."""
    if i >= len(text):
        raise ValueError("backslash at the end of the line")
    char = text[i]
    if char == "x" and i + 1 < len(text) and text[i + 1] in "0123456789abcdefABCDEF":
        j = i + 1
        while j < len(text) and text[j] in "0123456789abcdefABCDEF":
            j += 1
        return j, chr(int(text[i + 1 : j], 16) & 0xFF)
    if char == "c" and i + 1 < len(text):
        return i + 2, chr(ord(text[i + 1]) & 0x1F)
    if "0" <= char <= "7":
        j = i
        while j < len(text) and j < i + 3 and "0" <= text[j] <= "7":
            j += 1
        return j, chr(int(text[i:j], 8) & 0xFF)
    return i + 1, _ESCAPES.get(char, char)


def _read_regular(path: Path) -> bytes:
    """A regular file's bytes, at most MAX_FILE_BYTES: never a device, FIFO or socket."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "not a regular file")
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_FILE_BYTES and (data := os.read(fd, 65536)):
            chunks.append(data)
            size += len(data)
        if size > MAX_FILE_BYTES:
            raise OSError(0, f"larger than {MAX_FILE_BYTES} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _expand_braces(pattern: str) -> list[str] | None:
    """csh-style `{a,b}` alternatives, as glob(GLOB_BRACE) expands them; None past the cap."""
    out: list[str] = []
    if not _expand_into(pattern, out):
        return None
    return out


def _expand_into(pattern: str, out: list[str]) -> bool:
    """Append the alternatives of `pattern` to `out`; False once MAX_ALTERNATIVES is passed."""
    depth, start = 0, -1
    for i, char in enumerate(pattern):
        if char == "{":
            if depth == 0:
                start = i
            depth += 1
        elif char == "}" and depth:
            depth -= 1
            if depth == 0:
                options, level, begin = [], 0, start + 1
                for j in range(start + 1, i):
                    if pattern[j] == "{":
                        level += 1
                    elif pattern[j] == "}":
                        level -= 1
                    elif pattern[j] == "," and level == 0:
                        options.append(pattern[begin:j])
                        begin = j + 1
                options.append(pattern[begin:i])
                head, tail = pattern[:start], pattern[i + 1 :]
                return all(_expand_into(head + opt + tail, out) for opt in options)
    out.append(pattern)
    return len(out) <= MAX_ALTERNATIVES


def _tree(pieces: list[_Piece]) -> list[Statement]:
    """Attach each `{ ... }` to the statement just before it; report unbalanced braces."""
    root: list[Statement] = []
    stack: list[tuple[list[Statement], Statement | None]] = [(root, None)]
    last: Statement | None = None
    for piece in pieces:
        if piece.text == "{":
            if last is None:
                raise KeepalivedImportError([f"{piece.where}: '{{' without a keyword before it"])
            last.block = []
            stack.append((last.block, last))
            last = None
        elif piece.text == "}":
            if len(stack) == 1:
                raise KeepalivedImportError([f"{piece.where}: '}}' closes no block (one too many)"])
            stack.pop()
            last = None
        else:
            words = _split_words(piece.text)
            if words is None:
                raise KeepalivedImportError([f"{piece.where}: unterminated double quote"])
            if not words:
                continue
            last = Statement(words, piece.text, piece.where)
            stack[-1][0].append(last)
    if len(stack) > 1:
        opened = stack[-1][1]
        assert opened is not None
        raise KeepalivedImportError(
            [
                f"{opened.where}: block '{' '.join(opened.words)}' is never closed "
                f"({len(stack) - 1} '}}' missing at the end of the input)"
            ]
        )
    return root


def parse(path: str | Path, config_id: str | None = None) -> tuple[list[Statement], list[str]]:
    """Read a keepalived.conf (and its includes) into statements, plus reader warnings."""
    reader = _Reader(config_id)
    reader.read(Path(path))
    warnings = list(reader.warnings)
    if reader.conditionals:
        lines = ", ".join(str(w) for w in reader.conditionals)
        warnings.append(
            f"conditional lines (@id ...) were skipped, as keepalived skips them on a node "
            f"whose config id matches none of them: {lines}"
        )
    return _tree(reader.pieces), warnings
