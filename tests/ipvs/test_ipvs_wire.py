"""The struct codec in adapters/ipvs_wire.py agrees with pyroute2's ipvsmsg, byte for byte.

pyroute2 is the reference: requests encoded here must be the bytes
`ipvsmsg.encode()` gives for the same attributes, and dump replies encoded by
pyroute2 (as the kernel lays them out) must decode to the same model.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import struct
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from pyroute2.netlink.generic import ipvs as genl_ipvs

from lvsha.adapters import ipvs_wire as wire
from lvsha.core.desired import Destination, DestKey, Service, ServiceKey
from lvsha.core.reconcile import (
    AddDest,
    AddService,
    DeleteDest,
    DeleteService,
    EditDest,
    EditService,
    Operation,
)

FAMILY = 0x1E
STATS = [
    (f"IPVS_STATS_ATTR_{n}", v)
    for n, v in (("CONNS", 7), ("INPKTS", 8), ("OUTPKTS", 9), ("INBYTES", 10), ("OUTBYTES", 11))
]


def pyroute2_bytes(cmd: int, attrs: list[tuple[str, Any]], flags: int, seq: int) -> bytes:
    msg = genl_ipvs.ipvsmsg()
    msg["cmd"] = cmd
    msg["version"] = genl_ipvs.GENL_VERSION
    msg["attrs"] = attrs
    msg["header"]["type"] = FAMILY
    msg["header"]["flags"] = flags
    msg["header"]["sequence_number"] = seq
    msg.encode()
    return bytes(msg.data)


def af(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def pyroute2_netmask(svc: Service) -> str:
    """pyroute2 types the netmask ip4addr; an IPv6 prefix length is a host-order u32."""
    if af(svc.key.address) == socket.AF_INET6:
        return socket.inet_ntoa(struct.pack("=I", int(svc.netmask)))
    return svc.netmask


def key_nla(key: ServiceKey) -> list[tuple[str, Any]]:
    if key.is_fwmark:
        return [("IPVS_SVC_ATTR_FWMARK", key.fwmark), ("IPVS_SVC_ATTR_AF", af(key.address))]
    return [
        ("IPVS_SVC_ATTR_AF", af(key.address)),
        ("IPVS_SVC_ATTR_PROTOCOL", wire.PROTOCOLS[key.protocol]),
        ("IPVS_SVC_ATTR_ADDR", key.address),
        ("IPVS_SVC_ATTR_PORT", key.port),
    ]


def service_nla(svc: Service) -> list[tuple[str, Any]]:
    return [
        *key_nla(svc.key),
        ("IPVS_SVC_ATTR_SCHED_NAME", svc.scheduler),
        ("IPVS_SVC_ATTR_FLAGS", {"flags": svc.flags, "mask": 65535}),
        ("IPVS_SVC_ATTR_TIMEOUT", svc.timeout),
        ("IPVS_SVC_ATTR_NETMASK", pyroute2_netmask(svc)),
    ]


def dest_key_nla(key: DestKey) -> list[tuple[str, Any]]:
    return [
        ("IPVS_DEST_ATTR_ADDR", key.address),
        ("IPVS_DEST_ATTR_ADDR_FAMILY", af(key.address)),
        ("IPVS_DEST_ATTR_PORT", key.port),
    ]


def dest_nla(d: Destination) -> list[tuple[str, Any]]:
    return [
        *dest_key_nla(d.key),
        ("IPVS_DEST_ATTR_WEIGHT", d.weight),
        ("IPVS_DEST_ATTR_FWD_METHOD", {"dr": 3, "nat": 0, "tun": 2}[d.forwarding]),
        ("IPVS_DEST_ATTR_U_THRESH", d.upper_threshold),
        ("IPVS_DEST_ATTR_L_THRESH", d.lower_threshold),
    ]


def pyroute2_op(op: Operation) -> tuple[int, list[tuple[str, Any]]]:
    svc = "IPVS_CMD_ATTR_SERVICE"
    dst = "IPVS_CMD_ATTR_DEST"
    match op:
        case AddService(service=s):
            return genl_ipvs.IPVS_CMD_NEW_SERVICE, [(svc, {"attrs": service_nla(s)})]
        case EditService(service=s):
            return genl_ipvs.IPVS_CMD_SET_SERVICE, [(svc, {"attrs": service_nla(s)})]
        case DeleteService(key=k):
            return genl_ipvs.IPVS_CMD_DEL_SERVICE, [(svc, {"attrs": key_nla(k)})]
        case AddDest(service=k, dest=d):
            pair = [(svc, {"attrs": key_nla(k)}), (dst, {"attrs": dest_nla(d)})]
            return genl_ipvs.IPVS_CMD_NEW_DEST, pair
        case EditDest(service=k, dest=d):
            pair = [(svc, {"attrs": key_nla(k)}), (dst, {"attrs": dest_nla(d)})]
            return genl_ipvs.IPVS_CMD_SET_DEST, pair
        case DeleteDest(service=k, dest=dk):
            pair = [(svc, {"attrs": key_nla(k)}), (dst, {"attrs": dest_key_nla(dk)})]
            return genl_ipvs.IPVS_CMD_DEL_DEST, pair
    raise AssertionError(op)


ADDRESSES6 = ["2001:db8::100", "2001:db8:0:1::ff", "2001:db8:ffff:0:1::1"]
keys = st.one_of(
    st.builds(
        ServiceKey,
        st.sampled_from(["tcp", "udp", "sctp"]),
        st.sampled_from(["192.0.2.1", "203.0.113.254", *ADDRESSES6]),
        st.integers(1, 65535),
    ),
    st.builds(ServiceKey.for_fwmark, st.integers(1, 2**32 - 1), st.sampled_from([4, 6])),
)
dests = st.builds(
    Destination,
    st.sampled_from(["198.51.100.1", "203.0.113.9", "2001:db8::21", "2001:db8:1::a:b"]),
    st.integers(0, 65535),
    st.integers(0, 65535),
    st.sampled_from(["dr", "nat", "tun"]),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
)


@st.composite
def services(draw: st.DrawFn) -> Service:
    """A service; an IPv6 one's netmask is a prefix length 1..128."""
    key = draw(keys)
    if af(key.address) == socket.AF_INET6:
        netmask = str(draw(st.integers(1, 128)))
    else:
        netmask = draw(st.sampled_from(["255.255.255.255", "255.255.255.0", "0.0.0.0"]))
    return Service(
        key,
        draw(st.sampled_from(["rr", "wlc", "mh", "lblcr"])),
        draw(st.sampled_from([0, 1, 0x18, 0x3D])),
        draw(st.integers(0, 2**31)),
        netmask,
    )


ops = st.one_of(
    st.builds(AddService, services()),
    st.builds(EditService, services(), services()),
    st.builds(DeleteService, keys),
    st.builds(AddDest, keys, dests),
    st.builds(EditDest, keys, dests, dests),
    st.builds(lambda k, d: DeleteDest(k, d.key), keys, dests),
)


@given(ops, st.integers(1, 2**32 - 1))
def test_requests_are_pyroute2s_bytes(op: Operation, seq: int) -> None:
    cmd, attrs = wire.encode_op(op)
    ref_cmd, ref_attrs = pyroute2_op(op)
    assert cmd == ref_cmd
    flags = wire.NLM_F_REQUEST | wire.NLM_F_ACK
    assert wire.request(FAMILY, cmd, attrs, flags, seq) == pyroute2_bytes(
        ref_cmd, ref_attrs, flags, seq
    )


def _kernel_addr(address: str) -> bytes:
    """The kernel sends a union nf_inet_addr: 16 bytes, IPv4 in the first 4."""
    if ":" in address:
        return socket.inet_pton(socket.AF_INET6, address)
    return socket.inet_aton(address) + bytes(12)


@given(services())
def test_service_dump_part_decodes_like_the_model(svc: Service) -> None:
    attrs: list[tuple[str, Any]] = [("IPVS_SVC_ATTR_AF", af(svc.key.address))]
    if svc.key.is_fwmark:
        attrs.append(("IPVS_SVC_ATTR_FWMARK", svc.key.fwmark))
    else:
        attrs += [
            ("IPVS_SVC_ATTR_PROTOCOL", wire.PROTOCOLS[svc.key.protocol]),
            ("IPVS_SVC_ATTR_ADDR", svc.key.address),
            ("IPVS_SVC_ATTR_PORT", svc.key.port),
        ]
    attrs += [
        ("IPVS_SVC_ATTR_SCHED_NAME", svc.scheduler),
        ("IPVS_SVC_ATTR_FLAGS", {"flags": svc.flags | 0x2, "mask": 0xFFFFFFFF}),  # +HASHED
        ("IPVS_SVC_ATTR_TIMEOUT", svc.timeout),
        ("IPVS_SVC_ATTR_NETMASK", pyroute2_netmask(svc)),
        ("IPVS_SVC_ATTR_STATS64", {"attrs": STATS}),
    ]
    raw = pyroute2_bytes(
        genl_ipvs.IPVS_CMD_NEW_SERVICE, [("IPVS_CMD_ATTR_SERVICE", {"attrs": attrs})], 2, 1
    )
    got, stats = wire.decode_service(raw[16:])
    assert got == svc
    assert stats == {
        "connections": 7,
        "packets_in": 8,
        "packets_out": 9,
        "bytes_in": 10,
        "bytes_out": 11,
    }


@given(dests)
def test_dest_dump_part_decodes_like_the_model(dest: Destination) -> None:
    fwd = {"dr": 3, "nat": 0, "tun": 2}[dest.forwarding]
    attrs = [
        ("IPVS_DEST_ATTR_PORT", dest.port),
        ("IPVS_DEST_ATTR_FWD_METHOD", fwd | 0x100),  # other conn flags are masked off
        ("IPVS_DEST_ATTR_WEIGHT", dest.weight),
        ("IPVS_DEST_ATTR_U_THRESH", dest.upper_threshold),
        ("IPVS_DEST_ATTR_L_THRESH", dest.lower_threshold),
        ("IPVS_DEST_ATTR_ACTIVE_CONNS", 3),
        ("IPVS_DEST_ATTR_INACT_CONNS", 4),
        ("IPVS_DEST_ATTR_ADDR_FAMILY", af(dest.address)),
        ("IPVS_DEST_ATTR_STATS64", {"attrs": STATS}),
    ]
    raw = pyroute2_bytes(
        genl_ipvs.IPVS_CMD_NEW_DEST, [("IPVS_CMD_ATTR_DEST", {"attrs": attrs})], 2, 1
    )
    # pyroute2 encodes the address as 4 bytes; the kernel sends 16: splice them in
    addr = wire._attr(wire.DEST["IPVS_DEST_ATTR_ADDR"], _kernel_addr(dest.address))
    body = raw[20:]
    outer_len = struct.unpack_from("=H", body)[0] + len(addr)
    patched = raw[16:20] + struct.pack("=HH", outer_len, 2) + addr + body[4:]
    got, stats = wire.decode_dest(patched)
    assert got == dest
    assert stats["active_connections"] == 3 and stats["inactive_connections"] == 4
    assert stats["bytes_out"] == 11


def test_replies_are_matched_to_their_requests_by_sequence_number() -> None:
    """Acks, errors and dump parts of one datagram each reach their own request."""
    batch = wire.NetlinkBatch.__new__(wire.NetlinkBatch)
    batch.family = FAMILY
    replies = {5: wire.Reply(), 6: wire.Reply(), 7: wire.Reply()}

    def ack(seq: int, code: int) -> bytes:
        return struct.pack("=IHHII", 36, wire.NLMSG_ERROR, 0x100, seq, 1) + struct.pack(
            "=iIHHII", code, 16, FAMILY, 5, seq, 1
        )

    part = struct.pack("=IHHII", 24, FAMILY, 2, 7, 1) + b"\x05\x01\x00\x00" + bytes(4)
    done = struct.pack("=IHHIIi", 20, wire.NLMSG_DONE, 2, 7, 1, 0)
    stale = ack(99, 0)
    datagram = ack(6, -3) + stale + ack(5, 0) + part + done
    assert batch._take(datagram, replies) == 3
    assert [(s, r.error, len(r.parts), r.settled) for s, r in replies.items()] == [
        (5, 0, 0, True),
        (6, 3, 0, True),  # ESRCH
        (7, 0, 1, True),
    ]


class FakeNetlink:
    """Stands in for the kernel's side of a netlink socket: one ACK per request.

    `refuse(seq)` gives the errno (positive) to answer with; after
    `room` ACKs queued, the rest are dropped and the next recv fails with
    ENOBUFS, as the kernel does when the receive buffer is full.
    """

    def __init__(self, refuse: Any = lambda seq: 0, room: int = 1 << 30) -> None:
        self.refuse = refuse
        self.room = room
        self.queue: list[bytes] = []
        self.sends: list[int] = []  # messages per sendmsg
        self.overrun = False

    def setblocking(self, flag: bool) -> None: ...
    def bind(self, addr: tuple[int, int]) -> None: ...
    def setsockopt(self, *args: int) -> None: ...

    def getsockopt(self, level: int, opt: int) -> int:
        return 32 << 20 if opt == socket.SO_RCVBUF else 8 << 20

    def sendto(self, data: bytes, addr: tuple[int, int]) -> int:
        pos = count = 0
        while pos < len(data):
            size, _kind, _flags, seq, _pid = struct.unpack_from("=IHHII", data, pos)
            count += 1
            if len(self.queue) < self.room:
                ack = struct.pack("=iIHHII", -self.refuse(seq), 16, FAMILY, 5, seq, 0)
                self.queue.append(
                    struct.pack("=IHHII", 16 + len(ack), wire.NLMSG_ERROR, 0x100, seq, 1) + ack
                )
            else:
                self.overrun = True
            pos += size
        self.sends.append(count)
        return len(data)

    def recv(self, size: int) -> bytes:
        if self.overrun:
            self.overrun = False
            raise OSError(errno.ENOBUFS, "No buffer space available")
        if not self.queue:
            raise BlockingIOError
        return self.queue.pop(0)


def test_thousands_of_requests_go_in_few_sendmsgs_each_answer_to_its_own() -> None:
    fake = FakeNetlink(refuse=lambda seq: errno.ESRCH if seq % 7 == 0 else 0)
    batch = wire.NetlinkBatch(fake, FAMILY)  # type: ignore[arg-type]
    requests = [
        wire.encode_op(
            AddDest(ServiceKey("tcp", "192.0.2.1", 80), Destination("198.51.100.1", port))
        )
        for port in range(5000)
    ]
    replies = asyncio.run(batch.transact([(cmd, attrs, False) for cmd, attrs in requests]))
    assert fake.sends == [2048, 2048, 904]
    assert [r.error for r in replies] == [
        errno.ESRCH if seq % 7 == 0 else 0 for seq in range(1, 5001)
    ]


def test_answers_lost_to_a_full_receive_buffer_are_failures_not_successes() -> None:
    fake = FakeNetlink(room=100)
    batch = wire.NetlinkBatch(fake, FAMILY)  # type: ignore[arg-type]
    op = wire.encode_op(DeleteService(ServiceKey("udp", "192.0.2.1", 53)))
    replies = asyncio.run(batch.transact([(*op, False)] * 300))
    assert [r.error for r in replies] == [0] * 100 + [errno.ENOBUFS] * 200


@given(st.ip_addresses(v=6).filter(lambda a: a.ipv4_mapped is None))
def test_ipv6_dump_addresses_are_spelled_as_the_config_spells_them(addr: Any) -> None:
    """The config normalises with ipaddress (RFC 5952); dumps use inet_ntop: they agree.

    IPv4-mapped addresses are the one exception (config refuses them).
    """
    raw = addr.packed
    assert wire._address(socket.AF_INET6, raw) == str(addr)
