"""The unsolicited Neighbour Advertisement of lvsha.core.nd (RFC 4861 sections 4.4, 7.2.6).

Checked against scapy's ICMPv6ND_NA and its Target Link-Layer Address
option: an independent encoder.
"""

from __future__ import annotations

from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6

from lvsha.core.nd import ALL_NODES, neighbour_advertisement

MAC = "02:00:5e:00:53:01"
VIP6 = "2001:db8::100"


def test_bytes_match_scapy_with_override_only() -> None:
    ours = neighbour_advertisement(MAC, VIP6)
    theirs = bytes(ICMPv6ND_NA(R=0, S=0, O=1, tgt=VIP6, cksum=0) / ICMPv6NDOptDstLLAddr(lladdr=MAC))
    assert ours == theirs
    parsed = ICMPv6ND_NA(bytes(IPv6(src="fe80::1", dst=ALL_NODES, hlim=255) / ours)[40:])
    assert (parsed.type, parsed.R, parsed.S, parsed.O, parsed.tgt) == (136, 0, 0, 1, VIP6)
    assert parsed[ICMPv6NDOptDstLLAddr].lladdr == MAC
