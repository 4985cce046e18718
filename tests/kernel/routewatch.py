"""Watch one route of this namespace's kernel: print its next hops when they change.

Run as `python routewatch.py PREFIX INTERVAL` inside the router's namespace.
Every INTERVAL seconds it dumps the IPv4 routes over one rtnetlink socket
(RTM_GETROUTE, rtnetlink(7)) and, when the set of gateways of PREFIX changes,
prints "MONOTONIC_SECONDS hop,hop" (sorted; "-" when there is no route).
No exec per sample, so a 20 ms poll costs little even under UML. It ends
when its stdin closes (the test or bench that started it went away).
"""

from __future__ import annotations

import ipaddress
import os
import select
import socket
import struct
import sys
import time

RTM_NEWROUTE, RTM_GETROUTE = 24, 26
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
RTA_DST, RTA_GATEWAY, RTA_MULTIPATH = 1, 5, 9
RT_TABLE_MAIN = 254


def attrs(data: bytes, offset: int, end: int) -> dict[int, bytes]:
    """Netlink attributes (struct rtattr) between offset and end."""
    out: dict[int, bytes] = {}
    while offset + 4 <= end:
        length, kind = struct.unpack_from("=HH", data, offset)
        if length < 4:
            break
        out[kind] = data[offset + 4 : offset + length]
        offset += (length + 3) & ~3
    return out


def gateways(rta: dict[int, bytes]) -> set[str]:
    """One gateway (RTA_GATEWAY) or several (RTA_MULTIPATH: struct rtnexthop list)."""
    if RTA_GATEWAY in rta:
        return {socket.inet_ntoa(rta[RTA_GATEWAY])}
    out: set[str] = set()
    mp = rta.get(RTA_MULTIPATH, b"")
    offset = 0
    while offset + 8 <= len(mp):
        length = struct.unpack_from("=H", mp, offset)[0]
        if length < 8:
            break
        gw = attrs(mp, offset + 8, offset + length).get(RTA_GATEWAY)
        if gw:
            out.add(socket.inet_ntoa(gw))
        offset += (length + 3) & ~3
    return out


def hops(sock: socket.socket, seq: int, dst: bytes, dst_len: int) -> set[str]:
    rtmsg = struct.pack("=BBBBBBBBI", socket.AF_INET, 0, 0, 0, 0, 0, 0, 0, 0)
    sock.send(
        struct.pack("=IHHII", 16 + len(rtmsg), RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, seq, 0)
        + rtmsg
    )
    found: set[str] = set()
    while True:
        data = sock.recv(1 << 16)
        offset = 0
        while offset + 16 <= len(data):
            length, kind, _, mseq, _ = struct.unpack_from("=IHHII", data, offset)
            if length < 16:
                return found
            if mseq == seq:
                if kind in (NLMSG_DONE, NLMSG_ERROR):
                    return found
                if kind == RTM_NEWROUTE:
                    body = offset + 16
                    _, rlen, _, _, table = struct.unpack_from("=BBBBB", data, body)
                    rta = attrs(data, body + 12, offset + length)
                    if rlen == dst_len and table == RT_TABLE_MAIN and rta.get(RTA_DST) == dst:
                        found |= gateways(rta)
            offset += (length + 3) & ~3


def main() -> None:
    net = ipaddress.IPv4Network(sys.argv[1])
    interval = float(sys.argv[2])
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    sock.bind((0, 0))
    last: str | None = None
    seq = 0
    while True:
        seq += 1
        now = ",".join(sorted(hops(sock, seq, net.network_address.packed, net.prefixlen))) or "-"
        if now != last:
            print(f"{time.monotonic():.4f} {now}", flush=True)
            last = now
        ready, _, _ = select.select([sys.stdin], [], [], interval)
        if ready and not os.read(sys.stdin.fileno(), 4096):
            return


if __name__ == "__main__":
    main()
