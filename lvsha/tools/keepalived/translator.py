"""The translator: keepalived's statement tree -> the TOML-shaped dict of an lvsha config.

It writes only keys that `lvsha.config` accepts. Whatever has no lvsha
equivalent is dropped and listed, each entry `keepalived.path: why`
(`reasons.py`): a migration must never lose a setting silently. The
blocks are translated in `vrrp.py` (global_defs, vrrp_instance) and
`services.py` (virtual_server); this module walks the top level.
"""

from __future__ import annotations

from lvsha.tools.keepalived.alerts import smtp_table
from lvsha.tools.keepalived.reader import Statement
from lvsha.tools.keepalived.reasons import TOP_REASONS
from lvsha.tools.keepalived.services import translate_virtual_server
from lvsha.tools.keepalived.tracking import (
    check_references,
    vrrp_script,
    vrrp_sync_group,
    vrrp_track_file,
)
from lvsha.tools.keepalived.values import Notes, Table, arg, ordered
from lvsha.tools.keepalived.vrrp import (
    INSTANCE_ORDER,
    GlobalDefaults,
    SyncDaemon,
    translate_global_defs,
    translate_instance,
)


def translate(stmts: list[Statement]) -> tuple[Table, Notes]:
    """The statement tree -> a TOML-shaped dict, with notes."""
    notes = Notes()
    daemon: Table = {}
    defaults = GlobalDefaults()
    for stmt in stmts:
        if stmt.keyword == "global_defs":
            defaults = translate_global_defs(stmt.block or [], notes, daemon)
    tracking = {"vrrp_script": vrrp_script, "vrrp_track_file": vrrp_track_file}
    for stmt in stmts:  # before the instances, which refer to them
        if stmt.keyword in tracking:
            tracking[stmt.keyword](stmt, notes, defaults.tracking)
    vrrp: Table = {}
    servers: list[Table] = []
    for stmt in stmts:
        kw = stmt.keyword
        if kw in ("global_defs", *tracking):
            continue
        if kw == "vrrp_sync_group":
            vrrp_sync_group(stmt, notes, defaults.tracking)
            continue
        if kw == "vrrp_instance":
            name = arg(notes, stmt)
            if name is None:
                continue
            if name in vrrp:
                notes.bad(stmt, f"vrrp_instance {name} is defined twice")
                continue
            if (
                instance := translate_instance(name, stmt.block or [], notes, defaults)
            ) is not None:
                vrrp[name] = instance
        elif kw == "virtual_server":
            if (server := translate_virtual_server(stmt, notes)) is not None:
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
    check_references(data, defaults.tracking, notes)
    used = {
        ref if isinstance(ref, str) else ref["name"]
        for inst in vrrp.values()
        for ref in inst.get("track_script", [])
    }
    scripts = {n: s for n, s in defaults.tracking.scripts.items() if n in used}
    for unused in sorted(set(defaults.tracking.scripts) - used):
        notes.skip(f"vrrp_script.{unused}", "tracked by no instance (keepalived ignores it too)")
    if scripts:
        data["vrrp_script"] = scripts
    if defaults.tracking.groups:
        data["vrrp_sync_group"] = defaults.tracking.groups
    if (smtp := smtp_table(defaults.mail, notes)) is not None:
        daemon["smtp"] = smtp
    else:
        alerting = [(f"vrrp_instance.{n}", t) for n, t in vrrp.items()]
        for server in servers:
            alerting.append(("virtual_server", server))
            alerting += [("virtual_server.real_server", r) for r in server.get("real_server", [])]
        alerting += [(f"vrrp_sync_group.{n}", t) for n, t in defaults.tracking.groups.items()]
        for path, table in alerting:
            if table.pop("smtp_alert", False):
                notes.skip(
                    f"{path}.smtp_alert",
                    "no smtp_server and notification_email in global_defs: keepalived sends none",
                )
    if servers:
        data["virtual_server"] = servers
    return data, notes


def _place_sync_daemon(spec: SyncDaemon, vrrp: Table, notes: Notes) -> None:
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
    vrrp[name] = ordered(instance, INSTANCE_ORDER)
    if spec.syncid is not None and spec.syncid != instance["virtual_router_id"]:
        notes.skip(
            f"global_defs.lvs_sync_daemon id {spec.syncid}",
            f"lvsha uses the instance's VRID ({instance['virtual_router_id']}) as the sync id, "
            "keepalived's default: sync messages between the two nodes are ignored while their "
            "ids differ, so connections are not synchronised until both run lvsha",
        )
