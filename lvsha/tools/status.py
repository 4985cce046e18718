"""`lvsha status [--json]`: the running daemon's state, as a table or as JSON.

Kept light on purpose: it imports neither the config parser nor asyncio nor
pyroute2 (docs/benchmarks-status.md).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from lvsha.exits import EX_OK
from lvsha.tools.ask import ask


def main(socket_path: str, as_json: bool) -> int:
    """Print the status document; the exit code of `ask` when there is none."""
    answer = ask(socket_path, "status")
    if isinstance(answer, int):
        return answer
    if as_json:
        json.dump(answer, sys.stdout, indent=2)
        print()
    else:
        print(render_status(answer))
    return EX_OK


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.1f}h ago"


def _where(address: str, port: int, width: int = 0) -> str:
    """ADDRESS:PORT, an IPv6 address in brackets (as ipvsadm writes it); the port padded."""
    host = f"[{address}]" if ":" in address else address
    return f"{host}:{port:<{width}}" if width else f"{host}:{port}"


def render_status(status: dict[str, Any]) -> str:
    """The human table of `lvsha status`."""
    d = status["daemon"]
    up = _ago(time.time() - d["started_at"]).removesuffix(" ago")
    lines = [f"lvsha {d['version']} on {d['name']} (pid {d['pid']}, up {up})"]
    if d.get("reload_error"):
        lines.append("last reload FAILED, running the previous configuration:")
        lines += [f"  {p}" for p in d["reload_error"]]
    lines.append("")
    lines.append(
        f"{'INSTANCE':<12} {'IFACE':<8} {'VRID':>4} {'PRIO':>4} {'STATE':<7} {'MASTER':<22} VIPS"
    )
    for i in status["instances"]:
        m = i["master"]
        master = (
            "-" if m is None else ("self" if m["self"] else f"{m['address']} ({m['priority']})")
        )
        lines.append(
            f"{i['name']:<12} {i['interface']:<8} {i['virtual_router_id']:>4} {i['priority']:>4} "
            f"{i['state']:<7} {master:<22} {', '.join(i['vips'])}"
        )
        if i.get("version") == 3:  # v2 tables stay as they were
            lines.append(
                f"{'':<12} VRRPv3, advert_int {i['advert_int']:g} s"
                f" (the master's: {i['master_advert_int']:g} s)"
            )
        t = i["last_transition"]
        if t is not None:
            lines.append(f"{'':<12} since {_ago(t['ago'])}: {t['reason']}")
        if i.get("split_brain"):
            sb = i["split_brain"]
            lines.append(
                f"{'':<12} SPLIT BRAIN: {sb['address']} ({sb['priority']}) also claims master, "
                f"seen {_ago(sb['seen_ago'])}"
            )
        if i.get("address_conflict"):
            ac = i["address_conflict"]
            lines.append(
                f"{'':<12} ADDRESS CONFLICT: another router sends adverts from our address "
                f"{ac['address']} (priority {ac['priority']}), seen {_ago(ac['seen_ago'])}"
            )
        for warning in i.get("warnings", []):
            lines.append(f"{'':<12} note: {warning}")
        if i["faults"]:
            lines.append(f"{'':<12} faults: {', '.join(i['faults'])}")
        lines += _tracking_lines(i)
        c = i["counters"]
        drops = ", ".join(f"{k}={v}" for k, v in c["discarded"].items()) or "none"
        lines.append(
            f"{'':<12} adverts sent {c['adverts_sent']}, received {c['adverts_received']}; "
            f"dropped: {drops}"
        )
    for interface in status.get("interfaces", []):
        if interface["discarded"]:
            drops = ", ".join(f"{k}={v}" for k, v in interface["discarded"].items())
            lines.append(f"{interface['name']:<12} dropped before any instance: {drops}")
    tasks = status["daemon"].get("tasks") or {}
    for name, task in (tasks.get("supervised") or {}).items():
        if task["restarts"]:
            lines.append(f"task {name} restarted {task['restarts']}x, last: {task['last_error']}")
    if tasks and not tasks.get("healthy", True):
        lines.append("a critical task keeps failing: the watchdog is no longer fed")
    lines += _bgp_lines(status.get("bgp"))
    ipvs = status.get("ipvs") or {}
    if ipvs.get("error"):
        lines += ["", f"IPVS: {ipvs['error']}"]
    for vs in status["virtual_servers"]:
        name = f"fwmark {vs['fwmark']}" if vs.get("fwmark") else _where(vs["address"], vs["port"])
        quorum = "" if vs.get("quorum_up", True) else "  QUORUM LOST (sorry server)"
        lines.append("")
        lines.append(
            f"{vs['protocol'].upper()} {name} {vs['scheduler']} {vs['forwarding']}{quorum}"
        )
        for rs in vs["real_servers"]:
            health = "up" if rs["healthy"] else "DOWN"
            check = rs.get("check")
            detail = ""
            if check is not None:
                latency = "" if check["latency"] is None else f" {check['latency'] * 1e3:.1f} ms"
                detail = f"  {check['check']}: {check['last_result'] or 'pending'}{latency}"
                if not rs["healthy"] and check.get("detail"):
                    detail += f" ({check['detail']})"
            lines.append(
                f"  -> {_where(rs['address'], rs['port'], 6)} weight {rs['weight']:<5} "
                f"{health:<4}{detail}"
            )
    return "\n".join(lines)


def _tracking_lines(i: dict[str, Any]) -> list[str]:
    """Base vs effective priority, each tracked object, the sync group (runtime/tracking.py)."""
    lines = []
    base = i.get("base_priority", i["priority"])
    tracked = i.get("tracked") or []
    if tracked or base != i["priority"]:
        parts = [
            f"{t['kind']} {t['name']} {t['state']}"
            + (" FAULT" if t["fault"] else f" {t['contribution']:+d}" if t["weight"] else "")
            for t in tracked
        ]
        lines.append(f"{'':<12} priority {i['priority']} = base {base}; {', '.join(parts)}")
    group = i.get("sync_group")
    if group:
        lines.append(
            f"{'':<12} sync group {group['name']} ({group['state'] or '-'}): "
            + ", ".join(group["members"])
        )
    return lines


def _bgp_lines(bgp: dict[str, Any] | None) -> list[str]:
    """Each BGP session, each prefix and why it is or is not announced."""
    if bgp is None:
        return []
    speaker = bgp.get("speaker") or {}
    lines = ["", f"BGP ({speaker.get('speaker', '?')}, pid {speaker.get('pid') or '-'})"]
    if bgp.get("drained"):
        lines.append(f"  DRAINED: {bgp['drain_file']} exists (lvsha undrain)")
    if speaker.get("last_error"):
        lines.append(f"  speaker: {speaker['last_error']}")
    for s in bgp.get("sessions", []):
        since = "" if s.get("since") is None else f" since {_ago(time.time() - s['since'])}"
        error = f" ({s['last_error']})" if s.get("last_error") else ""
        lines.append(f"  peer {s['peer']} AS{s.get('peer_as', '?')}: {s['state']}{since}{error}")
    for p in bgp.get("prefixes", []):
        state = "announced" if p["announced"] else "WITHDRAWN"
        lines.append(f"  {p['prefix']:<20} {state:<10} {p['reason']}")
    return lines
