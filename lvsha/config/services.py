"""`[[virtual_server]]` tables: IPVS services, their real servers and checks.

keepalived's `virtual_server` / `real_server` blocks, one TOML table each;
a real server has at most one of `tcp_check`, `http_get`, `ssl_get`,
`misc_check` (keepalived.conf(5), "real_server" checkers).
"""

from __future__ import annotations

import re

from lvsha.config import limits, services6, values
from lvsha.config._table import Table, between, one_of, shown
from lvsha.config.bgp import (
    default_inhibit_on_failure,
    default_scheduler,
    default_scheduler_flags,
)
from lvsha.config.limits import FORWARDING, PROTOCOLS, SCHEDULERS
from lvsha.config.model import (
    HttpCheck,
    HttpUrl,
    MiscCheck,
    RealServerConfig,
    TcpCheck,
    VirtualServerConfig,
)
from lvsha.core.desired import SCHEDULER_FLAG_BITS, host_port

CHECKS = ("tcp_check", "http_get", "ssl_get", "misc_check")

_STATUS_RANGE = re.compile(r"([0-9]{3})(?:-([0-9]{3}))?")


def virtual_servers(root: Table, problems: list[str]) -> tuple[VirtualServerConfig, ...]:
    out = []
    for i, body in enumerate(root.get("virtual_server", list, [])):
        t = Table(body, f"virtual_server[{i}]", problems)
        out.append(_virtual_server(t))
        t.finish()
    return tuple(out)


def _virtual_server(t: Table) -> VirtualServerConfig:
    fwmark = t.get("fwmark", int, None, between(limits.FWMARK))
    if fwmark is None:
        address: str | None = services6.normal(t.required("address", str, "", services6.unicast))
        port = t.required("port", int, 0, between(limits.PORT))
    else:
        address = t.get("address", str, None, values.ipv4)  # type: ignore[arg-type]
        if address is not None:
            t.problem("address", "a firewall-mark service has no address; remove it or fwmark")
        port = t.get(
            "port",
            int,
            0,
            lambda v: None if v == 0 else "a firewall-mark service has no port; remove it",
        )
    reals = _real_servers(t, port)
    sorry = _sorry_server(t, port)
    if sorry is not None and (sorry.address, sorry.port) in {(r.address, r.port) for r in reals}:
        t.problem("sorry_server", f"{host_port(sorry.address, sorry.port)} is also a real server")
    services6.family_problems(t, address, reals, sorry)
    announce = t.get("announce", str, None, one_of(limits.ANNOUNCE))  # type: ignore[arg-type]
    scheduler = t.get("scheduler", str, default_scheduler(announce), one_of(sorted(SCHEDULERS)))
    flags = t.strings("scheduler_flags", one_of(sorted(SCHEDULER_FLAG_BITS)))
    if "scheduler_flags" not in t.data:
        flags = default_scheduler_flags(announce, scheduler)
    return VirtualServerConfig(
        address=address,
        port=port,
        protocol=t.get("protocol", str, "tcp", one_of(PROTOCOLS)),
        fwmark=fwmark,
        scheduler=scheduler,
        scheduler_flags=flags,
        forwarding=t.get("forwarding", str, "dr", one_of(FORWARDING)),
        persistence_timeout=t.get(
            "persistence_timeout", int, 0, between(limits.PERSISTENCE_TIMEOUT)
        ),
        persistence_netmask=services6.persistence_netmask(
            t, services6.service_family(address, reals)
        ),
        delay_loop=t.get("delay_loop", float, 60.0, between(limits.DELAY_LOOP)),
        real_servers=reals,
        quorum=t.get("quorum", int, 1, between(limits.QUORUM)),
        hysteresis=t.get("hysteresis", int, 0, between(limits.QUORUM)),
        inhibit_on_failure=t.get("inhibit_on_failure", bool, default_inhibit_on_failure(announce)),
        smtp_alert=t.get("smtp_alert", bool, False),
        sorry_server=sorry,
        ipvs_cleanup_on_stop=t.get("ipvs_cleanup_on_stop", bool, False),
        announce=announce,
    )


def _real_servers(t: Table, port: int) -> tuple[RealServerConfig, ...]:
    """The real servers, each (address, port) once: IPVS keys a destination by both."""
    reals = []
    for j, body in enumerate(t.get("real_server", list, [])):
        reals.append(_real_server(Table(body, f"{t.path}.real_server[{j}]", t.problems), port))
    seen: set[tuple[str, int]] = set()
    for j, r in enumerate(reals):
        if (r.address, r.port) in seen:
            t.problem(f"real_server[{j}]", f"{host_port(r.address, r.port)} is listed twice")
        seen.add((r.address, r.port))
    return tuple(reals)


def _real_server(t: Table, default_port: int) -> RealServerConfig:
    tcp = _tcp_check(t)
    http = _http_check(t, "http_get", tls=False)
    https = _http_check(t, "ssl_get", tls=True)
    misc = _misc_check(t)
    t.known.update(CHECKS)
    present = [name for name in CHECKS if name in t.data]
    if len(present) > 1:
        t.problem("", f"has {' and '.join(present)}; configure at most one check")
    cfg = RealServerConfig(
        address=services6.normal(t.required("address", str, "", services6.unicast)),
        port=t.get("port", int, default_port, between(limits.PORT)),
        weight=t.get("weight", int, 1, between(limits.WEIGHT)),
        tcp_check=tcp,
        http_get=http,
        ssl_get=https,
        misc_check=misc,
        retry=t.get("retry", int, None, between(limits.RETRY)),
        delay_before_retry=t.get(
            "delay_before_retry", float, None, between(limits.DELAY_BEFORE_RETRY)
        ),
        rise=t.get("rise", int, 1, between(limits.RISE_FALL)),
        fall=t.get("fall", int, 1, between(limits.RISE_FALL)),
        warmup=t.get("warmup", float, None, between(limits.WARMUP)),
        initial_state=t.get("initial_state", str, "up", one_of(limits.INITIAL_STATES)),
        notify_up=t.argv("notify_up", values.text),
        notify_down=t.argv("notify_down", values.text),
        smtp_alert=t.get("smtp_alert", bool, None),
    )
    t.finish()
    return cfg


def _tcp_check(t: Table) -> TcpCheck | None:
    if "tcp_check" not in t.data:
        return None
    c = Table(t.data["tcp_check"], t.key("tcp_check"), t.problems)
    tcp = TcpCheck(
        connect_timeout=c.get("connect_timeout", float, 3.0, between(limits.CONNECT_TIMEOUT)),
        connect_ip=c.get("connect_ip", str, None, services6.unicast),  # type: ignore[arg-type]
        connect_port=c.get("connect_port", int, None, between(limits.CHECK_PORT)),
    )
    c.finish()
    return tcp


def _status(c: Table) -> tuple[int, ...]:
    """`status = [200, "201", "300-399"]`: codes and keepalived-style ranges."""
    out: list[int] = []
    for i, code in enumerate(c.get("status", list, [200])):
        low = high = None
        if isinstance(code, int) and not isinstance(code, bool):
            low = high = code
        elif isinstance(code, str) and (m := _STATUS_RANGE.fullmatch(code)):
            low, high = int(m.group(1)), int(m.group(2) or m.group(1))
        if (
            low is None
            or high is None
            or low not in limits.HTTP_STATUS
            or high not in limits.HTTP_STATUS
            or low > high
        ):
            c.problem(
                f"status[{i}]",
                f'must be an HTTP status code 100..599 or a range "200-299", not {shown(code)}',
            )
        else:
            out.extend(range(low, high + 1))
    if "status" in c.data and c.data["status"] == []:
        c.problem("status", "must list at least one status code")
    return tuple(dict.fromkeys(out)) or (200,)


def _http_url(c: Table, alone: bool = False) -> HttpUrl:
    """One URL's expectations; `alone`: a table of `url = [...]` (finished here)."""
    digest = c.get("digest", str, None, values.md5_hex)  # type: ignore[arg-type]
    url = HttpUrl(
        path=c.get("path", str, "/", values.http_path),
        status=_status(c),
        regex=c.get("regex", str, None, values.all_of(values.text, values.regex)),  # type: ignore[arg-type]
        digest=digest.lower() if digest else None,
    )
    if alone:
        c.finish()
    return url


def _http_check(t: Table, name: str, tls: bool) -> HttpCheck | None:
    """`http_get` / `ssl_get`: keepalived's HTTP_GET / SSL_GET with one url."""
    if name not in t.data:
        return None
    c = Table(t.data[name], t.key(name), t.problems)
    first = _http_url(c)
    more: list[HttpUrl] = []
    c.known.add("url")
    if "url" in c.data:
        urls = c.data["url"]
        if any(k in c.data for k in ("path", "status", "regex", "digest")):
            c.problem("url", "give either url = [...] or path/status/regex/digest, not both")
        elif not isinstance(urls, list) or not urls:
            c.problem("url", "must be a non-empty array of tables {path, status, regex, digest}")
        else:
            parsed = [
                _http_url(Table(u, c.key(f"url[{i}]"), c.problems), True)
                for i, u in enumerate(urls)
            ]
            first, more = parsed[0], parsed[1:]
    check = HttpCheck(
        tls=tls,
        path=first.path,
        status=first.status,
        regex=first.regex,
        digest=first.digest,
        more_urls=tuple(more),
        host=c.get("host", str, None, values.host_name),  # type: ignore[arg-type]
        sni=c.get("sni", str, None, values.host_name),  # type: ignore[arg-type]
        verify_certificate=c.get("verify_certificate", bool, False),
        connect_timeout=c.get("connect_timeout", float, 3.0, between(limits.CONNECT_TIMEOUT)),
        connect_ip=c.get("connect_ip", str, None, services6.unicast),  # type: ignore[arg-type]
        connect_port=c.get("connect_port", int, None, between(limits.CHECK_PORT)),
    )
    if not tls:
        for key in ("sni", "verify_certificate"):
            if key in c.data:
                c.problem(key, "is only used with ssl_get")
    c.finish()
    return check


def _misc_check(t: Table) -> MiscCheck | None:
    """keepalived's MISC_CHECK: `misc_path` as argv (no shell), `misc_timeout`."""
    if "misc_check" not in t.data:
        return None
    c = Table(t.data["misc_check"], t.key("misc_check"), t.problems)
    if "argv" not in c.data:
        c.known.add("argv")
        c.problem("argv", "is required")
    check = MiscCheck(
        argv=c.argv("argv", values.text),
        timeout=c.get("timeout", float, None, between(limits.CONNECT_TIMEOUT)),
    )
    c.finish()
    return check


def _sorry_server(t: Table, default_port: int) -> RealServerConfig | None:
    """keepalived's `sorry_server ADDR [PORT]`, as a table `{ address, port }`."""
    t.known.add("sorry_server")
    if "sorry_server" not in t.data:
        return None
    s = Table(t.data["sorry_server"], t.key("sorry_server"), t.problems)
    sorry = RealServerConfig(
        address=services6.normal(s.required("address", str, "", services6.unicast)),
        port=s.get("port", int, default_port, between(limits.PORT)),
    )
    s.finish()
    return sorry
