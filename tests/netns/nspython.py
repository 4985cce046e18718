"""Run lvsha's one-shot checks inside a lab namespace and get their results back.

`lvsha realserver` and `lvsha doctor` read the network namespace they run
in (netlink, /proc/sys/net, raw sockets), so the tests run them in a child
Python under `ip netns exec`, the way an operator runs them on the host.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from lab import ROOT, Host

PRELUDE = """\
import json, sys
from pathlib import Path
from lvsha.tools import doctor, realserver
from lvsha.config import load_config
"""


def python(
    host: Host, code: str, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `code` (after PRELUDE) in the host's namespace; argv[1:] are `args`."""
    return subprocess.run(
        ["ip", "netns", "exec", host.ns, sys.executable, "-c", PRELUDE + code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )


def results(host: Host, call: str, config: Path | None = None) -> list[dict[str, Any]]:
    """The `Result`s of `doctor.<call>` (with `config` loaded from the given file)."""
    code = (
        "config = load_config(sys.argv[1]) if len(sys.argv) > 1 else None\n"
        f"print(json.dumps([r.as_dict() for r in doctor.{call}]))\n"
    )
    out = python(host, code, *([str(config)] if config else []))
    if out.returncode != 0:
        raise RuntimeError(f"doctor.{call} failed in {host.name}:\n{out.stderr}")
    value: list[dict[str, Any]] = json.loads(out.stdout)
    return value


def statuses(found: list[dict[str, Any]]) -> list[str]:
    return [r["status"] for r in found]
