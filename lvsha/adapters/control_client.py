"""The client side of the control socket: blocking stdlib only, for a fast `lvsha status`."""

from __future__ import annotations

import json
import socket
from typing import Any


def request(path: str, command: str, timeout: float = 5.0, **args: Any) -> dict[str, Any]:
    """Send one request to the daemon and return its answer (blocking)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(json.dumps({"command": command, **args}).encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    answer = json.loads(b"".join(chunks) or b"{}")
    if not isinstance(answer, dict):
        raise ValueError("the daemon's answer is not a JSON object")
    return answer
