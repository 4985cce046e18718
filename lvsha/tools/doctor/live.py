"""What the running daemon says, for the checks that depend on who is master.

`None` (or no states) when no daemon answers: the checks then judge
without it and say so.
"""

from __future__ import annotations

from typing import Any

from lvsha.adapters.control_client import request
from lvsha.config import Config


def daemon_status(config: Config) -> dict[str, Any] | None:
    """The running daemon's status document, or None when it does not answer."""
    try:
        return request(config.daemon.control_socket, "status", timeout=2.0)
    except (OSError, ValueError):
        return None


def daemon_states(config: Config) -> dict[str, str]:
    status = daemon_status(config) or {}
    return {
        str(i.get("name")): str(i.get("state"))
        for i in status.get("instances", [])
        if isinstance(i, dict)
    }
