"""The IPVS adapter on a kernel without IPVS: one clear error, not a traceback."""

from __future__ import annotations

import asyncio
import os

import pytest

from lvsha.adapters.ipvs import MODULE_MISSING, Ipvs
from lvsha.errors import KernelError

HAS_IPVS = os.path.exists("/proc/net/ip_vs") or os.path.isdir("/sys/module/ip_vs")


@pytest.mark.skipif(HAS_IPVS, reason="this kernel has IPVS: the missing-module path cannot run")
def test_missing_ip_vs_module_is_one_clear_kernel_error() -> None:
    async def attempt() -> None:
        async with Ipvs() as ipvs:
            await ipvs.dump()

    with pytest.raises(KernelError) as info:
        asyncio.run(attempt())
    assert str(info.value) == MODULE_MISSING
    assert "modprobe ip_vs" in str(info.value)
    assert info.value.__cause__ is None  # no pyroute2 traceback chained onto it
