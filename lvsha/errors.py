"""The one exception tree of lvsha.

Local misuse (a bug, a bad config) and remote bad input (a malformed packet)
are different errors: the first stops a start or a reload, the second is
dropped, counted and never raised past an adapter.
"""

from __future__ import annotations


class LvshaError(Exception):
    """Base of every error lvsha raises on purpose."""


class ConfigError(LvshaError):
    """The configuration has one or more problems, each `key.path: message`."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class PacketError(LvshaError):
    """Untrusted bytes from the network could not be accepted.

    `reason` is a short stable word used as the counter key in `lvsha status`.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class KernelError(LvshaError):
    """A kernel facility (netlink, a socket) refused or is missing."""
