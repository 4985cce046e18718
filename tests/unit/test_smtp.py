"""E-mail alerts (adapters/smtp.py) against a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from lvsha.adapters.smtp import Mailer, group_alert, vrrp_alert
from lvsha.config import parse_config
from lvsha.config.model import SmtpConfig
from lvsha.errors import ConfigError

aiosmtpd = pytest.importorskip("aiosmtpd.controller")


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def server() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = aiosmtpd.Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def settings(port: int) -> SmtpConfig:
    return SmtpConfig("127.0.0.1", port, "lvsha@example.net", ("ops@example.net",), 5.0)


def wait(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.02)


def test_an_alert_reaches_the_server_with_keepalived_s_subject(server: tuple[Inbox, int]) -> None:
    inbox, port = server
    mailer = Mailer(settings(port))
    assert mailer.submit(*vrrp_alert("lvs1", "VI_1", "MASTER"))
    assert mailer.submit(*group_alert("lvs1", "G1", "FAULT"))
    mailer.close(5.0)
    assert mailer.status()["sent"] == 2
    first, second = inbox.messages
    assert first.mail_from == "lvsha@example.net" and first.rcpt_tos == ["ops@example.net"]
    text = first.content.decode()
    assert "Subject: [lvs1] VRRP Instance VI_1 - Entering MASTER state" in text
    assert "=> VRRP Instance is now owning VRRP VIPs <=" in text
    assert "Subject: [lvs1] VRRP Group G1 - Entering FAULT state" in second.content.decode()


def test_delivery_is_retried_until_the_server_answers() -> None:
    inbox, port = Inbox(), free_port()
    mailer = Mailer(settings(port), retries=5, retry_delay=0.2)
    mailer.submit("s", "b")  # nothing listens yet: connection refused
    wait(lambda: mailer.retried >= 1)
    controller = aiosmtpd.Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        wait(lambda: mailer.sent == 1)
        assert mailer.failed == 0 and len(inbox.messages) == 1
    finally:
        mailer.close(1.0)
        controller.stop()


def test_a_server_that_never_answers_costs_a_bounded_number_of_attempts() -> None:
    mailer = Mailer(settings(free_port()), retries=2, retry_delay=0.05)
    mailer.submit("s", "b")
    wait(lambda: mailer.failed == 1)
    assert (mailer.retried, mailer.sent) == (2, 0)
    mailer.close(1.0)


def test_the_queue_is_bounded_and_submit_never_blocks() -> None:
    release = threading.Event()

    class Stuck:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            release.wait(10)

        def __enter__(self) -> Stuck:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def send_message(self, msg: Any) -> None:
            pass

    mailer = Mailer(settings(25), queue_limit=3, smtp=Stuck)  # type: ignore[arg-type]
    start = time.monotonic()
    results = [mailer.submit(f"s{i}", "b") for i in range(10)]
    assert time.monotonic() - start < 1.0
    # one taken by the worker (stuck in "connect"), three queued, the rest dropped
    assert results.count(False) == mailer.dropped >= 6
    release.set()
    mailer.close(5.0)
    assert mailer.sent == results.count(True)


def test_smtp_config_and_its_problems() -> None:
    base = '[daemon.smtp]\nserver = "192.0.2.25:2525"\nfrom = "lvsha@example.net"\n'
    cfg = parse_config(base + 'to = ["a@example.net", "b@example.net"]\n')
    assert cfg.daemon.smtp == SmtpConfig(
        "192.0.2.25", 2525, "lvsha@example.net", ("a@example.net", "b@example.net"), 30.0
    )
    assert parse_config(base.replace(":2525", "") + 'to = ["a@example.net"]\n').daemon.smtp
    with pytest.raises(ConfigError) as info:
        parse_config(
            base.replace("lvsha@example.net", "nobody") + "to = []\ntimeout = 0\nport = 1\n"
        )
    assert info.value.problems == [
        "daemon.smtp.from: 'nobody' is not a mail address (local@domain)",
        "daemon.smtp.to: must list at least one address",
        "daemon.smtp.timeout: must be 1..300, not 0.0",
        "daemon.smtp.port: unknown key",
    ]


def test_smtp_alert_without_a_server_is_a_warning() -> None:
    toml = (
        '[vrrp.VI_1]\ninterface = "eth1"\nvirtual_router_id = 51\n'
        'virtual_ipaddress = ["192.0.2.100/32"]\nsmtp_alert = true\n'
    )
    assert parse_config(toml).warnings == (
        "vrrp.VI_1.smtp_alert: no [daemon.smtp] is configured; no mail is sent",
    )
