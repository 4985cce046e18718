"""A VRRP-only director imports no pyroute2 and no health checker before VRRP runs.

pyroute2 costs 0.2-0.5 s and ~20 MB of RSS to import (docs/benchmarks-vrrp.md,
"Lean start"); the daemon is wired and its IPVS pass made in a fresh
interpreter, and the modules it loaded are listed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from lvsha.config import parse_config
from lvsha.runtime.lazy_health import LazyHealth

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = """
import asyncio, json, sys
from lvsha.config import parse_config
from lvsha.runtime.daemon import Daemon
from lvsha.runtime.ports import real_ports

TOML = '''
[daemon]
name = "d1"
control_socket = "/nonexistent/lvsha.sock"
[vrrp.VI_1]
interface = "eth1"
virtual_router_id = 51
priority = 100
virtual_ipaddress = ["192.0.2.100/32"]
''' + sys.argv[1]

async def main():
    daemon = Daemon(parse_config(TOML), None, real_ports())
    wired = sorted(sys.modules)
    daemon.health = daemon.ports.health(daemon.config.virtual_servers, lambda: None)
    ok = await daemon.ipvs_loop.run_pass()
    print(json.dumps({"wired": wired, "after_pass": sorted(sys.modules), "ok": ok}))

asyncio.run(main())
"""

SERVICE = """
[[virtual_server]]
address = "192.0.2.100"
port = 80
protocol = "tcp"
scheduler = "rr"
forwarding = "dr"
"""


def loaded(extra: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM, extra],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=True,
    )
    result: dict[str, object] = json.loads(out.stdout.splitlines()[-1])  # after any log line
    return result


def heavy(modules: object) -> list[str]:
    assert isinstance(modules, list)
    return [m for m in modules if m.split(".")[0] == "pyroute2" or m == "lvsha.runtime.health"]


def test_a_vrrp_only_director_never_imports_pyroute2() -> None:
    result = loaded("")
    assert heavy(result["wired"]) == []
    assert result["ok"] is True
    assert heavy(result["after_pass"]) == []  # nor the health checker


def test_virtual_servers_import_pyroute2_on_the_first_pass_only() -> None:
    result = loaded(SERVICE)
    assert heavy(result["wired"]) == []  # wiring the daemon stays light
    assert "pyroute2" in heavy(result["after_pass"])  # the pass needs IPVS
    assert "lvsha.runtime.health" in heavy(result["after_pass"])  # and the checker


class FakeChecker:
    def __init__(self, servers: tuple[Any, ...], on_change: Any) -> None:
        self.servers, self.on_change = servers, on_change
        self.calls: list[str] = []

    def start(self) -> None:
        self.calls.append("start")

    def stop(self) -> None:
        self.calls.append("stop")

    async def wait_stopped(self) -> None:
        pass

    def update(self, servers: Any) -> None:
        self.servers = tuple(servers)
        self.calls.append("update")

    def health(self) -> dict[Any, bool]:
        return {"k": True}

    def changed_services(self) -> None:
        return None

    def effective_virtual_servers(self, keys: Any = None) -> tuple[Any, ...]:
        return self.servers

    def status(self) -> dict[Any, Any]:
        return {"s": 1}

    def quorum(self) -> dict[Any, tuple[bool, int]]:
        return {}


def test_the_checker_is_built_and_started_when_a_reload_brings_virtual_servers() -> None:
    built: list[FakeChecker] = []

    def build(servers: tuple[Any, ...], on_change: Any) -> FakeChecker:
        built.append(FakeChecker(servers, on_change))
        return built[-1]

    lazy = LazyHealth((), lambda: None, build)
    lazy.start()
    lazy.update(())
    assert not built and lazy.health() == {} and lazy.effective_virtual_servers() == ()
    service = parse_config(
        '[daemon]\nname = "d"\n[vrrp.VI_1]\ninterface = "eth1"\nvirtual_router_id = 1\n'
        'priority = 100\nvirtual_ipaddress = ["192.0.2.100/32"]\n' + SERVICE
    ).virtual_servers
    lazy.update(service)
    assert len(built) == 1 and built[0].servers == service
    assert built[0].calls == ["start"]  # started, as the stand-in had been
    assert lazy.effective_virtual_servers() == service and lazy.status() == {"s": 1}
    lazy.update(())
    lazy.stop()
    assert built[0].calls == ["start", "update", "stop"]  # from now on the real one
