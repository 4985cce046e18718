"""`lvsha import-keepalived FILE`: read, translate, write, then check with lvsha's own parser.

The result is checked with `parse_config` (as a whole director file) before it is returned: a
translation that would not pass `lvsha check-config` says so. `main`
turns every problem into an exit code (`lvsha.exits`), never a traceback.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lvsha.config import parse_config
from lvsha.errors import ConfigError
from lvsha.exits import EX_CANTCREAT, EX_CONFIG, EX_OK
from lvsha.tools.keepalived.reader import KeepalivedImportError, parse
from lvsha.tools.keepalived.translator import translate
from lvsha.tools.keepalived.writer import render_header, render_toml


@dataclass(frozen=True, slots=True)
class Conversion:
    """The translated TOML and what the operator must know about it."""

    toml: str
    untranslated: list[str] = field(default_factory=list)  # "keepalived.path: why"
    warnings: list[str] = field(default_factory=list)
    # why the pair would fail over differently, or nothing was translated: exit non-zero
    failures: list[str] = field(default_factory=list)


def convert(path: str | Path, config_id: str | None = None) -> Conversion:
    """Translate a keepalived.conf (and its includes) into lvsha TOML.

    `config_id` plays keepalived's `-i`: it selects the `@id` conditional lines;
    without it they are skipped and listed. Raises KeepalivedImportError when
    the input cannot be parsed.
    """
    stmts, reader_warnings = parse(path, config_id)
    data, notes = translate(stmts)
    if notes.problems:
        raise KeepalivedImportError(notes.problems)
    warnings = reader_warnings + notes.warnings
    body = render_toml(data)
    try:
        config = parse_config(body, director=True)  # as `lvsha check-config` reads it
    except ConfigError as exc:
        warnings += [f"output does not pass check-config: {p}" for p in exc.problems]
    else:
        warnings += [f"lvsha check-config: {w}" for w in config.warnings]
    failures = list(notes.critical)
    if not data.get("vrrp") and not data.get("virtual_server"):
        failures.append("the import yields no vrrp_instance and no virtual_server")
    header = render_header(str(path), notes.untranslated, warnings)
    return Conversion(header + body, notes.untranslated, warnings, failures)


def main(path: str, output: str | None, config_id: str | None = None) -> int:
    """`lvsha import-keepalived FILE [-o OUTPUT]`: TOML to stdout or OUTPUT, notes to stderr.

    Returns 0; 78 (EX_CONFIG) when the input cannot be parsed, the result would
    not pass check-config (OUTPUT is then not written), nothing was translated,
    or something was left out that changes failover (VRRPv3, AH, a `reverse`
    weight...); 73 (EX_CANTCREAT) when OUTPUT cannot be written.
    """
    prog = "lvsha import-keepalived"
    try:
        result = convert(path, config_id)
    except KeepalivedImportError as exc:
        for problem in exc.problems:
            print(f"{prog}: {problem}", file=sys.stderr)
        print(f"{prog}: {path}: cannot be translated", file=sys.stderr)
        return EX_CONFIG
    invalid = any(w.startswith("output does not pass") for w in result.warnings)
    if output is not None and invalid:
        for item in result.warnings:
            print(f"{prog}: warning: {item}", file=sys.stderr)
        print(
            f"{prog}: {output} not written: the output does not pass check-config", file=sys.stderr
        )
        return EX_CONFIG
    if output is None:
        sys.stdout.write(result.toml)
        sys.stdout.flush()
    else:
        try:
            if Path(output).resolve() == Path(path).resolve():
                raise OSError(0, "it is the keepalived file being translated")
            old = os.umask(0o022)
            os.umask(old | 0o022)  # its hooks run as root: never group- or world-writable
            try:
                Path(output).write_text(result.toml, encoding="utf-8")
            finally:
                os.umask(old)
        except OSError as exc:
            print(f"{prog}: cannot write {output}: {exc.strerror or exc}", file=sys.stderr)
            return EX_CANTCREAT
    for item in result.untranslated:
        print(f"{prog}: not translated: {item}", file=sys.stderr)
    for item in result.warnings:
        print(f"{prog}: warning: {item}", file=sys.stderr)
    for item in result.failures:
        print(f"{prog}: changes failover: {item}", file=sys.stderr)
    print(
        f"{prog}: {path}: {len(result.untranslated)} setting(s) not translated, "
        f"{len(result.warnings)} warning(s)"
        + ("; THE OUTPUT NEEDS FIXING" if invalid else "")
        + ("; THE PAIR WOULD FAIL OVER DIFFERENTLY" if result.failures else ""),
        file=sys.stderr,
    )
    return EX_CONFIG if invalid or result.failures else EX_OK
