"""The pure virtual router's parameters from one instance's configuration.

Shared by the daemon and `lvsha doctor`, so that both judge adverts with
the same RouterParams (RFC 3768 section 7.1).
"""

from __future__ import annotations

from lvsha.config import VrrpInstanceConfig
from lvsha.core.packet import AUTH_NONE, AUTH_PASS, pad_password
from lvsha.core.vrrp import RouterParams


def router_params(cfg: VrrpInstanceConfig) -> RouterParams:
    """The pure machine's parameters from one instance's configuration."""
    auth_type = AUTH_PASS if cfg.auth_type == "pass" else AUTH_NONE
    auth_data = pad_password(cfg.auth_password.encode()) if auth_type == AUTH_PASS else b"\0" * 8
    return RouterParams(
        name=cfg.name,
        vrid=cfg.virtual_router_id,
        priority=cfg.priority,
        adver_int=cfg.advert_int,
        addresses=tuple(v.address for v in cfg.virtual_ipaddress),
        preempt=cfg.preempt,
        preempt_delay=cfg.preempt_delay,
        auth_type=auth_type,
        auth_data=auth_data,
        unicast_peers=cfg.unicast_peers,
        garp_master_delay=cfg.garp_master_delay,
        garp_master_repeat=cfg.garp_master_repeat,
        garp_master_refresh=cfg.garp_master_refresh,
        garp_master_refresh_repeat=cfg.garp_master_refresh_repeat,
    )
