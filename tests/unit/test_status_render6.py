"""`lvsha status` writes IPv6 services and real servers in brackets, as ipvsadm does."""

from __future__ import annotations

from lvsha.tools.status import render_status
from tests.unit.test_status_render import document


def test_ipv6_service_and_real_servers_are_bracketed() -> None:
    doc = document(vips=["2001:db8::100/64"])
    doc["virtual_servers"] = [
        {
            "address": "2001:db8::100",
            "port": 80,
            "protocol": "tcp",
            "fwmark": None,
            "scheduler": "rr",
            "forwarding": "dr",
            "real_servers": [
                {"address": "2001:db8::21", "port": 80, "weight": 1, "healthy": True},
                {"address": "192.0.2.21", "port": 8080, "weight": 2, "healthy": False},
            ],
        }
    ]
    lines = render_status(doc).splitlines()
    assert "TCP [2001:db8::100]:80 rr dr" in lines
    assert "  -> [2001:db8::21]:80     weight 1     up  " in lines
    assert "  -> 192.0.2.21:8080   weight 2     DOWN" in lines  # IPv4 as before
