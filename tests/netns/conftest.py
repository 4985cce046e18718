"""Namespace tier: skipped only where the machine really cannot make namespaces."""

import pytest
from lab import netns_available

REASON = netns_available()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/netns" in str(item.fspath):
            item.add_marker(pytest.mark.netns)
            if REASON is not None:
                item.add_marker(pytest.mark.skip(reason=f"namespace tier: {REASON}"))
