"""Every bound and vocabulary the configuration checks, as named constants.

The parser checks these and the keepalived importer reuses them, so the two
cannot drift apart: a value the importer writes is a value the parser takes.
A `Bounds` / `IntBounds` unpacks as `low, high` (`_int(notes, stmt, *PRIORITY)`).
Where a bound comes from a protocol or the kernel, the comment says which.
"""

from __future__ import annotations

from typing import NamedTuple


class Bounds(NamedTuple):
    """An inclusive range `low..high` of numbers (seconds and the like)."""

    low: float
    high: float

    def __contains__(self, value: object) -> bool:
        return _within(value, self.low, self.high)


class IntBounds(NamedTuple):
    """An inclusive range `low..high` of integers (octets, ports, counts)."""

    low: int
    high: int

    def __contains__(self, value: object) -> bool:
        return _within(value, self.low, self.high)


def _within(value: object, low: float, high: float) -> bool:
    """Numbers only (not bools, not strings); any size of integer compares exactly."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return low <= value <= high


# ------------------------------------------------------------ vocabulary --

LOG_FORMATS = ("auto", "console", "keyvalue", "json", "journald")
AUTH_TYPES = ("none", "pass")
# IPVS schedulers shipped with Linux 6.1 (net/netfilter/ipvs/ip_vs_*.c).
SCHEDULERS = frozenset(
    ["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf", "twos"]
)
FORWARDING = ("dr", "nat", "tun")
PROTOCOLS = ("tcp", "udp", "sctp")
INITIAL_STATES = ("up", "down")

# ---------------------------------------------------------- VRRP (RFC 3768) --

PASS_MAX_OCTETS = 8  # section 5.3.10: the Authentication Data field is 8 octets
VIRTUAL_ROUTER_ID = IntBounds(1, 255)  # section 5.3.3
PRIORITY = IntBounds(1, 255)  # section 5.3.4: 0 is "stopping", sent, never configured
ADVERT_INT = IntBounds(1, 255)  # section 5.3.7: one octet of seconds
VRRP_VERSIONS = (2, 3)  # RFC 3768, RFC 5798
ADVERT_INT_V3 = Bounds(0.01, 40.95)  # RFC 5798 section 5.2.7: 12 bits of centiseconds
MAX_VIPS = 255  # section 5.3.5: Count IP Addrs is one octet
MAX_EXCLUDED_VIPS = 4096  # virtual_ipaddress_excluded: not in adverts, so no octet limit
PREEMPT_DELAY = Bounds(0, 1000)
GARP_MASTER_DELAY = Bounds(0, 3600)
GARP_REPEAT = IntBounds(1, 100)  # garp_master_repeat, garp_master_refresh_repeat
GARP_INTERVAL = Bounds(0, 10)
GARP_MASTER_REFRESH = Bounds(0, 86400)

# ---------------------------------------------------------------- Linux --

IFNAMSIZ = 16  # include/uapi/linux/if.h: names are at most 15 bytes + NUL
# lib/ctype.c marks these bytes as space; dev_valid_name() refuses them.
KERNEL_SPACE_BYTES = frozenset(b"\t\n\v\f\r \xa0")

# ----------------------------------------------------------------- IPVS --

PORT = IntBounds(0, 65535)  # 0 only where a port is inherited or unused (fwmark)
CHECK_PORT = IntBounds(1, 65535)  # a probe needs a real port
FWMARK = IntBounds(1, 2**32 - 1)  # skb->mark is 32 bits; 0 means "no mark"
WEIGHT = IntBounds(0, 65535)  # ipvsadm -w; 0 = quiesced
PERSISTENCE_TIMEOUT = IntBounds(0, 2**31 - 1)  # seconds; 0 = not persistent
QUORUM = IntBounds(0, 2**32 - 1)  # quorum and hysteresis, keepalived's unsigned
DELAY_LOOP = Bounds(0.1, 86400)

# ---------------------------------------------------------- health checks --

CONNECT_TIMEOUT = Bounds(0.01, 3600)  # connect_timeout, misc_check timeout
RETRY = IntBounds(0, 100)
DELAY_BEFORE_RETRY = Bounds(0, 3600)
RISE_FALL = IntBounds(1, 100)
WARMUP = Bounds(0, 86400)
HTTP_STATUS = IntBounds(100, 599)
HOST_NAME_MAX = 255  # RFC 1035 section 2.3.4 (names), also the SNI limit
REGEX_MAX = 4096  # characters; enough for any body match, small enough to compile

# ------------------------------------------- tracking (keepalived's ranges) --

TRACK_WEIGHT = IntBounds(-253, 253)  # vrrp_script / track_script / track_interface weight
FILE_WEIGHT = IntBounds(-254, 254)  # track_file weight (vrrp_parser.c)
SCRIPT_INTERVAL = Bounds(0.1, 86400)  # seconds; keepalived takes whole seconds, lvsha fractions
SCRIPT_TIMEOUT = Bounds(0.1, 3600)
MAX_TRACKED = 64  # objects of one kind tracked by one instance
SMTP_TIMEOUT = Bounds(1, 300)  # seconds for one delivery attempt (keepalived: 30)

# ------------------------------------------------------- BGP (RFC 4271) --

SPEAKERS = ("exabgp", "bird")  # existing speakers lvsha drives (docs/scale-out.md)
ANNOUNCE = ("bgp",)  # `announce` of a virtual server
ASN = IntBounds(1, 2**32 - 1)  # RFC 6793: four-octet AS numbers; 0 is reserved (RFC 7607)
HOLD_TIME = IntBounds(3, 65535)  # RFC 4271 section 4.2: 0 (no keepalives) or at least 3
COMMUNITY_PART = IntBounds(0, 65535)  # RFC 1997: ASN:VALUE, two octets each
MED = IntBounds(0, 2**32 - 1)  # RFC 4271 section 4.3: MULTI_EXIT_DISC is four octets
MULTIHOP_TTL = IntBounds(1, 255)  # the IP TTL of an eBGP multihop session
BFD_INTERVAL = Bounds(0.01, 10)  # seconds; RFC 5880 section 4.1 counts microseconds
BFD_MULTIPLIER = IntBounds(1, 255)  # RFC 5880 section 4.1: Detect Mult is one octet
LIVENESS = Bounds(0.1, 60)  # seconds lvsha may be silent before the speaker withdraws
REANNOUNCE_DELAY = Bounds(0, 3600)  # seconds of quorum before a withdrawn prefix returns
MAX_BGP_PEERS = 64
MAX_COMMUNITIES = 32

SYNC_ID = IntBounds(0, 255)  # IPVS_DAEMON_ATTR_SYNC_ID: one octet in the sync message header
