"""`lvsha cleanup`: remove this node's VIPs after the daemon died (ExecStopPost).

What to remove comes first from the record the daemon kept of the VIPs it
held (adapters/vip_record.py), then from the configuration: after a crash
that followed a bad edit of the file, the record still names what this node
added, so the two nodes never both keep the VIP.
"""

from __future__ import annotations

import asyncio
import sys
import tomllib
from pathlib import Path

from lvsha.adapters import vip_record
from lvsha.adapters.addresses import Netlink
from lvsha.config import VirtualAddress, load_config
from lvsha.core.vips import plan_vips
from lvsha.errors import ConfigError, KernelError
from lvsha.exits import EX_CONFIG, EX_FAILURE, EX_OK
from lvsha.paths import DEFAULT_CONTROL_SOCKET


def control_socket(path: str) -> str:
    """The configured control socket, read leniently: the file may be invalid."""
    try:
        raw = tomllib.loads(Path(path).read_text())
        value = raw.get("daemon", {}).get("control_socket", DEFAULT_CONTROL_SOCKET)
        return value if isinstance(value, str) and value else DEFAULT_CONTROL_SOCKET
    except (OSError, ValueError, AttributeError, RecursionError):
        return DEFAULT_CONTROL_SOCKET


async def remove(vips: set[VirtualAddress]) -> list[str]:
    """Remove those of `vips` that the kernel holds; say what was removed."""
    netlink = Netlink()  # IPv6 VIPs of VRRPv3 instances too
    await netlink.open()
    try:
        plan = plan_vips((), await netlink.present(vips), vips)
        for vip in plan.remove:
            await netlink.remove(vip)
        return [f"removed {v.address}/{v.prefixlen} from {v.device}" for v in plan.remove]
    finally:
        netlink.close()


def main(path: str) -> int:
    recorded = vip_record.read(vip_record.record_path(control_socket(path)))
    problems: list[str] = []
    configured: set[VirtualAddress] = set()
    try:
        configured = {v for c in load_config(path).vrrp for v in c.all_vips}
    except ConfigError as exc:
        problems = exc.problems
    for problem in problems:
        print(f"{path}: {problem}", file=sys.stderr)
    if recorded is None and problems:
        return EX_CONFIG
    try:
        for change in asyncio.run(remove((recorded or set()) | configured)):
            print(change)
    except KernelError as exc:
        print(f"lvsha: {exc}", file=sys.stderr)
        return EX_FAILURE
    if problems:
        print(f"{path}: has errors; removed the VIPs this node recorded", file=sys.stderr)
    return EX_OK
