"""ufw: `ufw status verbose` and /etc/ufw/before.rules, read for VRRP.

ufw has no rule for VRRP by default; its before.rules is where one goes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class UfwStatus:
    active: bool
    incoming: str  # allow deny reject
    outgoing: str
    vrrp_rules: tuple[str, ...]  # status lines that allow vrrp


def parse_ufw_status(text: str) -> UfwStatus:
    """`ufw status verbose` -> what matters for VRRP."""
    active = False
    incoming = outgoing = "allow"
    rules: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        low = line.lower()
        if low.startswith("status:"):
            active = low.split(":", 1)[1].strip() == "active"
        elif low.startswith("default:"):
            for part in low.split(":", 1)[1].split(","):
                words = part.replace("(", " ").replace(")", " ").split()
                if len(words) >= 2 and words[1] == "incoming":
                    incoming = words[0]
                elif len(words) >= 2 and words[1] == "outgoing":
                    outgoing = words[0]
        elif "vrrp" in low and "allow" in low:
            rules.append(line)
    return UfwStatus(active, incoming, outgoing, tuple(rules))


def ufw_before_rules_allow_vrrp(text: str) -> bool:
    """Whether /etc/ufw/before.rules accepts VRRP in ufw-before-input."""
    for raw in text.splitlines():
        words = raw.split()
        if (
            words[:2] == ["-A", "ufw-before-input"]
            and any(p in words for p in ("vrrp", "112"))
            and "ACCEPT" in words
        ):
            return True
    return False
