"""`[vrrp_script.*]`, `[vrrp_sync_group.*]` and an instance's track_* keys.

keepalived's vocabulary and ranges (vrrp_parser.c): a script weight within
-253..253, a file weight within -254..254; a plain interface name is a
weight-0 track (FAULT while down). Names are checked across tables here:
a track_script must name a `[vrrp_script]`, a sync group must name
instances, and an instance belongs to one group at most.
"""

from __future__ import annotations

from typing import Any

from lvsha.config import limits, values
from lvsha.config._table import Table, between, key_part, type_name
from lvsha.config.model import SyncGroupConfig, TrackRef, VrrpInstanceConfig, VrrpScriptConfig


def vrrp_scripts(root: Table, problems: list[str]) -> tuple[VrrpScriptConfig, ...]:
    root.known.add("vrrp_script")
    table = Table(root.data.get("vrrp_script", {}), "vrrp_script", problems)
    out = []
    for name, body in table.data.items():
        table.known.add(name)
        if (message := values.name(name)) is not None:
            table.problem(name, f"script name {message}")
        t = Table(body, table.key(name), problems)
        script = t.argv("script", values.text)
        if "script" not in t.data:
            t.problem("script", "is required (argv, no shell)")
        interval = t.get("interval", float, 1.0, between(limits.SCRIPT_INTERVAL))
        timeout = t.get("timeout", float, None, between(limits.SCRIPT_TIMEOUT))
        out.append(
            VrrpScriptConfig(
                name=name,
                script=script,
                interval=interval,
                timeout=timeout,
                weight=t.get("weight", int, 0, between(limits.TRACK_WEIGHT)),
                rise=t.get("rise", int, 1, between(limits.RISE_FALL)),
                fall=t.get("fall", int, 1, between(limits.RISE_FALL)),
                user=t.get("user", str, None, values.name),  # type: ignore[arg-type]
                group=t.get("group", str, None, values.name),  # type: ignore[arg-type]
                init_fail=t.get("init_fail", bool, False),
            )
        )
        t.finish()
    return tuple(out)


def sync_groups(root: Table, problems: list[str]) -> tuple[SyncGroupConfig, ...]:
    root.known.add("vrrp_sync_group")
    table = Table(root.data.get("vrrp_sync_group", {}), "vrrp_sync_group", problems)
    out = []
    for name, body in table.data.items():
        table.known.add(name)
        if (message := values.name(name)) is not None:
            table.problem(name, f"group name {message}")
        t = Table(body, table.key(name), problems)
        members = t.strings("group", values.name)
        if "group" not in t.data:
            t.problem("group", "is required (the instances that fail over together)")
        elif not members and not isinstance(t.data["group"], list):
            pass  # the type problem is said already
        elif not t.data["group"]:
            t.problem("group", "must name at least one instance")
        out.append(
            SyncGroupConfig(
                name=name,
                group=members,
                notify=t.argv("notify", values.text),
                notify_master=t.argv("notify_master", values.text),
                notify_backup=t.argv("notify_backup", values.text),
                notify_fault=t.argv("notify_fault", values.text),
                smtp_alert=t.get("smtp_alert", bool, False),
            )
        )
        t.finish()
    return tuple(out)


def track_interfaces(t: Table) -> tuple[tuple[str, ...], tuple[TrackRef, ...]]:
    """`track_interface`: names (FAULT while down) and `{name, weight}` tables."""
    plain: list[str] = []
    weighted: list[TrackRef] = []
    for _, ref in _refs(t, "track_interface", values.ifname, limits.TRACK_WEIGHT, "name"):
        if ref is not None and ref.weight:
            weighted.append(ref)
        elif ref is not None:
            plain.append(ref.name)
    return tuple(plain), tuple(weighted)


def track_scripts(t: Table) -> tuple[TrackRef, ...]:
    """`track_script`: names, or `{name, weight}` to override the script's weight."""
    refs = _refs(t, "track_script", values.name, limits.TRACK_WEIGHT, "name")
    return tuple(ref for _, ref in refs if ref is not None)


def track_files(t: Table) -> tuple[TrackRef, ...]:
    """`track_file`: `{path, weight}` (weight 1 when absent, as keepalived's)."""
    out = []
    for _, ref in _refs(t, "track_file", values.name, limits.FILE_WEIGHT, "path"):
        if ref is not None:
            out.append(TrackRef(ref.name, 1 if ref.weight is None else ref.weight))
    return tuple(out)


def _refs(
    t: Table, key: str, check: Any, bounds: limits.IntBounds, name_key: str
) -> list[tuple[int, TrackRef | None]]:
    items = t.get(key, list, [])
    if len(items) > limits.MAX_TRACKED:
        t.problem(key, f"at most {limits.MAX_TRACKED} entries, not {len(items)}")
        return []
    out: list[tuple[int, TrackRef | None]] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        where = f"{key}[{i}]"
        ref: TrackRef | None = None
        if isinstance(item, str) and name_key == "name":
            if (message := check(item)) is not None:
                t.problem(where, message)
            else:
                ref = TrackRef(item)
        elif isinstance(item, dict):
            sub = Table(item, t.key(where), t.problems)
            name = sub.required(name_key, str, "", check)
            weight = sub.get("weight", int, None, between(bounds))
            sub.finish()
            if name:
                ref = TrackRef(name, weight)
        else:
            wanted = "a table {path, weight}" if name_key == "path" else "a name or a table"
            t.problem(where, f"must be {wanted}, not {type_name(item)}")
        if ref is not None and ref.name in seen:
            t.problem(where, f"{ref.name!r} is tracked twice")
            ref = None
        elif ref is not None:
            seen.add(ref.name)
        out.append((i, ref))
    return out


def tracking_cross_checks(
    instances: tuple[VrrpInstanceConfig, ...],
    scripts: tuple[VrrpScriptConfig, ...],
    groups: tuple[SyncGroupConfig, ...],
    problems: list[str],
) -> None:
    script_names = {s.name for s in scripts}
    by_name = {inst.name: inst for inst in instances}
    for inst in instances:
        for i, ref in enumerate(inst.track_script):
            if ref.name not in script_names:
                problems.append(
                    f"vrrp.{key_part(inst.name)}.track_script[{i}]: no [vrrp_script."
                    f"{key_part(ref.name)}] is defined"
                )
    member_of: dict[str, str] = {}
    for g in groups:
        for i, member in enumerate(g.group):
            where = f"vrrp_sync_group.{key_part(g.name)}.group[{i}]"
            if member not in by_name:
                problems.append(f"{where}: no [vrrp.{key_part(member)}] is defined")
            elif member in member_of:
                problems.append(
                    f"{where}: {member} is already in vrrp_sync_group."
                    f"{key_part(member_of[member])} (an instance is in one group at most)"
                )
            else:
                member_of[member] = g.name
