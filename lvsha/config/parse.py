"""TOML configuration -> frozen dataclasses, collecting every problem at once.

The vocabulary is keepalived's (see docs/configuration.md). A problem is
reported as `key.path: message`; `load_config` raises one `ConfigError`
holding all of them, so an operator fixes a file in one pass. No input
raises anything else: TOML the parser cannot hold (integers past Python's
4300-digit limit, arrays nested past the recursion limit) is a problem too.

This module reads `[daemon]` and `[vrrp.*]`; `services` reads the virtual
servers and their checks; `bgp` reads `[bgp]`; `cross` checks what no
single key can tell.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import sys
import tomllib
from pathlib import Path
from typing import Any

from lvsha.config import limits, values, vrrp_version
from lvsha.config._table import Table, between, one_of, shown
from lvsha.config.alerts import alert_warnings, smtp_config
from lvsha.config.bgp import bgp_config
from lvsha.config.cross import cross_checks
from lvsha.config.limits import (
    LOG_FORMATS,
    PASS_MAX_OCTETS,
)
from lvsha.config.model import (
    Config,
    DaemonConfig,
    VirtualAddress,
    VrrpInstanceConfig,
)
from lvsha.config.services import virtual_servers
from lvsha.config.tracking import (
    sync_groups,
    track_files,
    track_interfaces,
    track_scripts,
    tracking_cross_checks,
    vrrp_scripts,
)
from lvsha.errors import ConfigError
from lvsha.paths import DEFAULT_CONTROL_SOCKET

__all__ = ["load_config", "parse_config"]


def parse_config(text: str, *, director: bool = False) -> Config:
    """Parse TOML text; raise ConfigError listing every problem.

    `director`: the text is a whole director's file (what `load_config`
    reads), which must run VRRP or BGP; without it a fragment (a table of
    virtual servers in a test or a benchmark) is a valid configuration.
    """
    data = _toml(text)
    problems: list[str] = []
    warnings: list[str] = []
    root = Table(data, "", problems)
    daemon = _daemon(root, problems)
    instances = _vrrp(root, problems, daemon.vrrp_version)
    servers = virtual_servers(root, problems)
    scripts = vrrp_scripts(root, problems)
    groups = sync_groups(root, problems)
    bgp = bgp_config(root, problems)
    root.finish()
    cross_checks(daemon, instances, servers, problems, warnings, bgp, director=director)
    tracking_cross_checks(instances, scripts, groups, problems)
    alerting = [f"vrrp.{i.name}" for i in instances if i.smtp_alert]
    alerting += [f"vrrp_sync_group.{g.name}" for g in groups if g.smtp_alert]
    alert_warnings(daemon.smtp, alerting, warnings)
    if problems:
        raise ConfigError(problems)
    return Config(
        daemon,
        instances,
        servers,
        vrrp_scripts=scripts,
        sync_groups=groups,
        bgp=bgp,
        warnings=tuple(warnings),
    )


def load_config(path: str | Path) -> Config:
    """Read and parse a file; an unreadable file is one problem, not a traceback."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: NUL in the path
        raise ConfigError([f"(file): cannot read {path}: {exc}"]) from None
    return parse_config(text, director=True)


_DIGIT_RUN = re.compile(r"[0-9_]+")
# Python refuses int() of more than 4300 digits (a guard against quadratic
# conversions). Up to this many the parser converts them anyway (about 2 ms),
# so the problem names its key path like any out-of-range value.
LONG_INTEGER_DIGITS = 20_000


def _toml(text: str) -> dict[str, Any]:
    """tomllib.loads, with its non-TOMLDecodeError failures said as problems."""
    try:
        return _loads(text)
    except ValueError:  # int(): more digits than sys.get_int_max_str_digits()
        pass
    longest = max(_DIGIT_RUN.finditer(text), key=lambda m: len(m.group()), default=None)
    if longest is None or len(longest.group()) > LONG_INTEGER_DIGITS:
        where = _line_of(longest, text)
        raise ConfigError([f"(toml): an integer has too many digits{where}"])
    # The limit is process-wide: another thread may see it raised for the
    # few milliseconds of this parse, which only widens a DoS guard.
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(LONG_INTEGER_DIGITS)
    try:
        return _loads(text)
    except ValueError as exc:
        raise ConfigError([f"(toml): {exc}"]) from None
    finally:
        sys.set_int_max_str_digits(limit)


def _loads(text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"(toml): {exc}"]) from None
    except RecursionError:
        where = _deepest_line(text)
        raise ConfigError([f"(toml): arrays or tables are nested too deeply{where}"]) from None


def _deepest_line(text: str) -> str:
    """The line with the most opening brackets: where the nesting is."""
    lines = text.splitlines() or [""]
    number = max(range(len(lines)), key=lambda i: lines[i].count("[") + lines[i].count("{"))
    return f" (at line {number + 1})"


def _line_of(match: re.Match[str] | None, text: str) -> str:
    return "" if match is None else f" (at line {text.count(chr(10), 0, match.start()) + 1})"


def _daemon(root: Table, problems: list[str]) -> DaemonConfig:
    root.known.add("daemon")
    t = Table(root.data.get("daemon", {}), "daemon", problems)
    cfg = DaemonConfig(
        name=t.get("name", str, socket.gethostname(), values.name),
        control_socket=t.get("control_socket", str, DEFAULT_CONTROL_SOCKET, values.name),
        control_group=t.get("control_group", str, None, values.name),  # type: ignore[arg-type]
        metrics=t.get("metrics", str, None, values.listen_address),  # type: ignore[arg-type]
        log_format=t.get("log_format", str, "auto", one_of(LOG_FORMATS)),
        smtp=smtp_config(t),
        vrrp_version=t.get("vrrp_version", int, 2, vrrp_version.check_version),
    )
    t.finish()
    return cfg


def _vrrp(root: Table, problems: list[str], default_version: int) -> tuple[VrrpInstanceConfig, ...]:
    root.known.add("vrrp")
    table = Table(root.data.get("vrrp", {}), "vrrp", problems)
    out = []
    for name, body in table.data.items():
        table.known.add(name)
        t = Table(body, table.key(name), problems)
        if (message := values.name(name)) is not None:
            table.problem(name, f"instance name {message}")
        out.append(_instance(name, t, default_version))
    return tuple(out)


def _instance(name: str, t: Table, default_version: int) -> VrrpInstanceConfig:
    interface = t.required("interface", str, "", values.ifname)
    version = vrrp_version.version(t, default_version)
    vrrp_version.refuse_authentication(t, version)
    auth_type, password = _authentication(t)
    vips = _virtual_addresses(t, interface, version)
    plain_tracked, weighted_tracked = track_interfaces(t)
    argv = values.text
    unicast = vrrp_version.unicast_check(version)
    cfg = VrrpInstanceConfig(
        name=name,
        interface=interface,
        virtual_router_id=t.required(
            "virtual_router_id", int, 1, between(limits.VIRTUAL_ROUTER_ID)
        ),
        priority=t.get("priority", int, 100, between(limits.PRIORITY)),
        advert_int=vrrp_version.advert_int(t, version),
        virtual_ipaddress=vips,
        preempt=t.get("preempt", bool, True),
        preempt_delay=t.get("preempt_delay", float, 0.0, between(limits.PREEMPT_DELAY)),
        auth_type=auth_type,
        auth_password=password,
        unicast_peers=tuple(map(vrrp_version.normal, t.strings("unicast_peers", unicast))),
        unicast_src_ip=_normal(t.get("unicast_src_ip", str, "", unicast) or None),
        track_interface=plain_tracked,
        track_interface_weights=weighted_tracked,
        track_script=track_scripts(t),
        track_file=track_files(t),
        sync_daemon_interface=t.get("sync_daemon_interface", str, None, values.ifname),  # type: ignore[arg-type]
        notify=t.argv("notify", argv),
        notify_master=t.argv("notify_master", argv),
        notify_backup=t.argv("notify_backup", argv),
        notify_fault=t.argv("notify_fault", argv),
        garp_master_delay=t.get("garp_master_delay", float, 5.0, between(limits.GARP_MASTER_DELAY)),
        garp_master_repeat=t.get("garp_master_repeat", int, 5, between(limits.GARP_REPEAT)),
        garp_interval=t.get("garp_interval", float, 0.0, between(limits.GARP_INTERVAL)),
        garp_master_refresh=t.get(
            "garp_master_refresh", float, 0.0, between(limits.GARP_MASTER_REFRESH)
        ),
        garp_master_refresh_repeat=t.get(
            "garp_master_refresh_repeat", int, 1, between(limits.GARP_REPEAT)
        ),
        smtp_alert=t.get("smtp_alert", bool, False),
        virtual_ipaddress_excluded=_excluded_addresses(t, interface),
        version=version,
        accept_mode=vrrp_version.accept_mode(t, version),
    )
    vrrp_version.family_checks(
        t, version, tuple(v.address for v in vips), cfg.unicast_peers, cfg.unicast_src_ip
    )
    if cfg.priority == 255 and not cfg.preempt:
        t.problem(
            "preempt", "an address owner (priority 255) always preempts; remove preempt = false"
        )
    t.finish()
    return cfg


def _virtual_addresses(t: Table, interface: str, version: int) -> tuple[VirtualAddress, ...]:
    vips = []
    for i, spec in enumerate(t.strings("virtual_ipaddress")):
        vip = _virtual_address(spec, interface, version)
        if isinstance(vip, str):
            t.problem(f"virtual_ipaddress[{i}]", vip)
        else:
            vips.append(vip)
    if "virtual_ipaddress" not in t.data:
        t.problem("virtual_ipaddress", "is required (at least one VIP)")
    elif not vips and not any(p.startswith(t.key("virtual_ipaddress")) for p in t.problems):
        t.problem("virtual_ipaddress", "must list at least one address")
    if len(vips) > limits.MAX_VIPS:
        t.problem(
            "virtual_ipaddress", f"at most {limits.MAX_VIPS} addresses fit in one advertisement"
        )
    return tuple(vips)


def _excluded_addresses(t: Table, interface: str) -> tuple[VirtualAddress, ...]:
    """`virtual_ipaddress_excluded`: as the VIPs, but not in adverts (no 255 limit)."""
    vips = []
    specs = t.strings("virtual_ipaddress_excluded")
    if len(specs) > limits.MAX_EXCLUDED_VIPS:
        t.problem("virtual_ipaddress_excluded", f"at most {limits.MAX_EXCLUDED_VIPS} addresses")
        return ()
    for i, spec in enumerate(specs):
        vip = _virtual_address(spec, interface)
        if isinstance(vip, str):
            t.problem(f"virtual_ipaddress_excluded[{i}]", vip)
        else:
            vips.append(vip)
    return tuple(vips)


def _authentication(t: Table) -> tuple[str, str]:
    t.known.add("authentication")
    if "authentication" not in t.data:
        return "none", ""
    a = Table(t.data["authentication"], t.key("authentication"), t.problems)
    kind = a.required(
        "type",
        str,
        "none",
        lambda v: None if v in limits.AUTH_TYPES else f"must be 'none' or 'pass', not {shown(v)}",
    )
    password = a.get("password", str, "")
    if kind == "pass":
        if "password" not in a.data:
            a.problem("password", "is required with type = 'pass'")
        elif not password:
            a.problem("password", "must not be empty")
        elif (message := values.text(password)) is not None:
            a.problem("password", message)
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


def _normal(address: str | None) -> str | None:
    return None if not address else vrrp_version.normal(address)


def _first_octets(password: str) -> str:
    return password.encode()[:PASS_MAX_OCTETS].decode(errors="replace")


VIP_SYNTAX = "expected 'ADDRESS[/PREFIXLEN] [dev IFNAME] [brd ADDRESS|+] [label LABEL]'"


def _virtual_address(spec: str, interface: str, version: int = 2) -> VirtualAddress | str:
    """`ADDR[/LEN] [dev IFNAME] [brd B] [label L]` as keepalived writes it."""
    words = spec.split()
    if not words or len(words) % 2 != 1:
        return f"{shown(spec)}: {VIP_SYNTAX}"
    options: dict[str, str] = {}
    for key, value in zip(words[1::2], words[2::2], strict=True):
        key = "brd" if key == "broadcast" else key
        if key not in ("dev", "brd", "label") or key in options:
            return f"{shown(spec)}: {VIP_SYNTAX}"
        options[key] = value
    device = options.get("dev", interface)
    if "dev" in options and (message := values.ifname(device)) is not None:
        return message
    try:
        iface = ipaddress.IPv4Interface(words[0])
    except ValueError:
        try:
            iface6 = ipaddress.IPv6Interface(words[0])
        except ValueError:
            family = "IPv4" if version == 2 else "IPv4 or IPv6"
            return f"{shown(words[0])} is not an {family} address with an optional /prefixlen"
        if (message := vrrp_version.vip6(iface6)) is not None:
            return message
        return VirtualAddress(str(iface6.ip), iface6.network.prefixlen, device)
    if (message := values.vip(iface)) is not None:
        return message
    label = options.get("label")
    if label is not None and (
        not label.startswith(device)
        or len(label.encode()) >= limits.IFNAMSIZ  # IFA_LABEL holds IFNAMSIZ bytes with the NUL
        or values.text(label) is not None
    ):
        return (
            f"label {shown(label)} must start with the device name {device} and be at most "
            f"{limits.IFNAMSIZ - 1} bytes (e.g. {device}:vip)"
        )
    brd = options.get("brd")
    if brd is not None and brd != "+" and values.ipv4(brd) is not None:
        return f"brd {shown(brd)} is not an IPv4 address or +"
    if brd == "+":
        brd = str(iface.network.broadcast_address)
    return VirtualAddress(str(iface.ip), iface.network.prefixlen, device, label, brd)
