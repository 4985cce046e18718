"""The systemd tier: lvsha's Debian package under a real systemd (PID 1).

Each test module boots one container (tests/systemd/rig.py), installs the
package there with `apt install ./lvsha_VERSION_all.deb` and drives the unit.
The network inside: veth lv0 (192.0.2.1/24, the container's own namespace,
where the packaged lvsha.service runs) to lv1 (192.0.2.2/24) in the network
namespace `peer` (a second lvsha unit, or a capture of the adverts).

The host kernel may have no IPVS: the configurations hold VRRP only, except
where a test says otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sdbox import RUNNER, Container, booted, package


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.systemd)


@pytest.fixture(scope="session")
def deb() -> Path:
    """Skip where the machine cannot run the tier; else the package, built once."""
    if os.geteuid() != 0:
        pytest.skip("the systemd tier needs root (mounts, namespaces, systemd-nspawn)")
    if shutil.which("systemd-nspawn") is None:
        subprocess.run([str(RUNNER), "--setup-only"], capture_output=True, timeout=600, check=False)
    if shutil.which("systemd-nspawn") is None:
        pytest.skip("no systemd-nspawn, and apt-get install systemd-container failed")
    if not Path("/lib/systemd/systemd").exists():
        pytest.skip("no /lib/systemd/systemd on this machine")
    return package()


def install(box: Container, deb: Path) -> None:
    """Install the package as an operator does, with networking for the tests."""
    # a real Debian host has no policy-rc.d: let the maintainer scripts start units
    box.out("rm -f /usr/sbin/policy-rc.d")
    box.out("echo 'man-db man-db/auto-update boolean false' | debconf-set-selections")
    box.out(f"cd {deb.parent} && DEBIAN_FRONTEND=noninteractive apt-get install -y -q ./{deb.name}")
    box.out(
        "ip netns add peer && ip link add lv0 type veth peer name lv1 netns peer"
        " && ip addr add 192.0.2.1/24 dev lv0 && ip link set lv0 up"
        " && ip -n peer addr add 192.0.2.2/24 dev lv1 && ip -n peer link set lv1 up"
        " && ip -n peer link set lo up"
    )


@pytest.fixture(scope="module")
def box(deb: Path) -> Iterator[Container]:
    """A booted container with the package installed and the veth pair up."""
    with booted([deb.parent]) as container:
        install(container, deb)
        yield container
