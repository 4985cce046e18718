"""Prometheus labels of IPv6 services: the address in brackets, as ipvsadm writes it."""

from __future__ import annotations

from lvsha.adapters.metrics import render

STATUS = {
    "instances": [],
    "virtual_servers": [
        {
            "address": "2001:db8::100",
            "port": 80,
            "protocol": "tcp",
            "fwmark": None,
            "kernel": {"connections": 3},
            "real_servers": [
                {
                    "address": "2001:db8::21",
                    "port": 8080,
                    "weight": 1,
                    "healthy": True,
                    "check": None,
                    "kernel": {"connections": 3, "active_connections": 1},
                }
            ],
        }
    ],
}


def test_ipv6_service_and_real_server_labels_are_unambiguous() -> None:
    text = render(STATUS).decode()
    assert (
        'lvsha_ipvs_connections_total{real_server="",virtual_server="tcp/[2001:db8::100]:80"} 3.0'
        in text
    )
    assert (
        'lvsha_real_server_healthy{real_server="[2001:db8::21]:8080",'
        'virtual_server="tcp/[2001:db8::100]:80"} 1.0'
    ) in text
