"""runtime/rs_events.py: real-server flips -> notify_up/notify_down and checker mail."""

from __future__ import annotations

from typing import Any

from lvsha.config import parse_config
from lvsha.core.desired import DestKey, service_key
from lvsha.runtime.rs_events import RealServerEvents

TOML = """
[[virtual_server]]
address = "192.0.2.100"
port = 80
smtp_alert = true
[[virtual_server.real_server]]
address = "198.51.100.10"
port = 80
tcp_check = {}
[[virtual_server.real_server]]
address = "198.51.100.11"
port = 80
tcp_check = {}
smtp_alert = false
notify_down = ["/bin/logger", "down"]
"""


class FakeMailer:
    def __init__(self) -> None:
        self.mail: list[tuple[str, str]] = []

    def submit(self, subject: str, body: str) -> bool:
        self.mail.append((subject, body))
        return True


def test_flips_run_hooks_and_mail_as_configured() -> None:
    servers = parse_config(TOML).virtual_servers
    key = service_key(servers[0])
    one, two = (key, DestKey("198.51.100.10", 80)), (key, DestKey("198.51.100.11", 80))
    hooks: list[Any] = []
    mailer = FakeMailer()
    events = RealServerEvents(hooks.extend, lambda: mailer, lambda: "lvs1")  # type: ignore[arg-type,return-value]
    events.changed(servers, {one: True, two: True})  # baseline
    assert (hooks, mailer.mail) == ([], [])
    events.changed(servers, {one: False, two: False})
    assert [r.argv for r in hooks] == [("/bin/logger", "down")]
    # the virtual server's smtp_alert reaches .10; .11 says false for itself
    assert mailer.mail == [
        ("[lvs1] Realserver [198.51.100.10]:80 - DOWN", "=> CHECK failed on service <=")
    ]
    events.changed(servers, {one: True, two: False})
    assert mailer.mail[-1][0] == "[lvs1] Realserver [198.51.100.10]:80 - UP"
    assert len(hooks) == 1


def test_a_change_named_by_service_looks_only_there_and_keeps_the_baseline() -> None:
    """The daemon names the services a batch touched: their flips count, others wait."""
    servers = parse_config(TOML + TOML.replace("192.0.2.100", "192.0.2.101")).virtual_servers
    k1, k2 = service_key(servers[0]), service_key(servers[1])
    one, other = (k1, DestKey("198.51.100.10", 80)), (k2, DestKey("198.51.100.10", 80))
    mailer = FakeMailer()
    events = RealServerEvents(lambda runs: None, lambda: mailer, lambda: "lvs1")  # type: ignore[arg-type,return-value]
    events.changed(servers, {})  # baseline: all healthy
    events.changed(servers, {one: False, other: False}, {k1})
    assert [m[0] for m in mailer.mail] == ["[lvs1] Realserver [198.51.100.10]:80 - DOWN"]
    events.changed(servers, {one: False, other: False}, {k2})  # now the other service's turn
    assert len(mailer.mail) == 2
    events.changed(servers, {one: False, other: False})  # a whole comparison: nothing new
    assert len(mailer.mail) == 2
    events.changed(servers, {other: False}, {k1})
    assert mailer.mail[-1][0] == "[lvs1] Realserver [198.51.100.10]:80 - UP"
