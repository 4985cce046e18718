"""Why a received VRRP datagram was dropped: the counter keys of `lvsha status`.

One name per reason, used by the codec (`packet.py`), the state machine
(`vrrp.py`), the shell that dispatches datagrams to routers, and `lvsha
doctor`; docs/status.md lists them all (a test compares). The values are
the operator's contract (status JSON, `lvsha_vrrp_discarded_total{reason}`):
never rename one.
"""

from __future__ import annotations

from typing import Final

# The codec (RFC 3768 section 7.1, the checks that need no configuration).
IP_VERSION: Final = "ip_version"  # not an IPv4 datagram
LENGTH: Final = "length"  # shorter than its header or its address count says
VERSION: Final = "version"  # VRRP version is not the router's (2, or 3: RFC 5798)
TYPE: Final = "type"  # not an ADVERTISEMENT
CHECKSUM: Final = "checksum"  # the VRRP checksum does not verify

# The router (section 7.1 against its own configuration).
NOT_PEER: Final = "not_peer"  # unicast mode: the source is not a configured peer
TTL: Final = "ttl"  # IP TTL is not 255: the advert crossed a router
OTHER_VRID: Final = "other_vrid"  # handed an advert of another VRID than the router's own
ADDRESS_OWNER: Final = "address_owner"  # we are the address owner (priority 255)
AUTH_TYPE: Final = "auth_type"
AUTH_PASSWORD: Final = "auth_password"  # RFC 2338 section 7.1: the PASS password
ADVERT_INTERVAL: Final = "advert_interval"
ADDRESS_LIST: Final = "address_list"
OWN_ADVERT: Final = "own_advert"  # an advert we just sent came back (a loop on the link)
ADDRESS_CONFLICT: Final = "address_conflict"  # from our own address, not sent by us

# The shell, before any router sees the datagram.
UNKNOWN_VRID: Final = "vrid"  # no router on this interface has that VRID (key kept as `vrid`)
OVERFLOW: Final = "overflow"  # the kernel dropped datagrams from a full receive queue

ALL: Final = (
    TTL,
    VERSION,
    TYPE,
    LENGTH,
    CHECKSUM,
    UNKNOWN_VRID,
    OTHER_VRID,
    ADDRESS_OWNER,
    AUTH_TYPE,
    AUTH_PASSWORD,
    ADVERT_INTERVAL,
    ADDRESS_LIST,
    NOT_PEER,
    OWN_ADVERT,
    ADDRESS_CONFLICT,
    IP_VERSION,
    OVERFLOW,
)
