"""`lvsha import-keepalived` of IPv6 virtual servers: translated, not skipped.

keepalived balances IPv6 services as IPv4 ones; the importer said "lvsha
speaks IPv4 only" and dropped them. Now they come out as lvsha IPv6
services that `check-config` takes, persistence_granularity as a prefix.
"""

from __future__ import annotations

from pathlib import Path

from lvsha.core.desired import ServiceKey, desired_ipvs
from tests.unit.test_keepalived_import import convert_text

SERVICES6 = """
virtual_server 2001:DB8::100 80 {
    lb_algo rr
    lb_kind DR
    persistence_timeout 300
    persistence_granularity 64
    protocol TCP
    sorry_server 2001:db8::9 8080
    real_server 2001:db8::21 80 {
        TCP_CHECK {
            connect_ip 2001:db8::121
            connect_timeout 2
        }
    }
    real_server 2001:db8::22 80 {
        HTTP_GET {
            url {
              path /health
              status_code 200
            }
        }
    }
    real_server 192.0.2.23 80 {
    }
}
virtual_server fwmark 7 {
    lb_algo wlc
    lb_kind DR
    persistence_granularity 48
    real_server 2001:db8::23 80 {
    }
}
virtual_server 192.0.2.100 80 {
    persistence_granularity 24
    real_server 192.0.2.21 80 {
    }
}
"""


def test_ipv6_virtual_servers_are_translated(tmp_path: Path) -> None:
    config, result = convert_text(tmp_path, SERVICES6)
    v6, fwm, v4 = config.virtual_servers
    assert (v6.address, v6.port, v6.forwarding, v6.persistence_netmask) == (
        "2001:db8::100",
        80,
        "dr",
        "64",
    )
    assert [r.address for r in v6.real_servers] == ["2001:db8::21", "2001:db8::22"]
    assert v6.real_servers[0].tcp_check is not None
    assert v6.real_servers[0].tcp_check.connect_ip == "2001:db8::121"
    assert v6.real_servers[1].http_get is not None
    assert v6.sorry_server is not None and v6.sorry_server.address == "2001:db8::9"
    assert fwm.persistence_netmask == "48" and fwm.real_servers[0].address == "2001:db8::23"
    assert v4.persistence_netmask == "255.255.255.0"  # a prefix on IPv4: a dotted mask
    keys = desired_ipvs(config.virtual_servers).keys()
    assert ServiceKey.for_fwmark(7, 6) in keys
    assert ServiceKey("tcp", "2001:db8::100", 80) in keys
    # the one thing lvsha cannot do: mix families in one service
    assert result.untranslated == [
        "virtual_server([2001:db8::100]:80).real_server(192.0.2.23:80): lvsha keeps one "
        "family per service (this one is IPv6); keepalived would tunnel across families"
    ]
    assert not any("IPv4 only" in line for line in result.toml.splitlines())
