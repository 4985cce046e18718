"""Ask a link who has an address, for the doctor: ARP (arp.py) and IPv6 NS (nd.py).

A packet socket on the interface sends the probe frames in rounds over the
wait and collects the MACs that answer; bounded by MAX_FRAMES received, so a
flooded link cannot keep it busy.
"""

from __future__ import annotations

import contextlib
import select
import socket
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from lvsha.tools.doctor.results import MAX_FRAMES


def link_probe(
    interface: str,
    ethertype: int,
    targets: Iterable[str],
    frame_for: Callable[[str, str], bytes],
    parse: Callable[[bytes], tuple[str, str] | None],
    wait: float,
    rounds: int,
) -> dict[str, set[str]]:
    """Send `frame_for(our MAC, target)` `rounds` times over `wait` seconds; the answers.

    Shared by the ARP probe and the IPv6 neighbour probe (nd.py): bounded
    (MAX_FRAMES), and our own frames are not taken for an answer.
    """
    wanted = list(dict.fromkeys(targets))
    answers: dict[str, set[str]] = {t: set() for t in wanted}
    if not wanted:
        return answers
    mac = Path(f"/sys/class/net/{interface}/address").read_text().strip()
    frames = [frame_for(mac, t) for t in wanted]
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ethertype))
    try:
        sock.bind((interface, ethertype))
        sock.setblocking(False)
        start = time.monotonic()
        deadline = start + max(0.0, wait)
        sends = [start + wait * i / rounds for i in range(rounds)]
        for _ in range(MAX_FRAMES):
            now = time.monotonic()
            while sends and sends[0] <= now:
                sends.pop(0)
                for frame in frames:
                    sock.send(frame)
            if now >= deadline:
                break
            timeout = min(deadline, sends[0] if sends else deadline) - now
            ready, _, _ = select.select([sock], [], [], max(0.0, timeout))
            if ready:
                with contextlib.suppress(BlockingIOError):
                    reply = parse(sock.recv(2048))
                    if reply is not None and reply[0] in answers and reply[1] != mac:
                        answers[reply[0]].add(reply[1])
    finally:
        sock.close()
    return answers
