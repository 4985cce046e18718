"""Forged IPv6 VRRPv3 adverts: built with scapy in the test, sent from an attacker namespace.

`advert6()` builds the VRRP part of an IPv6 advert (RFC 5798 section 5.1)
with scapy's IPv6 and VRRPv3 layers (the checksum over the IPv6 pseudo-header
is scapy's, not lvsha's) and can break it on purpose: another version, VRID
or priority, a wrong checksum, truncated data. The hop limit is not in the
payload: the sender sets it per datagram.

Run as a script (stdlib only, so that it starts fast and sends fast), this
module is the sender: inside a lab namespace it reads `HOPS HEX` lines from a
file and sends each payload through a raw IPv6 socket of protocol 112 from
the namespace's link-local address to ff02::12 (or `--dst`), with that hop
limit as ancillary data, a bounded number of times for at most a bounded
time, then prints what it did as JSON.
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

GROUP6 = "ff02::12"
IPPROTO_VRRP = 112
SENDER = Path(__file__).resolve()


def advert6(
    src: str,
    dst: str = GROUP6,
    *,
    version: int = 3,
    vrid: int = 51,
    priority: int = 255,
    adv: int = 100,
    addresses: tuple[str, ...] = ("2001:db8::100",),
    chksum: int | None = None,
    keep: int | None = None,
) -> bytes:
    """The VRRP octets of one IPv6 advert (no IP header), broken as asked."""
    from scapy.layers.inet6 import IPv6
    from scapy.layers.vrrp import VRRPv3

    packet = IPv6(src=src, dst=dst, hlim=255, nh=IPPROTO_VRRP) / VRRPv3(
        version=version,
        vrid=vrid,
        priority=priority,
        adv=adv,
        addrlist=list(addresses),
        ipcount=len(addresses),
        chksum=chksum,
    )
    body = bytes(packet)[40:]
    return body if keep is None else body[:keep]


def sender_argv6(python: str, path: Path, count: int, duration: float) -> list[str]:
    return [
        python,
        str(SENDER),
        "--file",
        str(path),
        "--count",
        str(count),
        "--duration",
        str(duration),
    ]


def write_lines(path: Path, datagrams: list[tuple[int, bytes]]) -> Path:
    path.write_text("".join(f"{hops} {d.hex()}\n" for hops, d in datagrams))
    return path


def link_local(dev: str) -> str:
    """The first link-local address of `dev` (/proc/net/if_inet6, scope 0x20)."""
    for line in Path("/proc/net/if_inet6").read_text().splitlines():
        addr, _index, _plen, scope, _flags, name = line.split()
        if name == dev and int(scope, 16) == 0x20:
            return socket.inet_ntop(socket.AF_INET6, bytes.fromhex(addr))
    raise SystemExit(f"no link-local address on {dev}")


def _send(args: argparse.Namespace) -> dict[str, Any]:
    lines = [line.split() for line in Path(args.file).read_text().splitlines() if line.strip()]
    datagrams = [
        (
            bytes.fromhex(hexdata),
            [(socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT, struct.pack("=i", int(hops)))],
        )
        for hops, hexdata in lines
    ]
    ifindex = socket.if_nametoindex(args.dev)
    sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_VRRP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, args.dev.encode() + b"\x00")
    sock.bind((link_local(args.dev), 0, 0, ifindex))
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
    target = (args.dst, 0, 0, ifindex)
    sent = errors = 0
    started = time.monotonic()
    deadline = started + args.duration
    n = len(datagrams)
    for i in range(args.count):  # bounded by count, and by time below
        payload, ancillary = datagrams[i % n]
        try:
            sock.sendmsg([payload], ancillary, 0, target)
            sent += 1
        except OSError as exc:  # ENOBUFS when the device queue is full
            if exc.errno not in (errno.ENOBUFS, errno.EAGAIN):
                raise
            errors += 1
        if i % 256 == 255 and time.monotonic() >= deadline:
            break
    elapsed = time.monotonic() - started
    sock.close()
    return {"sent": sent, "errors": errors, "elapsed": elapsed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="send forged IPv6 VRRP datagrams")
    parser.add_argument("--file", required=True, help="'HOPS HEX' lines")
    parser.add_argument("--dst", default=GROUP6)
    parser.add_argument("--dev", default="eth1")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10.0)
    print(json.dumps(_send(parser.parse_args(argv))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
