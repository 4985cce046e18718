"""`lvsha import-keepalived FILE`: keepalived.conf in, lvsha TOML out.

Two halves. The reader reproduces keepalived's own parser (lib/parser.c of
keepalived 2.2): `!` and `#` comments outside double quotes, `"quoted words"`,
braces that split a line wherever they stand, `include` with globs relative to
the including file, `$NAME=VALUE` parameters and `@id` conditional lines. It
turns the text into a tree of statements that remember their file and line.

The translator walks that tree and writes only keys that lvsha/config.py
accepts. Whatever has no lvsha equivalent is dropped and listed, each entry
`keepalived.path: why`, in the output's header and on stderr: a migration
must never lose a setting silently. The result is checked with lvsha's own
`parse_config` before it is returned.

Bad input (unbalanced braces or quotes, bad numbers and addresses) raises
`KeepalivedImportError` listing every problem as `FILE:LINE: message`; `main`
turns it into exit status 78, never a traceback.
"""

from __future__ import annotations

import glob
import ipaddress
import os
import re
import shlex
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from lvsha import __version__
from lvsha.config import PASS_MAX_OCTETS, SCHEDULERS, parse_config
from lvsha.core.desired import SCHEDULER_FLAG_BITS
from lvsha.errors import ConfigError, LvshaError

EX_OK = 0
EX_CANTCREAT = 73
EX_CONFIG = 78

MAX_INCLUDE_DEPTH = 16
MAX_SUBSTITUTIONS = 32
WHITE_SPACE = " \t\f\n\r\v"

# keepalived's defaults where they differ from lvsha's: written out explicitly.
KA_CONNECT_TIMEOUT = 5.0
KA_HTTP_STATUS = tuple(range(200, 300))
KA_FORWARDING = "nat"
KA_PERSISTENCE_TIMEOUT = 360

Table = dict[str, Any]


class KeepalivedImportError(LvshaError):
    """The keepalived configuration cannot be read; each problem is `FILE:LINE: message`."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True, slots=True)
class Conversion:
    """The translated TOML and what the operator must know about it."""

    toml: str
    untranslated: list[str] = field(default_factory=list)  # "keepalived.path: why"
    warnings: list[str] = field(default_factory=list)


# ===================================================================== reader


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

    def read(self, path: Path, depth: int = 0, where: Where | None = None) -> None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            prefix = f"{where}: " if where else ""
            reason = exc.strerror or str(exc)
            raise KeepalivedImportError([f"{prefix}cannot read {path}: {reason}"]) from None
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
        for alternative in _expand_braces(pattern):
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


def _expand_braces(pattern: str) -> list[str]:
    """csh-style `{a,b}` alternatives, as glob(GLOB_BRACE) expands them."""
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
                return [x for opt in options for x in _expand_braces(head + opt + tail)]
    return [pattern]


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


# ================================================================= translator

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\Z")
_INTEGER = re.compile(r"[+-]?\d+\Z")
_TRUE = ("on", "true", "yes")
_FALSE = ("off", "false", "no")
_SHELL_SYNTAX = re.compile(r"[|&;<>`$*?(){}\[\]~]")

NO_MAIL = "lvsha sends no e-mail; use the notify hooks or the Prometheus metrics to alert"
NO_SCRIPTS = (
    "lvsha has no tracking scripts: an instance's priority changes only with track_interface "
    "(FAULT); run the check outside lvsha and stop lvsha (or take the interface down) on failure"
)
NO_TRACK_WEIGHT = (
    "lvsha has no weighted tracking: a tracked interface that goes down puts the instance in "
    "FAULT; it never changes the priority"
)
NO_VMAC = "lvsha does not create VRRP virtual MAC interfaces: the VIPs use the interface's MAC"
NO_ROUTES = (
    "lvsha manages only the VIPs: configure routes, rules and static addresses in the system's "
    "network configuration (ifupdown, systemd-networkd)"
)
ONE_CHECK = "lvsha runs one check per real server"
NO_RS_HOOKS = (
    "lvsha has no per-real-server or quorum hooks: follow health in `lvsha status` or the metrics"
)

GLOBAL_REASONS: dict[str, str] = {
    **dict.fromkeys(
        [
            "notification_email",
            "notification_email_from",
            "smtp_server",
            "smtp_helo_name",
            "smtp_connect_timeout",
            "smtp_alert",
            "smtp_alert_vrrp",
            "smtp_alert_checker",
            "email_faults",
            "no_email_faults",
        ],
        NO_MAIL,
    ),
    "enable_script_security": "lvsha runs hooks and checks as its own user (root), without a shell",
    "script_user": "lvsha runs hooks and checks as its own user (root), without a shell",
    "vrrp_strict": "lvsha has no strict mode (it adds no firewall rules; it always checks TTL "
    "and the address list of adverts)",
    "vrrp_skip_check_adv_addr": "lvsha always compares the address list of an advert with its "
    "own and discards a mismatch (RFC 3768 section 7.1)",
    "vrrp_check_unicast_src": "lvsha always accepts unicast adverts only from unicast_peers",
    "vrrp_garp_lower_prio_delay": "lvsha sends no gratuitous ARP on hearing a lower priority",
    "vrrp_garp_lower_prio_repeat": "lvsha sends no gratuitous ARP on hearing a lower priority",
    "vrrp_gna_interval": "lvsha speaks IPv4 only (no neighbour advertisements)",
    "vrrp_mcast_group6": "lvsha speaks IPv4 only",
    "vrrp_iptables": "lvsha adds no firewall rules",
    "vrrp_ipsets": "lvsha adds no firewall rules",
    "vrrp_notify_fifo": "lvsha has no notify FIFO: use the notify hooks or `lvsha status --json`",
    "notify_fifo": "lvsha has no notify FIFO: use the notify hooks or `lvsha status --json`",
    "lvs_notify_fifo": "lvsha has no notify FIFO: use the notify hooks or `lvsha status --json`",
    "lvs_flush": "lvsha never flushes the IPVS table: it changes only the services it owns",
    "lvs_flush_on_stop": "set ipvs_cleanup_on_stop = true on the services to remove them on stop",
    "lvs_timeouts": "set the IPVS timeouts with `ipvsadm --set` in the system's start-up instead",
    "default_interface": "lvsha has no static addresses, so no default interface",
}
TOP_REASONS: dict[str, str] = {
    "vrrp_sync_group": "lvsha has no sync groups: each instance fails over on its own; give the "
    "instances the same priorities and track the same interfaces so that they move together",
    "vrrp_script": NO_SCRIPTS,
    "vrrp_track_process": NO_SCRIPTS,
    "vrrp_track_file": NO_SCRIPTS,
    "track_file": NO_SCRIPTS,
    "track_group": NO_SCRIPTS,
    "bfd_instance": "lvsha has no BFD",
    "static_ipaddress": NO_ROUTES,
    "static_routes": NO_ROUTES,
    "static_rules": NO_ROUTES,
    "virtual_server_group": "lvsha has no virtual server groups: write one [[virtual_server]] "
    "per address and port",
    "SSL": "lvsha's ssl_get uses the system CAs when verify_certificate = true and sends no "
    "client certificate",
    "garp_group": "lvsha has no gratuitous ARP groups: set garp_interval on the instances",
    "linkbeat_interfaces": "lvsha watches links through netlink only",
    "interface_up_down_delays": "lvsha reacts to link changes at once",
    "net_namespace": "run lvsha itself in the namespace (e.g. `ip netns exec NAME lvsha run`)",
    "net_namespace_ipvs": "run lvsha itself in the namespace",
    "namespace_with_ipsets": "lvsha adds no firewall rules",
    "instance": "lvsha has one instance per configuration file",
    "use_pid_dir": "lvsha writes no pid file (systemd tracks it)",
    "child_wait_time": "lvsha is one process",
    "linkbeat_use_polling": "lvsha watches links through netlink only",
}
INSTANCE_REASONS: dict[str, str] = {
    "use_vmac": NO_VMAC,
    "vmac_xmit_base": NO_VMAC,
    "use_vmac_addr": NO_VMAC,
    "use_ipvlan": NO_VMAC,
    "native_ipv6": "lvsha speaks VRRPv2 over IPv4 only",
    "dont_track_primary": "lvsha always tracks the instance's own interface",
    "track_script": NO_SCRIPTS,
    "track_file": NO_SCRIPTS,
    "track_process": NO_SCRIPTS,
    "track_bfd": "lvsha has no BFD",
    "mcast_dst_ip": "lvsha always sends multicast adverts to 224.0.0.18",
    "track_src_ip": "lvsha does not watch the source address",
    "unicast_fault_no_peer": "lvsha falls back to multicast when no unicast peer is listed",
    "unicast_ttl": "lvsha sends adverts with TTL 255 and requires 255 (RFC 3768 section 7.1)",
    "old_unicast_checksum": "a VRRPv3 setting; lvsha speaks VRRPv2",
    "garp_lower_prio_delay": "lvsha sends no gratuitous ARP on hearing a lower priority",
    "garp_lower_prio_repeat": "lvsha sends no gratuitous ARP on hearing a lower priority",
    "garp_extra_if": "lvsha announces the VIPs on their own interfaces only",
    "down_timer_adverts": "lvsha uses the RFC's master_down_interval (3 x advert_int + skew)",
    "lower_prio_no_advert": "lvsha answers a lower priority as RFC 3768 says",
    "higher_prio_send_advert": "lvsha yields to a higher priority as RFC 3768 says",
    "virtual_ipaddress_excluded": "lvsha has no excluded VIPs; after the migration add them to "
    "virtual_ipaddress on both nodes at once (they then appear in the adverts)",
    "promote_secondaries": "set net.ipv4.conf.IFNAME.promote_secondaries=1 with sysctl instead",
    "virtual_routes": NO_ROUTES,
    "virtual_rules": NO_ROUTES,
    "no_accept": "lvsha always accepts packets for the VIPs while master",
    "skip_check_adv_addr": GLOBAL_REASONS["vrrp_skip_check_adv_addr"],
    "strict_mode": GLOBAL_REASONS["vrrp_strict"],
    "debug": "no equivalent; lvsha logs state changes and discarded adverts with reasons",
    "notify_stop": "lvsha has no notify_stop: it runs `notify` with state STOP on shutdown",
    "notify_master_rx_lower_pri": "lvsha has no hook for a lower-priority advert",
    "notify_priority_changes": "lvsha has no notify FIFO",
    "smtp_alert": NO_MAIL,
    "kernel_rx_buf_size": "lvsha leaves the socket buffers at the kernel's defaults",
    "linkbeat_use_polling": "lvsha watches links through netlink only",
    "vrf": "lvsha binds to the interface, not to a VRF",
}
VS_REASONS: dict[str, str] = {
    "quorum_up": NO_RS_HOOKS,
    "quorum_down": NO_RS_HOOKS,
    "ha_suspend": "lvsha checks real servers whether or not the VIP is held",
    "omega": NO_RS_HOOKS,
    "smtp_alert": NO_MAIL,
    "snmp_name": "lvsha has no SNMP; see the Prometheus metrics",
    "persistence_engine": "lvsha sets no IPVS persistence engine",
    "sorry_server_inhibit": "lvsha removes the sorry server when the quorum returns",
    "sorry_server_lvs_method": "lvsha's sorry server uses the service's forwarding",
    "hashed": "lvsha sets no `hashed` flag",
}
RS_REASONS: dict[str, str] = {
    "notify_up": NO_RS_HOOKS,
    "notify_down": NO_RS_HOOKS,
    "uthreshold": "lvsha sets no connection thresholds",
    "lthreshold": "lvsha sets no connection thresholds",
    "smtp_alert": NO_MAIL,
    "snmp_name": "lvsha has no SNMP; see the Prometheus metrics",
}
CHECKER_REASONS: dict[str, str] = {
    "bindto": "lvsha checks from the director's own address",
    "bind_port": "lvsha checks from an ephemeral port",
    "bind_if": "lvsha checks from the director's own address",
    "fwmark": "lvsha does not mark check packets",
    "log_all_failures": "lvsha logs every change of health, not every failed attempt",
    "fast_recovery": "lvsha checks one URL, so there is nothing to speed up",
}
OTHER_CHECKERS = {
    "SMTP_CHECK": "lvsha has no SMTP check (use misc_check with a small script)",
    "DNS_CHECK": "lvsha has no DNS check (use misc_check, e.g. with dig)",
    "UDP_CHECK": "lvsha has no UDP check (use misc_check)",
    "PING_CHECK": "lvsha has no ICMP check (use tcp_check or misc_check)",
    "BFD_CHECK": "lvsha has no BFD",
    "FILE_CHECK": "lvsha has no file check (use misc_check, e.g. `test -e FILE`)",
}
CHECKERS = ("TCP_CHECK", "HTTP_GET", "SSL_GET", "MISC_CHECK", *OTHER_CHECKERS)


class _Notes:
    """What the translation could not carry over, and what it changed, plus fatal problems."""

    def __init__(self) -> None:
        self.untranslated: list[str] = []
        self.warnings: list[str] = []
        self.problems: list[str] = []

    def skip(self, path: str, why: str) -> None:
        self.untranslated.append(f"{path}: {why}")

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(f"{path}: {message}")

    def bad(self, stmt: Statement, message: str) -> None:
        self.problems.append(f"{stmt.where}: {stmt.keyword}: {message}")

    def unknown(self, path: str, stmt: Statement) -> None:
        self.skip(f"{path}.{stmt.keyword}", f"unknown keyword at {stmt.where}, ignored")


# ----------------------------------------------------------------- values --


def _arg(notes: _Notes, stmt: Statement, index: int = 1) -> str | None:
    if len(stmt.words) <= index:
        notes.bad(stmt, "is missing its value")
        return None
    return stmt.words[index]


def _int(notes: _Notes, stmt: Statement, low: int, high: int, index: int = 1) -> int | None:
    text = _arg(notes, stmt, index)
    if text is None:
        return None
    if not _INTEGER.match(text):
        notes.bad(stmt, f"{text!r} is not an integer")
        return None
    value = int(text)
    if not low <= value <= high:
        notes.bad(stmt, f"{value} is outside {low}..{high}")
        return None
    return value


def _float(notes: _Notes, stmt: Statement, low: float, high: float, index: int = 1) -> float | None:
    text = _arg(notes, stmt, index)
    if text is None:
        return None
    if not _NUMBER.match(text):
        notes.bad(stmt, f"{text!r} is not a number")
        return None
    value = float(text)
    if not low <= value <= high:
        notes.bad(stmt, f"{text} is outside {low:g}..{high:g}")
        return None
    return value


def _flag(notes: _Notes, stmt: Statement) -> bool | None:
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


def _ipv4(notes: _Notes, stmt: Statement, text: str) -> str | None:
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        notes.bad(stmt, f"{text!r} is not an IPv4 address")
        return None


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Interface(text)
    except ValueError:
        return False
    return True


def _ifname(notes: _Notes, stmt: Statement, text: str) -> str | None:
    if not text or len(text) > 15 or "/" in text or any(c in WHITE_SPACE for c in text):
        notes.bad(stmt, f"{text!r} is not an interface name")
        return None
    return text


def _command(notes: _Notes, stmt: Statement, path: str) -> list[str] | None:
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


# --------------------------------------------------------------- walking --


@dataclass
class _GlobalDefaults:
    instance: Table = field(default_factory=dict)  # garp defaults for every instance
    sync_daemon: _SyncDaemon | None = None


def _global_defs(stmts: list[Statement], notes: _Notes, daemon: Table) -> _GlobalDefaults:
    out = _GlobalDefaults()
    for stmt in stmts:
        kw = stmt.keyword
        path = f"global_defs.{kw}"
        if kw == "router_id":
            if (value := _arg(notes, stmt)) is not None:
                daemon["name"] = value
        elif kw == "vrrp_garp_master_delay":
            _set(out.instance, "garp_master_delay", _float(notes, stmt, 0, 3600))
        elif kw == "vrrp_garp_master_repeat":
            _garp_repeat(notes, stmt, path, out.instance, "garp_master_repeat")
        elif kw == "vrrp_garp_master_refresh":
            _set(out.instance, "garp_master_refresh", _float(notes, stmt, 0, 86400))
        elif kw == "vrrp_garp_master_refresh_repeat":
            _garp_repeat(notes, stmt, path, out.instance, "garp_master_refresh_repeat")
        elif kw == "vrrp_garp_interval":
            _garp_interval(notes, stmt, path, out.instance)
        elif kw == "vrrp_min_garp":
            if _flag(notes, stmt):
                out.instance.update(garp_master_repeat=1, garp_master_delay=0)
        elif kw == "vrrp_mcast_group4":
            if _arg(notes, stmt) != "224.0.0.18":
                notes.skip(path, "lvsha always uses 224.0.0.18 for multicast adverts")
        elif kw == "vrrp_version":
            if _int(notes, stmt, 2, 3) == 3:
                notes.skip(path, "lvsha speaks VRRPv2 only: its peer must run VRRPv2 too")
        elif kw == "lvs_sync_daemon":
            out.sync_daemon = _lvs_sync_daemon(notes, stmt, path)
        elif kw in GLOBAL_REASONS:
            notes.skip(path, GLOBAL_REASONS[kw])
        else:
            notes.skip(path, "no lvsha equivalent")
    return out


def _set(table: Table, key: str, value: object) -> None:
    if value is not None:
        table[key] = value


def _garp_repeat(notes: _Notes, stmt: Statement, path: str, table: Table, key: str) -> None:
    value = _int(notes, stmt, 0, 2**31 - 1)
    if value is None:
        return
    if not 1 <= value <= 100:
        notes.skip(path, f"{value} is outside lvsha's 1..100; lvsha's default is used")
    else:
        table[key] = value


def _garp_interval(notes: _Notes, stmt: Statement, path: str, table: Table) -> None:
    value = _float(notes, stmt, 0, 86400)
    if value is None:
        return
    if value > 10:
        notes.skip(path, f"{value:g} s is above lvsha's 10 s; lvsha's default 0 is used")
    else:
        table["garp_interval"] = value


@dataclass(frozen=True, slots=True)
class _SyncDaemon:
    """global_defs' `lvs_sync_daemon`, placed on its instance once the instances are known."""

    interface: str
    instance: str | None
    syncid: int | None


def _lvs_sync_daemon(notes: _Notes, stmt: Statement, path: str) -> _SyncDaemon | None:
    """`lvs_sync_daemon IFNAME [[inst] INSTANCE] [id N] [maxlen N] [port N] [ttl N] [group A]`."""
    words = list(stmt.words[1:])
    if not words:
        notes.bad(stmt, "is missing its interface")
        return None
    interface = _ifname(notes, stmt, words.pop(0))
    instance: str | None = None
    syncid: int | None = None
    extras: list[str] = []
    while words:
        word = words.pop(0)
        if word == "id" and words:
            syncid = _int(notes, Statement((word, words.pop(0)), stmt.raw, stmt.where), 0, 255)
        elif word in ("maxlen", "port", "ttl", "group") and words:
            extras.append(f"{word} {words.pop(0)}")
        elif word == "inst" and words:
            instance = words.pop(0)
        elif instance is None:
            instance = word
        else:
            extras.append(word)
    if extras:
        notes.skip(
            f"{path} {' '.join(extras)}",
            "lvsha sets only the sync daemon's interface and id (the kernel's defaults for "
            "port, TTL, group and packet size)",
        )
    return None if interface is None else _SyncDaemon(interface, instance, syncid)


def _instance(
    name: str, stmts: list[Statement], notes: _Notes, defaults: _GlobalDefaults
) -> Table | None:
    """One vrrp_instance -> [vrrp.NAME], or None when lvsha cannot run it."""
    path = f"vrrp_instance.{name}"
    out: Table = {}
    vips: list[str] = []
    state: str | None = None
    nopreempt: Statement | None = None
    src: str | None = None
    for stmt in stmts:
        kw = stmt.keyword
        key = f"{path}.{kw}"
        if kw == "state":
            value = _arg(notes, stmt)
            if value not in (None, "MASTER", "BACKUP"):
                notes.skip(key, f"{value!r} is not MASTER or BACKUP (keepalived uses BACKUP)")
            elif value is not None:
                state = value
        elif kw == "interface":
            if (value := _arg(notes, stmt)) is not None:
                _set(out, "interface", _ifname(notes, stmt, value))
        elif kw == "virtual_router_id":
            _set(out, "virtual_router_id", _int(notes, stmt, 1, 255))
        elif kw == "priority":
            _set(out, "priority", _int(notes, stmt, 1, 255))
        elif kw == "advert_int":
            _advert_int(notes, stmt, key, out)
        elif kw == "nopreempt":
            nopreempt = stmt
        elif kw == "preempt":
            nopreempt = None
        elif kw == "preempt_delay":
            _set(out, "preempt_delay", _float(notes, stmt, 0, 1000))
        elif kw == "authentication":
            _authentication(stmt.block or [], notes, key, out)
        elif kw == "virtual_ipaddress":
            vips.extend(_vips(stmt.block or [], notes, key))
        elif kw in ("unicast_src_ip", "mcast_src_ip"):
            if (value := _arg(notes, stmt)) is not None:
                if _is_ipv6(value):
                    notes.skip(key, "lvsha speaks IPv4 only")
                elif kw == "unicast_src_ip" or src is None:
                    src = _ipv4(notes, stmt, value)
        elif kw == "unicast_peer":
            _unicast_peers(stmt.block or [], notes, key, out)
        elif kw == "track_interface":
            _track_interfaces(stmt.block or [], notes, key, out)
        elif kw == "lvs_sync_daemon_interface":
            if (value := _arg(notes, stmt)) is not None:
                _set(out, "sync_daemon_interface", _ifname(notes, stmt, value))
        elif kw in ("notify", "notify_master", "notify_backup", "notify_fault"):
            _set(out, kw, _command(notes, stmt, path))
        elif kw == "garp_master_delay":
            _set(out, kw, _float(notes, stmt, 0, 3600))
        elif kw == "garp_master_refresh":
            _set(out, kw, _float(notes, stmt, 0, 86400))
        elif kw in ("garp_master_repeat", "garp_master_refresh_repeat"):
            _garp_repeat(notes, stmt, key, out, kw)
        elif kw == "garp_interval":
            _garp_interval(notes, stmt, key, out)
        elif kw == "version":
            if _int(notes, stmt, 2, 3) == 3:
                notes.skip(key, "lvsha speaks VRRPv2 only: its peer must run VRRPv2 too")
        elif kw in ("accept", "check_unicast_src"):
            pass  # what lvsha always does
        elif kw in INSTANCE_REASONS:
            notes.skip(key, INSTANCE_REASONS[kw])
        else:
            notes.unknown(path, stmt)
    if src is not None:
        out["unicast_src_ip"] = src
    if vips:
        out["virtual_ipaddress"] = vips
    for k, v in defaults.instance.items():
        out.setdefault(k, v)
    priority = out.get("priority", 100)
    if nopreempt is not None:
        if priority == 255:
            notes.skip(
                f"{path}.nopreempt",
                "an address owner (priority 255) always preempts; keepalived resets it too",
            )
        else:
            out["preempt"] = False
    if state is not None:
        _state(notes, f"{path}.state", state, priority)
    missing = [k for k in ("interface", "virtual_router_id") if k not in out]
    if "virtual_ipaddress" not in out:
        missing.append("virtual_ipaddress (an IPv4 VIP)")
    if missing:
        notes.skip(path, f"the whole instance: lvsha needs {', '.join(missing)}")
        return None
    return _ordered(out, INSTANCE_ORDER)


INSTANCE_ORDER = (
    "interface",
    "virtual_router_id",
    "priority",
    "advert_int",
    "preempt",
    "preempt_delay",
    "authentication",
    "virtual_ipaddress",
    "unicast_src_ip",
    "unicast_peers",
    "track_interface",
    "sync_daemon_interface",
    "notify",
    "notify_master",
    "notify_backup",
    "notify_fault",
    "garp_master_delay",
    "garp_master_repeat",
    "garp_interval",
    "garp_master_refresh",
    "garp_master_refresh_repeat",
)


def _ordered(table: Table, order: tuple[str, ...]) -> Table:
    return {k: table[k] for k in order if k in table} | {
        k: v for k, v in table.items() if k not in order
    }


def _state(notes: _Notes, path: str, state: str, priority: int) -> None:
    if state == "MASTER" and priority < 255:
        notes.skip(
            path,
            "informational: lvsha starts every instance as BACKUP (except priority 255) and "
            "becomes MASTER by election, as keepalived 2.x does below priority 255",
        )
    elif state == "BACKUP" and priority == 255:
        notes.skip(path, "lvsha makes an address owner (priority 255) MASTER at once")


def _advert_int(notes: _Notes, stmt: Statement, path: str, out: Table) -> None:
    value = _float(notes, stmt, 0.01, 255)
    if value is None:
        return
    whole = max(1, int(value + 0.5))
    if whole != value:
        notes.warn(
            path,
            f"{value:g} s rounded to {whole} s: VRRPv2 carries whole seconds "
            "(keepalived rounds too); it must match the peer's",
        )
    out["advert_int"] = whole


def _authentication(stmts: list[Statement], notes: _Notes, path: str, out: Table) -> None:
    kind: str | None = None
    password: str | None = None
    for stmt in stmts:
        if stmt.keyword == "auth_type":
            kind = _arg(notes, stmt)
            if kind not in (None, "PASS", "AH"):
                notes.bad(stmt, f"{kind!r} is not PASS or AH")
                kind = None
        elif stmt.keyword == "auth_pass":
            password = _arg(notes, stmt)
        else:
            notes.unknown(path, stmt)
    if kind == "AH":
        notes.skip(
            f"{path}.auth_type",
            "AH (IPsec-style authentication) is not implemented by lvsha, which sends adverts "
            "without authentication: a keepalived peer using AH discards them, so switch the "
            "peer to PASS or none before migrating",
        )
    elif kind == "PASS" and password:
        octets = password.encode()
        if len(octets) > PASS_MAX_OCTETS:
            password = octets[:PASS_MAX_OCTETS].decode(errors="ignore")
            notes.warn(
                f"{path}.auth_pass",
                f"cut to its first {PASS_MAX_OCTETS} octets {password!r}: keepalived sends only "
                "those, and lvsha refuses a longer password",
            )
        out["authentication"] = {"type": "pass", "password": password}
    elif kind == "PASS":
        notes.skip(f"{path}.auth_type", "PASS without auth_pass: sent without authentication")


VIP_FLAGS = ("home", "-nodad", "nodad", "mngtmpaddr", "noprefixroute", "autojoin", "no_track")
VIP_OPTIONS = ("brd", "broadcast", "scope", "label", "peer", "preferred_lft", "track_group")


def _vips(stmts: list[Statement], notes: _Notes, path: str) -> list[str]:
    """`ADDR[/LEN] [dev IF] [brd ..] [scope ..] [label ..] ...` -> "ADDR/LEN [dev IF]"."""
    out = []
    for stmt in stmts:
        address, *options = stmt.words
        if _is_ipv6(address):
            notes.skip(f"{path}[{address}]", "lvsha speaks IPv4 only (keepalived ignores it too)")
            continue
        try:
            iface = ipaddress.IPv4Interface(address)
        except ValueError:
            notes.bad(stmt, f"{address!r} is not an IPv4 address with an optional /prefixlen")
            continue
        text = f"{iface.ip}/{iface.network.prefixlen}"
        dropped = []
        while options:
            word = options.pop(0)
            if word == "dev" and options:
                if (device := _ifname(notes, stmt, options.pop(0))) is not None:
                    text += f" dev {device}"
            elif word in VIP_OPTIONS and options:
                dropped.append(f"{word} {options.pop(0)}")
            elif word in VIP_FLAGS or word == "use_vmac":
                dropped.append(word)
            else:
                dropped.append(word)
        if dropped:
            notes.skip(
                f"{path}[{address}] {' '.join(dropped)}",
                "lvsha adds a VIP with its address, prefix length and device only "
                "(default broadcast and scope, no label)",
            )
        out.append(text)
    return out


def _unicast_peers(stmts: list[Statement], notes: _Notes, path: str, out: Table) -> None:
    peers: list[str] = out.setdefault("unicast_peers", [])
    for stmt in stmts:
        address = stmt.keyword
        if _is_ipv6(address):
            notes.skip(f"{path}[{address}]", "lvsha speaks IPv4 only")
            continue
        if (peer := _ipv4(notes, stmt, address)) is not None:
            peers.append(peer)
        if len(stmt.words) > 1:
            notes.skip(
                f"{path}[{address}] {' '.join(stmt.words[1:])}",
                "lvsha requires TTL 255 on every advert (RFC 3768 section 7.1)",
            )
    if not peers:
        del out["unicast_peers"]


def _track_interfaces(stmts: list[Statement], notes: _Notes, path: str, out: Table) -> None:
    tracked: list[str] = out.setdefault("track_interface", [])
    for stmt in stmts:
        if len(stmt.words) > 1:
            rest = " ".join(stmt.words[1:])
            weight = stmt.words[2] if len(stmt.words) > 2 and stmt.words[1] == "weight" else "?"
            if weight == "0" and rest == "weight 0":
                pass  # weight 0 is the unweighted FAULT behaviour
            else:
                notes.skip(f"{path}[{stmt.keyword}] {rest}", NO_TRACK_WEIGHT)
                continue
        if (name := _ifname(notes, stmt, stmt.keyword)) is not None:
            tracked.append(name)
    if not tracked:
        del out["track_interface"]


# ---------------------------------------------------------- virtual servers --


@dataclass
class _Inherited:
    """Settings a virtual server passes to its real servers, and these to their checkers."""

    connect_timeout: float | None = None
    retry: int | None = None
    delay_before_retry: float | None = None
    warmup: float | None = None
    delay_loop: float | None = None
    virtualhost: str | None = None
    alpha: bool | None = None
    inhibit_on_failure: bool | None = None
    forwarding: str | None = None


def _inherited(notes: _Notes, stmt: Statement, into: _Inherited, path: str) -> bool:
    """Read one inheritable keyword; False when `stmt` is not one."""
    kw = stmt.keyword
    if kw == "connect_timeout":
        _setattr(into, kw, _float(notes, stmt, 0.01, 3600))
    elif kw in ("retry", "nb_get_retry"):
        _setattr(into, "retry", _int(notes, stmt, 0, 100))
    elif kw == "delay_before_retry":
        _setattr(into, kw, _float(notes, stmt, 0, 3600))
    elif kw == "warmup":
        _setattr(into, kw, _float(notes, stmt, 0, 86400))
    elif kw == "delay_loop":
        _setattr(into, kw, _float(notes, stmt, 0.1, 86400))
    elif kw == "virtualhost":
        _setattr(into, kw, _arg(notes, stmt))
    elif kw in ("alpha", "inhibit_on_failure"):
        _setattr(into, kw, _flag(notes, stmt))
    elif kw in ("lb_kind", "lvs_method"):
        method = _arg(notes, stmt)
        if method not in (None, "NAT", "DR", "TUN"):
            notes.bad(stmt, f"{method!r} is not NAT, DR or TUN")
        elif method is not None:
            into.forwarding = method.lower()
            if len(stmt.words) > 2:
                notes.skip(
                    f"{path}.{kw} {' '.join(stmt.words[2:])}",
                    "lvsha sets no tunnel type or checksum options (plain IPIP)",
                )
    else:
        return False
    return True


def _setattr(obj: object, name: str, value: object) -> None:
    if value is not None:
        setattr(obj, name, value)


def _merge(*layers: _Inherited) -> _Inherited:
    """Later layers override earlier ones, as keepalived's VS -> RS -> checker defaults."""
    out = _Inherited()
    for layer in layers:
        for name in out.__dataclass_fields__:
            if (value := getattr(layer, name)) is not None:
                setattr(out, name, value)
    return out


def _virtual_server(stmt: Statement, notes: _Notes) -> Table | None:
    words = stmt.words[1:]
    if not words:
        notes.bad(stmt, "is missing its address (ADDRESS [PORT], fwmark N or group NAME)")
        return None
    out: Table = {}
    if words[0] == "group":
        notes.skip(
            f"virtual_server group {' '.join(words[1:])}", TOP_REASONS["virtual_server_group"]
        )
        return None
    if words[0] == "fwmark":
        fwmark = _int(notes, stmt, 1, 2**32 - 1, index=2)
        if fwmark is None:
            return None
        path = f"virtual_server(fwmark {fwmark})"
        out["fwmark"] = fwmark
    else:
        if _is_ipv6(words[0]):
            notes.skip(f"virtual_server({' '.join(words)})", "lvsha speaks IPv4 only")
            return None
        address = _ipv4(notes, stmt, words[0])
        port: int | None = 0 if len(words) < 2 else _int(notes, stmt, 0, 65535, index=2)
        if address is None or port is None:
            return None
        path = (
            f"virtual_server({address}:{port})" if len(words) > 1 else f"virtual_server({address})"
        )
        out.update(address=address, port=port)
    vs = _Inherited()
    reals: list[Statement] = []
    flags: list[str] = []
    for sub in stmt.block or []:
        kw = sub.keyword
        key = f"{path}.{kw}"
        if _inherited(notes, sub, vs, path):
            continue
        if kw in ("lb_algo", "lvs_sched"):
            scheduler = _arg(notes, sub)
            if scheduler is not None and scheduler not in SCHEDULERS:
                notes.bad(sub, f"{scheduler!r} is not an IPVS scheduler")
            elif scheduler is not None:
                out["scheduler"] = scheduler
        elif kw in SCHEDULER_FLAG_BITS and kw != "onepacket":
            flags.append(kw)
        elif kw == "protocol":
            proto = _arg(notes, sub)
            if proto is not None and proto.lower() not in ("tcp", "udp", "sctp"):
                notes.bad(sub, f"{proto!r} is not TCP, UDP or SCTP")
            elif proto is not None and "fwmark" in out:
                notes.skip(key, "ignored for a firewall-mark service (keepalived ignores it too)")
            elif proto is not None:
                out["protocol"] = proto.lower()
        elif kw == "persistence_timeout":
            if len(sub.words) < 2:
                out["persistence_timeout"] = KA_PERSISTENCE_TIMEOUT
            else:
                _set(out, "persistence_timeout", _int(notes, sub, 0, 2678400))
        elif kw == "persistence_granularity":
            _netmask(notes, sub, key, out)
        elif kw == "quorum":
            _set(out, "quorum", _int(notes, sub, 0, 2**32 - 1))
        elif kw == "hysteresis":
            _set(out, "hysteresis", _int(notes, sub, 0, 2**32 - 1))
        elif kw == "sorry_server":
            _sorry_server(notes, sub, out)
        elif kw == "real_server":
            reals.append(sub)
        elif kw == "ip_family":
            if _arg(notes, sub) != "inet":
                notes.skip(key, "lvsha speaks IPv4 only")
        elif kw in VS_REASONS:
            notes.skip(key, VS_REASONS[kw])
        else:
            notes.unknown(path, sub)
    if "persistence_netmask" in out and not out.get("persistence_timeout"):
        out["persistence_timeout"] = KA_PERSISTENCE_TIMEOUT  # keepalived does the same
    out["forwarding"] = vs.forwarding or KA_FORWARDING
    if vs.delay_loop is not None:
        out["delay_loop"] = vs.delay_loop
    if flags:
        out["scheduler_flags"] = flags
    translated = [r for r in (_real_server(r, notes, path, vs) for r in reals) if r]
    servers = [table for table, _ in translated]
    inhibit = {flag for _, flag in translated}
    if len(inhibit) == 1:
        if inhibit.pop():
            out["inhibit_on_failure"] = True
    elif inhibit:
        out["inhibit_on_failure"] = bool(vs.inhibit_on_failure)
        notes.skip(
            f"{path}.real_server.inhibit_on_failure",
            "lvsha sets inhibit_on_failure per virtual server; the real servers disagree, so "
            f"the virtual server's setting ({out['inhibit_on_failure']}) is used for all",
        )
    if servers:
        out["real_server"] = servers
    return _ordered(out, VS_ORDER)


VS_ORDER = (
    "address",
    "port",
    "fwmark",
    "protocol",
    "scheduler",
    "scheduler_flags",
    "forwarding",
    "persistence_timeout",
    "persistence_netmask",
    "delay_loop",
    "quorum",
    "hysteresis",
    "inhibit_on_failure",
    "sorry_server",
    "real_server",
)


def _netmask(notes: _Notes, stmt: Statement, path: str, out: Table) -> None:
    text = _arg(notes, stmt)
    if text is None:
        return
    if "." not in text:
        notes.skip(path, "an IPv6 prefix length; lvsha speaks IPv4 only")
        return
    try:
        mask = ipaddress.IPv4Network(f"0.0.0.0/{text}")
    except ValueError:
        notes.bad(stmt, f"{text!r} is not a contiguous IPv4 netmask")
        return
    out["persistence_netmask"] = str(mask.netmask)


def _sorry_server(notes: _Notes, stmt: Statement, out: Table) -> None:
    text = _arg(notes, stmt)
    address = None if text is None else _ipv4(notes, stmt, text)
    sorry: Table = {"address": address}
    if len(stmt.words) > 2:
        _set(sorry, "port", _int(notes, stmt, 0, 65535, index=2))
    if address is not None:
        out["sorry_server"] = sorry


def _real_server(
    stmt: Statement, notes: _Notes, vs_path: str, vs: _Inherited
) -> tuple[Table, bool] | None:
    """One real_server -> ([[virtual_server.real_server]], its inhibit_on_failure)."""
    words = stmt.words[1:]
    if not words:
        notes.bad(stmt, "is missing its address")
        return None
    if _is_ipv6(words[0]):
        notes.skip(f"{vs_path}.real_server({' '.join(words)})", "lvsha speaks IPv4 only")
        return None
    address = _ipv4(notes, stmt, words[0])
    port = _int(notes, stmt, 0, 65535, index=2) if len(words) > 1 else None
    if address is None or (len(words) > 1 and port is None):
        return None
    where = f"{address}:{port}" if port is not None else address
    path = f"{vs_path}.real_server({where})"
    out: Table = {"address": address}
    if port is not None:
        out["port"] = port
    rs = _Inherited()
    checkers: list[Statement] = []
    for sub in stmt.block or []:
        kw = sub.keyword
        if _inherited(notes, sub, rs, path):
            continue
        if kw == "weight":
            _set(out, "weight", _int(notes, sub, 0, 65535))
        elif kw in CHECKERS:
            checkers.append(sub)
        elif kw in RS_REASONS:
            notes.skip(f"{path}.{kw}", RS_REASONS[kw])
        else:
            notes.unknown(path, sub)
    service_forwarding = vs.forwarding or KA_FORWARDING
    if rs.forwarding is not None and rs.forwarding != service_forwarding:
        notes.skip(
            f"{path}.lvs_method",
            f"lvsha forwards every real server of a service the same way ({service_forwarding})",
        )
    _same_delay_loop(notes, f"{path}.delay_loop", rs.delay_loop, vs.delay_loop)
    effective = _merge(vs, rs)
    level = _checks(checkers, notes, path, effective, out)
    if (level or effective).alpha:
        out["initial_state"] = "down"
    return _ordered(out, RS_ORDER), bool(effective.inhibit_on_failure)


def _same_delay_loop(notes: _Notes, path: str, own: float | None, service: float | None) -> None:
    if own is not None and own != (service if service is not None else 60.0):
        notes.skip(path, "lvsha checks every real server at its service's delay_loop")


RS_ORDER = (
    "address",
    "port",
    "weight",
    "retry",
    "delay_before_retry",
    "warmup",
    "initial_state",
    "tcp_check",
    "http_get",
    "ssl_get",
    "misc_check",
)


def _checks(
    checkers: list[Statement], notes: _Notes, path: str, inherited: _Inherited, out: Table
) -> _Inherited | None:
    """Translate the first usable checker into `out`; list the others. Its settings or None."""
    chosen: tuple[str, _Inherited] | None = None
    for stmt in checkers:
        kw = stmt.keyword
        key = f"{path}.{kw}"
        if kw in OTHER_CHECKERS:
            notes.skip(key, OTHER_CHECKERS[kw])
        elif chosen is not None:
            notes.skip(key, f"{ONE_CHECK}: the first one ({chosen[0]}) is kept")
        elif (translated := _checker(stmt, notes, key, inherited)) is not None:
            name, check, level = translated
            out[name] = check
            _set(out, "retry", level.retry)
            _set(out, "delay_before_retry", level.delay_before_retry)
            _set(out, "warmup", level.warmup)
            chosen = (kw, level)
    if chosen is not None and len(checkers) > 1:
        notes.warn(
            path,
            f"keepalived required all {len(checkers)} checkers to pass; lvsha runs only "
            f"the {chosen[0]}",
        )
    return None if chosen is None else chosen[1]


def _checker(
    stmt: Statement, notes: _Notes, path: str, inherited: _Inherited
) -> tuple[str, Table, _Inherited] | None:
    """One TCP_CHECK / HTTP_GET / SSL_GET / MISC_CHECK -> (lvsha key, table, its settings)."""
    kw = stmt.keyword
    http = kw in ("HTTP_GET", "SSL_GET")
    own = _Inherited()
    check: Table = {}
    urls: list[Statement] = []
    argv: list[str] | None = None
    sni = False
    for sub in stmt.block or []:
        sk = sub.keyword
        key = f"{path}.{sk}"
        if sk not in ("lb_kind", "lvs_method") and _inherited(notes, sub, own, path):
            continue
        if sk == "connect_ip" and kw != "MISC_CHECK":
            if (value := _arg(notes, sub)) is not None:
                _set(check, "connect_ip", _ipv4(notes, sub, value))
        elif sk == "connect_port" and kw != "MISC_CHECK":
            _set(check, "connect_port", _int(notes, sub, 1, 65535))
        elif sk == "url" and http:
            urls.append(sub)
        elif sk == "http_protocol" and http:
            if _arg(notes, sub) != "1.0":
                notes.skip(key, "lvsha sends an HTTP/1.0 GET and closes the connection")
        elif sk == "enable_sni" and kw == "SSL_GET":
            sni = True
        elif sk == "misc_path" and kw == "MISC_CHECK":
            argv = _command(notes, sub, path)
        elif sk == "misc_timeout" and kw == "MISC_CHECK":
            _set(check, "timeout", _float(notes, sub, 0.01, 3600))
        elif sk == "misc_dynamic" and kw == "MISC_CHECK":
            notes.skip(key, "lvsha treats any non-zero exit status as down (no dynamic weight)")
        elif sk == "user" and kw == "MISC_CHECK":
            notes.skip(key, "lvsha runs the check as its own user (root)")
        elif sk in CHECKER_REASONS:
            notes.skip(key, CHECKER_REASONS[sk])
        else:
            notes.unknown(path, sub)
    _same_delay_loop(notes, f"{path}.delay_loop", own.delay_loop, inherited.delay_loop)
    level = _merge(inherited, own)
    timeout = level.connect_timeout if level.connect_timeout is not None else KA_CONNECT_TIMEOUT
    if kw == "TCP_CHECK":
        check["connect_timeout"] = timeout
        return "tcp_check", _ordered(check, CHECK_ORDER), level
    if kw == "MISC_CHECK":
        if argv is None:
            notes.skip(path, "has no misc_path; keepalived ignores such a checker too")
            return None
        check["argv"] = argv
        return "misc_check", _ordered(check, CHECK_ORDER), level
    if not urls:
        notes.skip(path, "has no url; keepalived ignores such a checker too")
        return None
    _url(urls[0], notes, f"{path}.url", check)
    for extra in urls[1:]:
        notes.skip(
            f"{path}.url({_url_path(extra)})", f"lvsha checks one URL, the first: {check['path']}"
        )
    host = check.get("host") or level.virtualhost
    if host is not None:
        check["host"] = host
    if kw == "SSL_GET" and host is not None and not sni:
        notes.warn(
            path, f"lvsha sends the server name {host!r} (keepalived did only with enable_sni)"
        )
    check["connect_timeout"] = timeout
    return kw.lower(), _ordered(check, CHECK_ORDER), level


CHECK_ORDER = (
    "argv",
    "timeout",
    "path",
    "status",
    "digest",
    "regex",
    "host",
    "connect_timeout",
    "connect_ip",
    "connect_port",
)


def _url_path(stmt: Statement) -> str:
    for sub in stmt.block or []:
        if sub.keyword == "path" and len(sub.words) > 1:
            return sub.words[1]
    return "/"


def _url(stmt: Statement, notes: _Notes, path: str, check: Table) -> None:
    status: list[int] = []
    for sub in stmt.block or []:
        kw = sub.keyword
        key = f"{path}.{kw}"
        if kw == "path":
            value = _arg(notes, sub)
            if value is not None and (not value.startswith("/") or not value.isprintable()):
                notes.bad(sub, f"{value!r} must start with / and hold no control characters")
            elif value is not None:
                check["path"] = value
        elif kw == "status_code":
            status.extend(_status_codes(notes, sub))
        elif kw == "digest":
            value = _arg(notes, sub)
            if value is not None and re.fullmatch(r"[0-9a-fA-F]{32}", value):
                check["digest"] = value.lower()
            elif value is not None:
                notes.bad(sub, f"{value!r} is not an MD5 digest (32 hexadecimal digits)")
        elif kw == "virtualhost":
            _set(check, "host", _arg(notes, sub))
        elif kw == "regex":
            value = _arg(notes, sub)
            if value is not None:
                try:
                    re.compile(value.encode())
                except re.error as exc:
                    notes.skip(key, f"not a Python regular expression ({exc}); rewrite it")
                else:
                    check["regex"] = value
                    notes.warn(key, "now a Python regular expression (was PCRE2): check it")
        elif kw in ("regex_no_match", "regex_options", "regex_stack"):
            notes.skip(key, "lvsha only checks that the regex matches, with Python's defaults")
        elif kw in ("regex_min_offset", "regex_max_offset"):
            notes.skip(key, "lvsha searches the whole body (up to 1 MiB)")
        else:
            notes.unknown(path, sub)
    check.setdefault("path", "/")
    check["status"] = sorted(set(status)) if status else list(KA_HTTP_STATUS)


def _status_codes(notes: _Notes, stmt: Statement) -> list[int]:
    codes: list[int] = []
    for word in stmt.words[1:]:
        low, sep, high = word.partition("-")
        if not low.isdigit() or (sep and not high.isdigit()):
            notes.bad(stmt, f"{word!r} is not a status code or a range like 200-299")
            continue
        first, last = int(low), int(high) if sep else int(low)
        if not 100 <= first <= last <= 599:
            notes.bad(stmt, f"{word!r} is outside 100..599")
            continue
        codes.extend(range(first, last + 1))
    if len(stmt.words) < 2:
        notes.bad(stmt, "is missing its value")
    return codes


# ------------------------------------------------------------------- driver --


def translate(stmts: list[Statement]) -> tuple[Table, _Notes]:
    """The statement tree -> a TOML-shaped dict, with notes."""
    notes = _Notes()
    daemon: Table = {}
    defaults = _GlobalDefaults()
    for stmt in stmts:
        if stmt.keyword == "global_defs":
            defaults = _global_defs(stmt.block or [], notes, daemon)
    vrrp: Table = {}
    servers: list[Table] = []
    for stmt in stmts:
        kw = stmt.keyword
        if kw == "global_defs":
            continue
        if kw == "vrrp_instance":
            name = _arg(notes, stmt)
            if name is None:
                continue
            if name in vrrp:
                notes.bad(stmt, f"vrrp_instance {name} is defined twice")
                continue
            if (instance := _instance(name, stmt.block or [], notes, defaults)) is not None:
                vrrp[name] = instance
        elif kw == "virtual_server":
            if (server := _virtual_server(stmt, notes)) is not None:
                servers.append(server)
        elif kw in TOP_REASONS:
            label = " ".join(stmt.words[:2])
            notes.skip(label.replace(" ", ".", 1), TOP_REASONS[kw])
        else:
            notes.skip(kw, f"unknown keyword at {stmt.where}, ignored")
    if defaults.sync_daemon is not None:
        _place_sync_daemon(defaults.sync_daemon, vrrp, notes)
    data: Table = {"daemon": daemon}
    if vrrp:
        data["vrrp"] = vrrp
    if servers:
        data["virtual_server"] = servers
    return data, notes


def _place_sync_daemon(spec: _SyncDaemon, vrrp: Table, notes: _Notes) -> None:
    name = spec.instance
    if name is None and len(vrrp) == 1:
        name = next(iter(vrrp))
    if name not in vrrp:
        notes.skip(
            "global_defs.lvs_sync_daemon",
            "lvsha ties the sync daemon to one VRRP instance; name one (lvs_sync_daemon IF NAME) "
            "or set sync_daemon_interface on it",
        )
        return
    instance = vrrp[name]
    instance.setdefault("sync_daemon_interface", spec.interface)
    vrrp[name] = _ordered(instance, INSTANCE_ORDER)
    if spec.syncid is not None and spec.syncid != instance["virtual_router_id"]:
        notes.skip(
            f"global_defs.lvs_sync_daemon id {spec.syncid}",
            f"lvsha uses the instance's VRID ({instance['virtual_router_id']}) as the sync id, "
            "keepalived's default: sync messages between the two nodes are ignored while their "
            "ids differ, so connections are not synchronised until both run lvsha",
        )


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
    body = _toml(data)
    try:
        config = parse_config(body)
    except ConfigError as exc:
        warnings += [f"output does not pass check-config: {p}" for p in exc.problems]
    else:
        warnings += [f"lvsha check-config: {w}" for w in config.warnings]
    header = _header(str(path), notes.untranslated, warnings)
    return Conversion(header + body, notes.untranslated, warnings)


def main(path: str, output: str | None, config_id: str | None = None) -> int:
    """`lvsha import-keepalived FILE [-o OUTPUT]`: TOML to stdout or OUTPUT, notes to stderr.

    Returns 0; 78 (EX_CONFIG) when the input cannot be parsed or the result
    would not pass check-config; 73 (EX_CANTCREAT) when OUTPUT cannot be written.
    """
    prog = "lvsha import-keepalived"
    try:
        result = convert(path, config_id)
    except KeepalivedImportError as exc:
        for problem in exc.problems:
            print(f"{prog}: {problem}", file=sys.stderr)
        print(f"{prog}: {path}: cannot be translated", file=sys.stderr)
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
    invalid = any(w.startswith("output does not pass") for w in result.warnings)
    print(
        f"{prog}: {path}: {len(result.untranslated)} setting(s) not translated, "
        f"{len(result.warnings)} warning(s)" + ("; THE OUTPUT NEEDS FIXING" if invalid else ""),
        file=sys.stderr,
    )
    return EX_CONFIG if invalid else EX_OK


# -------------------------------------------------------------- TOML writer --


def _header(source: str, untranslated: list[str], warnings: list[str]) -> str:
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
    return text.replace("\n", " ")


def _toml(data: Table) -> str:
    out: list[str] = ["[daemon]"]
    if not data["daemon"]:
        out.append("# name: the host name (keepalived's router_id was not set)")
    out += _keys("daemon", data["daemon"])
    for name, instance in data.get("vrrp", {}).items():
        out += ["", f"[vrrp.{_key(name)}]", *_keys(f"vrrp.{_key(name)}", instance)]
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
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _string(key)


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
    if isinstance(value, str):
        return _string(value)
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


def _string(text: str) -> str:
    out = []
    for char in text:
        if char in _TOML_ESCAPES:
            out.append(_TOML_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'
