"""`lvsha run` opens its first VRRP socket having loaded what a bare `import _socket` loads.

Issue 13: process start -> VRRP socket within a few ms of the interpreter's
own floor. An audit hook (`socket.__new__`, raised before the socket(2)
call, so no root is needed) lists the modules loaded at that moment; the
reference is a fresh interpreter that imports the C `_socket` module and
time and nothing else: not `socket.py`, whose selectors and enum cost ~9 ms
(docs/benchmarks-vrrp.md, "Third pass"). lvsha may add only its own five
small modules on the way.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

AT_FIRST_SOCKET = """
import os, sys
before = set(sys.modules)
def hook(event, args):
    if event == "socket.__new__":
        sys.stdout.write(" ".join(sorted(set(sys.modules) - before)))
        sys.stdout.flush()
        os._exit(0)
sys.addaudithook(hook)
{body}
os._exit(3)  # no socket was opened
"""

LVSHA = """
from lvsha.cli import main
main(["run", "--config", sys.argv[1]])
"""
BARE = "import _socket, time\n_socket.socket(_socket.AF_INET, _socket.SOCK_RAW, 112)\n"


def modules_at_first_socket(body: str, *args: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", AT_FIRST_SOCKET.format(body=body), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


def test_run_opens_its_vrrp_socket_before_loading_anything_a_bare_socket_does_not(
    tmp_path: Path,
) -> None:
    config = tmp_path / "lvsha.toml"
    config.write_text('[vrrp.VI_1]\ninterface = "lo"\nvirtual_router_id = 51\npriority = 100\n')
    bare = modules_at_first_socket(BARE)
    lvsha = modules_at_first_socket(LVSHA, str(config))
    assert lvsha - bare == {
        "lvsha",
        "lvsha.cli",
        "lvsha.paths",
        "lvsha.runtime",
        "lvsha.runtime.early",
    }
