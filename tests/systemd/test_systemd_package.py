"""The Debian package as an operator meets it: install, upgrade, remove, purge.

In order, in one container: installed (nothing runs without /etc/lvsha.toml),
upgraded over itself on a backup (restarted, nothing moves), removed on the
master (stopped, VIP gone), purged (nothing left).
"""

from __future__ import annotations

from pathlib import Path

from sdbox import PEER_SOCKET, VIP, Container, director_config, start_peer, state, vip_on

ON_PEER = f"ip -n peer -o -4 addr show dev lv1 | grep -q ' {VIP}/32 '"
ON_DIR1 = f"ip -o -4 addr show dev lv0 | grep -q ' {VIP}/32 '"


def test_install_enables_the_unit_but_runs_nothing_without_a_config(box: Container) -> None:
    assert box.out("systemctl is-enabled lvsha") == "enabled"
    # enabled by deb-systemd-helper, which remembers it for purge
    assert box.ok("test -f /var/lib/systemd/deb-systemd-helper-enabled/lvsha.service.dsh-also")
    # the example is documentation, never live: the unit waits for /etc/lvsha.toml
    assert not box.ok("test -e /etc/lvsha.toml")
    assert box.prop("ActiveState") == "inactive"
    assert box.prop("ConditionResult") == "no", "postinst did not try to start the unit"
    assert box.ok("test -f /usr/share/doc/lvsha/examples/lvsha.toml")
    assert "161.202.132.84" not in box.out("ip -o addr")


def test_installed_files(box: Container) -> None:
    assert box.out("readlink -f /usr/bin/lvsha") == "/usr/lib/lvsha/bin/lvsha"
    assert box.out("lvsha --version").startswith("lvsha ")
    unit = box.out("systemctl cat lvsha")
    assert "ExecStart=/usr/bin/lvsha run --config /etc/lvsha.toml" in unit
    assert "/usr/local" not in unit
    assert box.out("man -w lvsha") == "/usr/share/man/man8/lvsha.8.gz"
    assert box.out("man -w 5 lvsha.toml") == "/usr/share/man/man5/lvsha.toml.5.gz"
    assert "virtual_router_id" in box.out("man 5 lvsha.toml 2>/dev/null | col -b")
    completion = box.out(
        "source /usr/share/bash-completion/completions/lvsha;"
        " COMP_WORDS=(lvsha sta); COMP_CWORD=1; _lvsha; echo ${COMPREPLY[*]};"
        " COMP_WORDS=(lvsha status --); COMP_CWORD=2; _lvsha; echo ${COMPREPLY[*]}"
    )
    assert completion.splitlines() == ["status", "--help --socket --json"]
    # the bundled venv runs on Debian's interpreter (ProtectHome hides /root, /home)
    assert box.out("readlink -f /usr/lib/lvsha/bin/python") == "/usr/bin/python3.11"
    assert box.ok("/usr/lib/lvsha/bin/python -c 'import systemd.journal, pyroute2'")


SAMPLE = r"""
# every 50 ms during the upgrade: is the VIP where it should be (on the peer only)?
( for i in $(seq 2000); do
    {{ {on_peer} && ! {on_dir1}; }} || echo moved
    [ -e /tmp/upgrade-done ] && break; sleep 0.05
  done > /tmp/vip-moves ) &
cd {dir} && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --reinstall ./{name}
touch /tmp/upgrade-done; wait
"""


def test_upgrade_on_backup_restarts_and_moves_nothing(box: Container, deb: Path) -> None:
    start_peer(box, priority=200)
    assert box.wait(ON_PEER, timeout=10) is not None, "the peer never became master"
    box.write("/etc/lvsha.toml", director_config("dir1", "lv0", "192.0.2.2", 100))
    box.out("systemctl start lvsha")
    assert box.wait("lvsha status", timeout=5) is not None
    assert state(box) == "BACKUP"
    old = box.prop("MainPID")
    became_master = box.out(
        f"lvsha status --json --socket {PEER_SOCKET} | python3 -c "
        '\'import json,sys; print(json.load(sys.stdin)["instances"][0]["counters"]'
        '["became_master"])\''
    )

    box.out(SAMPLE.format(on_peer=ON_PEER, on_dir1=ON_DIR1, dir=deb.parent, name=deb.name))
    assert box.out("cat /tmp/vip-moves") == "", "the VIP moved during the upgrade"
    new = box.prop("MainPID")
    assert new not in ("0", old), "the upgrade did not restart the daemon"
    assert box.wait("lvsha status", timeout=5) is not None
    assert state(box) == "BACKUP" and state(box, PEER_SOCKET) == "MASTER"
    assert (
        box.out(
            f"lvsha status --json --socket {PEER_SOCKET} | python3 -c "
            '\'import json,sys; print(json.load(sys.stdin)["instances"][0]["counters"]'
            '["became_master"])\''
        )
        == became_master
    )


def test_remove_on_master_stops_the_daemon_and_removes_the_vip(box: Container) -> None:
    box.out("systemctl stop lvsha-peer")
    assert box.wait(ON_DIR1, timeout=10) is not None, "dir1 did not take over"
    box.out("DEBIAN_FRONTEND=noninteractive apt-get remove -y -q lvsha")
    assert not vip_on(box)
    assert box.prop("ActiveState") == "inactive"
    assert "stopped" in box.journal()
    assert not box.ok("test -e /usr/bin/lvsha || test -e /usr/lib/lvsha"), box.out(
        "find /usr/lib/lvsha 2>/dev/null | head"
    )


def test_purge_leaves_nothing_behind(box: Container) -> None:
    box.out("DEBIAN_FRONTEND=noninteractive apt-get purge -y -q lvsha")
    assert box.sh("dpkg-query -W -f='${db:Status-Abbrev}' lvsha").stdout.strip() in ("", "un")
    left = box.out(
        "find /etc /lib/systemd /usr /var/lib/systemd /var/lib/dpkg/info /run"
        " -name '*lvsha*' ! -path /etc/lvsha.toml ! -path /etc/lvsha-peer.toml 2>/dev/null || true"
    )
    assert left == "", f"left after purge:\n{left}"
    # the operator's own configuration is not the package's: it stays, as keepalived's
    assert box.ok("test -f /etc/lvsha.toml")
