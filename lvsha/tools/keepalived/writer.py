"""The TOML writer: a TOML-shaped dict -> text, with the header that lists what was left out.

Only the types the translator produces (tables, arrays of tables, strings,
numbers, booleans, arrays); strings escaped as TOML 1.0 basic strings.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from lvsha import __version__
from lvsha.tools.keepalived.values import Table


def render_header(source: str, untranslated: list[str], warnings: list[str]) -> str:
    lines = [
        f"# lvsha configuration translated from {source} by `lvsha import-keepalived`",
        f"# (lvsha {__version__}). Review it, then run `lvsha check-config` on it.",
        "# See docs/migration.md for moving a keepalived pair one node at a time.",
    ]
    for title, items in (("Not translated", untranslated), ("Warnings", warnings)):
        if items:
            lines += ["#", f"# {title} ({len(items)}):"]
            lines += [f"#   - {_one_line(item)}" for item in items]
    return "\n".join(lines) + "\n\n"


def _one_line(text: str) -> str:
    """A header line: control and line-separator characters escaped, never raw.

    A keepalived file may hold anything in a keyword or value; written raw
    into a comment, a newline would end it and make the rest live TOML.
    """
    out = []
    for char in text:
        if char == "\n":
            out.append(" ")
        elif unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            out.append(f"\\u{ord(char):04x}" if ord(char) < 0x10000 else f"\\U{ord(char):08x}")
        else:
            out.append(char)
    return "".join(out)


def render_toml(data: Table) -> str:
    out: list[str] = ["[daemon]"]
    if not data["daemon"]:
        out.append("# name: the host name (keepalived's router_id was not set)")
    out += _keys("daemon", data["daemon"])
    for name, script in data.get("vrrp_script", {}).items():
        out += ["", f"[vrrp_script.{_key(name)}]", *_keys(f"vrrp_script.{_key(name)}", script)]
    for name, instance in data.get("vrrp", {}).items():
        out += ["", f"[vrrp.{_key(name)}]", *_keys(f"vrrp.{_key(name)}", instance)]
    for name, group in data.get("vrrp_sync_group", {}).items():
        out += ["", f"[vrrp_sync_group.{_key(name)}]"]
        out += _keys(f"vrrp_sync_group.{_key(name)}", group)
    for server in data.get("virtual_server", []):
        plain = {k: v for k, v in server.items() if k != "real_server"}
        out += ["", "[[virtual_server]]", *_keys("virtual_server", plain)]
        for real in server.get("real_server", []):
            out += ["", "[[virtual_server.real_server]]"]
            out += _keys("virtual_server.real_server", real)
    return "\n".join(out) + "\n"


def _keys(prefix: str, table: Table) -> list[str]:
    """`key = value` lines; a table too long for one line becomes a [prefix.key] section."""
    lines, sections = [], []
    for key, value in table.items():
        line = f"{_key(key)} = {_value(value)}"
        if isinstance(value, dict) and (len(line) > 100 or "\n" in line):
            sections += ["", f"[{prefix}.{_key(key)}]", *_keys(f"{prefix}.{_key(key)}", value)]
        else:
            lines.append(line)
    return lines + sections


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_string(key)


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return _array(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _array(items: list[Any]) -> str:
    text = "[" + ", ".join(_value(v) for v in items) + "]"
    if len(text) <= 80:
        return text
    lines, line = [], "   "
    for v in items:
        piece = f" {_value(v)},"
        if len(line) + len(piece) > 96:
            lines.append(line)
            line = "   "
        line += piece
    lines.append(line)
    return "[\n" + "\n".join(lines) + "\n]"


_TOML_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def toml_string(text: str) -> str:
    out = []
    for char in text:
        if char in _TOML_ESCAPES:
            out.append(_TOML_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'
