"""sd_notify(3) over $NOTIFY_SOCKET, in a few lines of stdlib.

READY=1 once sockets are bound and the first reconcile is done, RELOADING=1
and STOPPING=1 around a reload and a stop, WATCHDOG=1 from the event loop so
that a stuck loop is restarted by systemd (WatchdogSec=).
"""

from __future__ import annotations

import os
import socket


class Notifier:
    """Sends state lines to systemd; does nothing when not run by systemd."""

    def __init__(self, address: str | None = None) -> None:
        self.address = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
        self.sent = 0
        self.errors = 0

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def notify(self, *lines: str) -> bool:
        if not self.address:
            return False
        target = self.address
        if target.startswith("@"):  # abstract namespace socket
            target = "\0" + target[1:]
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto("\n".join(lines).encode(), target)
        except OSError:
            self.errors += 1
            return False
        self.sent += 1
        return True


def watchdog_interval() -> float | None:
    """Half of WatchdogSec (sd_watchdog_enabled(3)), or None when it is off."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 1e6 / 2
    except ValueError:
        return None
