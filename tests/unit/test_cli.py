"""The operator's contract of `lvsha`: exit codes and messages, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import lvsha
from lvsha.exits import EX_CONFIG, EX_OK, EX_UNAVAILABLE

ROOT = Path(__file__).resolve().parents[2]


def lvsha_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lvsha.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
        check=False,
    )


def test_version() -> None:
    out = lvsha_cli("--version")
    assert (out.returncode, out.stdout.strip()) == (0, f"lvsha {lvsha.__version__}")


def test_check_config_accepts_the_reference_file() -> None:
    out = lvsha_cli("check-config", str(ROOT / "conf" / "lvsha.toml"))
    assert out.returncode == EX_OK
    assert out.stdout.strip().endswith("ok (1 VRRP instances, 1 virtual servers)")


def test_check_config_lists_every_problem_and_exits_78(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[vrrp.VI_1]\ninterface = "eth1"\nvirtual_router_id = 0\npriority = 256\n')
    out = lvsha_cli("check-config", str(bad))
    assert out.returncode == EX_CONFIG
    assert "Traceback" not in out.stderr
    assert out.stderr.splitlines() == [
        f"{bad}: vrrp.VI_1.virtual_ipaddress: is required (at least one VIP)",
        f"{bad}: vrrp.VI_1.virtual_router_id: must be 1..255, not 0",
        f"{bad}: vrrp.VI_1.priority: must be 1..255, not 256",
        f"{bad}: 3 problem(s)",
    ]


def test_check_config_on_a_missing_file_exits_78(tmp_path: Path) -> None:
    out = lvsha_cli("check-config", str(tmp_path / "none.toml"))
    assert out.returncode == EX_CONFIG
    assert "cannot read" in out.stderr and "Traceback" not in out.stderr


def test_run_with_a_bad_config_exits_78_before_touching_anything(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[vrrp.VI_1]\n")
    out = lvsha_cli("run", "--config", str(bad))
    assert out.returncode == EX_CONFIG
    assert "vrrp.VI_1.interface: is required" in out.stderr


def test_status_without_a_daemon_exits_69(tmp_path: Path) -> None:
    out = lvsha_cli("status", "--socket", str(tmp_path / "none.sock"))
    assert out.returncode == EX_UNAVAILABLE
    assert "no daemon answers" in out.stderr


def test_import_keepalived_from_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "lvsha.toml"
    result = lvsha_cli(
        "import-keepalived",
        str(ROOT / "tests" / "data" / "keepalived" / "lvs01.conf"),
        "-o",
        str(out),
    )
    assert result.returncode == EX_OK, result.stderr
    assert lvsha_cli("check-config", str(out)).returncode == EX_OK


def test_doctor_with_a_bad_config_exits_78_and_checks_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[vrrp.VI_1]\n")
    out = lvsha_cli("doctor", "--config", str(bad), "--listen", "0")
    assert out.returncode == EX_CONFIG, out.stdout + out.stderr
    assert f"FAIL  config: {bad}: vrrp.VI_1.interface: is required" in out.stdout
    assert f"fix: lvsha check-config {bad}" in out.stdout
    assert "ip_vs" not in out.stdout and "Traceback" not in out.stderr


def test_doctor_json_with_a_bad_config_is_still_json(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[vrrp.VI_1]\n")
    out = lvsha_cli("doctor", "--config", str(bad), "--listen", "0", "--json")
    assert out.returncode == EX_CONFIG
    results = json.loads(out.stdout)
    assert {r["check"] for r in results} == {"config"}
    assert {r["status"] for r in results} == {"FAIL"}


# What `lvsha status` must never pay for (docs/benchmarks-status.md).
HEAVY = ("asyncio", "pyroute2", "tomllib", "lvsha.config", "lvsha.runtime")


@pytest.mark.parametrize("command", ["status", "reload"])
def test_status_and_reload_import_nothing_heavy(command: str) -> None:
    probe = (
        "import sys\n"
        "from lvsha import cli\n"
        f"cli.main([{command!r}, '--socket', '/nonexistent/lvsha.sock'])\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=30
    )
    loaded = set(out.stdout.split())
    assert "lvsha.tools.ask" in loaded, out.stderr  # the command really ran
    assert [m for m in HEAVY if m in loaded] == []
