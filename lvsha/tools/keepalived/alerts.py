"""Translate keepalived's e-mail settings into `[daemon.smtp]` and `smtp_alert`.

global_defs: `notification_email { ADDR ... }`, `notification_email_from`,
`smtp_server ADDR [PORT]`, `smtp_connect_timeout`, `smtp_helo_name`, and
`smtp_alert` / `smtp_alert_vrrp` (the default of every instance and group).
keepalived sends nothing without `smtp_server` and a recipient; neither
does the translation write `[daemon.smtp]` then.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lvsha.config import limits
from lvsha.tools.keepalived.reader import Statement
from lvsha.tools.keepalived.values import Notes, Table, arg, flag_arg, float_arg, int_arg

MAIL_KEYWORDS = (
    "notification_email",
    "notification_email_from",
    "smtp_server",
    "smtp_connect_timeout",
    "smtp_helo_name",
    "smtp_alert",
    "smtp_alert_vrrp",
)


@dataclass
class MailDefs:
    to: list[str] = field(default_factory=list)
    sender: str | None = None
    server: str | None = None
    timeout: float | None = None
    helo: str | None = None
    alert: bool = False  # global smtp_alert / smtp_alert_vrrp


def global_mail(stmt: Statement, notes: Notes, defs: MailDefs) -> None:
    kw = stmt.keyword
    if kw == "notification_email":
        defs.to += [s.keyword for s in stmt.block or []]
    elif kw == "notification_email_from":
        defs.sender = arg(notes, stmt)
    elif kw == "smtp_server":
        host = arg(notes, stmt)
        if host is not None and len(stmt.words) > 2:
            port = int_arg(notes, stmt, 1, 65535, index=2)
            defs.server = None if port is None else f"{host}:{port}"
        else:
            defs.server = host
    elif kw == "smtp_connect_timeout":
        defs.timeout = float_arg(notes, stmt, *limits.SMTP_TIMEOUT)
    elif kw == "smtp_helo_name":
        defs.helo = arg(notes, stmt)
    elif kw in ("smtp_alert", "smtp_alert_vrrp"):
        defs.alert = flag_arg(notes, stmt) is True


def smtp_table(defs: MailDefs, notes: Notes) -> Table | None:
    """`[daemon.smtp]`, or None (listed) when keepalived would send nothing."""
    if defs.server is None:
        if defs.to or defs.sender:
            notes.skip("global_defs.notification_email", "no smtp_server: keepalived sends none")
        return None
    if not defs.to:
        notes.skip("global_defs.smtp_server", "no notification_email: keepalived sends none")
        return None
    out: Table = {
        "server": defs.server,
        "from": defs.sender or "keepalived@localhost",
        "to": defs.to,
    }
    if defs.sender is None:
        notes.warn("global_defs.notification_email_from", "absent: keepalived@localhost")
    if defs.timeout is not None:
        out["timeout"] = defs.timeout
    if defs.helo is not None:
        out["helo_name"] = defs.helo
    return out
