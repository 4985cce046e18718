"""LazyIpvs hands what the daemon set before the first pass to the IpvsSync it builds."""

from __future__ import annotations

import asyncio

from lvsha.runtime.lazy_ipvs import LazyIpvs


def test_on_verified_reaches_the_ipvs_sync_built_later_and_follows_changes() -> None:
    lazy = LazyIpvs()
    first, second = (lambda: None), (lambda: None)
    lazy.on_verified = first
    assert not lazy.opened
    real = lazy._sync()  # the first pass builds it
    try:
        assert real.on_verified is first
        lazy.on_verified = second
        assert real.on_verified is second and lazy.on_verified is second
    finally:
        asyncio.run(real.close([]))
