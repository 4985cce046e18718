"""Track scripts and sync groups end to end: lvsha pairs and keepalived 2.2 peers.

(1) An lvsha master whose track script (weight -60) fails hands the VIP to a
keepalived backup, and takes it back when the script passes again; both
directions are timed. (2) An lvsha pair with a sync group of two instances
on two LANs (eth1, eth2): eth2 down on the master moves both VIPs. (3) The
same with keepalived running the same group on the other side.

The second LAN is a second bridge in the lab's switch namespace; its
addresses are 198.51.100.0/24 (RFC 5737). The times printed are wall-clock
seconds from the cause to the new master's transition; docs/tracking.md
quotes them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from keepalived_peer import KEEPALIVED, Keepalived
from lab import VIP, Director, Host, Lab, instance_toml, lab, sh, wait_for

from lvsha.core.vrrp import master_down_interval

VIP2 = "198.51.100.100"
MARGIN = 0.6  # polling, process start, the notify script's fork: not protocol time


def second_lan(the_lab: Lab, *hosts: tuple[Host, str]) -> None:
    """Plug each host into a second bridge as eth2 with the given address."""
    sh("ip", "netns", "exec", the_lab.switch, "ip", "link", "add", "br1", "type", "bridge")
    sh("ip", "netns", "exec", the_lab.switch, "ip", "link", "set", "br1", "up")
    for i, (host, address) in enumerate(hosts):
        port = f"{the_lab.prefix}q{i}"[:15]
        sh("ip", "link", "add", "eth2", "netns", host.ns, "type", "veth", "peer", "name", port,
           "netns", the_lab.switch)  # fmt: skip
        sh("ip", "-n", the_lab.switch, "link", "set", port, "master", "br1", "up")
        sh("ip", "-n", host.ns, "addr", "add", f"{address}/24", "dev", "eth2")
        sh("ip", "-n", host.ns, "link", "set", "eth2", "up")


def inst(director: Director, i: int = 0) -> dict[str, Any]:
    result: dict[str, Any] = director.status()["instances"][i]
    return result


def start_keepalived_conf(the_lab: Lab, host: Host, body: str) -> Keepalived:
    """keepalived (VRRP only) with `body` after global_defs; states via a notify script."""
    assert KEEPALIVED is not None
    base = the_lab.workdir / f"{host.name}-keepalived"
    states = Path(f"{base}.states")
    notify = Path(f"{base}.notify")
    # $1 INSTANCE|GROUP, $2 name, $3 state
    notify.write_text(f'#!/bin/sh\necho "$1:$2:$3 $(date +%s.%N)" >> {states}\n')
    notify.chmod(0o755)
    config = Path(f"{base}.conf")
    config.write_text(
        "global_defs {\n  router_id k\n  enable_script_security\n  script_user root\n}\n"
        + body.replace("@NOTIFY@", str(notify))
    )
    log = Path(f"{base}.log")
    pidfile = Path(f"{base}.vrrp.pid")
    argv = [KEEPALIVED, "--dont-fork", "--log-console", "--log-detail", "--no-syslog",
            "--vrrp", "--dont-respawn", "--use-file", str(config), "--pid", f"{base}.pid",
            "--vrrp_pid", str(pidfile), "--checkers_pid", f"{base}.checkers.pid"]  # fmt: skip
    proc = host.popen(argv, log)
    peer = Keepalived(host, config, log, states, pidfile, proc)
    wait_for(lambda: peer.vrrp_pid() is not None and states.exists(), 10, interval=0.05)
    return peer


def ka_events(peer: Keepalived) -> list[tuple[str, float]]:
    """(INSTANCE:NAME:STATE or GROUP:NAME:STATE, wall time), oldest first."""
    return peer.transitions()


def ka_state(peer: Keepalived, what: str) -> str | None:
    seen = [s for s, _ in ka_events(peer) if s.startswith(what + ":")]
    return seen[-1].rsplit(":", 1)[1] if seen else None


def ka_entered(peer: Keepalived, what: str, state: str, since: float) -> float | None:
    for s, at in ka_events(peer):
        if s == f"{what}:{state}" and at >= since:
            return at
    return None


KA_INSTANCE = """
vrrp_instance {name} {{
  state BACKUP
  interface {iface}
  virtual_router_id {vrid}
  priority {priority}
  advert_int 1
  authentication {{
    auth_type PASS
    auth_pass grr02
  }}
  virtual_ipaddress {{
    {vip}/32
  }}
  notify "@NOTIFY@"
}}
"""


pytestmark = pytest.mark.skipif(
    KEEPALIVED is None, reason="keepalived is not installed (Debian: apt-get install keepalived)"
)


def test_failing_track_script_hands_the_vip_to_keepalived_and_back() -> None:
    with lab() as the_lab:
        flag = the_lab.workdir / "nginx-dead"
        script = (
            "[vrrp_script.chk_web]\n"
            f'script = ["/usr/bin/test", "!", "-e", "{flag}"]\n'
            'interval = 1\ntimeout = 1\nweight = -60\nrise = 1\nfall = 1\nuser = "root"\n'
        )
        d1 = the_lab.start(
            the_lab.host("d1", "192.0.2.11"),
            script + instance_toml(150, extra='track_script = ["chk_web"]\n'),
        )
        d1.wait_state("MASTER", master_down_interval(1, 150) + 3)
        k = start_keepalived_conf(
            the_lab,
            the_lab.host("k1", "192.0.2.21"),
            KA_INSTANCE.format(name="VI_1", iface="eth1", vrid=51, priority=100, vip=VIP),
        )
        wait_for(lambda: ka_state(k, "INSTANCE:VI_1") == "BACKUP", 10)
        assert inst(d1)["priority"] == 150
        failed = time.time()
        flag.write_text("")
        at = wait_for(lambda: ka_entered(k, "INSTANCE:VI_1", "MASTER", failed), 15)
        handover = at - failed
        d1.wait_state("BACKUP", 3)
        status = inst(d1)
        assert (status["base_priority"], status["priority"]) == (150, 90)
        assert status["tracked"][0]["state"] == "failed"
        wait_for(lambda: k.host.has_vip() and not d1.host.has_vip(), 3)
        # script run (interval 1) + keepalived's Master_Down_Interval (6.4.2)
        assert handover <= 1 + master_down_interval(1, 100) + MARGIN
        passed = time.time()
        flag.unlink()
        d1.wait_state("MASTER", 15)
        back = float(inst(d1)["last_transition"]["at"]) - passed
        wait_for(lambda: ka_state(k, "INSTANCE:VI_1") == "BACKUP", 3)
        wait_for(lambda: d1.host.has_vip() and not k.host.has_vip(), 3)
        assert back <= 1 + master_down_interval(1, 150) + MARGIN
        print(f"\nnetns: lvsha -> keepalived {handover:.2f} s, keepalived -> lvsha {back:.2f} s")
        k.stop()
        assert d1.terminate() == 0


GROUP = """
[vrrp_sync_group.G1]
group = ["VI_1", "VI_2"]
"""


def lvsha_group(priority: int) -> str:
    vi2 = instance_toml(priority, vrid=52, vip=VIP2, name="VI_2").replace(
        'interface = "eth1"', 'interface = "eth2"'
    )
    return instance_toml(priority) + vi2 + GROUP


def test_lvsha_pair_sync_group_one_interface_down_moves_both_vips() -> None:
    with lab() as the_lab:
        h1, h2 = the_lab.host("d1", "192.0.2.11"), the_lab.host("d2", "192.0.2.12")
        second_lan(the_lab, (h1, "198.51.100.11"), (h2, "198.51.100.12"))
        d1 = the_lab.start(h1, lvsha_group(150))
        wait_for(lambda: inst(d1, 0)["state"] == inst(d1, 1)["state"] == "MASTER", 10)
        d2 = the_lab.start(h2, lvsha_group(100))
        wait_for(lambda: inst(d2, 0)["state"] == inst(d2, 1)["state"] == "BACKUP", 10)
        wait_for(lambda: h1.has_vip() and VIP2 in h1.addresses("eth2"), 3)
        down = time.time()
        h1.link(False, "eth2")
        wait_for(lambda: inst(d2, 0)["state"] == inst(d2, 1)["state"] == "MASTER", 10)
        moved = max(float(inst(d2, i)["last_transition"]["at"]) for i in (0, 1)) - down
        assert inst(d1, 0)["state"] == inst(d1, 1)["state"] == "FAULT"
        assert inst(d1, 0)["sync_group"]["state"] == "FAULT"
        wait_for(lambda: h2.has_vip() and VIP2 in h2.addresses("eth2"), 3)
        assert not h1.has_vip()
        # VI_1 hears priority 0 (skew), VI_2 hears nothing: Master_Down_Interval,
        # and the group goes MASTER when both can
        assert moved <= master_down_interval(1, 100) + MARGIN
        print(f"\nnetns: lvsha pair, both VIPs moved {moved:.2f} s after eth2 went down")
        h1.link(True, "eth2")
        wait_for(lambda: inst(d1, 0)["state"] == inst(d1, 1)["state"] == "MASTER", 15)
        wait_for(lambda: inst(d2, 0)["state"] == inst(d2, 1)["state"] == "BACKUP", 5)
        assert d1.terminate() == 0 and d2.terminate() == 0


def test_sync_group_with_keepalived_on_the_other_side() -> None:
    with lab() as the_lab:
        h1, k1 = the_lab.host("d1", "192.0.2.11"), the_lab.host("k1", "192.0.2.21")
        second_lan(the_lab, (h1, "198.51.100.11"), (k1, "198.51.100.21"))
        d1 = the_lab.start(h1, lvsha_group(150))
        wait_for(lambda: inst(d1, 0)["state"] == inst(d1, 1)["state"] == "MASTER", 10)
        body = (
            KA_INSTANCE.format(name="VI_1", iface="eth1", vrid=51, priority=100, vip=VIP)
            + KA_INSTANCE.format(name="VI_2", iface="eth2", vrid=52, priority=100, vip=VIP2)
            + 'vrrp_sync_group G1 {\n  group {\n    VI_1\n    VI_2\n  }\n  notify "@NOTIFY@"\n}\n'
        )
        k = start_keepalived_conf(the_lab, k1, body)
        wait_for(lambda: ka_state(k, "GROUP:G1") == "BACKUP", 10)
        down = time.time()
        h1.link(False, "eth2")
        at = wait_for(lambda: ka_entered(k, "GROUP:G1", "MASTER", down), 15)
        moved = at - down
        wait_for(
            lambda: ka_state(k, "INSTANCE:VI_1") == ka_state(k, "INSTANCE:VI_2") == "MASTER", 3
        )
        assert inst(d1, 0)["state"] == inst(d1, 1)["state"] == "FAULT"
        wait_for(lambda: k1.has_vip() and VIP2 in k1.addresses("eth2"), 3)
        assert not h1.has_vip()
        print(f"\nnetns: lvsha -> keepalived group, both VIPs moved {moved:.2f} s")
        assert moved <= master_down_interval(1, 100) + 1 + MARGIN
        # back: lvsha (150) preempts both instances, keepalived's group follows
        up = time.time()
        h1.link(True, "eth2")
        wait_for(lambda: inst(d1, 0)["state"] == inst(d1, 1)["state"] == "MASTER", 15)
        back = max(float(inst(d1, i)["last_transition"]["at"]) for i in (0, 1)) - up
        wait_for(lambda: ka_state(k, "GROUP:G1") == "BACKUP", 5)
        print(f"netns: keepalived group -> lvsha, back {back:.2f} s")
        assert back <= master_down_interval(1, 150) + 1 + MARGIN
        k.stop()
        assert d1.terminate() == 0
