"""`lvsha drain` / `lvsha undrain`: withdraw this director's BGP routes, or offer them again.

The daemon writes (or removes) its drain file, `[bgp] drain_file`, and
decides at once; the file outlives a restart, so a drained director stays
drained until `lvsha undrain`. Automation may create or remove the file
itself: the daemon looks at it every 0.2 s. Exit 0 when done; 69 when no
daemon answers, 77 without the right to ask (docs/scale-out.md).
"""

from __future__ import annotations

from lvsha.exits import EX_OK
from lvsha.tools.ask import ask


def main(socket_path: str, command: str, reason: str | None = None) -> int:
    """Ask the daemon; print what it now announces."""
    args = {"reason": reason} if reason else {}
    answer = ask(socket_path, command, **args)
    if isinstance(answer, int):
        return answer
    prefixes = answer.get("bgp", {}).get("prefixes", [])
    print("drained" if answer.get("drained") else "undrained")
    for p in prefixes:
        state = "announced" if p.get("announced") else "withdrawn"
        print(f"  {p.get('prefix')}: {state} ({p.get('reason')})")
    return EX_OK
