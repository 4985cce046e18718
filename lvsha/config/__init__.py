"""The configuration: TOML text -> frozen dataclasses, every problem at once.

* `model`: what a valid configuration is (frozen dataclasses);
* `limits`: every bound and vocabulary, shared with the keepalived importer;
* `parse` (with `_table`, `values`, `services`, `cross`): TOML -> model,
  each problem as `key.path: message`.

The core never imports this package (it declares the attributes it reads as
Protocols); this package may import the core. Other modules import from
here; `__all__` is the public surface.
"""

from lvsha.config.limits import (
    FORWARDING,
    LOG_FORMATS,
    PASS_MAX_OCTETS,
    PROTOCOLS,
    SCHEDULERS,
)
from lvsha.config.model import (
    BgpConfig,
    BgpPeerConfig,
    Config,
    DaemonConfig,
    HttpCheck,
    MiscCheck,
    RealServerConfig,
    TcpCheck,
    VirtualAddress,
    VirtualServerConfig,
    VrrpInstanceConfig,
)
from lvsha.config.parse import load_config, parse_config

__all__ = [
    "FORWARDING",
    "LOG_FORMATS",
    "PASS_MAX_OCTETS",
    "PROTOCOLS",
    "SCHEDULERS",
    "BgpConfig",
    "BgpPeerConfig",
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
