"""The record of the VIPs this node holds, for `lvsha cleanup` after a crash.

The daemon rewrites it (atomically: a temporary file renamed over it)
whenever the VIPs it holds change; systemd's ExecStopPost runs `lvsha
cleanup`, which removes what the record lists. The record, not the
configuration, says what this node added: after a crash that follows a bad
edit of /etc/lvsha.toml the configuration may name other VIPs, or none.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from lvsha.config import VirtualAddress

FORMAT = 1


def record_path(control_socket: str) -> Path:
    """Beside the control socket: /run/lvsha/lvsha.sock -> /run/lvsha/lvsha.vips.json."""
    return Path(control_socket).with_suffix(".vips.json")


def write(path: Path, vips: Iterable[VirtualAddress]) -> None:
    """Replace the record; raises OSError (the caller logs and retries)."""
    body = {
        "format": FORMAT,
        "pid": os.getpid(),
        "vips": [
            {"address": v.address, "prefixlen": v.prefixlen, "device": v.device}
            for v in sorted(vips, key=lambda v: (v.device, v.address, v.prefixlen))
        ],
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w") as f:
        json.dump(body, f)
    os.replace(tmp, path)


def read(path: Path) -> set[VirtualAddress] | None:
    """The recorded VIPs; None when there is no readable record."""
    try:
        body = json.loads(path.read_text())
        return {
            VirtualAddress(str(v["address"]), int(v["prefixlen"]), str(v["device"]))
            for v in body["vips"]
        }
    except (OSError, ValueError, KeyError, TypeError):
        return None
