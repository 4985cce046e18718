"""Checks of single string values: addresses, interface names, free text.

Each check returns None when the value is good, else the message that
follows `key.path: `. They never raise, whatever the string holds.

Free text (names, argv, paths) reaches a process's argv, a log line or the
status document, so NUL, control characters and line separators are
refused everywhere: a NUL cannot be passed to execve() (the hook runner
would die on it), a newline forges log lines.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata

from lvsha.config._table import Check, shown
from lvsha.config.limits import (
    HOST_NAME_MAX,
    IFNAMSIZ,
    KERNEL_SPACE_BYTES,
    PORT,
    REGEX_MAX,
)

# Unicode categories refused in free text: controls (NUL, C0, DEL, C1),
# format characters (bidi overrides that reorder a log line), line and
# paragraph separators.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})

LIMITED_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
VRRP_GROUP = ipaddress.IPv4Address("224.0.0.18")  # RFC 3768 section 5.2.2


def text(value: str) -> str | None:
    """Any free text: no NUL, control, format or line-separator character."""
    for ch in value:
        if unicodedata.category(ch) in _REFUSED_CATEGORIES:
            code = f"U+{ord(ch):04X} {unicodedata.name(ch, '')}".rstrip()
            return f"{shown(value)} holds a control character ({code})"
    return None


def name(value: str) -> str | None:
    """A name that appears in logs and status: non-empty free text."""
    if not value:
        return "must not be empty"
    return text(value)


def all_of(*checks: Check[str]) -> Check[str]:
    """The first problem any of `checks` finds."""

    def check(value: str) -> str | None:
        for one in checks:
            if (message := one(value)) is not None:
                return message
        return None

    return check


def ipv4(value: str) -> str | None:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return f"{shown(value)} is not an IPv4 address"
    return None


def unicast(value: str) -> str | None:
    """A host to talk to: an IPv4 address that is not multicast, 0.0.0.0 or broadcast."""
    if (message := ipv4(value)) is not None:
        return message
    return _not_unicast(ipaddress.IPv4Address(value))


def _not_unicast(addr: ipaddress.IPv4Address) -> str | None:
    if addr == VRRP_GROUP:
        return f"{addr} is the VRRP multicast group (RFC 3768 section 5.2.2), not a host"
    if addr.is_multicast:
        return f"{addr} is a multicast address, not a host"
    if addr.is_unspecified:
        return f"{addr} is the unspecified address, not a host"
    if addr == LIMITED_BROADCAST:
        return f"{addr} is the limited broadcast address, not a host"
    return None


def vip(iface: ipaddress.IPv4Interface) -> str | None:
    """A VIP the master adds and announces with gratuitous ARP."""
    if (message := _not_unicast(iface.ip)) is not None:
        return message
    if iface.ip.is_loopback:
        return f"{iface.ip} is a loopback address; no other host can reach it as a VIP"
    if iface.network.prefixlen == 0:
        return f"{iface.with_prefixlen}: a /0 VIP would put every address on the link"
    return None


def netmask(value: str) -> str | None:
    """A persistence netmask: dotted quad with contiguous ones (255.255.255.0, not 255.0.255.0)."""
    if (message := ipv4(value)) is not None:
        return message
    inverse = int(ipaddress.IPv4Address(value)) ^ 0xFFFFFFFF
    if inverse & (inverse + 1):
        return f"{value} is not a netmask: its one bits must be contiguous (e.g. 255.255.255.0)"
    return None


_PORT_DIGITS = re.compile(r"[0-9]{1,5}")


def listen_address(value: str) -> str | None:
    """HOST:PORT for a listening socket; the port in ASCII digits (not '²')."""
    host, sep, port = value.rpartition(":")
    if (
        not sep
        or not host
        or text(host) is not None
        or not _PORT_DIGITS.fullmatch(port)
        or not PORT.low < int(port) <= PORT.high
    ):
        return f"{shown(value)} is not HOST:PORT (e.g. 127.0.0.1:9650)"
    return None


def is_loopback_host(value: str) -> bool:
    """Is the host part of HOST:PORT a loopback address (or `localhost`)?"""
    host = value.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ifname(value: str) -> str | None:
    """An interface name as Linux's dev_valid_name() takes it (net/core/dev.c).

    At most IFNAMSIZ - 1 bytes once UTF-8 encoded, not "." or "..", no "/",
    ":" or kernel whitespace (which includes the byte 0xA0). Stricter than
    the kernel in one way: no control characters, as the name is logged.
    """
    raw = value.encode("utf-8", errors="surrogatepass")
    if (
        not raw
        or len(raw) >= IFNAMSIZ
        or value in (".", "..")
        or any(b in KERNEL_SPACE_BYTES or b in b"/:" for b in raw)
        or text(value) is not None
    ):
        return f"{shown(value)} is not an interface name"
    return None


def regex(value: str) -> str | None:
    """A body regex, compiled once here so a bad one never reaches a checker."""
    if len(value) > REGEX_MAX:
        return f"is longer than {REGEX_MAX} characters"
    try:
        re.compile(value.encode())
    except (re.error, UnicodeEncodeError, OverflowError, RecursionError, MemoryError) as exc:
        return f"is not a valid regular expression: {_reason(exc)}"
    return None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, OverflowError | MemoryError):
        return "a repetition count is too large"
    return str(exc)


def http_path(value: str) -> str | None:
    if not value.startswith("/") or not value.isprintable() or " " in value:
        return f"{shown(value)} must start with / and hold no spaces or control characters"
    return None


def host_name(value: str) -> str | None:
    if not value or len(value) > HOST_NAME_MAX or not value.isprintable() or " " in value:
        return f"{shown(value)} is not a host name"
    return None


def md5_hex(value: str) -> str | None:
    if len(value) != 32 or any(ch not in "0123456789abcdefABCDEF" for ch in value):
        return "must be 32 hexadecimal digits (the MD5 of the body, as keepalived's genhash prints)"
    return None
