"""The stdlib rtnetlink codec on bytes recorded from a 6.18 kernel, and the monitor's ENOBUFS.

Recorded in a namespace with eth1 = 192.0.2.11/24 and 192.0.2.100/32
(index 3): the answer to an RTM_GETADDR dump, the NLMSG_ERROR of an add that
already existed (EEXIST), the ENODEV of an RTM_GETLINK for index 9999, and
the start of an RTM_NEWLINK for eth1 (cut after IFLA_IFNAME).
"""

from __future__ import annotations

import asyncio
import errno
import socket
import struct

import pytest

from lvsha.adapters import addresses, rtnetlink
from lvsha.adapters.rtnetlink import Address, Done, Error, Link
from lvsha.errors import KernelError

DUMP = bytes.fromhex(
    "500000001400020001000000e0410000021880000300000008000100c000020b08000200c000020b"
    "090003006574683100000000080008008000000014000600ffffffffffffffffbfc60200bfc60200"
    "500000001400020001000000e0410000022080000300000008000100c000026408000200c0000264"
    "090003006574683100000000080008008000000014000600ffffffffffffffffbfc60200bfc60200"
)
DUMP_DONE = bytes.fromhex("140000000300020001000000e041000000000000")
EEXIST = bytes.fromhex(
    "3c0000000200000002000000e0410000efffffff28000000140005060200000000000000"
    "022000000300000008000200c000026408000100c0000264"
)
ENODEV = bytes.fromhex(
    "340000000200000004000000e0410000edffffff200000001200010004000000000000000000"
    "00000f2700000000000000000000"
)
NEWLINK = (
    struct.pack("=I", 44)
    + bytes.fromhex(
        "1000000003000000e04100000000010003000000431001000000000009000300657468310000000000"
    )[:40]
)


def test_a_dump_decodes_to_the_addresses_with_their_flags_and_labels() -> None:
    msgs = list(rtnetlink.parse(DUMP))
    assert [m.seq for m in msgs] == [1, 1]
    assert all(m.flags & rtnetlink.NLM_F_MULTI for m in msgs)
    assert [m.body for m in msgs] == [
        Address(rtnetlink.RTM_NEWADDR, socket.AF_INET, 3, "192.0.2.11", 24, 0x80, "eth1"),
        Address(rtnetlink.RTM_NEWADDR, socket.AF_INET, 3, "192.0.2.100", 32, 0x80, "eth1"),
    ]
    assert [m.body for m in rtnetlink.parse(DUMP_DONE)] == [Done()]


def test_errors_carry_the_kernels_errno() -> None:
    (eexist,) = rtnetlink.parse(EEXIST)
    assert (eexist.seq, eexist.body) == (2, Error(errno.EEXIST))
    (enodev,) = rtnetlink.parse(ENODEV)
    assert (enodev.seq, enodev.body) == (4, Error(errno.ENODEV))


def test_a_link_is_up_only_with_carrier() -> None:
    (msg,) = rtnetlink.parse(NEWLINK)
    assert msg.body == Link(rtnetlink.RTM_NEWLINK, 3, "eth1", 0x11043)
    assert isinstance(msg.body, Link) and msg.body.up  # IFF_UP | IFF_RUNNING | ...
    assert not Link(rtnetlink.RTM_NEWLINK, 2, "eth1", rtnetlink.IFF_UP).up  # no carrier
    assert not Link(rtnetlink.RTM_DELLINK, 2, "eth1", 0x11043).up  # gone


def test_the_add_request_is_what_the_kernel_echoed_back() -> None:
    """EEXIST's NLMSG_ERROR carries our request's header and body: compare them."""
    request = rtnetlink.encode_address(rtnetlink.RTM_NEWADDR, 2, 3, "192.0.2.100", 32)
    length, kind, flags, seq, _pid = rtnetlink.NLMSGHDR.unpack_from(request)
    echoed = EEXIST[20:]
    assert (length, kind, flags, seq) == rtnetlink.NLMSGHDR.unpack_from(echoed)[:4]
    assert flags == (
        rtnetlink.NLM_F_REQUEST
        | rtnetlink.NLM_F_ACK
        | rtnetlink.NLM_F_CREATE
        | rtnetlink.NLM_F_EXCL
    )
    assert request[16:] == echoed[16:length]
    deleting = rtnetlink.encode_address(rtnetlink.RTM_DELADDR, 3, 2, "192.0.2.100", 32)
    assert rtnetlink.NLMSGHDR.unpack_from(deleting)[1:3] == (rtnetlink.RTM_DELADDR, 0x5)


def test_requests_for_a_dump_and_one_link() -> None:
    dump = rtnetlink.encode_dump_addresses(7)
    assert dump == struct.pack("=IHHII", 24, 22, 0x301, 7, 0) + bytes([2, 0, 0, 0]) + bytes(4)
    link = rtnetlink.encode_get_link(8, 9999)
    assert link == struct.pack("=IHHII", 32, 18, 0x1, 8, 0) + struct.pack(
        "=BxHiII", 0, 0, 9999, 0, 0
    )


def test_ipv6_addresses_decode_in_the_same_codec() -> None:
    """VRRPv3 later: AF_INET6 carries IFA_ADDRESS only, 16 octets."""
    request = rtnetlink.encode_address(
        rtnetlink.RTM_NEWADDR, 9, 3, "2001:db8::1", 64, family=socket.AF_INET6
    )
    (msg,) = rtnetlink.parse(request)
    assert msg.body == Address(rtnetlink.RTM_NEWADDR, socket.AF_INET6, 3, "2001:db8::1", 64, 0, "")


def test_truncated_and_malformed_input_is_dropped_not_raised() -> None:
    assert list(rtnetlink.parse(DUMP[:50])) == []  # a cut message
    assert list(rtnetlink.parse(b"\x00" * 3)) == []
    bad_attr = bytearray(DUMP[:80])
    bad_attr[24:26] = struct.pack("=H", 200)  # first rtattr longer than its message
    (msg,) = rtnetlink.parse(bytes(bad_attr))
    assert msg.body is None  # no address attribute survived: not decoded


class _Overflowing:
    """A socket whose recv fails with ENOBUFS: the kernel dropped events."""

    def __init__(self) -> None:
        self.pair = socket.socketpair()
        self.pair[1].send(b"x")  # readable

    def fileno(self) -> int:
        return self.pair[0].fileno()

    def recv(self, size: int) -> bytes:
        raise OSError(errno.ENOBUFS, "No buffer space available")

    def close(self) -> None:
        for s in self.pair:
            s.close()


def test_the_monitor_raises_on_enobufs_so_the_supervisor_resyncs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rtnetlink, "open_socket", lambda groups=0: _Overflowing())

    async def scenario() -> None:
        async with asyncio.timeout(5):
            await addresses.watch(lambda event: None)

    with pytest.raises(KernelError, match="events lost"):
        asyncio.run(scenario())


def test_a_vip_s_label_and_broadcast_go_in_the_add_request() -> None:
    """`ip addr add 192.0.2.100/24 brd 192.0.2.255 label eth1:vip`: IFA_BROADCAST, IFA_LABEL."""
    request = rtnetlink.encode_address(
        rtnetlink.RTM_NEWADDR, 5, 3, "192.0.2.100", 24, label="eth1:vip", broadcast="192.0.2.255"
    )
    (msg,) = rtnetlink.parse(request)  # the codec reads its own request back
    assert msg.body == Address(
        rtnetlink.RTM_NEWADDR, socket.AF_INET, 3, "192.0.2.100", 24, 0, "eth1:vip"
    )
    assert (
        struct.pack("=HH", 8, rtnetlink.IFA_BROADCAST) + socket.inet_aton("192.0.2.255") in request
    )
    plain = rtnetlink.encode_address(rtnetlink.RTM_NEWADDR, 5, 3, "192.0.2.100", 24)
    assert len(request) == len(plain) + 8 + 16  # brd (4+4) and "eth1:vip\0" padded (4+12)


def test_an_ipv6_vip_is_added_nodad_and_a_link_local_decodes_with_its_scope() -> None:
    """IFA_F_NODAD in ifa_flags and IFA_FLAGS, as `ip -6 addr add ... nodad` sends it."""
    data = rtnetlink.encode_address(
        rtnetlink.RTM_NEWADDR, 7, 3, "2001:db8::100", 64, socket.AF_INET6, nodad=True
    )
    family, prefixlen, flags, scope, index = rtnetlink.IFADDRMSG.unpack_from(data, 16)
    assert (family, prefixlen, flags, scope, index) == (socket.AF_INET6, 64, 0x02, 0, 3)
    assert rtnetlink._attrs(data, 16 + 8, len(data)) == {
        rtnetlink.IFA_ADDRESS: socket.inet_pton(socket.AF_INET6, "2001:db8::100"),
        rtnetlink.IFA_FLAGS: struct.pack("=I", rtnetlink.IFA_F_NODAD),
        # deprecated (preferred 0, valid forever): never the master's source address
        rtnetlink.IFA_CACHEINFO: struct.pack("=IIII", 0, 0xFFFFFFFF, 0, 0),
    }
    removal = rtnetlink.encode_address(
        rtnetlink.RTM_DELADDR, 8, 3, "2001:db8::100", 64, socket.AF_INET6
    )
    assert rtnetlink.IFADDRMSG.unpack_from(removal, 16)[2] == 0  # nodad only when adding
    # the kernel's answer for a link-local: RTM_NEWADDR, scope link (253)
    reply = rtnetlink._message(
        rtnetlink.RTM_NEWADDR,
        0,
        9,
        rtnetlink.IFADDRMSG.pack(socket.AF_INET6, 64, 0x80, rtnetlink.RT_SCOPE_LINK, 3)
        + rtnetlink._attr(rtnetlink.IFA_ADDRESS, socket.inet_pton(socket.AF_INET6, "fe80::1")),
    )
    (msg,) = rtnetlink.parse(reply)
    assert msg.body == Address(
        rtnetlink.RTM_NEWADDR, socket.AF_INET6, 3, "fe80::1", 64, 0x80, "", rtnetlink.RT_SCOPE_LINK
    )
