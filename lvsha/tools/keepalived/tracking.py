"""Translate keepalived's tracking: vrrp_script, vrrp_track_file, vrrp_sync_group, track_*.

keepalived's syntax (vrrp_parser.c, 2.2): `vrrp_script NAME { script ..;
interval; timeout; weight W [reverse]; rise; fall; user U [G]; init_fail }`,
`vrrp_track_file NAME { file PATH; weight W [reverse]; init_file .. }`,
`vrrp_sync_group NAME { group { I1 I2 } notify* }`, and in an instance
`track_script { NAME [weight W [reverse]] }`, `track_interface { IF [weight
W [reverse]] }`, `track_file { NAME [weight W [reverse]] }`.

A script keepalived would run as root (no `user`, no global `script_user`)
is written with `user = "root"`: lvsha's default (nobody) could make a
check such as `killall -0 haproxy` fail and move the VIP. What lvsha cannot
carry over and that changes failover (`reverse`, tracking on a group) is a
critical note: the import exits non-zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lvsha.config import limits
from lvsha.tools.keepalived.reader import Statement
from lvsha.tools.keepalived.values import (
    Notes,
    Table,
    arg,
    command_arg,
    flag_arg,
    float_arg,
    ifname_arg,
    int_arg,
    set_key,
)

REVERSE = (
    "lvsha has no 'reverse' weights: the object's OK and failing states would swap; "
    "invert the check itself"
)


@dataclass
class TrackingDefs:
    """The top-level tracking blocks, for the instances to refer to."""

    scripts: dict[str, Table] = field(default_factory=dict)
    files: dict[str, tuple[str, int]] = field(default_factory=dict)  # name -> (path, weight)
    groups: dict[str, Table] = field(default_factory=dict)
    script_user: tuple[str, str | None] | None = None  # global_defs script_user


def _weight(
    notes: Notes, stmt: Statement, words: tuple[str, ...], path: str, bounds: limits.IntBounds
) -> int | None:
    """`weight W [reverse]` at words[0:]; None when absent or bad."""
    if not words:
        return None
    if words[0] != "weight" or len(words) < 2:
        notes.skip(f"{path} {' '.join(words)}", "not understood (expected 'weight N')")
        return None
    value = int_arg(notes, Statement(("weight", words[1]), stmt.raw, stmt.where), *bounds)
    if len(words) > 2 and words[2] == "reverse":
        notes.critical_skip(f"{path} reverse", REVERSE)
    return value


def vrrp_script(stmt: Statement, notes: Notes, defs: TrackingDefs) -> None:
    name = arg(notes, stmt)
    if name is None:
        return
    path = f"vrrp_script.{name}"
    out: Table = {}
    for sub in stmt.block or []:
        kw = sub.keyword
        if kw == "script":
            set_key(out, "script", command_arg(notes, sub, path))
        elif kw == "interval":
            set_key(out, "interval", float_arg(notes, sub, *limits.SCRIPT_INTERVAL))
        elif kw == "timeout":
            set_key(out, "timeout", float_arg(notes, sub, *limits.SCRIPT_TIMEOUT))
        elif kw == "weight":
            set_key(out, "weight", _weight(notes, sub, sub.words[0:], path, limits.TRACK_WEIGHT))
        elif kw in ("rise", "fall"):
            set_key(out, kw, int_arg(notes, sub, *limits.RISE_FALL))
        elif kw == "user":
            set_key(out, "user", arg(notes, sub))
            if len(sub.words) > 2:
                out["group"] = sub.words[2]
        elif kw == "init_fail":
            if flag_arg(notes, sub):
                out["init_fail"] = True
        else:
            notes.unknown(path, sub)
    if "script" not in out:
        notes.skip(path, "the whole script: it has no 'script' line")
        return
    if "user" not in out:
        user, group = defs.script_user or ("root", None)
        out["user"] = user
        if group is not None:
            out["group"] = group
        if defs.script_user is None:
            notes.warn(
                f"{path}.user",
                'runs as root, as keepalived ran it; set user = "nobody" if it needs no privileges',
            )
    defs.scripts[name] = out


def vrrp_track_file(stmt: Statement, notes: Notes, defs: TrackingDefs) -> None:
    name = arg(notes, stmt)
    if name is None:
        return
    path = f"vrrp_track_file.{name}"
    file: str | None = None
    weight = 1
    for sub in stmt.block or []:
        if sub.keyword == "file":
            file = arg(notes, sub)
        elif sub.keyword == "weight":
            w = _weight(notes, sub, sub.words, path, limits.FILE_WEIGHT)
            weight = weight if w is None else w
        elif sub.keyword == "init_file":
            notes.skip(
                f"{path}.init_file",
                "lvsha does not create the file: a missing file reads as 0, as in keepalived",
            )
        else:
            notes.unknown(path, sub)
    if file is None:
        notes.skip(path, "the whole track file: it has no 'file' line")
        return
    defs.files[name] = (file, weight)


def vrrp_sync_group(stmt: Statement, notes: Notes, defs: TrackingDefs) -> None:
    name = arg(notes, stmt)
    if name is None:
        return
    path = f"vrrp_sync_group.{name}"
    out: Table = {}
    for sub in stmt.block or []:
        kw = sub.keyword
        if kw == "group":
            out["group"] = [s.keyword for s in sub.block or []] + list(sub.words[1:])
        elif kw in ("notify", "notify_master", "notify_backup", "notify_fault"):
            set_key(out, kw, command_arg(notes, sub, path))
        elif kw in ("track_script", "track_interface", "track_file", "track_process"):
            notes.critical_skip(
                f"{path}.{kw}",
                "lvsha tracks objects per instance, not per group: move it into each member",
            )
        elif kw == "smtp_alert":
            out["smtp_alert"] = flag_arg(notes, sub) is True
        elif kw in ("global_tracking", "sync_group_tracking_weight", "notify_stop"):
            notes.skip(f"{path}.{kw}", "no lvsha equivalent")
        else:
            notes.unknown(path, sub)
    if not out.get("group"):
        notes.skip(path, "the whole group: it names no instance")
        return
    defs.groups[name] = out


def instance_track_script(stmt: Statement, notes: Notes, path: str, out: Table) -> None:
    refs: list[object] = out.setdefault("track_script", [])
    for sub in stmt.block or []:
        weight = _weight(notes, sub, sub.words[1:], f"{path}[{sub.keyword}]", limits.TRACK_WEIGHT)
        refs.append(sub.keyword if weight is None else {"name": sub.keyword, "weight": weight})
    if not refs:
        del out["track_script"]


def instance_track_interface(stmt: Statement, notes: Notes, path: str, out: Table) -> None:
    refs: list[object] = out.setdefault("track_interface", [])
    for sub in stmt.block or []:
        if (name := ifname_arg(notes, sub, sub.keyword)) is None:
            continue
        weight = _weight(notes, sub, sub.words[1:], f"{path}[{name}]", limits.TRACK_WEIGHT)
        refs.append(name if not weight else {"name": name, "weight": weight})
    if not refs:
        del out["track_interface"]


def instance_track_file(
    stmt: Statement, notes: Notes, path: str, out: Table, files: dict[str, tuple[str, int]]
) -> None:
    refs: list[Table] = out.setdefault("track_file", [])
    for sub in stmt.block or []:
        name = sub.keyword
        if name not in files:
            notes.critical_skip(f"{path}[{name}]", "no vrrp_track_file of that name is defined")
            continue
        file, weight = files[name]
        own = _weight(notes, sub, sub.words[1:], f"{path}[{name}]", limits.FILE_WEIGHT)
        refs.append({"path": file, "weight": weight if own is None else own})
    if not refs:
        del out["track_file"]


def check_references(data: Table, defs: TrackingDefs, notes: Notes) -> None:
    """Drop track_script names and group members that lvsha would refuse."""
    instances: Table = data.get("vrrp", {})
    for name, inst in instances.items():
        refs = inst.get("track_script", [])
        kept = []
        for ref in refs:
            script = ref if isinstance(ref, str) else ref["name"]
            if script in defs.scripts:
                kept.append(ref)
            else:
                notes.critical_skip(
                    f"vrrp_instance.{name}.track_script[{script}]",
                    "no vrrp_script of that name was translated",
                )
        if refs:
            if kept:
                inst["track_script"] = kept
            else:
                del inst["track_script"]
    for gname, group in list(defs.groups.items()):
        members = [m for m in group["group"] if m in instances]
        for missing in (m for m in group["group"] if m not in instances):
            notes.critical_skip(
                f"vrrp_sync_group.{gname}.group[{missing}]",
                "no vrrp_instance of that name was translated: the group fails over without it",
            )
        if members:
            group["group"] = members
        else:
            del defs.groups[gname]
