"""`lvsha reload`: ask the daemon to validate and apply its configuration file, as SIGHUP.

Exit 0 when reloaded; 1 when the new configuration is in place but an
instance could not finish its set-up (it is in FAULT and retried); 78
(EX_CONFIG) with each problem when the daemon keeps its running
configuration.
"""

from __future__ import annotations

import sys

from lvsha.exits import EX_CONFIG, EX_FAILURE, EX_OK
from lvsha.tools.ask import ask


def main(socket_path: str) -> int:
    """Print `reloaded`, or each problem on stderr."""
    answer = ask(socket_path, "reload")
    if isinstance(answer, int):
        return answer
    for problem in answer.get("errors", []):
        print(f"lvsha: {problem}", file=sys.stderr)
    if answer.get("reloaded"):
        print("reloaded")
        return EX_FAILURE if answer.get("errors") else EX_OK
    return EX_CONFIG
