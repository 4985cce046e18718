"""The systemd unit: systemd-analyze accepts it, and it keeps the operator's contract."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "packaging" / "systemd" / "lvsha.service"


def service_section() -> dict[str, str]:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT)
    return dict(parser["Service"])


def test_unit_keeps_the_contract() -> None:
    service = service_section()
    assert service["Type"] == "notify"
    assert service["ExecStart"] == "/usr/local/bin/lvsha run --config /etc/lvsha.toml"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["ExecStopPost"] == "/usr/local/bin/lvsha cleanup --config /etc/lvsha.toml"
    assert int(service["WatchdogSec"]) > 0
    # raw sockets and netlink; a BIRD speaker child listens on TCP 179
    assert set(service["CapabilityBoundingSet"].split()) == {
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_NET_BIND_SERVICE",
    }
    assert service["StateDirectory"] == "lvsha"  # the BGP drain file outlives a restart
    assert service["ProtectSystem"] == "strict" and service["PrivateTmp"] == "yes"
    # real-time VRRP, children (health worker, hooks) back at normal priority
    assert (service["CPUSchedulingPolicy"], service["CPUSchedulingResetOnFork"]) == ("fifo", "yes")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verify_passes(tmp_path: Path) -> None:
    lvsha = Path(sys.executable).with_name("lvsha")
    if not lvsha.exists():
        pytest.skip(f"lvsha is not installed beside {sys.executable}")
    unit = tmp_path / "lvsha.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/lvsha", str(lvsha)))
    out = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (out.returncode, out.stderr) == (0, "")
