"""`lvsha status`'s table, from a status document written by hand."""

from __future__ import annotations

import time
from typing import Any

from lvsha.tools.status import render_status


def document(**instance: Any) -> dict[str, Any]:
    inst: dict[str, Any] = {
        "name": "VI_1",
        "interface": "eth1",
        "virtual_router_id": 51,
        "priority": 100,
        "state": "MASTER",
        "master": {"self": True},
        "vips": ["192.0.2.100"],
        "last_transition": None,
        "faults": [],
        "counters": {"adverts_sent": 3, "adverts_received": 0, "discarded": {}},
        **instance,
    }
    daemon = {"version": "0", "name": "d1", "pid": 1, "started_at": time.time()}
    return {"daemon": daemon, "instances": [inst], "virtual_servers": []}


def test_an_address_conflict_is_shown_when_the_daemon_reports_one() -> None:
    conflict = {"address": "192.0.2.11", "priority": 100, "seen_ago": 0.5}
    text = render_status(document(address_conflict=conflict))
    assert (
        "ADDRESS CONFLICT: another router sends adverts from our address 192.0.2.11 "
        "(priority 100), seen 0.5s ago"
    ) in text
    assert "ADDRESS CONFLICT" not in render_status(document(address_conflict=None))
    assert "ADDRESS CONFLICT" not in render_status(document())


def test_drop_counters_are_listed_by_reason() -> None:
    counters = {"adverts_sent": 3, "adverts_received": 0, "discarded": {"address_conflict": 2}}
    text = render_status(document(counters=counters))
    assert "dropped: address_conflict=2" in text


def test_tracked_objects_and_the_sync_group_are_shown() -> None:
    tracked = [
        {"kind": "script", "name": "chk_web", "weight": -60, "state": "failed",
         "contribution": -60, "fault": False},
        {"kind": "interface", "name": "eth2", "weight": 0, "state": "up",
         "contribution": 0, "fault": False},
        {"kind": "file", "name": "/run/maint", "weight": 0, "state": "1",
         "contribution": 0, "fault": True},
    ]  # fmt: skip
    group = {"name": "G1", "state": "FAULT", "members": ["VI_1", "VI_2"]}
    text = render_status(
        document(priority=90, base_priority=150, tracked=tracked, sync_group=group)
    )
    assert (
        "priority 90 = base 150; script chk_web failed -60, interface eth2 up, "
        "file /run/maint 1 FAULT"
    ) in text
    assert "sync group G1 (FAULT): VI_1, VI_2" in text
    assert "base" not in render_status(document())


def test_interface_drops_and_restarted_tasks_are_shown() -> None:
    doc = document()
    doc["interfaces"] = [{"name": "eth1", "discarded": {"vrid": 4}}]
    doc["daemon"]["tasks"] = {
        "healthy": False,
        "supervised": {
            "netlink-watch": {"critical": True, "restarts": 5, "last_error": "OSError(105)"},
            "vip-reconciler": {"critical": True, "restarts": 0, "last_error": None},
        },
    }
    text = render_status(doc)
    assert "eth1         dropped before any instance: vrid=4" in text
    assert "task netlink-watch restarted 5x, last: OSError(105)" in text
    assert "vip-reconciler" not in text
    assert "the watchdog is no longer fed" in text
