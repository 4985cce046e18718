"""Translate keepalived's virtual_server blocks into `[[virtual_server]]`.

Real servers, sorry servers and checkers (TCP_CHECK, HTTP_GET, SSL_GET,
MISC_CHECK) included; keepalived's defaults that differ from lvsha's are
written out explicitly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lvsha.config import FORWARDING, PROTOCOLS, SCHEDULERS
from lvsha.config.limits import REGEX_MAX
from lvsha.core.desired import SCHEDULER_FLAG_BITS
from lvsha.tools.keepalived.reader import Statement
from lvsha.tools.keepalived.reasons import (
    CHECKER_REASONS,
    CHECKERS,
    ONE_CHECK,
    OTHER_CHECKERS,
    RS_REASONS,
    TOP_REASONS,
    VS_REASONS,
)
from lvsha.tools.keepalived.services6 import granularity, host_port, ip_arg, settle
from lvsha.tools.keepalived.values import (
    KA_CONNECT_TIMEOUT,
    KA_FORWARDING,
    KA_HTTP_STATUS,
    KA_PERSISTENCE_TIMEOUT,
    Notes,
    Table,
    arg,
    command_arg,
    flag_arg,
    float_arg,
    int_arg,
    ordered,
    set_key,
)


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


def _inherited(notes: Notes, stmt: Statement, into: _Inherited, path: str) -> bool:
    """Read one inheritable keyword; False when `stmt` is not one."""
    kw = stmt.keyword
    if kw == "connect_timeout":
        _setattr(into, kw, float_arg(notes, stmt, 0.01, 3600))
    elif kw in ("retry", "nb_get_retry"):
        _setattr(into, "retry", int_arg(notes, stmt, 0, 100))
    elif kw == "delay_before_retry":
        _setattr(into, kw, float_arg(notes, stmt, 0, 3600))
    elif kw == "warmup":
        _setattr(into, kw, float_arg(notes, stmt, 0, 86400))
    elif kw == "delay_loop":
        _setattr(into, kw, float_arg(notes, stmt, 0.1, 86400))
    elif kw == "virtualhost":
        _setattr(into, kw, arg(notes, stmt))
    elif kw in ("alpha", "inhibit_on_failure"):
        _setattr(into, kw, flag_arg(notes, stmt))
    elif kw in ("lb_kind", "lvs_method"):
        method = arg(notes, stmt)
        if method is not None:
            method = method.upper()  # keepalived compares case-insensitively (lb_kind dr)
        if method is not None and method not in {f.upper() for f in FORWARDING}:
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


def translate_virtual_server(stmt: Statement, notes: Notes) -> Table | None:
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
        fwmark = int_arg(notes, stmt, 1, 2**32 - 1, index=2)
        if fwmark is None:
            return None
        path = f"virtual_server(fwmark {fwmark})"
        out["fwmark"] = fwmark
    else:
        address = ip_arg(notes, stmt, words[0])
        port: int | None = 0 if len(words) < 2 else int_arg(notes, stmt, 0, 65535, index=2)
        if address is None or port is None:
            return None
        path = f"virtual_server({host_port(address, port if len(words) > 1 else None)})"
        out.update(address=address, port=port)
    vs = _Inherited()
    reals: list[Statement] = []
    flags: list[str] = []
    ip_family: str | None = None
    for sub in stmt.block or []:
        kw = sub.keyword
        key = f"{path}.{kw}"
        if _inherited(notes, sub, vs, path):
            continue
        if kw in ("lb_algo", "lvs_sched"):
            scheduler = arg(notes, sub)
            if scheduler is not None and scheduler not in SCHEDULERS:
                notes.bad(sub, f"{scheduler!r} is not an IPVS scheduler")
            elif scheduler is not None:
                out["scheduler"] = scheduler
        elif kw in SCHEDULER_FLAG_BITS and kw != "onepacket":
            flags.append(kw)
        elif kw == "protocol":
            proto = arg(notes, sub)
            if proto is not None and proto.lower() not in PROTOCOLS:
                notes.bad(sub, f"{proto!r} is not TCP, UDP or SCTP")
            elif proto is not None and "fwmark" in out:
                notes.skip(key, "ignored for a firewall-mark service (keepalived ignores it too)")
            elif proto is not None:
                out["protocol"] = proto.lower()
        elif kw == "persistence_timeout":
            if len(sub.words) < 2:
                out["persistence_timeout"] = KA_PERSISTENCE_TIMEOUT
            else:
                set_key(out, "persistence_timeout", int_arg(notes, sub, 0, 2678400))
        elif kw == "persistence_granularity":
            granularity(notes, sub, out)
        elif kw == "quorum":
            set_key(out, "quorum", int_arg(notes, sub, 0, 2**32 - 1))
        elif kw == "hysteresis":
            set_key(out, "hysteresis", int_arg(notes, sub, 0, 2**32 - 1))
        elif kw == "sorry_server":
            _sorry_server(notes, sub, out)
        elif kw == "real_server":
            reals.append(sub)
        elif kw == "ip_family":
            if (ip_family := arg(notes, sub)) not in ("inet", "inet6", None):
                notes.bad(sub, f"{ip_family!r} is not inet or inet6")
                ip_family = None
        elif kw == "smtp_alert":
            out["smtp_alert"] = flag_arg(notes, sub) is True
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
    settle(notes, path, out, servers, ip_family)
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
    return ordered(out, VS_ORDER)


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


def _sorry_server(notes: Notes, stmt: Statement, out: Table) -> None:
    text = arg(notes, stmt)
    address = None if text is None else ip_arg(notes, stmt, text)
    sorry: Table = {"address": address}
    if len(stmt.words) > 2:
        set_key(sorry, "port", int_arg(notes, stmt, 0, 65535, index=2))
    if address is not None:
        out["sorry_server"] = sorry


def _real_server(
    stmt: Statement, notes: Notes, vs_path: str, vs: _Inherited
) -> tuple[Table, bool] | None:
    """One real_server -> ([[virtual_server.real_server]], its inhibit_on_failure)."""
    words = stmt.words[1:]
    if not words:
        notes.bad(stmt, "is missing its address")
        return None
    address = ip_arg(notes, stmt, words[0])
    port = int_arg(notes, stmt, 0, 65535, index=2) if len(words) > 1 else None
    if address is None or (len(words) > 1 and port is None):
        return None
    path = f"{vs_path}.real_server({host_port(address, port)})"
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
            set_key(out, "weight", int_arg(notes, sub, 0, 65535))
        elif kw in CHECKERS:
            checkers.append(sub)
        elif kw in ("notify_up", "notify_down"):
            set_key(out, kw, command_arg(notes, sub, path))
        elif kw == "smtp_alert":
            out["smtp_alert"] = flag_arg(notes, sub) is True
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
    return ordered(out, RS_ORDER), bool(effective.inhibit_on_failure)


def _same_delay_loop(notes: Notes, path: str, own: float | None, service: float | None) -> None:
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
    checkers: list[Statement], notes: Notes, path: str, inherited: _Inherited, out: Table
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
            set_key(out, "retry", level.retry)
            set_key(out, "delay_before_retry", level.delay_before_retry)
            set_key(out, "warmup", level.warmup)
            chosen = (kw, level)
    if chosen is not None and len(checkers) > 1:
        notes.warn(
            path,
            f"keepalived required all {len(checkers)} checkers to pass; lvsha runs only "
            f"the {chosen[0]}",
        )
    return None if chosen is None else chosen[1]


def _checker(
    stmt: Statement, notes: Notes, path: str, inherited: _Inherited
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
            if (value := arg(notes, sub)) is not None:
                set_key(check, "connect_ip", ip_arg(notes, sub, value))
            if len(sub.words) > 2:  # `connect_ip ADDR PORT`: keepalived reads the port too
                set_key(check, "connect_port", int_arg(notes, sub, 1, 65535, index=2))
        elif sk == "connect_port" and kw != "MISC_CHECK":
            set_key(check, "connect_port", int_arg(notes, sub, 1, 65535))
        elif sk == "url" and http:
            urls.append(sub)
        elif sk == "http_protocol" and http:
            if arg(notes, sub) != "1.0":
                notes.skip(key, "lvsha sends an HTTP/1.0 GET and closes the connection")
        elif sk == "enable_sni" and kw == "SSL_GET":
            sni = True
        elif sk == "misc_path" and kw == "MISC_CHECK":
            argv = command_arg(notes, sub, path)
        elif sk == "misc_timeout" and kw == "MISC_CHECK":
            set_key(check, "timeout", float_arg(notes, sub, 0.01, 3600))
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
        return "tcp_check", ordered(check, CHECK_ORDER), level
    if kw == "MISC_CHECK":
        if argv is None:
            notes.skip(path, "has no misc_path; keepalived ignores such a checker too")
            return None
        check["argv"] = argv
        return "misc_check", ordered(check, CHECK_ORDER), level
    if not urls:
        notes.skip(path, "has no url; keepalived ignores such a checker too")
        return None
    _url(urls[0], notes, f"{path}.url", check)
    if len(urls) > 1:  # every URL must pass, as keepalived's HTTP_GET
        fields = ("path", "status", "digest", "regex")
        url_list = [{k: check.pop(k) for k in fields if k in check}]
        for extra in urls[1:]:
            one: Table = {}
            _url(extra, notes, f"{path}.url({_url_path(extra)})", one)
            if one.get("host", check.get("host")) != check.get("host"):
                notes.skip(
                    f"{path}.url({_url_path(extra)}).virtualhost",
                    "lvsha sends one Host per check: the first URL's",
                )
            url_list.append({k: one[k] for k in fields if k in one})
        check["url"] = url_list
    host = check.get("host") or level.virtualhost
    if host is not None:
        check["host"] = host
    if kw == "SSL_GET" and host is not None and not sni:
        notes.warn(
            path, f"lvsha sends the server name {host!r} (keepalived did only with enable_sni)"
        )
    check["connect_timeout"] = timeout
    return kw.lower(), ordered(check, CHECK_ORDER), level


CHECK_ORDER = (
    "argv",
    "timeout",
    "path",
    "status",
    "digest",
    "regex",
    "url",
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


def _ranges(codes: list[int]) -> list[int | str]:
    """[200, 201, ..., 299, 404] -> ["200-299", 404], as keepalived writes status_code."""
    out: list[int | str] = []
    start = prev = None
    for code in [*codes, None]:
        if code is not None and prev is not None and code == prev + 1:
            prev = code
            continue
        if start is not None and prev is not None:
            out.append(start if start == prev else f"{start}-{prev}")
        start = prev = code
    return out


def _url(stmt: Statement, notes: Notes, path: str, check: Table) -> None:
    status: list[int] = []
    for sub in stmt.block or []:
        kw = sub.keyword
        key = f"{path}.{kw}"
        if kw == "path":
            value = arg(notes, sub)
            if value is not None and (not value.startswith("/") or not value.isprintable()):
                notes.bad(sub, f"{value!r} must start with / and hold no control characters")
            elif value is not None:
                check["path"] = value
        elif kw == "status_code":
            status.extend(_status_codes(notes, sub))
        elif kw == "digest":
            value = arg(notes, sub)
            if value is not None and re.fullmatch(r"[0-9a-fA-F]{32}", value):
                check["digest"] = value.lower()
            elif value is not None:
                notes.bad(sub, f"{value!r} is not an MD5 digest (32 hexadecimal digits)")
        elif kw == "virtualhost":
            set_key(check, "host", arg(notes, sub))
        elif kw == "regex":
            value = arg(notes, sub)
            if value is not None and len(value) > REGEX_MAX:
                notes.bad(sub, f"is {len(value)} characters long; lvsha takes at most {REGEX_MAX}")
            elif value is not None:
                try:
                    re.compile(value.encode())
                except (re.error, OverflowError, RecursionError, ValueError) as exc:
                    notes.skip(
                        key,
                        f"at {sub.where}: not a Python regular expression ({exc}); rewrite it",
                    )
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
    check["status"] = _ranges(sorted(set(status)) if status else list(KA_HTTP_STATUS))


def _status_codes(notes: Notes, stmt: Statement) -> list[int]:
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
