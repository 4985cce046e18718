"""An e-mail alert on a transition, received by a real SMTP server (aiosmtpd).

The server listens on the director namespace's own loopback, where `lvsha
run` sends its mail: nothing leaves the lab.
"""

from __future__ import annotations

import mailbox
import sys
import time

import pytest
from lab import Lab, instance_toml, wait_for

from lvsha.core.vrrp import master_down_interval

pytest.importorskip("aiosmtpd")


def test_a_transition_to_master_is_mailed(lab: Lab) -> None:
    host = lab.host("d1", "192.0.2.11")
    maildir = lab.workdir / "maildir"
    log = lab.workdir / "smtpd.log"
    argv = [sys.executable, "-m", "aiosmtpd", "-n", "-l", "127.0.0.1:8025",
            "-c", "aiosmtpd.handlers.Mailbox", str(maildir)]  # fmt: skip
    host.popen(argv, log)
    wait_for(lambda: "127.0.0.1:8025" in host.run("ss", "-ltn").stdout, 10, interval=0.05)
    smtp = (
        '[daemon.smtp]\nserver = "127.0.0.1:8025"\nfrom = "lvsha@example.net"\n'
        'to = ["ops@example.net"]\ntimeout = 5\n'
    )
    started = time.time()
    d1 = lab.start(host, instance_toml(100, extra="smtp_alert = true\n"), daemon=smtp)
    d1.wait_state("MASTER", master_down_interval(1, 100) + 3)

    def subjects() -> list[str]:
        if not maildir.exists():
            return []
        return [str(m["Subject"]) for m in mailbox.Maildir(str(maildir), create=False)]

    wait_for(lambda: "[d1] VRRP Instance VI_1 - Entering MASTER state" in subjects(), 10)
    assert "[d1] VRRP Instance VI_1 - Entering BACKUP state" in subjects()
    status = d1.status()["daemon"]["mail"]
    assert status["sent"] >= 2 and status["failed"] == 0
    print(f"\nnetns: MASTER mail in the maildir {time.time() - started:.2f} s after start")
    assert d1.terminate() == 0


def test_a_vip_carries_its_label_and_broadcast(lab: Lab) -> None:
    import json

    host = lab.host("d1", "192.0.2.11")
    body = instance_toml(100).replace(
        '["192.0.2.100/32"]', '["192.0.2.100/24 brd + label eth1:vip"]'
    )
    d1 = lab.start(host, body)
    d1.wait_state("MASTER", master_down_interval(1, 100) + 3)

    def vip() -> dict[str, object] | None:
        out = json.loads(host.run("ip", "-j", "-4", "addr", "show", "dev", "eth1").stdout)
        found = [a for link in out for a in link["addr_info"] if a["local"] == "192.0.2.100"]
        return found[0] if found else None

    held = wait_for(vip, 5)
    assert (held["label"], held["broadcast"], held["prefixlen"]) == ("eth1:vip", "192.0.2.255", 24)
    assert d1.terminate() == 0
    assert vip() is None
