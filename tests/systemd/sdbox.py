"""Drive a throw-away container whose PID 1 is systemd (scripts/run-under-systemd).

The container boots from this machine's own root file system (copy on write),
so what bootstrap installed with apt is there; it has its own network
namespace with only `lo`. Tests enter it with nsenter, as the rig itself
does, and act as an operator would: apt, systemctl, journalctl, ip, lvsha.
Everything in it (packages, /etc, veths, namespaces) vanishes at poweroff.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "scripts" / "run-under-systemd"
BUILD_DEB = ROOT / "scripts" / "build-deb"
VIP = "192.0.2.100"
PEER_SOCKET = "/run/lvsha-peer/lvsha.sock"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# what goes into the package; tests/ and bench/ do not
PACKAGE_INPUTS = (
    "lvsha/",
    "packaging/",
    "conf/",
    "docs/",
    "scripts/",
    "README.md",
    "pyproject.toml",
)


def source_hash() -> str:
    """sha256 over the files the .deb is built from, as a clean clone has them."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.split(b"\0")
    digest = hashlib.sha256()
    for name in sorted(f.decode() for f in files if f):
        path = ROOT / name
        if name.startswith(PACKAGE_INPUTS) and path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def package() -> Path:
    """The .deb for this source: $LVSHA_DEB, or built once per source hash and cached."""
    if given := os.environ.get("LVSHA_DEB"):
        return Path(given).resolve()
    out = ROOT / "dist" / "systemd-tier" / source_hash()
    debs = sorted(out.glob("lvsha_*_all.deb"))
    if not debs:
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        build = subprocess.run(
            [str(BUILD_DEB), "--out", str(tmp), "--no-lintian"],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert build.returncode == 0, f"scripts/build-deb failed:\n{build.stderr[-3000:]}"
        tmp.rename(out)
        for stale in out.parent.iterdir():  # packages of older sources
            if stale != out:
                shutil.rmtree(stale, ignore_errors=True)
        debs = sorted(out.glob("lvsha_*_all.deb"))
    assert len(debs) == 1, debs
    return debs[0]


class Container:
    """A booted container; `sh` runs a bash script inside it as root."""

    def __init__(self, leader: int, workdir: Path) -> None:
        self.leader = leader
        self.workdir = workdir

    def sh(self, script: str, *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        argv = ["nsenter", "-t", str(self.leader), "-a", "-r", "-w"]
        argv += ["env", "-i", f"PATH={PATH}", "LANG=C.UTF-8", "bash", "-c", script]
        # a session of its own: a stray `kill 0` inside cannot reach pytest
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            start_new_session=True,
        )

    def ok(self, script: str) -> bool:
        return self.sh(script).returncode == 0

    def out(self, script: str, *, timeout: float = 120) -> str:
        """stdout of a script that must succeed."""
        res = self.sh(script, timeout=timeout)
        assert res.returncode == 0, f"{script!r} -> {res.returncode}\n{res.stdout}\n{res.stderr}"
        return res.stdout.strip()

    def prop(self, name: str, unit: str = "lvsha") -> str:
        return self.out(f"systemctl show -P {name} {unit}")

    def wait(self, script: str, timeout: float, interval: float = 0.05) -> float | None:
        """Poll until `script` succeeds: seconds it took, or None after `timeout`."""
        t0 = time.monotonic()
        while True:
            if self.ok(script):
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                return None
            time.sleep(interval)

    def write(self, path: str, text: str) -> None:
        self.out(f"cat > {shlex.quote(path)} <<'LVSHA_EOF'\n{text}LVSHA_EOF")

    def journal(self, unit: str = "lvsha") -> str:
        return self.out(f"journalctl -u {unit} --no-pager -o cat")


@contextlib.contextmanager
def booted(rodirs: list[Path]) -> Iterator[Container]:
    """Boot a container (about a second), yield it, power it off however the test ends."""
    workdir = Path(tempfile.mkdtemp(prefix="lvsha-systemd-"))
    pid_file = workdir / "leader"
    argv = [str(RUNNER), "--pid-file", str(pid_file), "--journal", str(workdir / "journal.txt")]
    for d in rodirs:
        argv += ["--rodir", str(d)]
    log = (workdir / "rig.log").open("w")
    # the command waits for its stdin to close: the container lives as long as the test
    proc = subprocess.Popen(
        [*argv, "read -r _"],
        stdin=subprocess.PIPE,
        stdout=log,
        stderr=log,
        cwd="/",
        start_new_session=True,
    )
    try:
        t0 = time.monotonic()
        while not pid_file.exists():
            assert proc.poll() is None, (
                f"the container did not boot: {(workdir / 'rig.log').read_text()}"
            )
            assert time.monotonic() - t0 < 120, "the container did not boot in 120 s"
            time.sleep(0.05)
        yield Container(int(pid_file.read_text()), workdir)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.terminate()
            proc.wait(timeout=60)
        log.close()
        if os.environ.get("LVSHA_SYSTEMD_KEEP"):
            print(f"kept {workdir} (journal.txt, rig.log)")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def director_config(
    name: str,
    interface: str,
    peer: str,
    priority: int,
    *,
    control_socket: str = "/run/lvsha/lvsha.sock",
    extra: str = "",
) -> str:
    """One VRRP instance, unicast to the other side, VIP 192.0.2.100/32."""
    return f"""[daemon]
name = "{name}"
control_socket = "{control_socket}"

[vrrp.VI_1]
interface = "{interface}"
virtual_router_id = 51
priority = {priority}
advert_int = 1
authentication = {{ type = "pass", password = "grr02" }}
virtual_ipaddress = ["{VIP}/32"]
unicast_peers = ["{peer}"]
{extra}"""


def vip_on(box: Container, dev: str = "lv0", netns: str = "") -> bool:
    ip = f"ip -n {netns}" if netns else "ip"
    return box.ok(f"{ip} -o -4 addr show dev {dev} | grep -q ' {VIP}/32 '")


def status(box: Container, socket: str = "/run/lvsha/lvsha.sock") -> dict[str, object]:
    doc: dict[str, object] = json.loads(box.out(f"lvsha status --json --socket {socket}"))
    return doc


def state(box: Container, socket: str = "/run/lvsha/lvsha.sock") -> str:
    res = box.sh(
        f"lvsha status --json --socket {socket} | "
        'python3 -c \'import json,sys; print(json.load(sys.stdin)["instances"][0]["state"])\''
    )
    return res.stdout.strip() if res.returncode == 0 else f"(no status: {res.stderr.strip()})"


def start_peer(box: Container, priority: int) -> None:
    """A second lvsha, as a unit of the same systemd, in the `peer` namespace."""
    box.write(
        "/etc/lvsha-peer.toml",
        director_config("peer", "lv1", "192.0.2.1", priority, control_socket=PEER_SOCKET),
    )
    box.out(
        "systemd-run --unit=lvsha-peer -p Type=notify -p NotifyAccess=main"
        " -p NetworkNamespacePath=/run/netns/peer -p RuntimeDirectory=lvsha-peer"
        " /usr/bin/lvsha run --config /etc/lvsha-peer.toml"
    )
