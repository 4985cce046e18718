"""E-mail alerts through the standard library's SMTP client, never on the VRRP path.

keepalived mails state transitions (`smtp_alert`) from its own process;
lvsha hands each message to a bounded queue and returns at once: one
worker thread delivers them in order with `smtplib`, each attempt bounded
by the configured timeout, retried RETRIES times with a growing pause. A
full queue drops the new message and counts it; a message that fails every
attempt is counted and logged. The subjects and bodies are keepalived's
(smtp.c, vrrp_notify.c), so that mail filters written for it keep working.
"""

from __future__ import annotations

import contextlib
import email.utils
import queue
import smtplib
import threading
from collections.abc import Callable
from email.message import EmailMessage

from lvsha import logs
from lvsha.config.model import SmtpConfig

log = logs.get("lvsha.smtp")

QUEUE_LIMIT = 100
RETRIES = 3
RETRY_DELAY = 2.0  # seconds before the first retry; doubled after each


def vrrp_alert(router_id: str, instance: str, state: str) -> tuple[str, str]:
    """keepalived's subject and body for an instance transition."""
    body = {
        "MASTER": "=> VRRP Instance is now owning VRRP VIPs <=",
        "BACKUP": "=> VRRP Instance is nolonger owning VRRP VIPs <=",
        "FAULT": "=> VRRP Instance is nolonger owning VRRP VIPs <=",
    }.get(state, f"=> VRRP Instance is now in {state} state <=")
    return f"[{router_id}] VRRP Instance {instance} - Entering {state} state", body


def group_alert(router_id: str, group: str, state: str) -> tuple[str, str]:
    """keepalived's subject and body for a sync group transition."""
    body = f"=> All VRRP group instances are now in {state} state <="
    return f"[{router_id}] VRRP Group {group} - Entering {state} state", body


class Mailer:
    """A bounded queue of alerts and the thread that delivers them."""

    def __init__(
        self,
        cfg: SmtpConfig,
        queue_limit: int = QUEUE_LIMIT,
        retries: int = RETRIES,
        retry_delay: float = RETRY_DELAY,
        smtp: Callable[..., smtplib.SMTP] = smtplib.SMTP,
    ) -> None:
        self.cfg = cfg
        self.retries = retries
        self.retry_delay = retry_delay
        self._smtp = smtp
        self._queue: queue.Queue[EmailMessage | None] = queue.Queue(queue_limit)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self.retried = 0

    def submit(self, subject: str, body: str) -> bool:
        """Queue one alert; never blocks. False when the queue is full (counted)."""
        msg = EmailMessage()
        msg["From"] = self.cfg.sender
        msg["To"] = ", ".join(self.cfg.to)
        msg["Subject"] = subject
        msg["Date"] = email.utils.formatdate(localtime=True)
        msg["Message-ID"] = email.utils.make_msgid(domain=self.cfg.helo_name)
        msg.set_content(body + "\n")
        try:
            self._queue.put_nowait(msg)
        except queue.Full:
            self.dropped += 1
            log.error("mail queue full; alert dropped", subject=subject)
            return False
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="smtp", daemon=True)
            self._thread.start()
        return True

    def close(self, timeout: float) -> None:
        """Deliver what is queued for at most `timeout` seconds, then stop retrying."""
        if self._thread is None:
            return
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(timeout)
        self._stop.set()
        self._thread.join(1.0)

    def status(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "failed": self.failed,
            "dropped": self.dropped,
            "retried": self.retried,
            "queued": self._queue.qsize(),
        }

    def _work(self) -> None:
        while True:
            msg = self._queue.get()
            if msg is None:
                return
            self._deliver(msg)

    def _deliver(self, msg: EmailMessage) -> None:
        delay = self.retry_delay
        for attempt in range(self.retries + 1):
            try:
                with self._smtp(
                    self.cfg.host,
                    self.cfg.port,
                    timeout=self.cfg.timeout,
                    local_hostname=self.cfg.helo_name,
                ) as client:
                    client.send_message(msg)
            except (OSError, smtplib.SMTPException) as exc:
                if attempt == self.retries or self._stop.is_set():
                    self.failed += 1
                    log.error("alert not delivered", subject=msg["Subject"], error=str(exc))
                    return
                self.retried += 1
                if self._stop.wait(delay):
                    self.failed += 1
                    return
                delay *= 2
            else:
                self.sent += 1
                return
