"""Forged VRRP adverts: built with scapy in the test, sent from an attacker namespace.

`advert()` builds one whole IPv4 datagram (header included) with scapy's IP
and VRRP layers, an implementation that shares no code with lvsha, and can
break it on purpose: any TTL, version, VRID, priority, interval, address
list or password, a wrong checksum, missing authentication, truncated or
padded VRRP data.

Run as a script (stdlib only, so that it starts fast and sends fast), this
module is the sender: inside a lab namespace it reads hex datagrams from a
file and sends them through a raw `IPPROTO_RAW` socket (the header is ours,
source address and TTL included), a bounded number of times for at most a
bounded time, then prints what it did as JSON. For example:

    ip netns exec NS python3 tests/netns/forge.py --file adverts.hex \
        --dst 224.0.0.18 --count 200000 --duration 10
"""

from __future__ import annotations

import argparse
import errno
import json
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

GROUP = "224.0.0.18"
IPPROTO_VRRP = 112
SENDER = Path(__file__).resolve()


def advert(
    src: str,
    dst: str = GROUP,
    *,
    ttl: int = 255,
    version: int = 2,
    ptype: int = 1,
    vrid: int = 51,
    priority: int = 100,
    adv: int = 1,
    addresses: tuple[str, ...] = ("192.0.2.100",),
    password: bytes | None = b"grr02",
    authtype: int | None = None,
    chksum: int | None = None,
    ipcount: int | None = None,
    keep: int | None = None,
    trailing: bytes = b"",
) -> bytes:
    """One IPv4 datagram carrying a VRRP advert, broken as asked.

    By default: the lvs01 pair's advert (VRID 51, priority 100, PASS grr02,
    advert_int 1, the lab's VIP) with TTL 255, from `src` to 224.0.0.18.
    `password=None` sends no authentication (type 0); `authtype` overrides
    the type alone. `chksum` replaces the correct checksum; `ipcount`
    replaces the address count (the checksum is computed after it, so the
    packet fails on length, not checksum). `keep` truncates the VRRP part to
    that many octets; `trailing` appends octets after the Authentication Data.
    """
    from scapy.layers.inet import IP
    from scapy.layers.vrrp import VRRP
    from scapy.packet import Raw

    auth = (password or b"").ljust(8, b"\x00")
    vrrp = VRRP(
        version=version,
        type=ptype,
        vrid=vrid,
        priority=priority,
        adv=adv,
        addrlist=list(addresses),
        ipcount=len(addresses) if ipcount is None else ipcount,
        authtype=(0 if password is None else 1) if authtype is None else authtype,
        auth1=int.from_bytes(auth[:4], "big"),
        auth2=int.from_bytes(auth[4:], "big"),
        chksum=chksum,
    )
    body = bytes(vrrp)
    if keep is not None:
        body = body[:keep]
    body += trailing
    return bytes(IP(src=src, dst=dst, ttl=ttl, proto=IPPROTO_VRRP) / Raw(body))


def sender_argv(
    python: str, hexfile: Path, dst: str, count: int, duration: float, gap: float = 0.0
) -> list[str]:
    """The command line that runs this module as the sender in a namespace."""
    return [
        python,
        str(SENDER),
        "--file",
        str(hexfile),
        "--dst",
        dst,
        "--count",
        str(count),
        "--duration",
        str(duration),
        "--gap",
        str(gap),
    ]


def write_hex(path: Path, datagrams: list[bytes]) -> Path:
    path.write_text("".join(d.hex() + "\n" for d in datagrams))
    return path


def _send(args: argparse.Namespace) -> dict[str, Any]:
    datagrams = [bytes.fromhex(line) for line in Path(args.file).read_text().split()]
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)  # IP_HDRINCL
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, args.dev.encode() + b"\x00")
    ifindex = socket.if_nametoindex(args.dev)
    sock.setsockopt(
        socket.IPPROTO_IP,
        socket.IP_MULTICAST_IF,
        socket.inet_aton("0.0.0.0") + socket.inet_aton("0.0.0.0") + struct.pack("@i", ifindex),
    )
    target = (args.dst, 0)
    sent = errors = 0
    started = time.monotonic()
    deadline = started + args.duration
    n = len(datagrams)
    for i in range(args.count):  # bounded by count, and by time below
        try:
            sock.sendto(datagrams[i % n], target)
            sent += 1
        except OSError as exc:  # ENOBUFS when the device queue is full
            if exc.errno not in (errno.ENOBUFS, errno.EAGAIN):
                raise
            errors += 1
        if args.gap:
            time.sleep(args.gap)
        if i % 256 == 255 and time.monotonic() >= deadline:
            break
    elapsed = time.monotonic() - started
    sock.close()
    return {"sent": sent, "errors": errors, "elapsed": elapsed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="send forged VRRP datagrams")
    parser.add_argument("--file", required=True, help="hex datagrams, one a line")
    parser.add_argument("--dst", default=GROUP)
    parser.add_argument("--dev", default="eth1")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--gap", type=float, default=0.0, help="seconds between datagrams")
    print(json.dumps(_send(parser.parse_args(argv))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
