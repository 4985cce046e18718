"""Operating a running director: systemd notify, reload, cleanup, socket permissions."""

from __future__ import annotations

import contextlib
import grp
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from lab import LVSHA, ROOT, VIP, Lab, instance_toml, wait_for

from lvsha.core.vrrp import master_down_interval
from lvsha.exits import EX_CONFIG, EX_NOPERM

START = master_down_interval(1, 100) + 3


def test_sd_notify_ready_reloading_stopping(lab: Lab, tmp_path: Path) -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify.sock"
    listener.bind(str(path))
    listener.settimeout(10)
    try:
        os.environ["NOTIFY_SOCKET"] = str(path)
        try:
            d1 = lab.start(lab.host("d1", "192.0.2.11"), instance_toml(100), wait=False)
        finally:
            del os.environ["NOTIFY_SOCKET"]
        ready = listener.recv(4096).decode()
        assert ready.splitlines()[0] == "READY=1"
        assert ready.splitlines()[1].startswith("STATUS=VI_1 ")
        d1.signal(signal.SIGHUP)
        assert listener.recv(4096).decode() == "RELOADING=1"
        assert listener.recv(4096).decode().splitlines()[0] == "READY=1"
        d1.signal(signal.SIGTERM)
        assert listener.recv(4096).decode() == "STOPPING=1"
        assert d1.proc.wait(timeout=5) == 0
    finally:
        listener.close()


def test_watchdog_is_fed_from_the_event_loop(lab: Lab, tmp_path: Path) -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify.sock"
    listener.bind(str(path))
    listener.settimeout(10)
    try:
        os.environ.update(NOTIFY_SOCKET=str(path), WATCHDOG_USEC="200000")  # WatchdogSec=0.2
        try:
            d1 = lab.start(lab.host("d1", "192.0.2.11"), instance_toml(100), wait=False)
        finally:
            del os.environ["NOTIFY_SOCKET"], os.environ["WATCHDOG_USEC"]
        messages = [listener.recv(4096).decode().splitlines()[0] for _ in range(8)]
        # READY=1 once, then WATCHDOG=1 every half period (sd_watchdog_enabled(3)).
        assert "READY=1" in messages
        assert messages.count("WATCHDOG=1") >= 6
        d1.signal(signal.SIGSTOP)  # a stuck loop stops feeding the watchdog
        try:
            listener.settimeout(0.3)
            received = 0  # what was sent just before the stop, then silence
            with contextlib.suppress(TimeoutError):
                for _ in range(5):
                    listener.recv(4096)
                    received += 1
            assert received < 5, "WATCHDOG=1 kept coming from a stopped process"
        finally:
            d1.signal(signal.SIGCONT)
    finally:
        listener.close()


def test_reload_bad_file_keeps_running_then_good_file_applies(lab: Lab) -> None:
    d1 = lab.start(lab.host("d1", "192.0.2.11"), instance_toml(100))
    d1.wait_state("MASTER", START)
    good = d1.config.read_text()
    d1.config.write_text(good.replace("priority = 100", "priority = 900"))
    out = subprocess.run(
        [*LVSHA, "reload", "--socket", str(d1.socket)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=10,
        check=False,
    )
    assert out.returncode == EX_CONFIG
    assert "vrrp.VI_1.priority: must be 1..255, not 900" in out.stderr
    status = d1.status()
    assert status["daemon"]["reload_error"] == ["vrrp.VI_1.priority: must be 1..255, not 900"]
    assert status["instances"][0]["state"] == "MASTER"  # the old configuration runs on
    sent = status["instances"][0]["counters"]["adverts_sent"]
    wait_for(lambda: d1.status()["instances"][0]["counters"]["adverts_sent"] > sent, 3)
    assert d1.host.has_vip()
    # A good file: an unchanged instance keeps its state; a new one starts.
    d1.config.write_text(good + "\n" + instance_toml(100, vrid=52, vip="192.0.2.101", name="VI_2"))
    d1.signal(signal.SIGHUP)
    wait_for(lambda: len(d1.status()["instances"]) == 2, 5)
    status = d1.status()
    assert status["daemon"]["reload_error"] == [] and status["daemon"]["reloads"] == 1
    vi1 = status["instances"][0]
    assert (vi1["name"], vi1["state"], vi1["counters"]["became_master"]) == ("VI_1", "MASTER", 1)
    wait_for(lambda: "192.0.2.101" in d1.host.addresses(), START)
    assert d1.host.has_vip()


def test_cleanup_removes_vips_left_by_a_crash(lab: Lab) -> None:
    d1 = lab.start(lab.host("d1", "192.0.2.11"), instance_toml(100))
    d1.wait_state("MASTER", START)
    wait_for(d1.host.has_vip, 3)
    d1.kill()
    assert d1.host.has_vip()
    out = d1.host.run(*LVSHA, "cleanup", "--config", str(d1.config))
    assert out.stdout.strip() == f"removed {VIP}/32 from eth1"
    assert not d1.host.has_vip()


@pytest.mark.parametrize("edit", ["broken", "other_vip"])
def test_cleanup_after_a_crash_that_follows_an_edit_removes_what_was_held(
    lab: Lab, edit: str
) -> None:
    """Issue 10, defect 8: cleanup read only the config, which may name other VIPs or none."""
    d1 = lab.start(lab.host("d1", "192.0.2.11"), instance_toml(100))
    d1.wait_state("MASTER", START)
    wait_for(d1.host.has_vip, 3)
    d1.kill()
    text = d1.config.read_text()
    if edit == "broken":
        d1.config.write_text(text.replace("priority = 100", "priority = 300"))
    else:
        d1.config.write_text(text.replace(f'"{VIP}/32"', '"192.0.2.101/32"'))
    out = d1.host.run(*LVSHA, "cleanup", "--config", str(d1.config), check=False)
    assert f"removed {VIP}/32 from eth1" in out.stdout.splitlines()
    assert out.returncode == 0, out.stderr
    assert not d1.host.has_vip()
    if edit == "broken":
        assert "vrrp.VI_1.priority" in out.stderr


def test_vip_deleted_by_hand_is_put_back(lab: Lab) -> None:
    d1 = lab.start(lab.host("d1", "192.0.2.11"), instance_toml(100))
    d1.wait_state("MASTER", START)
    wait_for(d1.host.has_vip, 3)
    d1.host.run("ip", "addr", "del", f"{VIP}/32", "dev", "eth1")
    wait_for(d1.host.has_vip, 2)
    assert f"added {VIP}/32 on eth1" in d1.log_text().split("master down timer expired", 1)[1]


def test_control_socket_refuses_other_users(lab: Lab) -> None:
    d1 = lab.start(lab.host("d1", "192.0.2.11"), instance_toml(100))
    assert d1.socket.stat().st_mode & 0o777 == 0o660
    as_nobody = [
        "setpriv",
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        sys.executable,
        "-m",
        "lvsha.cli",
        "status",
        "--socket",
        str(d1.socket),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    d1.socket.parent.chmod(0o755)
    out = subprocess.run(
        as_nobody, capture_output=True, text=True, env=env, timeout=10, check=False
    )
    assert out.returncode == EX_NOPERM  # the file mode stops it
    # Even with the file opened to everyone, the daemon checks the peer's uid.
    d1.socket.chmod(0o666)
    out = subprocess.run(
        as_nobody, capture_output=True, text=True, env=env, timeout=10, check=False
    )
    assert out.returncode == EX_NOPERM
    assert "permission denied for uid" in out.stderr


def test_notify_hooks_follow_transitions_and_never_delay_adverts(lab: Lab) -> None:
    out = lab.workdir / "notify.out"
    record = lab.workdir / "record.py"
    record.write_text(
        "import sys, time\n"
        "open(sys.argv[1], 'a').write(' '.join(sys.argv[2:]) + '\\n')\n"
        "time.sleep(30 if sys.argv[2:] == ['slow'] else 0)\n"
    )
    hooks = (
        f'notify = ["{sys.executable}", "{record}", "{out}"]\n'
        f'notify_master = ["{sys.executable}", "{record}", "{out}", "slow"]\n'
    )
    d1 = lab.start(lab.host("d1", "192.0.2.11"), instance_toml(100, extra=hooks))
    d1.wait_state("MASTER", START)
    wait_for(lambda: out.exists() and "slow" in out.read_text(), 5)
    # notify_master sleeps 30 s; adverts go on every second all the same.
    sent = d1.status()["instances"][0]["counters"]["adverts_sent"]
    wait_for(lambda: d1.status()["instances"][0]["counters"]["adverts_sent"] >= sent + 2, 3)
    assert d1.terminate() == 0
    assert out.read_text().splitlines() == ["INSTANCE VI_1 BACKUP 100", "slow"]
    # The slow hook was still running at SIGTERM: the generic STOP hook is
    # queued behind it, the daemon does not wait past its 2 s budget, and the
    # hook is killed rather than left behind.
    assert "slow" not in d1.host.run("ps", "-e", "-o", "args").stdout


def test_control_group_members_may_ask(lab: Lab) -> None:
    d1 = lab.start(
        lab.host("d1", "192.0.2.11"), instance_toml(100), daemon='control_group = "nogroup"\n'
    )
    d1.socket.parent.chmod(0o755)
    assert d1.socket.stat().st_gid == grp.getgrnam("nogroup").gr_gid
    as_member = [
        "setpriv",
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        sys.executable,
        "-m",
        "lvsha.cli",
        "status",
        "--json",
        "--socket",
        str(d1.socket),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        as_member, capture_output=True, text=True, env=env, timeout=10, check=False
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["instances"][0]["name"] == "VI_1"
