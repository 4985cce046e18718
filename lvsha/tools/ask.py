"""Ask the running daemon over its control socket; failures become exit codes.

Used by `lvsha status`, `reload`, `drain` and `undrain`: 69 (EX_UNAVAILABLE) when no
daemon answers, 77 (EX_NOPERM) when the socket or the daemon refuses us.
"""

from __future__ import annotations

import sys
from typing import Any

from lvsha.exits import EX_FAILURE, EX_NOPERM, EX_UNAVAILABLE


def ask(socket_path: str, command: str, **args: Any) -> dict[str, Any] | int:
    """The daemon's answer, or the exit code after saying on stderr what went wrong."""
    from lvsha.adapters.control_client import request

    try:
        answer = request(socket_path, command, **args)
    except PermissionError:
        print(f"lvsha: permission denied on {socket_path} (run as root)", file=sys.stderr)
        return EX_NOPERM
    except (FileNotFoundError, ConnectionRefusedError):
        print(f"lvsha: no daemon answers on {socket_path} (is lvsha running?)", file=sys.stderr)
        return EX_UNAVAILABLE
    except (OSError, ValueError) as exc:
        print(f"lvsha: {socket_path}: {exc}", file=sys.stderr)
        return EX_UNAVAILABLE
    if "error" in answer:
        print(f"lvsha: {answer['error']}", file=sys.stderr)
        return EX_NOPERM if "permission" in str(answer["error"]) else EX_FAILURE
    return answer
