"""A reload storm during failover: many SIGHUPs, some with broken files, during a takeover.

The master (d1) is killed with SIGKILL; while the backup (d2) notices and
takes over, its configuration file is rewritten (atomically, as editors and
configuration managers do) and d2 gets a SIGHUP after each write, the file
alternating between valid versions and broken ones. Invariants:

* d2 never crashes (no traceback, no failed task in its log) and takes over
  within the protocol bound: Master_Down_Interval after the master's last
  advert when the reloads leave its instance alone; Master_Down_Interval
  after the last reload that restarted it otherwise (an instance whose
  configuration changed starts again as backup, docs/operations.md);
* a broken file never replaces the running configuration: `reload_error`
  shows its problems, and the last valid version keeps running;
* exactly one instance runs: no reload leaves a copy of the old one behind
  (it would take over on its own), none loses it;
* adverts keep flowing: once master, d2 sends one advert per interval.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab import VIP, Director, Lab, instance_toml, wait_for

from lvsha.adapters.control_client import request
from lvsha.config import parse_config
from lvsha.core.vrrp import master_down_interval
from lvsha.errors import ConfigError

MDI_100 = master_down_interval(1, 100)
MARGIN = 0.5  # status polling and a loop busy with reloads, not protocol time
MAX_SIGNALS = 600  # every storm is bounded


def status(d: Director) -> dict[str, Any]:
    """The status document from the control socket (faster than the CLI)."""
    return request(str(d.socket), "status", timeout=10)


def replace(path: Path, text: str) -> None:
    """Write the file as editors do: a new file renamed over the old one."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(text)
    os.replace(tmp, path)


def problems(text: str) -> list[str]:
    try:
        parse_config(text)
    except ConfigError as exc:
        return exc.problems
    return []


def pair(lab: Lab, services: str = "") -> tuple[Director, Director]:
    config = instance_toml(100) + services
    d1, d2 = lab.pair(config, config, MDI_100 + 3)
    wait_for(lambda: status(d2)["instances"][0]["counters"]["adverts_received"] >= 1, 3)
    return d1, d2


def real_server(weight: int) -> str:
    return (
        f'\n[[virtual_server.real_server]]\naddress = "192.0.2.21"\nport = 80\nweight = {weight}\n'
    )


def service(weight: int) -> str:
    """A DR service whose real server's weight marks the version (no check: no probes)."""
    return f'\n[[virtual_server]]\naddress = "{VIP}"\nport = 80\nscheduler = "rr"\n' + real_server(
        weight
    )


def assert_healthy_log(d: Director) -> None:
    """No crash, no failed task, and no VIP pass refused: the lab's kernel has no reason to."""
    lines = d.log_text().splitlines()
    for bad in ("Traceback", "task failed", "vip reconcile failed"):
        assert not [line for line in lines if bad in line], [line for line in lines if bad in line]


def test_reload_storm_during_failover_restarting_another_instance(lab: Lab) -> None:
    """Valid versions leave VI_1 alone but change VI_2 (restarted) and the service.

    VI_1 fails over through the storm, on time, and its VIP follows at once,
    while every reload restarts VI_2 (which asks the kernel for its link and
    address) and the VIP reconciler runs after each one.
    """
    d1, d2 = pair(lab, service(1))
    header = d2.config.read_text().split("[vrrp.VI_1]")[0]
    vi_1 = instance_toml(100)

    def version(weight: int, vi_1: str = vi_1, service: str = service(1)) -> str:
        vi_2 = instance_toml(90 + weight % 2, vrid=52, vip="192.0.2.101", name="VI_2")
        return header + vi_1 + "\n" + vi_2 + service.replace("weight = 1", f"weight = {weight}")

    broken = [
        version(1).replace("weight = 1", "weight = "),  # TOML syntax
        version(1, vi_1=vi_1.replace("priority = 100", "priority = 256")),
        version(1).replace("weight = 1", "wieght = 1"),
        version(1, service=service(1) + real_server(1)),  # a real server twice
    ]
    assert all(problems(text) for text in broken)
    killed_at = time.time()
    d1.kill()
    running = 1  # the weight of the valid version in force
    reloads = status(d2)["daemon"]["reloads"]
    took_over_at: float | None = None
    vip_at: float | None = None
    signals = 0
    while signals < MAX_SIGNALS:
        # Valid and broken versions alternate: 2, bad, 3, bad, 4 ...
        if signals % 2 == 0:
            running = signals // 2 + 2
            replace(d2.config, version(running))
            expected: list[str] = []
        else:
            text = broken[(signals // 2) % len(broken)]
            replace(d2.config, text)
            expected = problems(text)
        d2.signal(signal.SIGHUP)
        signals += 1
        reloads += 0 if expected else 1

        def applied(
            expected: list[str] = expected, reloads: int = reloads, running: int = running
        ) -> dict[str, Any]:
            s = status(d2)
            done = (
                s["daemon"]["reload_error"] == expected
                and s["daemon"]["reloads"] == reloads
                and s["virtual_servers"][0]["real_servers"][0]["weight"] == running
                and [(i["name"], i["priority"]) for i in s["instances"]]
                == [("VI_1", 100), ("VI_2", 90 + running % 2)]
            )
            return s if done else {}

        # Each reload shows at once: its errors, or the new version in force
        # (VI_2 started again, the service with its new weight).
        try:
            s = wait_for(applied, 2, interval=0.005)
        except TimeoutError:
            raise AssertionError(f"reload {signals} not applied: {status(d2)}") from None
        assert d2.proc.poll() is None
        if took_over_at is None and s["instances"][0]["state"] == "MASTER":
            took_over_at = s["instances"][0]["last_transition"]["at"]
        if took_over_at is not None and vip_at is None and d2.host.has_vip():
            vip_at = time.time()
        if vip_at is not None and time.time() - vip_at > 2:
            break
        assert time.time() - killed_at < MDI_100 + 5, "no takeover, or no VIP"
        time.sleep(0.01)
    assert took_over_at is not None and vip_at is not None, f"after {signals} reloads"
    assert signals >= 100
    inst = status(d2)["instances"][0]
    # The master's last advert left at most one interval before the kill.
    assert took_over_at - killed_at <= MDI_100 + MARGIN
    assert inst["last_transition"]["reason"] == "master down timer expired"
    assert inst["counters"]["became_master"] == 1
    # The VIP followed within the polling of this loop, not a retry later.
    assert vip_at - took_over_at <= MARGIN
    # Adverts flowed all through the storm: one at takeover, then one a second.
    since = time.time() - took_over_at
    assert inst["counters"]["adverts_sent"] >= 1 + int(since) - 1
    sent = inst["counters"]["adverts_sent"]
    wait_for(lambda: status(d2)["instances"][0]["counters"]["adverts_sent"] > sent, 2)
    # The storm ended on a valid version or a broken one: either way, the
    # last valid one runs.
    assert status(d2)["virtual_servers"][0]["real_servers"][0]["weight"] == running
    assert_healthy_log(d2)


def test_reload_storm_that_restarts_the_instance_during_failover(lab: Lab) -> None:
    """Valid versions change the instance (its priority): every one restarts it.

    The SIGHUPs come half a millisecond apart, not waiting for the reloads, so
    that reloads pile up; then the last valid version and a broken one, each
    acknowledged, so that the end state is known.
    """
    d1, d2 = pair(lab)
    header = d2.config.read_text().split("[vrrp.VI_1]")[0]
    valid = [header + instance_toml(p) for p in (110, 100)]
    broken = [
        header + instance_toml(100).replace("virtual_router_id = 51", "virtual_router_id = 0"),
        header + instance_toml(100).replace("advert_int = 1", "advert_int = 1 1"),
    ]
    storm = [valid[0], broken[0], valid[1], broken[1]] * 50
    d1.kill()
    for text in storm:
        replace(d2.config, text)
        d2.signal(signal.SIGHUP)
        time.sleep(0.0005)

    def acknowledged(text: str, done: Callable[[dict[str, Any], int], bool]) -> dict[str, Any]:
        """Write, signal, and wait until the daemon shows the reload's outcome."""
        before = status(d2)["daemon"]["reloads"]
        replace(d2.config, text)
        d2.signal(signal.SIGHUP)

        def shown() -> dict[str, Any]:
            s = status(d2)
            return s if done(s, before) else {}

        result: dict[str, Any] = wait_for(shown, 5)
        return result

    acknowledged(
        valid[0], lambda s, n: s["daemon"]["reloads"] > n and not s["daemon"]["reload_error"]
    )
    last_valid = time.time()
    s = acknowledged(broken[0], lambda s, n: s["daemon"]["reload_error"] == problems(broken[0]))
    assert 0 < s["daemon"]["reloads"] <= len(storm) + 1
    # The last valid version restarted the instance as a backup (unless it
    # ran already): it takes over at most one Master_Down_Interval (of
    # priority 110) after that reload.
    d2.wait_state("MASTER", master_down_interval(1, 110) + 3)
    s = status(d2)
    inst = s["instances"][0]
    assert [i["name"] for i in s["instances"]] == ["VI_1"]
    assert inst["priority"] == 110  # the last valid version
    assert s["daemon"]["reload_error"] == problems(broken[0])
    assert inst["last_transition"]["reason"] == "master down timer expired"
    assert inst["last_transition"]["at"] - last_valid <= master_down_interval(1, 110) + MARGIN
    wait_for(d2.host.has_vip, 2)
    # One instance, one takeover: no copy of an earlier instance left running
    # on its own timer (it would log a takeover of its own and advertise too).
    sent = inst["counters"]["adverts_sent"]
    wait_for(lambda: status(d2)["instances"][0]["counters"]["adverts_sent"] >= sent + 2, 3)
    assert d2.log_text().count("reason='master down timer expired'") == 1
    assert d2.proc.poll() is None
    assert_healthy_log(d2)
