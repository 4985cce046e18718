"""`lvsha status --json` keeps the operator's contract (../shared/DESIGN.md)."""

from __future__ import annotations

from lab import VIP, Lab, instance_toml

from lvsha.core.vrrp import master_down_interval

SERVICE = f"""
[[virtual_server]]
address = "{VIP}"
port = 80
protocol = "tcp"
scheduler = "rr"
forwarding = "dr"

[[virtual_server.real_server]]
address = "192.0.2.21"
port = 80
weight = 2
"""

INSTANCE_KEYS = {
    "name": str,
    "interface": str,
    "virtual_router_id": int,
    "state": str,
    "priority": int,
    "vips": list,
    "counters": dict,
    "master": dict,
    "last_transition": dict,
    "faults": list,
}
COUNTER_KEYS = {"adverts_sent": int, "adverts_received": int, "discarded": dict}


def test_status_json_has_every_contract_key(lab: Lab) -> None:
    d1 = lab.start(lab.host("d1", "192.0.2.11"), instance_toml(100) + SERVICE)
    d1.wait_state("MASTER", master_down_interval(1, 100) + 3)
    status = d1.status()
    (inst,) = status["instances"]
    for key, kind in INSTANCE_KEYS.items():
        assert isinstance(inst[key], kind), key
    for key, kind in COUNTER_KEYS.items():
        assert isinstance(inst["counters"][key], kind), key
    assert (inst["name"], inst["interface"], inst["virtual_router_id"]) == ("VI_1", "eth1", 51)
    assert (inst["state"], inst["priority"], inst["vips"]) == ("MASTER", 100, [f"{VIP}/32"])
    assert {"address": "192.0.2.11", "priority": 100}.items() <= inst["master"].items()
    assert inst["state"] in ("INIT", "BACKUP", "MASTER", "FAULT")
    (vs,) = status["virtual_servers"]
    assert (vs["address"], vs["port"], vs["protocol"]) == (VIP, 80, "tcp")
    (rs,) = vs["real_servers"]
    assert (rs["address"], rs["port"], rs["weight"], rs["healthy"]) == ("192.0.2.21", 80, 2, True)
