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
