"""A pair of units fails over: the packaged lvsha.service (master, priority 100)
and a second lvsha unit of the same systemd in the `peer` namespace (priority 90).
"""

from __future__ import annotations

from sdbox import PEER_SOCKET, VIP, Container, director_config, start_peer, state, vip_on

ON_PEER = f"ip -n peer -o -4 addr show dev lv1 | grep -q ' {VIP}/32 '"
ON_DIR1 = f"ip -o -4 addr show dev lv0 | grep -q ' {VIP}/32 '"


def test_pair_fails_over_when_the_masters_unit_is_killed(box: Container) -> None:
    box.write("/etc/lvsha.toml", director_config("dir1", "lv0", "192.0.2.2", 100))
    box.out("systemctl start lvsha")
    assert box.wait(ON_DIR1, timeout=10) is not None, "dir1 never became master"
    start_peer(box, priority=90)
    assert box.wait(f"lvsha status --socket {PEER_SOCKET}", timeout=5) is not None
    assert state(box, PEER_SOCKET) == "BACKUP" and not vip_on(box, "lv1", "peer")

    box.out("systemctl kill -s KILL lvsha")
    # the peer hears no advert: MASTER after its Master_Down_Interval (3.65 s)
    took = box.wait(ON_PEER, timeout=10)
    assert took is not None, "the peer did not take the VIP over"
    assert state(box, PEER_SOCKET) == "MASTER"
    print(f"peer MASTER {took:.2f} s after the kill")

    # dir1 is restarted by systemd, comes back as BACKUP and, with the higher
    # priority and preempt, takes the VIP back; the peer gives it up
    assert box.wait(ON_DIR1, timeout=20) is not None, "dir1 did not come back as master"
    assert box.wait(f"! {ON_PEER}", timeout=5) is not None, "the VIP stayed on the peer too"
    assert state(box) == "MASTER" and state(box, PEER_SOCKET) == "BACKUP"
    assert int(box.prop("NRestarts")) == 1
    box.out("systemctl stop lvsha-peer lvsha")
