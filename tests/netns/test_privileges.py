"""Privileges: what lvsha creates is never world-writable, hooks never meet a shell,
and the control socket lets in only whom it should.

lvsha runs as root. A file or directory it creates that others may write
(a socket directory, a sysctl.d or networkd file, a translated config with
hooks in it) would hand root to any local user, so each is checked under
the worst umask, 0: nothing created may be group- or world-writable. The
systemd unit sets UMask=0027, but `lvsha run` from a shell, another init
system or a container inherits whatever umask it is given.

tests/netns/test_operations.py checks that the socket is 0660, that the
daemon refuses other users by their credentials, and that members of
`control_group` may ask; here, that with a `control_group` no one else may.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from lab import LVSHA, ROOT, Director, Lab, instance_toml, wait_for

from lvsha.core.vrrp import master_down_interval
from lvsha.exits import EX_NOPERM

START = master_down_interval(1, 100) + 3
WRITABLE_BY_OTHERS = stat.S_IWGRP | stat.S_IWOTH


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    """The test process's umask, inherited by what it starts meanwhile."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def created_under(top: Path, before: set[Path]) -> dict[Path, int]:
    """Every path below `top` that is not in `before`, with its mode."""
    found = {top / d for d, _, _ in os.walk(top)} | {
        Path(d) / f for d, _, files in os.walk(top) for f in files
    }
    return {p: p.lstat().st_mode for p in sorted(found - before)}


def start(
    lab: Lab, name: str, address: str, body: str, socket: Path, mask: int = 0o022
) -> Director:
    """`lvsha run` as lab.start runs it, with the control socket where the test
    wants it, and the umask `mask` (the test's own files are made before)."""
    host = lab.host(name, address)
    config = lab.workdir / f"{name}.toml"
    config.write_text(f'[daemon]\nname = "{name}"\ncontrol_socket = "{socket}"\n{body}')
    config.chmod(0o600)
    log = lab.workdir / f"{name}.log"
    log.touch(mode=0o600)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    with umask(mask):
        proc = host.popen(
            [*LVSHA, "run", "--config", str(config), "--log-format", "keyvalue"], log, env=env
        )
    director = Director(host, config, socket, log, proc)
    try:
        wait_for(director.ready, 15, interval=0.05)
    except TimeoutError:
        raise RuntimeError(f"lvsha did not start:\n{director.log_text()}") from None
    return director


def test_the_daemon_creates_nothing_others_may_write_even_under_umask_0(lab: Lab) -> None:
    run = lab.workdir / "run"
    socket = run / "lvsha" / "ctl" / "lvsha.sock"  # three directories to create
    d1 = start(lab, "d1", "192.0.2.11", instance_toml(100), socket, mask=0)
    d1.wait_state("MASTER", START)
    ours = {lab.workdir, d1.config, d1.log}
    created = created_under(lab.workdir, ours)
    assert socket in created and run in created
    assert stat.S_ISSOCK(created[socket]) and stat.S_IMODE(created[socket]) == 0o660
    created.pop(socket)
    record = socket.with_suffix(".vips.json")  # what `lvsha cleanup` removes after a crash
    assert stat.S_ISREG(created[record]) and stat.S_IMODE(created[record]) == 0o644
    created.pop(record)
    assert {p for p in created if p.is_relative_to(run)} == {
        run,
        run / "lvsha",
        run / "lvsha" / "ctl",
    }, "the daemon writes nothing but its socket, its VIP record and the directories to them"
    writable = {str(p): oct(stat.S_IMODE(m)) for p, m in created.items() if m & WRITABLE_BY_OTHERS}
    assert writable == {}


def test_realserver_setup_writes_nothing_others_may_write_even_under_umask_0(
    tmp_path: Path,
) -> None:
    """`lvsha realserver setup --write FORMAT` as root: files under /etc that root's tools read."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from lvsha.tools import realserver\n"
        "for form in ('sysctl.d', 'ifupdown', 'networkd'):\n"
        "    realserver.setup(['192.0.2.100'], form, apply=False, root=Path(sys.argv[1]))\n"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, check=True, timeout=30, umask=0
    )
    created = created_under(tmp_path, {tmp_path})
    assert len([p for p in created if p.is_file()]) == 3
    writable = {str(p): oct(stat.S_IMODE(m)) for p, m in created.items() if m & WRITABLE_BY_OTHERS}
    assert writable == {}


def test_import_keepalived_output_is_not_writable_by_others_even_under_umask_0(
    tmp_path: Path,
) -> None:
    """The translated file holds hook commands that the daemon will run as root."""
    out = tmp_path / "lvsha.toml"
    source = ROOT / "tests" / "data" / "keepalived" / "notify.conf"
    subprocess.run(
        [*LVSHA, "import-keepalived", str(source), "-o", str(out)],
        cwd=ROOT,
        capture_output=True,
        check=False,
        timeout=30,
        umask=0,
    )
    assert out.exists()
    assert stat.S_IMODE(out.stat().st_mode) & WRITABLE_BY_OTHERS == 0, oct(out.stat().st_mode)


def test_notify_hook_arguments_stay_literal_end_to_end(lab: Lab) -> None:
    """The daemon's own notify hook: shell syntax in argv (and in its path) is just text."""
    marker = lab.workdir / "injected"
    folder = lab.workdir / "hooks; touch $(echo injected) `id`"
    folder.mkdir()
    hook = folder / "notify $HOME;.py"
    hook.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        "with open(sys.argv[1], 'a') as out:\n"
        "    out.write(json.dumps([sys.argv[0], *sys.argv[2:], os.environ['LVSHA_STATE']]))\n"
        "    out.write('\\n')\n"
    )
    hook.chmod(0o755)
    out = lab.workdir / "notify.out"
    tricks = [
        f"; touch {marker}",
        f"$(touch {marker})",
        f"`touch {marker}`",
        f"&& touch {marker}",
        f"| tee {marker}",
        f"> {marker}",
        "*",
        "$LVSHA_STATE",
        "'quoted' \"twice\"",
    ]
    argv = [str(hook), str(out), *tricks]
    extra = f"notify = [{', '.join(json.dumps(a) for a in argv)}]\n"
    d1 = lab.start(lab.host("d1", "192.0.2.11"), instance_toml(100, extra=extra))
    d1.wait_state("MASTER", START)
    wait_for(lambda: out.exists() and len(out.read_text().splitlines()) >= 2, 5)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines == [
        [str(hook), *tricks, "INSTANCE", "VI_1", state, "100", state]
        for state in ("BACKUP", "MASTER")
    ]
    assert not marker.exists()
    assert not (ROOT / "injected").exists()


def test_control_group_lets_no_one_else_in(lab: Lab) -> None:
    """`control_group` opens the socket to its members (test_operations.py), and only them.

    A user outside the group is stopped by the file (0660, owned by the
    group) and, with the file opened to all, by the daemon's check of its
    credentials against the group.
    """
    group = grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_name
    outsider = "daemon"
    assert pwd.getpwnam(outsider).pw_gid != grp.getgrnam(group).gr_gid
    assert outsider not in grp.getgrnam(group).gr_mem
    lab.workdir.chmod(0o711)  # others may pass through, not list
    socket = lab.workdir / "ctl" / "lvsha.sock"
    d1 = start(lab, "d1", "192.0.2.11", f'control_group = "{group}"\n' + instance_toml(100), socket)
    st = socket.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_gid) == (0o660, grp.getgrnam(group).gr_gid)

    def status_as_outsider() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                "setpriv",
                f"--reuid={outsider}",
                f"--regid={pwd.getpwnam(outsider).pw_gid}",
                "--clear-groups",
                *LVSHA,
                "status",
                "--socket",
                str(socket),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            cwd="/",
            timeout=10,
            check=False,
        )

    denied = status_as_outsider()
    assert denied.returncode == EX_NOPERM  # the file's mode stops it
    assert "permission denied on" in denied.stderr
    socket.chmod(0o666)
    refused = status_as_outsider()
    assert refused.returncode == EX_NOPERM  # the daemon's credential check stops it
    assert f"permission denied for uid {pwd.getpwnam(outsider).pw_uid}" in refused.stderr
    assert d1.proc.poll() is None


def test_control_group_members_may_read_status_but_not_reload(lab: Lab) -> None:
    """`reload` is root's or the daemon's user's (docs/status.md); members only read."""
    d1 = lab.start(
        lab.host("d1", "192.0.2.11"), instance_toml(100), daemon='control_group = "nogroup"\n'
    )
    d1.socket.parent.chmod(0o755)
    reloads = d1.status()["daemon"]["reloads"]

    def as_member(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                "setpriv",
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                *LVSHA,
                command,
                "--socket",
                str(d1.socket),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            cwd="/",
            timeout=10,
            check=False,
        )

    assert as_member("status").returncode == 0
    refused = as_member("reload")
    assert refused.returncode == EX_NOPERM, refused.stderr
    assert "'reload' needs root or the daemon's own user" in refused.stderr
    assert d1.status()["daemon"]["reloads"] == reloads  # nothing was reloaded
    assert d1.proc.poll() is None
