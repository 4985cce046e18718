"""`lvsha` command line: argparse and dispatch; each command's body lives in its own module.

Exit codes are in `lvsha.exits` (78 on a configuration error everywhere).
Imports stay lazy, one command's modules at a time, so that `lvsha status`
pays for neither the config parser, asyncio nor pyroute2
(docs/benchmarks-status.md).

Nothing is imported at the top but `sys`: `lvsha run` opens its early VRRP
sockets (runtime/early.py) before argparse, typing or anything else is
loaded, so that its Startup (RFC 3768 6.4.1) is as close to process start
as a bare interpreter's first socket (docs/benchmarks-vrrp.md, "Start-up").
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing costs ~3 ms to import; mypy reads this name as True
if TYPE_CHECKING:
    import argparse

    from lvsha.runtime.early import EarlyListener


def _parser() -> argparse.ArgumentParser:
    import argparse

    from lvsha import __version__
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
        ("drain", "withdraw this director's BGP routes (kept across restarts)"),
        ("undrain", "announce this director's BGP routes again"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--socket", default=DEFAULT_CONTROL_SOCKET, help="control socket")
        if name == "status":
            p.add_argument("--json", action="store_true", help="machine-readable output")
        if name == "drain":
            p.add_argument("--reason", help="why, written into the drain file")
    return parser


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    early = None
    if words[:1] == ["run"]:
        # listen for VRRP before argparse and the daemon are loaded (issue 13)
        from lvsha.paths import DEFAULT_CONFIG_PATH
        from lvsha.runtime.early import EarlyListener

        early = EarlyListener.for_argv(words, DEFAULT_CONFIG_PATH)
    from lvsha.exits import EX_USAGE

    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run(args.config, args.log_format, early)
    if args.command == "cleanup":
        return _cleanup(args.config)
    if args.command == "check-config":
        from lvsha.tools import check_config

        return check_config.main(args.path)
    if args.command == "status":
        from lvsha.tools import status

        return status.main(args.socket, args.json)
    if args.command == "reload":
        from lvsha.tools import reload

        return reload.main(args.socket)
    if args.command in ("drain", "undrain"):
        from lvsha.tools import drain

        return drain.main(args.socket, args.command, getattr(args, "reason", None))
    if args.command == "realserver":
        from lvsha.tools import realserver

        if args.action == "setup":
            return realserver.main_setup(args.vip, args.write, args.dry_run)
        return realserver.main_check(args.vip)
    if args.command == "doctor":
        from lvsha.tools import doctor

        return doctor.main(args.config, listen_seconds=args.listen, as_json=args.json)
    if args.command == "import-keepalived":
        from lvsha.tools.keepalived import importer

        return importer.main(args.file, args.output, args.config_id)
    return EX_USAGE


def _run(path: str, log_format: str | None, early: EarlyListener | None = None) -> int:
    # VRRP first (issue 13): listen before asyncio, the config parser and
    # the logs are loaded, so that Startup (RFC 3768 6.4.1) is at process start
    from lvsha.runtime.early import EarlyListener

    if early is None:
        early = EarlyListener.open(path)
    import asyncio

    from lvsha import logs
    from lvsha.config import load_config
    from lvsha.errors import ConfigError, KernelError
    from lvsha.exits import EX_CONFIG, EX_FAILURE, EX_OK
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


if __name__ == "__main__":
    sys.exit(main())
