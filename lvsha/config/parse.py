"""TOML configuration -> frozen dataclasses, collecting every problem at once.

The vocabulary is keepalived's (see docs/configuration.md). A problem is
reported as `key.path: message`; `load_config` raises one `ConfigError`
holding all of them, so an operator fixes a file in one pass.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import socket
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from lvsha.core.desired import SCHEDULER_FLAG_BITS
from lvsha.errors import ConfigError
from lvsha.paths import DEFAULT_CONTROL_SOCKET

PASS_MAX_OCTETS = 8
LOG_FORMATS = ("auto", "console", "keyvalue", "json", "journald")

SCHEDULERS = frozenset(
    ["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf", "twos"]
)
FORWARDING = ("dr", "nat", "tun")
PROTOCOLS = ("tcp", "udp", "sctp")


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    name: str
    control_socket: str = DEFAULT_CONTROL_SOCKET
    control_group: str | None = None
    metrics: str | None = None
    log_format: str = "auto"


@dataclass(frozen=True, slots=True)
class VirtualAddress:
    """A VIP as the master adds it: address/prefixlen on `device`."""

    address: str
    prefixlen: int
    device: str


@dataclass(frozen=True, slots=True)
class VrrpInstanceConfig:
    name: str
    interface: str
    virtual_router_id: int
    priority: int
    advert_int: int
    virtual_ipaddress: tuple[VirtualAddress, ...]
    preempt: bool = True
    preempt_delay: float = 0.0
    auth_type: str = "none"
    auth_password: str = ""
    unicast_peers: tuple[str, ...] = ()
    unicast_src_ip: str | None = None
    track_interface: tuple[str, ...] = ()
    sync_daemon_interface: str | None = None
    notify: tuple[str, ...] = ()
    notify_master: tuple[str, ...] = ()
    notify_backup: tuple[str, ...] = ()
    notify_fault: tuple[str, ...] = ()
    garp_master_delay: float = 5.0
    garp_master_repeat: int = 5
    garp_interval: float = 0.0
    garp_master_refresh: float = 0.0
    garp_master_refresh_repeat: int = 1


@dataclass(frozen=True, slots=True)
class TcpCheck:
    connect_timeout: float = 3.0
    connect_ip: str | None = None
    connect_port: int | None = None


@dataclass(frozen=True, slots=True)
class HttpCheck:
    """`http_get` / `ssl_get`: a GET whose status (and body) must match."""

    tls: bool = False
    path: str = "/"
    status: tuple[int, ...] = (200,)
    regex: str | None = None
    digest: str | None = None
    host: str | None = None
    sni: str | None = None
    verify_certificate: bool = False
    connect_timeout: float = 3.0
    connect_ip: str | None = None
    connect_port: int | None = None


@dataclass(frozen=True, slots=True)
class MiscCheck:
    """`misc_check`: a command run without a shell; exit status 0 = up."""

    argv: tuple[str, ...]
    timeout: float | None = None  # None: the service's delay_loop, as keepalived


@dataclass(frozen=True, slots=True)
class RealServerConfig:
    address: str
    port: int
    weight: int = 1
    tcp_check: TcpCheck | None = None
    http_get: HttpCheck | None = None
    ssl_get: HttpCheck | None = None
    misc_check: MiscCheck | None = None
    retry: int | None = None  # None: keepalived's default for the check type
    delay_before_retry: float | None = None
    rise: int = 1
    fall: int = 1
    warmup: float | None = None  # None: up to delay_loop, as keepalived
    initial_state: str = "up"

    @property
    def check(self) -> TcpCheck | HttpCheck | MiscCheck | None:
        """The one configured check, if any."""
        return self.tcp_check or self.http_get or self.ssl_get or self.misc_check


@dataclass(frozen=True, slots=True)
class VirtualServerConfig:
    address: str | None
    port: int
    protocol: str = "tcp"
    fwmark: int | None = None
    scheduler: str = "wlc"
    scheduler_flags: tuple[str, ...] = ()
    forwarding: str = "dr"
    persistence_timeout: int = 0
    persistence_netmask: str = "255.255.255.255"
    delay_loop: float = 60.0
    real_servers: tuple[RealServerConfig, ...] = ()
    quorum: int = 1
    hysteresis: int = 0
    inhibit_on_failure: bool = False
    sorry_server: RealServerConfig | None = None
    ipvs_cleanup_on_stop: bool = False


@dataclass(frozen=True, slots=True)
class Config:
    daemon: DaemonConfig
    vrrp: tuple[VrrpInstanceConfig, ...] = ()
    virtual_servers: tuple[VirtualServerConfig, ...] = ()
    warnings: tuple[str, ...] = field(default=(), compare=False)


# ------------------------------------------------------------------ reader --

T = TypeVar("T")


class _Table:
    """Typed access to one TOML table that records problems under its path."""

    def __init__(self, data: Any, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        self.data: dict[str, Any] = data if isinstance(data, dict) else {}
        self.known: set[str] = set()
        if not isinstance(data, dict):
            self.problem("", f"must be a table, not {_type_name(data)}")

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def problem(self, name: str, message: str) -> None:
        where = self.key(name) if name else self.path
        self.problems.append(f"{where}: {message}")

    def get(
        self, name: str, kind: type[T], default: T, check: Callable[[T], str | None] | None = None
    ) -> T:
        self.known.add(name)
        if name not in self.data:
            return default
        value = self.data[name]
        ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            self.problem(name, f"must be {_kind_name(kind)}, not {_type_name(value)}")
            return default
        if check is not None and (message := check(value)) is not None:
            self.problem(name, message)
            return default
        return value  # type: ignore[no-any-return]

    def required(
        self, name: str, kind: type[T], default: T, check: Callable[[T], str | None] | None = None
    ) -> T:
        if name not in self.data:
            self.known.add(name)
            self.problem(name, "is required")
            return default
        return self.get(name, kind, default, check)

    def strings(
        self, name: str, check: Callable[[str], str | None] | None = None
    ) -> tuple[str, ...]:
        items = self.get(name, list, [])
        out: list[str] = []
        for i, item in enumerate(items):
            if not isinstance(item, str):
                self.problem(f"{name}[{i}]", f"must be a string, not {_type_name(item)}")
            elif check is not None and (message := check(item)) is not None:
                self.problem(f"{name}[{i}]", message)
            else:
                out.append(item)
        return tuple(out)

    def argv(self, name: str) -> tuple[str, ...]:
        """A command as argv: run without a shell, so no quoting surprises."""
        argv = self.strings(name)
        if name in self.data and (not argv or not all(argv)):
            self.problem(name, "must be a non-empty array of non-empty strings (argv, no shell)")
        return argv

    def finish(self) -> None:
        """Report every key nobody asked for, with the nearest valid name."""
        for name in self.data:
            if name in self.known:
                continue
            near = difflib.get_close_matches(name, sorted(self.known), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            self.problem(name, f"unknown key{hint}")


def _kind_name(kind: type) -> str:
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        list: "an array",
        dict: "a table",
    }.get(kind, kind.__name__)


def _type_name(value: object) -> str:
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "a boolean",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _between(low: float, high: float) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if low <= value <= high else f"must be {_num(low)}..{_num(high)}, not {value}"

    return check


def _num(value: float) -> str:
    """2147483647, not 2.14748e+09; 0.1 stays 0.1."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _ipv4(value: str) -> str | None:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return f"{value!r} is not an IPv4 address"
    return None


def _listen_address(value: str) -> str | None:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:9650)"
    return None


def _ifname(value: str) -> str | None:
    if not value or len(value) > 15 or "/" in value or " " in value:
        return f"{value!r} is not an interface name"
    return None


# ------------------------------------------------------------------ parser --


def parse_config(text: str) -> Config:
    """Parse TOML text; raise ConfigError listing every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"(toml): {exc}"]) from None
    problems: list[str] = []
    warnings: list[str] = []
    root = _Table(data, "", problems)
    daemon = _daemon(root, problems)
    instances = _vrrp(root, problems)
    servers = _virtual_servers(root, problems)
    root.finish()
    _cross_checks(instances, servers, problems, warnings)
    if problems:
        raise ConfigError(problems)
    return Config(daemon, instances, servers, tuple(warnings))


def load_config(path: str | Path) -> Config:
    """Read and parse a file; an unreadable file is one problem, not a traceback."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"(file): cannot read {path}: {exc}"]) from None
    return parse_config(text)


def _daemon(root: _Table, problems: list[str]) -> DaemonConfig:
    root.known.add("daemon")
    t = _Table(root.data.get("daemon", {}), "daemon", problems)
    cfg = DaemonConfig(
        name=t.get("name", str, socket.gethostname()),
        control_socket=t.get("control_socket", str, DEFAULT_CONTROL_SOCKET),
        control_group=t.get("control_group", str, None),
        metrics=t.get("metrics", str, None, _listen_address),  # type: ignore[arg-type]
        log_format=t.get("log_format", str, "auto", _one_of(LOG_FORMATS)),
    )
    t.finish()
    return cfg


def _vrrp(root: _Table, problems: list[str]) -> tuple[VrrpInstanceConfig, ...]:
    root.known.add("vrrp")
    table = _Table(root.data.get("vrrp", {}), "vrrp", problems)
    out = []
    for name, body in table.data.items():
        table.known.add(name)
        out.append(_instance(name, _Table(body, f"vrrp.{name}", problems)))
    return tuple(out)


def _instance(name: str, t: _Table) -> VrrpInstanceConfig:
    interface = t.required("interface", str, "", _ifname)
    auth_type, password = _authentication(t)
    vips = []
    for i, spec in enumerate(t.strings("virtual_ipaddress")):
        vip = _virtual_address(spec, interface)
        if isinstance(vip, str):
            t.problem(f"virtual_ipaddress[{i}]", vip)
        else:
            vips.append(vip)
    if "virtual_ipaddress" not in t.data:
        t.problem("virtual_ipaddress", "is required (at least one VIP)")
    elif not vips and not any(p.startswith(t.key("virtual_ipaddress")) for p in t.problems):
        t.problem("virtual_ipaddress", "must list at least one address")
    if len(vips) > 255:
        t.problem("virtual_ipaddress", "at most 255 addresses fit in one advertisement")
    cfg = VrrpInstanceConfig(
        name=name,
        interface=interface,
        virtual_router_id=t.required("virtual_router_id", int, 1, _between(1, 255)),
        priority=t.get("priority", int, 100, _between(1, 255)),
        advert_int=t.get("advert_int", int, 1, _between(1, 255)),
        virtual_ipaddress=tuple(vips),
        preempt=t.get("preempt", bool, True),
        preempt_delay=t.get("preempt_delay", float, 0.0, _between(0, 1000)),
        auth_type=auth_type,
        auth_password=password,
        unicast_peers=t.strings("unicast_peers", _ipv4),
        unicast_src_ip=t.get("unicast_src_ip", str, None, _ipv4),  # type: ignore[arg-type]
        track_interface=t.strings("track_interface", _ifname),
        sync_daemon_interface=t.get("sync_daemon_interface", str, None, _ifname),  # type: ignore[arg-type]
        notify=t.argv("notify"),
        notify_master=t.argv("notify_master"),
        notify_backup=t.argv("notify_backup"),
        notify_fault=t.argv("notify_fault"),
        garp_master_delay=t.get("garp_master_delay", float, 5.0, _between(0, 3600)),
        garp_master_repeat=t.get("garp_master_repeat", int, 5, _between(1, 100)),
        garp_interval=t.get("garp_interval", float, 0.0, _between(0, 10)),
        garp_master_refresh=t.get("garp_master_refresh", float, 0.0, _between(0, 86400)),
        garp_master_refresh_repeat=t.get("garp_master_refresh_repeat", int, 1, _between(1, 100)),
    )
    if cfg.priority == 255 and not cfg.preempt:
        t.problem(
            "preempt", "an address owner (priority 255) always preempts; remove preempt = false"
        )
    t.finish()
    return cfg


def _authentication(t: _Table) -> tuple[str, str]:
    t.known.add("authentication")
    if "authentication" not in t.data:
        return "none", ""
    a = _Table(t.data["authentication"], t.key("authentication"), t.problems)
    kind = a.required(
        "type",
        str,
        "none",
        lambda v: None if v in ("none", "pass") else f"must be 'none' or 'pass', not {v!r}",
    )
    password = a.get("password", str, "")
    if kind == "pass":
        if "password" not in a.data:
            a.problem("password", "is required with type = 'pass'")
        elif not password:
            a.problem("password", "must not be empty")
        elif len(password.encode()) > PASS_MAX_OCTETS:
            a.problem(
                "password",
                f"is {len(password.encode())} octets; PASS carries at most {PASS_MAX_OCTETS} "
                f"(keepalived would silently use only {_first_octets(password)!r})",
            )
    elif a.data.get("type") == "none" and "password" in a.data:  # a bad type: said above
        a.problem("password", "is only used with type = 'pass'")
    a.finish()
    return kind, password


def _first_octets(password: str) -> str:
    return password.encode()[:PASS_MAX_OCTETS].decode(errors="replace")


def _virtual_address(spec: str, interface: str) -> VirtualAddress | str:
    """`ADDR[/LEN] [dev IFNAME]` as keepalived writes it."""
    words = spec.split()
    device = interface
    if len(words) == 3 and words[1] == "dev":
        device = words[2]
    elif len(words) != 1:
        return f"{spec!r}: expected 'ADDRESS[/PREFIXLEN] [dev IFNAME]'"
    try:
        iface = ipaddress.IPv4Interface(words[0])
    except ValueError:
        return f"{words[0]!r} is not an IPv4 address with an optional /prefixlen"
    return VirtualAddress(str(iface.ip), iface.network.prefixlen, device)


def _virtual_servers(root: _Table, problems: list[str]) -> tuple[VirtualServerConfig, ...]:
    items = root.get("virtual_server", list, [])
    out = []
    for i, body in enumerate(items):
        t = _Table(body, f"virtual_server[{i}]", problems)
        fwmark = t.get("fwmark", int, None, _between(1, 2**32 - 1))
        if fwmark is None:
            address: str | None = t.required("address", str, "", _ipv4)
            port = t.required("port", int, 0, _between(0, 65535))
        else:
            address = t.get("address", str, None, _ipv4)  # type: ignore[arg-type]
            if address is not None:
                t.problem("address", "a firewall-mark service has no address; remove it or fwmark")
            port = t.get(
                "port",
                int,
                0,
                lambda v: None if v == 0 else "a firewall-mark service has no port; remove it",
            )
        persistence = t.get("persistence_timeout", int, 0, _between(0, 2**31 - 1))
        reals = []
        for j, rbody in enumerate(t.get("real_server", list, [])):
            reals.append(_real_server(_Table(rbody, f"{t.path}.real_server[{j}]", problems), port))
        seen: set[tuple[str, int]] = set()
        for j, r in enumerate(reals):
            if (r.address, r.port) in seen:
                t.problem(f"real_server[{j}]", f"{r.address}:{r.port} is listed twice")
            seen.add((r.address, r.port))
        sorry = _sorry_server(t, port)
        if sorry is not None and (sorry.address, sorry.port) in seen:
            t.problem("sorry_server", f"{sorry.address}:{sorry.port} is also a real server")
        out.append(
            VirtualServerConfig(
                address=address,
                port=port,
                protocol=t.get("protocol", str, "tcp", _one_of(PROTOCOLS)),
                fwmark=fwmark,
                scheduler=t.get("scheduler", str, "wlc", _one_of(sorted(SCHEDULERS))),
                scheduler_flags=t.strings("scheduler_flags", _one_of(sorted(SCHEDULER_FLAG_BITS))),
                forwarding=t.get("forwarding", str, "dr", _one_of(FORWARDING)),
                persistence_timeout=persistence,
                persistence_netmask=t.get("persistence_netmask", str, "255.255.255.255", _ipv4),
                delay_loop=t.get("delay_loop", float, 60.0, _between(0.1, 86400)),
                real_servers=tuple(reals),
                quorum=t.get("quorum", int, 1, _between(0, 2**32 - 1)),
                hysteresis=t.get("hysteresis", int, 0, _between(0, 2**32 - 1)),
                inhibit_on_failure=t.get("inhibit_on_failure", bool, False),
                sorry_server=sorry,
                ipvs_cleanup_on_stop=t.get("ipvs_cleanup_on_stop", bool, False),
            )
        )
        t.finish()
    return tuple(out)


def _one_of(choices: tuple[str, ...] | list[str]) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}, not {value!r}"

    return check


CHECKS = ("tcp_check", "http_get", "ssl_get", "misc_check")


def _real_server(t: _Table, default_port: int) -> RealServerConfig:
    tcp = None
    if "tcp_check" in t.data:
        c = _Table(t.data["tcp_check"], t.key("tcp_check"), t.problems)
        tcp = TcpCheck(
            connect_timeout=c.get("connect_timeout", float, 3.0, _between(0.01, 3600)),
            connect_ip=c.get("connect_ip", str, None, _ipv4),  # type: ignore[arg-type]
            connect_port=c.get("connect_port", int, None, _between(1, 65535)),
        )
        c.finish()
    http = _http_check(t, "http_get", tls=False)
    https = _http_check(t, "ssl_get", tls=True)
    misc = _misc_check(t)
    t.known.update(CHECKS)
    present = [name for name in CHECKS if name in t.data]
    if len(present) > 1:
        t.problem("", f"has {' and '.join(present)}; configure at most one check")
    cfg = RealServerConfig(
        address=t.required("address", str, "", _ipv4),
        port=t.get("port", int, default_port, _between(0, 65535)),
        weight=t.get("weight", int, 1, _between(0, 65535)),
        tcp_check=tcp,
        http_get=http,
        ssl_get=https,
        misc_check=misc,
        retry=t.get("retry", int, None, _between(0, 100)),
        delay_before_retry=t.get("delay_before_retry", float, None, _between(0, 3600)),
        rise=t.get("rise", int, 1, _between(1, 100)),
        fall=t.get("fall", int, 1, _between(1, 100)),
        warmup=t.get("warmup", float, None, _between(0, 86400)),
        initial_state=t.get("initial_state", str, "up", _one_of(("up", "down"))),
    )
    t.finish()
    return cfg


def _http_check(t: _Table, name: str, tls: bool) -> HttpCheck | None:
    """`http_get` / `ssl_get`: keepalived's HTTP_GET / SSL_GET with one url."""
    if name not in t.data:
        return None
    c = _Table(t.data[name], t.key(name), t.problems)
    status = []
    for i, code in enumerate(c.get("status", list, [200])):
        if isinstance(code, int) and not isinstance(code, bool) and 100 <= code <= 599:
            status.append(code)
        else:
            c.problem(f"status[{i}]", f"must be an HTTP status code 100..599, not {code!r}")
    if "status" in c.data and c.data["status"] == []:
        c.problem("status", "must list at least one status code")
    digest = c.get("digest", str, None, _md5_hex)  # type: ignore[arg-type]
    check = HttpCheck(
        tls=tls,
        path=c.get("path", str, "/", _http_path),
        status=tuple(status) or (200,),
        regex=c.get("regex", str, None, _regex),  # type: ignore[arg-type]
        digest=digest.lower() if digest else None,
        host=c.get("host", str, None, _host_name),  # type: ignore[arg-type]
        sni=c.get("sni", str, None, _host_name),  # type: ignore[arg-type]
        verify_certificate=c.get("verify_certificate", bool, False),
        connect_timeout=c.get("connect_timeout", float, 3.0, _between(0.01, 3600)),
        connect_ip=c.get("connect_ip", str, None, _ipv4),  # type: ignore[arg-type]
        connect_port=c.get("connect_port", int, None, _between(1, 65535)),
    )
    if not tls:
        for key in ("sni", "verify_certificate"):
            if key in c.data:
                c.problem(key, "is only used with ssl_get")
    c.finish()
    return check


def _misc_check(t: _Table) -> MiscCheck | None:
    """keepalived's MISC_CHECK: `misc_path` as argv (no shell), `misc_timeout`."""
    if "misc_check" not in t.data:
        return None
    c = _Table(t.data["misc_check"], t.key("misc_check"), t.problems)
    if "argv" not in c.data:
        c.known.add("argv")
        c.problem("argv", "is required")
    check = MiscCheck(
        argv=c.argv("argv"),
        timeout=c.get("timeout", float, None, _between(0.01, 3600)),
    )
    c.finish()
    return check


def _http_path(value: str) -> str | None:
    if not value.startswith("/") or not value.isprintable() or " " in value:
        return f"{value!r} must start with / and hold no spaces or control characters"
    return None


def _host_name(value: str) -> str | None:
    if not value or len(value) > 255 or not value.isprintable() or " " in value:
        return f"{value!r} is not a host name"
    return None


def _md5_hex(value: str) -> str | None:
    if len(value) != 32 or any(ch not in "0123456789abcdefABCDEF" for ch in value):
        return "must be 32 hexadecimal digits (the MD5 of the body, as keepalived's genhash prints)"
    return None


def _regex(value: str) -> str | None:
    try:
        re.compile(value.encode())
    except (re.error, UnicodeEncodeError) as exc:
        return f"is not a valid regular expression: {exc}"
    return None


def _sorry_server(t: _Table, default_port: int) -> RealServerConfig | None:
    """keepalived's `sorry_server ADDR [PORT]`, as a table `{ address, port }`."""
    t.known.add("sorry_server")
    if "sorry_server" not in t.data:
        return None
    s = _Table(t.data["sorry_server"], t.key("sorry_server"), t.problems)
    sorry = RealServerConfig(
        address=s.required("address", str, "", _ipv4),
        port=s.get("port", int, default_port, _between(0, 65535)),
    )
    s.finish()
    return sorry


def _cross_checks(
    instances: tuple[VrrpInstanceConfig, ...],
    servers: tuple[VirtualServerConfig, ...],
    problems: list[str],
    warnings: list[str],
) -> None:
    """What no single key can tell: clashes between instances and services."""
    by_link: dict[tuple[str, int], str] = {}
    owners: dict[str, str] = {}
    for inst in instances:
        link = (inst.interface, inst.virtual_router_id)
        if link in by_link:
            problems.append(
                f"vrrp.{inst.name}.virtual_router_id: {inst.virtual_router_id} is already used "
                f"on {inst.interface} by vrrp.{by_link[link]}"
            )
        else:
            by_link[link] = inst.name
        for vip in inst.virtual_ipaddress:
            if vip.address in owners:
                problems.append(
                    f"vrrp.{inst.name}.virtual_ipaddress: {vip.address} is already held by "
                    f"vrrp.{owners[vip.address]}"
                )
            owners[vip.address] = inst.name
    for i, vs in enumerate(servers):
        total = sum(r.weight for r in vs.real_servers)
        if vs.sorry_server is not None and vs.quorum + vs.hysteresis > total:
            warnings.append(
                f"virtual_server[{i}].quorum: {vs.quorum} + hysteresis {vs.hysteresis} exceeds "
                f"the total weight {total} of the real servers; the sorry server will stay in"
            )
        if vs.address is not None and vs.address not in owners and instances:
            warnings.append(
                f"virtual_server[{i}].address: {vs.address} is not a VIP of any VRRP instance"
            )
