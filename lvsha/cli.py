"""`lvsha` command line: run | check-config | status | reload.

Exit codes (sysexits.h): 0 ok, 1 runtime failure, 69 daemon unavailable,
77 permission denied, 78 configuration error. Imports stay lazy so that
`lvsha status` does not pay for pyroute2 or structlog.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any

from lvsha import __version__

if TYPE_CHECKING:
    from lvsha.runtime.early import EarlyListener

EX_OK = 0
EX_FAILURE = 1
EX_USAGE = 64
EX_UNAVAILABLE = 69
EX_NOPERM = 77
EX_CONFIG = 78


def _parser() -> argparse.ArgumentParser:
    from lvsha.paths import DEFAULT_CONFIG_PATH, DEFAULT_CONTROL_SOCKET

    parser = argparse.ArgumentParser(prog="lvsha", description="LVS director high availability")
    parser.add_argument("--version", action="version", version=f"lvsha {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the daemon in the foreground")
    run.add_argument("--config", default=DEFAULT_CONFIG_PATH, help="configuration file")
    run.add_argument("--log-format", choices=["auto", "console", "keyvalue", "json", "journald"])
    cleanup = sub.add_parser("cleanup", help="remove the VIPs of every instance (after a crash)")
    cleanup.add_argument("--config", default=DEFAULT_CONFIG_PATH, help="configuration file")
    rs = sub.add_parser("realserver", help="prepare or check an LVS-DR real server")
    rs_sub = rs.add_subparsers(dest="action", required=True)
    for action, text in (
        ("setup", "put the VIPs on lo, set the ARP sysctls"),
        ("check", "say what a real server is missing"),
    ):
        p = rs_sub.add_parser(action, help=text)
        p.add_argument("--vip", action="append", required=True, help="a VIP (repeatable)")
        if action == "setup":
            p.add_argument(
                "--write",
                choices=["sysctl.d", "ifupdown", "networkd"],
                help="also write the persistent form",
            )
            p.add_argument("--dry-run", action="store_true", help="say what would change")
    doctor = sub.add_parser("doctor", help="check a director for what breaks LVS-DR pairs")
    doctor.add_argument("--config", default=DEFAULT_CONFIG_PATH, help="configuration file")
    doctor.add_argument(
        "--listen",
        type=float,
        default=3.0,
        metavar="SECONDS",
        help="how long to listen for other VRRP routers",
    )
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    imp = sub.add_parser("import-keepalived", help="translate a keepalived.conf to lvsha TOML")
    imp.add_argument("file", help="keepalived.conf to read")
    imp.add_argument("-o", "--output", help="write the TOML here (default: standard output)")
    imp.add_argument("--config-id", help="keepalived's -i: which @id lines apply")
    check = sub.add_parser("check-config", help="validate a configuration file")
    check.add_argument("path", nargs="?", default=DEFAULT_CONFIG_PATH)
    for name, text in (
        ("status", "show the running daemon's state"),
        ("reload", "validate and apply the configuration file, as SIGHUP"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--socket", default=DEFAULT_CONTROL_SOCKET, help="control socket")
        if name == "status":
            p.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def main(argv: list[str] | None = None) -> int:
    # `lvsha run`: listen for VRRP before argparse and the daemon are loaded (issue 13)
    from lvsha.paths import DEFAULT_CONFIG_PATH
    from lvsha.runtime.early import EarlyListener

    early = EarlyListener.for_argv(sys.argv[1:] if argv is None else argv, DEFAULT_CONFIG_PATH)
    args = _parser().parse_args(argv)
    if args.command == "check-config":
        return _check_config(args.path)
    if args.command == "run":
        return _run(args.config, args.log_format, early)
    if args.command == "status":
        return _status(args.socket, args.json)
    if args.command == "cleanup":
        return _cleanup(args.config)
    if args.command == "realserver":
        from lvsha import realserver

        if args.action == "setup":
            return realserver.main_setup(args.vip, args.write, args.dry_run)
        return realserver.main_check(args.vip)
    if args.command == "doctor":
        from lvsha.doctor import main as doctor_main

        return doctor_main(args.config, listen_seconds=args.listen, as_json=args.json)
    if args.command == "import-keepalived":
        from lvsha.keepalived_import import main as import_keepalived

        return import_keepalived(args.file, args.output, args.config_id)
    if args.command == "reload":
        return _reload(args.socket)
    return EX_USAGE


def _check_config(path: str) -> int:
    from lvsha.config import load_config
    from lvsha.errors import ConfigError

    try:
        config = load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{path}: {problem}", file=sys.stderr)
        print(f"{path}: {len(exc.problems)} problem(s)", file=sys.stderr)
        return EX_CONFIG
    for warning in config.warnings:
        print(f"{path}: warning: {warning}", file=sys.stderr)
    print(
        f"{path}: ok ({len(config.vrrp)} VRRP instances, "
        f"{len(config.virtual_servers)} virtual servers)"
    )
    return EX_OK


def _run(path: str, log_format: str | None, early: EarlyListener | None = None) -> int:
    # VRRP first (issue 13): listen before asyncio, the config parser and
    # structlog are loaded, so that Startup (RFC 3768 6.4.1) is at process start
    from lvsha.runtime.early import EarlyListener

    if early is None:
        early = EarlyListener.open(path)
    import asyncio

    from lvsha import logs
    from lvsha.config import load_config
    from lvsha.errors import ConfigError, KernelError
    from lvsha.runtime import daemon

    try:
        config = load_config(path)
    except ConfigError as exc:
        early.close()
        for problem in exc.problems:
            print(f"{path}: {problem}", file=sys.stderr)
        return EX_CONFIG
    logs.configure(log_format or config.daemon.log_format)
    try:
        return asyncio.run(daemon.run(config, path, early))
    except KernelError as exc:
        logs.get("lvsha").error("cannot run", error=str(exc))
        return EX_FAILURE
    except KeyboardInterrupt:
        return EX_OK


def _cleanup(path: str) -> int:
    from lvsha.tools import cleanup

    return cleanup.main(path)


def _ask(socket_path: str, command: str) -> dict[str, Any] | int:
    from lvsha.adapters.control_client import request

    try:
        answer = request(socket_path, command)
    except PermissionError:
        print(f"lvsha: permission denied on {socket_path} (run as root)", file=sys.stderr)
        return EX_NOPERM
    except (FileNotFoundError, ConnectionRefusedError):
        print(f"lvsha: no daemon answers on {socket_path} (is lvsha running?)", file=sys.stderr)
        return EX_UNAVAILABLE
    except (OSError, ValueError) as exc:
        print(f"lvsha: {socket_path}: {exc}", file=sys.stderr)
        return EX_UNAVAILABLE
    if "error" in answer:
        print(f"lvsha: {answer['error']}", file=sys.stderr)
        return EX_NOPERM if "permission" in str(answer["error"]) else EX_FAILURE
    return answer


def _status(socket_path: str, as_json: bool) -> int:
    answer = _ask(socket_path, "status")
    if isinstance(answer, int):
        return answer
    if as_json:
        json.dump(answer, sys.stdout, indent=2)
        print()
    else:
        print(render_status(answer))
    return EX_OK


def _reload(socket_path: str) -> int:
    answer = _ask(socket_path, "reload")
    if isinstance(answer, int):
        return answer
    for problem in answer.get("errors", []):
        print(f"lvsha: {problem}", file=sys.stderr)
    if answer.get("reloaded"):
        print("reloaded")
        return EX_FAILURE if answer.get("errors") else EX_OK
    return EX_CONFIG


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.1f}h ago"


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
        t = i["last_transition"]
        if t is not None:
            lines.append(f"{'':<12} since {_ago(t['ago'])}: {t['reason']}")
        if i.get("split_brain"):
            sb = i["split_brain"]
            lines.append(
                f"{'':<12} SPLIT BRAIN: {sb['address']} ({sb['priority']}) also claims master, "
                f"seen {_ago(sb['seen_ago'])}"
            )
        for warning in i.get("warnings", []):
            lines.append(f"{'':<12} note: {warning}")
        if i["faults"]:
            lines.append(f"{'':<12} faults: {', '.join(i['faults'])}")
        c = i["counters"]
        drops = ", ".join(f"{k}={v}" for k, v in c["discarded"].items()) or "none"
        lines.append(
            f"{'':<12} adverts sent {c['adverts_sent']}, received {c['adverts_received']}; "
            f"dropped: {drops}"
        )
    ipvs = status.get("ipvs") or {}
    if ipvs.get("error"):
        lines += ["", f"IPVS: {ipvs['error']}"]
    for vs in status["virtual_servers"]:
        name = f"fwmark {vs['fwmark']}" if vs.get("fwmark") else f"{vs['address']}:{vs['port']}"
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
                f"  -> {rs['address']}:{rs['port']:<6} weight {rs['weight']:<5} {health:<4}{detail}"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
