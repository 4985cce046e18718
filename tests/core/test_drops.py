"""Drop reasons: one name each (lvsha.core.drops), and adverts from our own address.

RFC 3768 section 7.1 lists the receive checks; `header_drops` and
`advert_drops` hold them once, for the state machine and `lvsha doctor`.
An advert whose source is our primary address is either ours reflected by
the link (`own_advert`) or another router configured with our address
(`address_conflict`, kept in `VirtualRouter.address_conflict` for `lvsha
status`): section 6.4.3 cannot order two routers with one address, so
they would both stay master. The clock is walked by hand.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path
from unittest.mock import ANY

from lvsha.core import drops
from lvsha.core.packet import (
    AUTH_NONE,
    AUTH_PASS,
    IPPROTO_VRRP,
    VRRP_MULTICAST_GROUP,
    Advertisement,
    IPv4Header,
    pad_password,
)
from lvsha.core.vrrp import (
    Discarded,
    MasterSeen,
    RouterParams,
    SendAdvert,
    State,
    VirtualRouter,
    advert_drops,
    header_drops,
)

ROOT = Path(__file__).resolve().parents[2]
VIP, VIP2 = "192.0.2.100", "192.0.2.101"
ME, PEER = "192.0.2.10", "192.0.2.20"
GRR02 = pad_password(b"grr02")
PARAMS = RouterParams("VI_1", 51, 100, 1, (VIP,), auth_type=AUTH_PASS, auth_data=GRR02)
MDI = 3 * 1 + (256 - 100) / 256


def advert(priority: int = 100, **fields: object) -> Advertisement:
    values: dict[str, object] = {
        "vrid": 51,
        "priority": priority,
        "adver_int": 1,
        "addresses": (VIP,),
        "auth_type": AUTH_PASS,
        "auth_data": GRR02,
    }
    values.update(fields)
    return Advertisement(**values)  # type: ignore[arg-type]


def deliver(router: VirtualRouter, now: float, source: str, adv: Advertisement) -> list[object]:
    wire = adv.encode()
    header = IPv4Header(source, VRRP_MULTICAST_GROUP, 255, IPPROTO_VRRP, 20, 20 + len(wire))
    return list(router.receive(now, header, wire))


def master(now: float = 0.0) -> tuple[VirtualRouter, float]:
    router = VirtualRouter(PARAMS, ME)
    router.startup(now)
    took_over = router.deadline
    assert took_over is not None
    router.timer_fired(took_over)
    assert router.state is State.MASTER
    return router, took_over


# ------------------------------------------------------ our own address --


def test_our_advert_reflected_by_the_link_is_own_advert() -> None:
    router, t0 = master()
    sent = [a for a in router.timer_fired(t0 + 1.0) if isinstance(a, SendAdvert)]
    assert [a.advert.priority for a in sent] == [100]
    assert deliver(router, t0 + 1.002, ME, sent[0].advert) == [Discarded(drops.OWN_ADVERT, ANY)]
    assert router.address_conflict is None
    assert router.stats.discarded == Counter({drops.OWN_ADVERT: 1})
    assert router.state is State.MASTER


def test_an_advert_from_our_address_while_backup_is_an_address_conflict() -> None:
    # We are backup and have never sent anything: that router is not us.
    router = VirtualRouter(PARAMS, ME)
    router.startup(0.0)
    assert deliver(router, 1.0, ME, advert(100)) == [Discarded(drops.ADDRESS_CONFLICT, ANY)]
    assert router.address_conflict == MasterSeen(ME, 100, 1.0)
    assert router.stats.discarded == Counter({drops.ADDRESS_CONFLICT: 1})
    # Dropped: it neither names a master nor holds back the takeover.
    assert router.master_seen is None and router.master_down_at == MDI
    assert router.stats.adverts_received == 0


def test_a_master_keeps_its_role_against_a_router_with_its_address() -> None:
    router, t0 = master()
    # A higher priority would demote us if accepted; a lower one would be a rival.
    for i, priority in enumerate((150, 50)):
        now = t0 + 0.5 + i
        actions = deliver(router, now, ME, advert(priority))
        assert actions == [Discarded(drops.ADDRESS_CONFLICT, ANY)]
        assert router.address_conflict == MasterSeen(ME, priority, now)
    assert router.state is State.MASTER
    assert router.rival is None and router.stats.rival_adverts == 0


def test_an_echo_is_recognised_for_one_interval_only() -> None:
    router, t0 = master()
    # A higher-priority peer takes over; our last advert (priority 100) echoes late.
    deliver(router, t0 + 0.2, PEER, advert(200))
    assert router.state is State.BACKUP
    assert deliver(router, t0 + 0.3, ME, advert(100)) == [Discarded(drops.OWN_ADVERT, ANY)]
    assert router.address_conflict is None
    # Two intervals after we last sent it, priority 100 from our address is someone else.
    assert deliver(router, t0 + 2.0, ME, advert(100)) == [Discarded(drops.ADDRESS_CONFLICT, ANY)]
    assert router.address_conflict == MasterSeen(ME, 100, t0 + 2.0)


def test_the_priority_zero_of_a_master_leaving_echoes_as_own_advert() -> None:
    router, t0 = master()
    router.fault_changed(t0 + 0.5, "eth1", True)  # sends priority 0, goes FAULT
    assert router.state is State.FAULT
    assert deliver(router, t0 + 0.51, ME, advert(0)) == [Discarded(drops.OWN_ADVERT, ANY)]


# ------------------------------------------------ the checks, held once --


def test_header_drops_lists_each_failed_check_in_order() -> None:
    unicast = RouterParams("VI_1", 51, 100, 1, (VIP,), unicast_peers=(PEER,))
    assert [e.reason for e in header_drops(unicast, "192.0.2.30", 64)] == [
        drops.NOT_PEER,
        drops.TTL,
    ]
    assert list(header_drops(unicast, PEER, 255)) == []


def test_advert_drops_lists_every_disagreement_for_doctor() -> None:
    bad = advert(100, auth_data=pad_password(b"other"), adver_int=2, addresses=(VIP2,))
    assert [e.reason for e in advert_drops(PARAMS, bad)] == [
        drops.AUTH_PASSWORD,
        drops.ADVERT_INTERVAL,
        drops.ADDRESS_LIST,
    ]
    # A type mismatch is one problem, not also a wrong password.
    assert [e.reason for e in advert_drops(PARAMS, advert(100, auth_type=AUTH_NONE))] == [
        drops.AUTH_TYPE
    ]
    # Section 7.1: another address list is accepted from the address owner.
    assert list(advert_drops(PARAMS, advert(255, addresses=(VIP2,)))) == []
    owner = RouterParams("VI_1", 51, 255, 1, (VIP,), auth_type=AUTH_PASS, auth_data=GRR02)
    assert [e.reason for e in advert_drops(owner, advert(100, vrid=52))] == [
        drops.OTHER_VRID,
        drops.ADDRESS_OWNER,
    ]


def test_the_router_drops_on_the_first_check_advert_drops_names() -> None:
    router = VirtualRouter(PARAMS, ME)
    router.startup(0.0)
    for i, bad in enumerate(
        [
            advert(150, vrid=52, adver_int=3),
            advert(150, auth_type=AUTH_NONE, auth_data=b""),
            advert(150, adver_int=2, addresses=()),
            advert(150, addresses=(VIP, VIP2)),
        ]
    ):
        first = next(advert_drops(PARAMS, bad)).reason
        assert deliver(router, 0.1 * (i + 1), PEER, bad) == [Discarded(first, ANY)]


# ------------------------------------------------- one name, documented --


def test_every_reason_is_documented_in_status_md_and_nothing_else() -> None:
    text = (ROOT / "docs" / "status.md").read_text()
    section = text.split("## Drop reasons", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `([a-z_]+)` \|", section, re.M)
    assert sorted(documented) == sorted(drops.ALL)
    assert len(set(drops.ALL)) == len(drops.ALL)


def test_no_module_spells_a_drop_reason_as_a_literal() -> None:
    """`PacketError("...")` and `Discarded("...")` take a name from lvsha.core.drops."""
    found = []
    for path in sorted((ROOT / "lvsha").rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("PacketError", "Discarded")
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found.append(f"{rel}:{node.lineno}")
    assert found == []
