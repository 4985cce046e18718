"""The stdlib rtnetlink client (lvsha/adapters/rtnetlink.py) against a real kernel.

Each test runs the client on an event loop in a thread moved into a lab
namespace with setns(2), so every socket it opens (netlink, the ioctl behind
if_nametoindex) lives there; the namespace is changed from outside with `ip`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import os
import socket
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest
from lab import Host, Lab, sh

from lvsha.adapters import rtnetlink
from lvsha.adapters.addresses import AddressEvent, LinkEvent, Netlink, NetlinkEvent, watch
from lvsha.config import VirtualAddress
from lvsha.errors import KernelError

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
VIP = VirtualAddress("192.0.2.100", 32, "eth1")


def in_netns(ns: str, scenario: Callable[[], Coroutine[Any, Any, T]], timeout: float = 60) -> T:
    """Run `scenario()` on a fresh event loop in a thread inside namespace `ns`."""
    result: list[T] = []
    failure: list[BaseException] = []

    def body() -> None:
        try:
            fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
            finally:
                os.close(fd)
            result.append(asyncio.run(asyncio.wait_for(scenario(), timeout)))
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=body, name=f"netns-{ns}", daemon=True)
    thread.start()
    thread.join(timeout + 5)
    if thread.is_alive():
        raise TimeoutError(f"scenario in {ns} still running after {timeout} s")
    if failure:
        raise failure[0]
    return result[0]


async def until(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def ip(host: Host, *argv: str) -> None:
    """`ip` in the host's namespace, from a worker thread: the loop keeps running."""
    sh("ip", "-n", host.ns, *argv)


def test_adding_twice_and_removing_twice_are_not_errors(lab: Lab) -> None:
    host = lab.host("d1", "192.0.2.11")

    async def scenario() -> list[Any]:
        nl = Netlink()
        await nl.open()
        try:
            await nl.add(VIP)
            await nl.add(VIP)  # EEXIST: already as wanted
            held = await nl.present({VIP})
            primary = await nl.primary_address("eth1", {VIP.address})
            await nl.remove(VIP)
            await nl.remove(VIP)  # EADDRNOTAVAIL: already as wanted
            gone = await nl.present({VIP})
            # the raw errnos, as the kernel sent them
            rtnl = rtnetlink.Rtnl()
            index = socket.if_nametoindex("eth1")
            codes = []
            for kind in (rtnetlink.RTM_DELADDR, rtnetlink.RTM_NEWADDR, rtnetlink.RTM_NEWADDR):
                try:
                    await rtnl.request(
                        lambda seq, k=kind: rtnetlink.encode_address(
                            k, seq, index, VIP.address, 32
                        ),
                        "test",
                    )
                    codes.append(0)
                except rtnetlink.NetlinkError as exc:
                    codes.append(exc.errno)
            rtnl.close()
            return [held, primary, gone, codes]
        finally:
            nl.close()

    held, primary, gone, codes = in_netns(host.ns, scenario)
    assert held == {VIP} and gone == set()
    assert primary == "192.0.2.11"  # the VIP excluded
    assert codes == [errno.EADDRNOTAVAIL, 0, errno.EEXIST]
    assert host.addresses() == {"192.0.2.11", "192.0.2.100"}


def test_a_link_that_vanishes_is_down_and_its_vips_cannot_be_added(lab: Lab) -> None:
    host = lab.host("d1", "192.0.2.11")
    host.run("ip", "link", "add", "eth9", "type", "veth", "peer", "name", "eth8")
    host.run("ip", "link", "set", "eth9", "up")
    host.run("ip", "link", "set", "eth8", "up")

    async def scenario() -> list[Any]:
        nl = Netlink()
        await nl.open()
        try:
            before = await nl.link_up("eth9")
            index = socket.if_nametoindex("eth9")
            await asyncio.to_thread(ip, host, "link", "del", "eth9")
            after = await nl.link_up("eth9")
            try:  # the index of a link that is gone: ENODEV from RTM_GETLINK
                await nl._rtnl.request(lambda seq: rtnetlink.encode_get_link(seq, index), "t")
                code = 0
            except rtnetlink.NetlinkError as exc:
                code = exc.errno or 0
            try:
                await nl.add(VirtualAddress("192.0.2.101", 32, "eth9"))
                add_error = ""
            except KernelError as exc:
                add_error = str(exc)
            still = await nl.link_up("eth1")  # the socket is still good
            return [before, after, code, add_error, still]
        finally:
            nl.close()

    before, after, code, add_error, still = in_netns(host.ns, scenario)
    assert (before, after, code, still) == (True, False, errno.ENODEV, True)
    assert "cannot add 192.0.2.101/32 on eth9" in add_error


def test_the_monitor_sees_a_vip_deleted_by_hand_and_a_link_going_down(lab: Lab) -> None:
    host = lab.host("d1", "192.0.2.11")
    host.run("ip", "addr", "add", "192.0.2.100/32", "dev", "eth1")

    async def scenario() -> list[NetlinkEvent]:
        events: list[NetlinkEvent] = []
        task = asyncio.create_task(watch(events.append))
        await asyncio.sleep(0.2)  # subscribed
        await asyncio.to_thread(ip, host, "addr", "del", "192.0.2.100/32", "dev", "eth1")
        await until(lambda: AddressEvent("eth1", VIP.address, False) in events)
        await asyncio.to_thread(ip, host, "link", "set", "eth1", "down")
        await until(lambda: LinkEvent("eth1", False) in events)
        await asyncio.to_thread(ip, host, "link", "set", "eth1", "up")
        await until(lambda: LinkEvent("eth1", True) in events)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return events

    events = in_netns(host.ns, scenario)
    down = events.index(LinkEvent("eth1", False))
    assert events.index(AddressEvent("eth1", VIP.address, False)) < down
    assert events.index(LinkEvent("eth1", True)) > down


def test_a_dump_of_500_addresses_spans_several_messages(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = lab.host("d1", "192.0.2.11")
    batch = lab.workdir / "addresses.batch"
    batch.write_text(
        "".join(f"addr add 198.51.100.{i % 250 + 1}/32 dev eth1\n" for i in range(250))
        + "".join(f"addr add 203.0.113.{i % 250 + 1}/32 dev eth1\n" for i in range(250))
    )
    host.run("ip", "-batch", str(batch))
    datagrams = []
    parse = rtnetlink.parse

    def counting(data: bytes) -> Any:
        datagrams.append(len(data))
        return parse(data)

    monkeypatch.setattr(rtnetlink, "parse", counting)

    async def scenario() -> list[tuple[str, str, int, int]]:
        nl = Netlink()
        await nl.open()
        try:
            return await nl._addresses()
        finally:
            nl.close()

    found = in_netns(host.ns, scenario)
    on_eth1 = {address for ifname, address, _, _ in found if ifname == "eth1"}
    assert len(on_eth1) == 501
    assert on_eth1 == host.addresses()
    assert len(datagrams) >= 3  # several parts, then NLMSG_DONE


VIP6 = VirtualAddress("2001:db8::100", 64, "eth1")


def test_ipv6_vips_and_the_link_local_go_through_the_same_client(lab: Lab) -> None:
    """One rtnetlink path for both families: IPv6 VIPs nodad, the link-local, their events."""
    host = lab.host("d1", "192.0.2.11")

    async def scenario() -> list[Any]:
        nl = Netlink()
        await nl.open()
        events: list[NetlinkEvent] = []
        task = asyncio.create_task(watch(events.append))
        try:
            async with asyncio.timeout(10):  # the link-local leaves DAD
                while (link_local := await nl.link_local("eth1")) is None:
                    await asyncio.sleep(0.05)
            await nl.add(VIP6)
            await nl.add(VIP6)  # EEXIST: already as wanted
            held = await nl.present({VIP6, VIP})
            flags = [a.flags for a in await nl._dump(socket.AF_INET6) if a.address == VIP6.address]
            await until(lambda: AddressEvent("eth1", VIP6.address, True) in events)
            await asyncio.to_thread(
                ip, host, "-6", "addr", "del", "2001:db8::100/64", "dev", "eth1"
            )
            await until(lambda: AddressEvent("eth1", VIP6.address, False) in events)
            await nl.add(VIP6)
            await nl.remove(VIP6)
            await nl.remove(VIP6)  # EADDRNOTAVAIL: already as wanted
            gone = await nl.present({VIP6})
            return [link_local, held, flags, gone]
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            nl.close()

    link_local, held, flags, gone = in_netns(host.ns, scenario)
    assert link_local is not None and link_local.startswith("fe80::")
    assert held == {VIP6} and gone == set()
    assert len(flags) == 1 and flags[0] & rtnetlink.IFA_F_NODAD
    assert not flags[0] & rtnetlink.IFA_F_TENTATIVE  # usable at once: no DAD
