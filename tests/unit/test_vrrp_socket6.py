"""What the IPv6 VRRP receiver hands the core: the header fields of section 7.1."""

from __future__ import annotations

import socket

from lvsha.adapters.vrrp_socket6 import header_from


def test_receive_header_from_ancillary_data() -> None:
    """Section 7.1 on IPv6: hop limit and destination come as IPV6_HOPLIMIT / IPV6_PKTINFO."""
    pktinfo = socket.inet_pton(socket.AF_INET6, "ff02::12") + (2).to_bytes(4, "little")
    ancdata = [
        (socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo),
        (socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT, (255).to_bytes(4, "little")),
    ]
    header = header_from("fe80::0a%eth1", ancdata)
    assert (header.source, header.destination, header.ttl) == ("fe80::a", "ff02::12", 255)
    assert header_from("fe80::1", []).ttl == -1  # no hop limit given: the core drops it
