"""The configuration: TOML text -> frozen dataclasses, every problem at once.

Other modules import from here; `__all__` is the package's public surface.
"""

from lvsha.config.parse import (
    FORWARDING,
    LOG_FORMATS,
    PASS_MAX_OCTETS,
    PROTOCOLS,
    SCHEDULERS,
    Config,
    DaemonConfig,
    HttpCheck,
    MiscCheck,
    RealServerConfig,
    TcpCheck,
    VirtualAddress,
    VirtualServerConfig,
    VrrpInstanceConfig,
    load_config,
    parse_config,
)

__all__ = [
    "FORWARDING",
    "LOG_FORMATS",
    "PASS_MAX_OCTETS",
    "PROTOCOLS",
    "SCHEDULERS",
    "Config",
    "DaemonConfig",
    "HttpCheck",
    "MiscCheck",
    "RealServerConfig",
    "TcpCheck",
    "VirtualAddress",
    "VirtualServerConfig",
    "VrrpInstanceConfig",
    "load_config",
    "parse_config",
]
