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
class DaemonConfig:
    name: str
    control_socket: str = DEFAULT_CONTROL_SOCKET
    control_group: str | None = None
    metrics: str | None = None
    log_format: str = "auto"
    vrrp_version: int = 2  # the default of every instance's `version`


@dataclass(frozen=True, slots=True)
class VirtualAddress:
    """A VIP as the master adds it: address/prefixlen on `device`."""

    address: str
    prefixlen: int
    device: str


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
    track_interface: tuple[str, ...] = ()
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
    version: int = 2  # 3: RFC 5798 (IPv6, centisecond advert_int)
    accept_mode: bool = True


@dataclass(frozen=True, slots=True)
class TcpCheck:
    connect_timeout: float = 3.0
    connect_ip: str | None = None
    connect_port: int | None = None


@dataclass(frozen=True, slots=True)
class HttpCheck:
    """`http_get` / `ssl_get`: a GET whose status (and body) must match."""

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


@dataclass(frozen=True, slots=True)
class Config:
    daemon: DaemonConfig
    vrrp: tuple[VrrpInstanceConfig, ...] = ()
    virtual_servers: tuple[VirtualServerConfig, ...] = ()
    warnings: tuple[str, ...] = field(default=(), compare=False)
