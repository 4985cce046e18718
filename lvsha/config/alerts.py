"""`[daemon.smtp]`: where e-mail alerts go (keepalived's smtp_server and notification_email).

`server` is HOST or HOST:PORT (25 when absent, as keepalived's
smtp_server); `from` and `to` are mailbox addresses; `timeout` bounds one
delivery attempt (keepalived's smtp_connect_timeout, 30 s by default).
"""

from __future__ import annotations

import re

from lvsha.config import limits, values
from lvsha.config._table import Table, between, shown
from lvsha.config.model import SmtpConfig

_MAILBOX = re.compile(r"[^@\s<>(),;:\"\[\]]+@[^@\s<>(),;:\"\[\]]+\Z")
_PORT = re.compile(r"[0-9]{1,5}\Z")


def mailbox(value: str) -> str | None:
    if (message := values.text(value)) is not None:
        return message
    if not _MAILBOX.match(value) or len(value) > limits.HOST_NAME_MAX:
        return f"{shown(value)} is not a mail address (local@domain)"
    return None


def smtp_config(daemon: Table) -> SmtpConfig | None:
    daemon.known.add("smtp")
    if "smtp" not in daemon.data:
        return None
    t = Table(daemon.data["smtp"], daemon.key("smtp"), daemon.problems)
    server = t.required("server", str, "", values.name)
    host, port = server, 25
    head, sep, tail = server.rpartition(":")
    if sep and _PORT.match(tail) and "]" not in tail:
        host, port = head.strip("[]"), int(tail)
        if not 1 <= port <= 65535:
            t.problem("server", f"port {port} is not 1..65535")
    if sep and not host:
        t.problem("server", f"{shown(server)} is not HOST[:PORT]")
    sender = t.required("from", str, "", mailbox)
    to = t.strings("to", mailbox)
    if "to" not in t.data:
        t.problem("to", "is required (at least one address)")
    elif not to and isinstance(t.data["to"], list) and not t.data["to"]:
        t.problem("to", "must list at least one address")
    cfg = SmtpConfig(
        host=host,
        port=port,
        sender=sender,
        to=to,
        timeout=t.get("timeout", float, 30.0, between(limits.SMTP_TIMEOUT)),
        helo_name=t.get("helo_name", str, None, values.name),  # type: ignore[arg-type]
    )
    t.finish()
    return cfg


def alert_warnings(smtp: SmtpConfig | None, alerting: list[str], warnings: list[str]) -> None:
    """`smtp_alert = true` with nowhere to send: a warning, as keepalived sends nothing."""
    if smtp is None:
        for path in alerting:
            warnings.append(f"{path}.smtp_alert: no [daemon.smtp] is configured; no mail is sent")
