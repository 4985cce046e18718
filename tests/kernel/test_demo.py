"""The README's first command: the demo runs, and says what it must."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_elects_spreads_requests_and_fails_over() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )
    text = out.stdout
    assert out.returncode == 0, text + out.stderr
    # Who is master, before and after.
    assert re.search(r"VI_1 +eth1 +51 +100 MASTER +self", text)
    assert re.search(r"VI_1 +eth1 +51 +100 BACKUP +192\.0\.2\.11 \(100\)", text)
    # Requests reach both real servers through the VIP, before and after the takeover.
    spreads = re.findall(r"20 HTTP requests to http://192\.0\.2\.100/ answered by: (.*)", text)
    assert spreads == ["rs1 10, rs2 10", "rs1 10, rs2 10"]
    # The takeover happened within the protocol bound after the kill.
    took = re.search(r"director2 is MASTER ([0-9.]+) s after the kill", text)
    assert took is not None and float(took.group(1)) <= 3.609375 + 0.5
    assert "requests reached rs1 and rs2 -- OK" in text
    assert text.rstrip().endswith("demo complete")
