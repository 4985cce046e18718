"""The VRRP state machine's parameters (`RouterParams`) from one instance's configuration.

One mapping, shared by the daemon and `lvsha doctor`, so that doctor judges
adverts with exactly the parameters the running router uses. It lives
outside `lvsha/core` (which never imports `lvsha.config`) and outside the
runtime (which the offline tools must not import).
"""

from __future__ import annotations

from lvsha.config.model import VrrpInstanceConfig
from lvsha.core.packet import AUTH_DATA_LEN, AUTH_NONE, AUTH_PASS, pad_password
from lvsha.core.vrrp import RouterParams


def router_params(cfg: VrrpInstanceConfig) -> RouterParams:
    """The pure machine's parameters from one instance's configuration."""
    auth_type = AUTH_PASS if cfg.auth_type == "pass" else AUTH_NONE
    auth_data = (
        pad_password(cfg.auth_password.encode())
        if auth_type == AUTH_PASS
        else b"\0" * AUTH_DATA_LEN
    )
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
        version=cfg.version,
        accept_mode=cfg.accept_mode,
    )
