"""IPv6 VIPs of a VRRPv3 instance in the kernel: added nodad, removed on stop and by cleanup."""

from __future__ import annotations

import json

from lab import LVSHA, Lab, wait_for
from test_keepalived_v3_ipv6 import VIP6, addresses6, has_vip6, link_local_ready, lvsha_toml


def test_ipv6_vip_is_nodad_and_cleanup_removes_it_after_a_crash(lab: Lab) -> None:
    host = lab.host("d1", "192.0.2.11")
    wait_for(lambda: link_local_ready(host), timeout=10, interval=0.1)
    d1 = lab.start(host, lvsha_toml(150, 0.05))
    d1.wait_state("MASTER", 5)
    wait_for(lambda: has_vip6(host), timeout=3)
    (vip,) = [a for a in addresses6(host) if a["local"] == VIP6]
    assert (vip["prefixlen"], vip.get("nodad"), vip.get("tentative")) == (64, True, None)
    d1.kill()
    assert has_vip6(host)  # a crash leaves it: the record says it was held
    out = host.run(*LVSHA, "cleanup", "--config", str(d1.config))
    assert out.stdout.strip() == f"removed {VIP6}/64 from eth1"
    assert not has_vip6(host)


def test_ipv6_vip_goes_on_sigterm(lab: Lab) -> None:
    host = lab.host("d1", "192.0.2.11")
    wait_for(lambda: link_local_ready(host), timeout=10, interval=0.1)
    d1 = lab.start(host, lvsha_toml(150, 0.05))
    d1.wait_state("MASTER", 5)
    wait_for(lambda: has_vip6(host), timeout=3)
    status = d1.status()["instances"][0]
    assert status["primary_address"].startswith("fe80::")
    assert json.dumps(status["vips"]) == json.dumps([f"{VIP6}/64"])
    assert d1.terminate() == 0
    assert not has_vip6(host)
