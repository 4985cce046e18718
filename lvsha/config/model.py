"""What a valid configuration is: frozen dataclasses, one per TOML table.

Only `parse` builds these, and only from a file that passed every check, so
the runtime never re-validates. The core does not import them: it declares
the attributes it reads as Protocols (lvsha/core/desired.py, health.py), and
these classes satisfy them structurally.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lvsha.paths import DEFAULT_CONTROL_SOCKET


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """`[daemon.smtp]`: the relay e-mail alerts go through."""

    host: str
    port: int
    sender: str
    to: tuple[str, ...]
    timeout: float = 30.0
    helo_name: str | None = None


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    name: str
    control_socket: str = DEFAULT_CONTROL_SOCKET
    control_group: str | None = None
    metrics: str | None = None
    log_format: str = "auto"
    smtp: SmtpConfig | None = None
    vrrp_version: int = 2  # the default of every instance's `version`


@dataclass(frozen=True, slots=True)
class VirtualAddress:
    """A VIP as the master adds it: address/prefixlen on `device`."""

    address: str
    prefixlen: int
    device: str
    # how the kernel shows it; not part of its identity (a relabelled VIP is the same VIP)
    label: str | None = field(default=None, compare=False)
    broadcast: str | None = field(default=None, compare=False)  # an address, or "+"


@dataclass(frozen=True, slots=True)
class TrackRef:
    """One tracked script, interface or file of an instance, with its weight.

    `weight` None: the script's own weight (track_script) or 0 (the rest).
    """

    name: str  # script name, interface name or file path
    weight: int | None = None


@dataclass(frozen=True, slots=True)
class VrrpScriptConfig:
    """`[vrrp_script.NAME]`: a command run every `interval`, argv without a shell."""

    name: str
    script: tuple[str, ...]
    interval: float = 1.0
    timeout: float | None = None  # None: the interval, as keepalived
    weight: int = 0
    rise: int = 1
    fall: int = 1
    user: str | None = None  # None: nobody when lvsha runs as root
    group: str | None = None
    init_fail: bool = False


@dataclass(frozen=True, slots=True)
class SyncGroupConfig:
    """`[vrrp_sync_group.NAME]`: instances that fail over together."""

    name: str
    group: tuple[str, ...]
    notify: tuple[str, ...] = ()
    notify_master: tuple[str, ...] = ()
    notify_backup: tuple[str, ...] = ()
    notify_fault: tuple[str, ...] = ()
    smtp_alert: bool = False


@dataclass(frozen=True, slots=True)
class VrrpInstanceConfig:
    name: str
    interface: str
    virtual_router_id: int
    priority: int
    advert_int: float  # whole seconds with version 2
    virtual_ipaddress: tuple[VirtualAddress, ...]
    preempt: bool = True
    preempt_delay: float = 0.0
    auth_type: str = "none"
    auth_password: str = ""
    unicast_peers: tuple[str, ...] = ()
    unicast_src_ip: str | None = None
    track_interface: tuple[str, ...] = ()  # weight 0: FAULT while down
    track_interface_weights: tuple[TrackRef, ...] = ()  # weight != 0
    track_script: tuple[TrackRef, ...] = ()
    track_file: tuple[TrackRef, ...] = ()
    sync_daemon_interface: str | None = None
    notify: tuple[str, ...] = ()
    notify_master: tuple[str, ...] = ()
    notify_backup: tuple[str, ...] = ()
    notify_fault: tuple[str, ...] = ()
    garp_master_delay: float = 5.0
    garp_master_repeat: int = 5
    garp_interval: float = 0.0
    garp_master_refresh: float = 0.0
    garp_master_refresh_repeat: int = 1
    smtp_alert: bool = False
    # held with the VIPs while master, never sent in adverts (keepalived's excluded VIPs)
    virtual_ipaddress_excluded: tuple[VirtualAddress, ...] = ()

    @property
    def all_vips(self) -> tuple[VirtualAddress, ...]:
        """Every address the master holds: the advertised VIPs, then the excluded ones."""
        return self.virtual_ipaddress + self.virtual_ipaddress_excluded

    version: int = 2  # 3: RFC 5798 (IPv6, centisecond advert_int)
    accept_mode: bool = True


@dataclass(frozen=True, slots=True)
class TcpCheck:
    connect_timeout: float = 3.0
    connect_ip: str | None = None
    connect_port: int | None = None


@dataclass(frozen=True, slots=True)
class HttpUrl:
    """One URL of an HTTP check, with its own expectations (keepalived's `url` block)."""

    path: str = "/"
    status: tuple[int, ...] = (200,)
    regex: str | None = None
    digest: str | None = None


@dataclass(frozen=True, slots=True)
class HttpCheck:
    """`http_get` / `ssl_get`: a GET whose status (and body) must match.

    `path`, `status`, `regex`, `digest` are the first URL; `more_urls` the
    others: all must pass, as keepalived's HTTP_GET with several `url`s.
    """

    tls: bool = False
    path: str = "/"
    status: tuple[int, ...] = (200,)
    regex: str | None = None
    digest: str | None = None
    host: str | None = None
    sni: str | None = None
    verify_certificate: bool = False
    connect_timeout: float = 3.0
    connect_ip: str | None = None
    connect_port: int | None = None
    more_urls: tuple[HttpUrl, ...] = ()

    @property
    def urls(self) -> tuple[HttpUrl, ...]:
        return (HttpUrl(self.path, self.status, self.regex, self.digest), *self.more_urls)


@dataclass(frozen=True, slots=True)
class MiscCheck:
    """`misc_check`: a command run without a shell; exit status 0 = up."""

    argv: tuple[str, ...]
    timeout: float | None = None  # None: the service's delay_loop, as keepalived


@dataclass(frozen=True, slots=True)
class RealServerConfig:
    address: str
    port: int
    weight: int = 1
    tcp_check: TcpCheck | None = None
    http_get: HttpCheck | None = None
    ssl_get: HttpCheck | None = None
    misc_check: MiscCheck | None = None
    retry: int | None = None  # None: keepalived's default for the check type
    delay_before_retry: float | None = None
    rise: int = 1
    fall: int = 1
    warmup: float | None = None  # None: up to delay_loop, as keepalived
    initial_state: str = "up"
    notify_up: tuple[str, ...] = ()  # run (argv) when the check passes again
    notify_down: tuple[str, ...] = ()  # run when it fails
    smtp_alert: bool | None = None  # None: the virtual server's

    @property
    def check(self) -> TcpCheck | HttpCheck | MiscCheck | None:
        """The one configured check, if any."""
        return self.tcp_check or self.http_get or self.ssl_get or self.misc_check


@dataclass(frozen=True, slots=True)
class VirtualServerConfig:
    address: str | None
    port: int
    protocol: str = "tcp"
    fwmark: int | None = None
    scheduler: str = "wlc"
    scheduler_flags: tuple[str, ...] = ()
    forwarding: str = "dr"
    persistence_timeout: int = 0
    persistence_netmask: str = "255.255.255.255"
    delay_loop: float = 60.0
    real_servers: tuple[RealServerConfig, ...] = ()
    quorum: int = 1
    hysteresis: int = 0
    inhibit_on_failure: bool = False
    sorry_server: RealServerConfig | None = None
    ipvs_cleanup_on_stop: bool = False
    smtp_alert: bool = False  # mail real-server up/down (keepalived's checker alerts)
    announce: str | None = None  # "bgp": announced over BGP while healthy (docs/scale-out.md)


@dataclass(frozen=True, slots=True)
class BgpPeerConfig:
    """`[[bgp.peer]]`: one BGP neighbour (RFC 4271); None: the `[bgp]` value."""

    address: str
    peer_as: int
    local_address: str | None = None  # None: router_id for an IPv4 peer
    hold_time: int | None = None
    bfd: bool | None = None
    multihop: int | None = None  # eBGP multihop TTL; None: directly connected
    passive: bool = False


@dataclass(frozen=True, slots=True)
class BgpConfig:
    """`[bgp]`: the VIPs of `announce = "bgp"` services, spoken by an existing speaker.

    lvsha owns the decision (core/announce.py); the speaker (ExaBGP or BIRD,
    run by lvsha as a child) only speaks.
    """

    local_as: int
    router_id: str
    peers: tuple[BgpPeerConfig, ...]
    speaker: str = "exabgp"  # or "bird"
    speaker_path: str | None = None  # the exabgp / bird binary; None: found on PATH
    hold_time: int = 3  # RFC 4271 section 4.2: 0 or at least 3
    bfd: bool = False  # RFC 5880 on every peer; speaker "bird" only
    bfd_interval: float = 0.1  # seconds between BFD packets, both ways
    bfd_multiplier: int = 3
    communities: tuple[tuple[int, int], ...] = ()  # RFC 1997, "ASN:VALUE" in TOML
    med: int | None = None  # MULTI_EXIT_DISC (RFC 4271 section 5.1.4)
    next_hop: str | None = None  # None: self
    drain_file: str = "/var/lib/lvsha/drain"  # while it exists, nothing is announced
    state_dir: str = "/run/lvsha/bgp"  # the speaker's generated config, sockets, pid file
    liveness: float = 1.0  # the speaker withdraws when lvsha is silent this long
    reannounce_delay: float = 1.0  # quorum held this long before a withdrawn prefix returns
    # IPVS connection sync among the N directors: each runs a master and a backup daemon
    sync_daemon_interface: str | None = None
    sync_daemon_id: int = 0  # the syncid every director of the group uses (0-255)


@dataclass(frozen=True, slots=True)
class Config:
    daemon: DaemonConfig
    vrrp: tuple[VrrpInstanceConfig, ...] = ()
    virtual_servers: tuple[VirtualServerConfig, ...] = ()
    vrrp_scripts: tuple[VrrpScriptConfig, ...] = ()
    sync_groups: tuple[SyncGroupConfig, ...] = ()
    bgp: BgpConfig | None = None
    warnings: tuple[str, ...] = field(default=(), compare=False)
