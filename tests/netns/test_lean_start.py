"""Start, VRRP first (issue 13), on a real kernel.

The early VRRP sockets of `lvsha run` (runtime/early.py) open before the
daemon is loaded and must queue every advert from then on: d1 listens, d2
sends a multicast advert (a raw socket, as a router would), and d1's
listener hands it over with its opening time. And a priority-150 director
restarted after a kill -9 drops the VIP it left behind long before it
preempts, although its stale-VIP pass now runs after VRRP has started.
"""

from __future__ import annotations

import ctypes
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from lab import Lab, instance_toml, wait_for

from lvsha.core.packet import AUTH_PASS, Advertisement, pad_password
from lvsha.core.packet_v3 import AdvertisementV3, decode_advertisement_v3
from lvsha.core.vrrp import master_down_interval
from lvsha.runtime.early import EarlyListener

T = TypeVar("T")
CLONE_NEWNET = 0x40000000


def in_netns(ns: str, body: Callable[[], T], timeout: float = 30) -> T:
    """Run `body()` in a thread moved into namespace `ns` (setns(2))."""
    out: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
            try:
                if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
            finally:
                os.close(fd)
            out.append(body())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if failure:
        raise failure[0]
    if not out:
        raise TimeoutError(f"nothing from {ns} within {timeout} s")
    return out[0]


def send_advert(priority: int) -> None:
    advert = Advertisement(51, priority, 1, ("192.0.2.100",), AUTH_PASS, pad_password(b"grr02"))
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, 112) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth1\0")
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
        sock.sendto(advert.encode(), ("224.0.0.18", 0))


def test_adverts_sent_before_the_daemon_loads_are_queued_and_handed_over(lab: Lab) -> None:
    d1, d2 = lab.host("d1", "192.0.2.11"), lab.host("d2", "192.0.2.12")
    config = Path(lab.workdir / "d1.toml")
    config.write_text(instance_toml(100) + instance_toml(100).replace("VI_1", "VI_2"))
    before = time.monotonic()
    listener = in_netns(d1.ns, lambda: EarlyListener.open(str(config)))
    assert listener.interfaces == ["eth1"]  # one socket for the two instances of eth1
    sock = listener._sockets[("eth1", 4)][0]
    sent = 0
    for _ in range(50):  # bounded: a fresh veth may drop the first frames
        in_netns(d2.ns, lambda: send_advert(200))
        sent += 1
        readable, _, _ = select.select([sock], [], [], 0.1)
        if readable:
            break
    assert readable, "no advert reached the early socket"
    time.sleep(0.05)  # any copy still on its way
    peek = in_netns(d1.ns, lambda: listener.take("eth1"))
    assert peek is not None
    opened_at, queued = peek
    assert before <= opened_at <= time.monotonic()
    assert 1 <= len(queued) <= sent
    datagram = queued[0]
    assert datagram[9] == 112 and socket.inet_ntoa(datagram[12:16]) == "192.0.2.12"
    assert datagram[8] == 255  # TTL, as sent
    assert listener.take("eth1") is None  # taken once, then closed
    listener.close()


IPV6_CONFIG = """[vrrp.VI_6]
interface = "eth1"
version = 3
virtual_router_id = 51
priority = 100
advert_int = 0.05
virtual_ipaddress = ["2001:db8::100/64"]
"""


def send_advert6() -> str:
    """A VRRPv3 advert from eth1's link-local address to ff02::12, hop limit 255; its source."""
    with socket.socket(socket.AF_INET6, socket.SOCK_RAW, 112) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth1\0")
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
        sock.setsockopt(
            socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, socket.if_nametoindex("eth1")
        )
        sock.connect(("ff02::12", 0, 0, socket.if_nametoindex("eth1")))
        source = sock.getsockname()[0].split("%", 1)[0]
        advert = AdvertisementV3(51, 200, 5, ("2001:db8::100",))
        sock.send(advert.encode_for(source, "ff02::12"))
        return str(source)


def test_an_ipv6_instance_gets_an_early_ipv6_socket_with_the_header_fields(lab: Lab) -> None:
    """RFC 5798 7.1 checks the hop limit and destination: the queue keeps them."""
    d1, d2 = lab.host("d1", "192.0.2.11"), lab.host("d2", "192.0.2.12")
    for host in (d1, d2):
        wait_for(host.link_local_ready, 10, interval=0.1)
    config = Path(lab.workdir / "d1.toml")
    config.write_text(IPV6_CONFIG)
    listener = in_netns(d1.ns, lambda: EarlyListener.open(str(config)))
    assert (listener.interfaces, listener.interfaces6) == ([], ["eth1"])
    sock = listener._sockets[("eth1", 6)][0]
    source = ""
    for _ in range(50):  # bounded: a fresh veth may drop the first frames
        source = in_netns(d2.ns, send_advert6)
        readable, _, _ = select.select([sock], [], [], 0.1)
        if readable:
            break
    assert readable, "no advert reached the early IPv6 socket"
    taken = in_netns(d1.ns, lambda: listener.take6("eth1"))
    assert taken is not None
    _, queued = taken
    got_source, destination, hops, payload = queued[0]
    assert (got_source, destination, hops) == (source, "ff02::12", 255)
    advert = decode_advertisement_v3(payload, got_source, destination, 6)
    assert (advert.vrid, advert.priority, advert.addresses) == (51, 200, ("2001:db8::100",))
    assert listener.take6("eth1") is None
    listener.close()


def test_a_file_it_cannot_use_opens_nothing(lab: Lab, tmp_path: Path) -> None:
    host = lab.host("d1", "192.0.2.11")
    bad = tmp_path / "bad.toml"
    bad.write_text("[vrrp.VI_1\ninterface = ")
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('[vrrp.VI_1]\ninterface = "nosuch0"\n[vrrp.VI_2]\ninterface = 7\n')
    for path in (bad, wrong, tmp_path / "missing.toml"):
        listener = in_netns(host.ns, lambda p=path: EarlyListener.open(str(p)))
        assert listener.interfaces == []


def test_a_restarted_master_drops_its_stale_vip_long_before_it_preempts(lab: Lab) -> None:
    d1, d2 = lab.pair(instance_toml(150), instance_toml(100), master_down_interval(1, 150) + 3)
    wait_for(d1.host.has_vip, 3)
    d1.kill()  # the VIP stays behind on d1
    d2.wait_state("MASTER", master_down_interval(1, 100) + 2)
    wait_for(d2.host.has_vip, 2)
    assert d1.host.has_vip()  # two holders until d1 comes back
    started = time.monotonic()
    d1 = lab.start(d1.host, instance_toml(150), wait=False)
    wait_for(lambda: not d1.host.has_vip(), timeout=3, interval=0.005)
    dropped = time.monotonic() - started
    assert dropped < master_down_interval(1, 150) - 1  # far from its first chance to preempt
    assert d1.state() in (None, "BACKUP")  # None: the control socket is not up yet
    d1.wait_state("MASTER", master_down_interval(1, 150) + 3)
    wait_for(lambda: d1.host.has_vip() and not d2.host.has_vip(), 3)
    assert "stale vip" in d1.log_text()
