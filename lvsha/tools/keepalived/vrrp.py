"""Translate keepalived's global_defs and vrrp_instance blocks into `[daemon]` and `[vrrp.NAME]`."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from lvsha.config import PASS_MAX_OCTETS
from lvsha.tools.keepalived import vrrp3
from lvsha.tools.keepalived.alerts import MAIL_KEYWORDS, MailDefs, global_mail
from lvsha.tools.keepalived.reader import Statement
from lvsha.tools.keepalived.reasons import GLOBAL_REASONS, INSTANCE_REASONS
from lvsha.tools.keepalived.tracking import (
    TrackingDefs,
    instance_track_file,
    instance_track_interface,
    instance_track_script,
)
from lvsha.tools.keepalived.values import (
    Notes,
    Table,
    arg,
    command_arg,
    flag_arg,
    float_arg,
    ifname_arg,
    int_arg,
    ipv4_arg,
    is_ipv6,
    ordered,
    set_key,
)


@dataclass
class GlobalDefaults:
    instance: Table = field(default_factory=dict)  # garp defaults for every instance
    version: int = 2  # vrrp_version
    sync_daemon: SyncDaemon | None = None
    tracking: TrackingDefs = field(default_factory=TrackingDefs)
    strict: bool = False  # vrrp_strict: keepalived sends no authentication
    mail: MailDefs = field(default_factory=MailDefs)


def translate_global_defs(stmts: list[Statement], notes: Notes, daemon: Table) -> GlobalDefaults:
    out = GlobalDefaults()
    for stmt in stmts:
        kw = stmt.keyword
        path = f"global_defs.{kw}"
        if kw == "router_id":
            if (value := arg(notes, stmt)) is not None:
                daemon["name"] = value
        elif kw == "lvs_id":  # keepalived 1.x's name of router_id
            if (value := arg(notes, stmt)) is not None:
                daemon.setdefault("name", value)
        elif kw == "script_user":
            if (value := arg(notes, stmt)) is not None:
                group = stmt.words[2] if len(stmt.words) > 2 else None
                out.tracking.script_user = (value, group)
            notes.skip(
                path,
                "applied to the vrrp_scripts (their user); lvsha runs notify hooks and "
                "misc_check as its own user (root), without a shell",
            )
        elif kw == "vrrp_strict":
            out.strict = flag_arg(notes, stmt) is True
        elif kw in MAIL_KEYWORDS:
            global_mail(stmt, notes, out.mail)
        elif kw == "vrrp_garp_master_delay":
            set_key(out.instance, "garp_master_delay", float_arg(notes, stmt, 0, 3600))
        elif kw == "vrrp_garp_master_repeat":
            _garp_repeat(notes, stmt, path, out.instance, "garp_master_repeat")
        elif kw == "vrrp_garp_master_refresh":
            set_key(out.instance, "garp_master_refresh", float_arg(notes, stmt, 0, 86400))
        elif kw == "vrrp_garp_master_refresh_repeat":
            _garp_repeat(notes, stmt, path, out.instance, "garp_master_refresh_repeat")
        elif kw == "vrrp_garp_interval":
            _garp_interval(notes, stmt, path, out.instance)
        elif kw == "vrrp_min_garp":
            if flag_arg(notes, stmt):
                out.instance.update(garp_master_repeat=1, garp_master_delay=0)
        elif kw == "vrrp_mcast_group4":
            if arg(notes, stmt) != "224.0.0.18":
                notes.skip(path, "lvsha always uses 224.0.0.18 for multicast adverts")
        elif kw == "vrrp_version":
            if int_arg(notes, stmt, 2, 3) == 3:
                daemon["vrrp_version"] = out.version = 3
        elif kw == "lvs_sync_daemon":
            out.sync_daemon = _lvs_sync_daemon(notes, stmt, path)
        elif kw in GLOBAL_REASONS:
            notes.skip(path, GLOBAL_REASONS[kw])
        else:
            notes.skip(path, "no lvsha equivalent")
    return out


def _garp_repeat(notes: Notes, stmt: Statement, path: str, table: Table, key: str) -> None:
    value = int_arg(notes, stmt, 0, 2**31 - 1)
    if value is None:
        return
    if not 1 <= value <= 100:
        notes.skip(path, f"{value} is outside lvsha's 1..100; lvsha's default is used")
    else:
        table[key] = value


def _garp_interval(notes: Notes, stmt: Statement, path: str, table: Table) -> None:
    value = float_arg(notes, stmt, 0, 86400)
    if value is None:
        return
    if value > 10:
        notes.skip(path, f"{value:g} s is above lvsha's 10 s; lvsha's default 0 is used")
    else:
        table["garp_interval"] = value


@dataclass(frozen=True, slots=True)
class SyncDaemon:
    """global_defs' `lvs_sync_daemon`, placed on its instance once the instances are known."""

    interface: str
    instance: str | None
    syncid: int | None


def _lvs_sync_daemon(notes: Notes, stmt: Statement, path: str) -> SyncDaemon | None:
    """`lvs_sync_daemon IFNAME [[inst] INSTANCE] [id N] [maxlen N] [port N] [ttl N] [group A]`."""
    words = list(stmt.words[1:])
    if not words:
        notes.bad(stmt, "is missing its interface")
        return None
    interface = ifname_arg(notes, stmt, words.pop(0))
    instance: str | None = None
    syncid: int | None = None
    extras: list[str] = []
    while words:
        word = words.pop(0)
        if word == "id" and words:
            syncid = int_arg(notes, Statement((word, words.pop(0)), stmt.raw, stmt.where), 0, 255)
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
    return None if interface is None else SyncDaemon(interface, instance, syncid)


def translate_instance(
    name: str, stmts: list[Statement], notes: Notes, defaults: GlobalDefaults
) -> Table | None:
    """One vrrp_instance -> [vrrp.NAME], or None when lvsha cannot run it."""
    path = f"vrrp_instance.{name}"
    out: Table = {}
    vips: list[str] = []
    state: str | None = None
    nopreempt: Statement | None = None
    src: str | None = None
    strict = defaults.strict
    version, family, _ = vrrp3.prescan(stmts, defaults.version)
    version = vrrp3.force_v3(notes, f"{path}.version", version, family, out)
    for stmt in stmts:
        kw = stmt.keyword
        key = f"{path}.{kw}"
        if kw == "state":
            value = arg(notes, stmt)
            if value not in (None, "MASTER", "BACKUP"):
                notes.skip(key, f"{value!r} is not MASTER or BACKUP (keepalived uses BACKUP)")
            elif value is not None:
                state = value
        elif kw == "interface":
            if (value := arg(notes, stmt)) is not None:
                set_key(out, "interface", ifname_arg(notes, stmt, value))
        elif kw == "virtual_router_id":
            set_key(out, "virtual_router_id", int_arg(notes, stmt, 1, 255))
        elif kw == "priority":
            set_key(out, "priority", int_arg(notes, stmt, 1, 255))
        elif kw == "advert_int" and version == 3:
            vrrp3.advert_int_v3(notes, stmt, key, out)
        elif kw == "advert_int":
            _advert_int(notes, stmt, key, out)
        elif kw == "nopreempt":
            nopreempt = stmt
        elif kw == "preempt":
            nopreempt = None
        elif kw == "preempt_delay":
            set_key(out, "preempt_delay", float_arg(notes, stmt, 0, 1000))
        elif kw == "authentication" and version == 3:
            notes.skip(key, "VRRP version 3 has no authentication (RFC 5798 section 5.2)")
        elif kw == "authentication":
            _authentication(stmt.block or [], notes, key, out)
        elif kw == "virtual_ipaddress":
            vips.extend(_vips(stmt.block or [], notes, key, family))
        elif kw == "virtual_ipaddress_excluded":
            out.setdefault("virtual_ipaddress_excluded", []).extend(
                _vips(stmt.block or [], notes, key, family)
            )
        elif kw in ("unicast_src_ip", "mcast_src_ip"):
            if (value := arg(notes, stmt)) is not None:
                if family == 4 and is_ipv6(value):
                    notes.skip(key, "an IPv6 source for an IPv4 instance")
                elif kw == "unicast_src_ip" or src is None:
                    src = vrrp3.address(notes, key, stmt, value, family)
        elif kw == "unicast_peer":
            _unicast_peers(stmt.block or [], notes, key, out, family)
        elif kw == "track_interface":
            instance_track_interface(stmt, notes, key, out)
        elif kw == "track_script":
            instance_track_script(stmt, notes, key, out)
        elif kw == "track_file":
            instance_track_file(stmt, notes, key, out, defaults.tracking.files)
        elif kw == "lvs_sync_daemon_interface":
            if (value := arg(notes, stmt)) is not None:
                set_key(out, "sync_daemon_interface", ifname_arg(notes, stmt, value))
        elif kw in ("notify", "notify_master", "notify_backup", "notify_fault"):
            set_key(out, kw, command_arg(notes, stmt, path))
        elif kw == "garp_master_delay":
            set_key(out, kw, float_arg(notes, stmt, 0, 3600))
        elif kw == "garp_master_refresh":
            set_key(out, kw, float_arg(notes, stmt, 0, 86400))
        elif kw in ("garp_master_repeat", "garp_master_refresh_repeat"):
            _garp_repeat(notes, stmt, key, out, kw)
        elif kw == "garp_interval":
            _garp_interval(notes, stmt, key, out)
        elif kw == "version":
            int_arg(notes, stmt, 2, 3)  # read by prescan
        elif kw == "strict_mode":
            strict = flag_arg(notes, stmt) is True
        elif kw == "smtp_alert":
            out["smtp_alert"] = flag_arg(notes, stmt) is True
        elif kw in ("accept", "check_unicast_src", "native_ipv6"):
            pass  # what lvsha always does
        elif kw in INSTANCE_REASONS:
            notes.skip(key, INSTANCE_REASONS[kw])
        else:
            notes.unknown(path, stmt)
    if version != defaults.version:
        out["version"] = version
    if family == 6 and out.get("unicast_peers"):
        vrrp3.warn_unicast_hop_limit(notes, f"{path}.unicast_peer")
    if src is not None:
        out["unicast_src_ip"] = src
    if vips:
        out["virtual_ipaddress"] = vips
    for key in ("virtual_ipaddress", "virtual_ipaddress_excluded"):
        if key in out:
            out[key] = [
                _label_fits(notes, f"{path}.{key}", v, out.get("interface")) for v in out[key]
            ]
    for k, v in defaults.instance.items():
        out.setdefault(k, v)
    if defaults.mail.alert:
        out.setdefault("smtp_alert", True)
    priority = out.get("priority", 100)
    if strict and "authentication" in out:
        del out["authentication"]
        notes.skip(
            f"{path}.authentication",
            "vrrp_strict: keepalived sends no authentication in strict mode, so neither does "
            "lvsha (a PASS password here would make the mixed pair discard each other's adverts)",
        )
    if state == "MASTER":
        for stmt_key, what in (("preempt_delay", "preempt_delay"), ("nopreempt", "nopreempt")):
            present = nopreempt is not None if stmt_key == "nopreempt" else stmt_key in out
            if present:
                notes.skip(
                    f"{path}.{what}",
                    "cleared: keepalived ignores it with state MASTER (it warns and clears it)",
                )
        out.pop("preempt_delay", None)
        nopreempt = None
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
        missing.append(f"virtual_ipaddress (an IPv{family} VIP)")
    if missing:
        notes.skip(path, f"the whole instance: lvsha needs {', '.join(missing)}")
        return None
    return ordered(out, INSTANCE_ORDER)


INSTANCE_ORDER = (
    "interface",
    "virtual_router_id",
    "priority",
    "version",
    "advert_int",
    "preempt",
    "preempt_delay",
    "authentication",
    "virtual_ipaddress",
    "virtual_ipaddress_excluded",
    "unicast_src_ip",
    "unicast_peers",
    "track_interface",
    "track_script",
    "track_file",
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
    "smtp_alert",
)


def _state(notes: Notes, path: str, state: str, priority: int) -> None:
    if state == "MASTER" and priority < 255:
        notes.skip(
            path,
            "informational: lvsha starts every instance as BACKUP (except priority 255) and "
            "becomes MASTER by election, as keepalived 2.x does below priority 255",
        )
    elif state == "BACKUP" and priority == 255:
        notes.skip(path, "lvsha makes an address owner (priority 255) MASTER at once")


def _advert_int(notes: Notes, stmt: Statement, path: str, out: Table) -> None:
    value = float_arg(notes, stmt, 0.01, 255)
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


def _authentication(stmts: list[Statement], notes: Notes, path: str, out: Table) -> None:
    kind: str | None = None
    password: str | None = None
    for stmt in stmts:
        if stmt.keyword == "auth_type":
            kind = arg(notes, stmt)
            if kind not in (None, "PASS", "AH"):
                notes.bad(stmt, f"{kind!r} is not PASS or AH")
                kind = None
        elif stmt.keyword == "auth_pass":
            password = arg(notes, stmt)
        else:
            notes.unknown(path, stmt)
    if kind == "AH":
        notes.critical_skip(
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


def _vips(stmts: list[Statement], notes: Notes, path: str, family: int = 4) -> list[str]:
    """`ADDR[/LEN] [dev IF] [brd ..] [scope ..] [label ..] ...` -> "ADDR/LEN [dev IF]"."""
    out = []
    for stmt in stmts:
        address, *options = stmt.words
        if is_ipv6(address) != (family == 6):
            notes.skip(
                f"{path}[{address}]",
                f"not IPv{family}, the instance's family: an advert carries one family "
                "(RFC 5798 section 5.2.5; keepalived ignores it too)",
            )
            continue
        try:
            iface: ipaddress.IPv4Interface | ipaddress.IPv6Interface = (
                ipaddress.IPv6Interface(address)
                if family == 6
                else ipaddress.IPv4Interface(address)
            )
        except ValueError:
            notes.bad(
                stmt, f"{address!r} is not an IPv{family} address with an optional /prefixlen"
            )
            continue
        text = f"{iface.ip}/{iface.network.prefixlen}"
        dropped = []
        while options:
            word = options.pop(0)
            if word == "dev" and options:
                if (device := ifname_arg(notes, stmt, options.pop(0))) is not None:
                    text += f" dev {device}"
            elif word in ("brd", "broadcast") and options:
                value = options.pop(0)
                if value == "+" or _is_ipv4(value):
                    text += f" brd {value}"
                else:
                    dropped.append(f"{word} {value}")
            elif word == "label" and options:
                text += f" label {options.pop(0)}"
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


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def _label_fits(notes: Notes, path: str, vip: str, interface: str | None) -> str:
    """lvsha (as iproute2) wants a label that starts with its device: drop it otherwise."""
    words = vip.split()
    if "label" not in words:
        return vip
    i = words.index("label")
    device = words[words.index("dev") + 1] if "dev" in words else interface
    if device is not None and words[i + 1].startswith(device) and len(words[i + 1]) <= 15:
        return vip
    notes.skip(
        f"{path}[{words[0]}] label {words[i + 1]}",
        f"a label must start with the device name ({device}), as iproute2 requires",
    )
    return " ".join(words[:i] + words[i + 2 :])


def _unicast_peers(
    stmts: list[Statement], notes: Notes, path: str, out: Table, family: int = 4
) -> None:
    peers: list[str] = out.setdefault("unicast_peers", [])
    for stmt in stmts:
        address = stmt.keyword
        if family == 4 and not is_ipv6(address):
            peer = ipv4_arg(notes, stmt, address)
        else:
            peer = vrrp3.address(notes, f"{path}[{address}]", stmt, address, family)
        if peer is not None:
            peers.append(peer)
        if len(stmt.words) > 1:
            notes.skip(
                f"{path}[{address}] {' '.join(stmt.words[1:])}",
                "lvsha requires TTL 255 on every advert (RFC 3768 section 7.1)",
            )
    if not peers:
        del out["unicast_peers"]
