"""keepalived 2.2 as the other director, and tcpdump as a wire tap, in a `Lab`.

`Keepalived` runs Debian's keepalived in the foreground in a lab host, VRRP
subsystem only, with its own pid files, a console log, and a notify script
that appends `STATE wall-clock-time` to a file: that gives its state and the
instant of every transition without parsing its log. `start_keepalived`
writes the lvs01 pair's instance (VI_1, VRID 51, PASS grr02, the VIP /32).

`Capture` runs tcpdump in a lab host, packet-buffered (`-U`) so that a test
can poll the file while it grows, bounded by a packet count and a timeout.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab import VIP, Host, Lab, wait_for

KEEPALIVED = shutil.which("keepalived") or (
    "/usr/sbin/keepalived" if Path("/usr/sbin/keepalived").exists() else None
)
TCPDUMP = shutil.which("tcpdump") or (
    "/usr/bin/tcpdump" if Path("/usr/bin/tcpdump").exists() else None
)


def keepalived_conf(
    name: str,
    priority: int = 100,
    password: str | None = "grr02",
    vip: str = VIP,
    unicast_src: str | None = None,
    unicast_peers: tuple[str, ...] = (),
    notify: Path | None = None,
    extra: str = "",
    advert_int: float = 1,
    vrrp_version: int | None = None,
    vip_prefix: int = 32,
) -> str:
    """keepalived.conf for the lvs01 pair's VI_1, as that pair runs it."""
    auth = (
        f"  authentication {{\n    auth_type PASS\n    auth_pass {password}\n  }}\n"
        if password
        else ""
    )
    unicast = ""
    if unicast_peers:
        peers = "".join(f"    {p}\n" for p in unicast_peers)
        unicast = f"  unicast_src_ip {unicast_src}\n  unicast_peer {{\n{peers}  }}\n"
    hook = f'  notify "{notify}"\n' if notify else ""
    return (
        "global_defs {\n"
        f"  router_id {name}\n"
        "  enable_script_security\n"
        "  script_user root\n"
        f"{'' if vrrp_version is None else f'  vrrp_version {vrrp_version}' + chr(10)}"
        "}\n"
        "vrrp_instance VI_1 {\n"
        "  state BACKUP\n"
        "  interface eth1\n"
        "  virtual_router_id 51\n"
        f"  priority {priority}\n"
        f"  advert_int {advert_int:g}\n"
        f"{auth}"
        f"  virtual_ipaddress {{\n    {vip}/{vip_prefix}\n  }}\n"
        f"{unicast}"
        f"{hook}"
        f"{extra}"
        "}\n"
    )


@dataclass
class Keepalived:
    """A running keepalived (`-n`: the parent stays in the foreground)."""

    host: Host
    config: Path
    log: Path
    states: Path
    vrrp_pidfile: Path
    proc: subprocess.Popen[bytes]

    def transitions(self) -> list[tuple[str, float]]:
        """Every (state, wall time) the notify script recorded, oldest first."""
        try:
            lines = self.states.read_text().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            parts = line.split()
            if len(parts) == 2:
                out.append((parts[0], float(parts[1])))
        return out

    def state(self) -> str | None:
        seen = self.transitions()
        return seen[-1][0] if seen else None

    def wait_state(self, state: str, timeout: float) -> float:
        """Wait for `state`; return the wall time keepalived entered it."""
        wait_for(lambda: self.state() == state, timeout)
        return self.transitions()[-1][1]

    def vrrp_pid(self) -> int | None:
        """The VRRP child's pid: the process that sends and receives adverts."""
        try:
            return int(self.vrrp_pidfile.read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def ready(self) -> bool:
        return self.vrrp_pid() is not None and self.state() is not None

    def terminate(self, timeout: float = 10) -> int:
        """SIGTERM: the VRRP child of a master sends priority 0, then all exit."""
        os.kill(self.proc.pid, signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        """kill -9 the VRRP child first (so that nothing is sent), then the parent."""
        child = self.vrrp_pid()
        if child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        if child is not None:
            _wait_gone(child, 10)

    def stop(self) -> None:
        """Cleanup: whatever is still running of it, killed."""
        child = self.vrrp_pid()
        if self.proc.poll() is None:
            self.kill()
        elif child is not None and _alive(child):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
            _wait_gone(child, 10)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _wait_gone(pid: int, timeout: float) -> None:
    wait_for(lambda: not _alive(pid), timeout)


def start_keepalived(
    lab: Lab,
    host: Host,
    priority: int = 100,
    password: str | None = "grr02",
    unicast_peers: tuple[str, ...] = (),
    extra: str = "",
    wait: bool = True,
    advert_int: float = 1,
    vrrp_version: int | None = None,
    vip: str = VIP,
    vip_prefix: int = 32,
    unicast_src: str | None = None,
) -> Keepalived:
    """Run keepalived (VRRP only) in `host` with the lvs01 instance."""
    assert KEEPALIVED is not None
    base = lab.workdir / f"{host.name}-keepalived"
    states = Path(f"{base}.states")
    notify = Path(f"{base}.notify")
    notify.write_text(f'#!/bin/sh\necho "$3 $(date +%s.%N)" >> {states}\n')
    notify.chmod(0o755)
    config = Path(f"{base}.conf")
    config.write_text(
        keepalived_conf(
            host.name,
            priority,
            password,
            unicast_src=(unicast_src or host.address) if unicast_peers else None,
            unicast_peers=unicast_peers,
            notify=notify,
            extra=extra,
            advert_int=advert_int,
            vrrp_version=vrrp_version,
            vip=vip,
            vip_prefix=vip_prefix,
        )
    )
    log = Path(f"{base}.log")
    vrrp_pidfile = Path(f"{base}.vrrp.pid")
    argv = [
        KEEPALIVED,
        "--dont-fork",
        "--log-console",
        "--log-detail",
        "--no-syslog",
        "--vrrp",
        "--dont-respawn",
        "--use-file",
        str(config),
        "--pid",
        f"{base}.pid",
        "--vrrp_pid",
        str(vrrp_pidfile),
        "--checkers_pid",
        f"{base}.checkers.pid",
    ]
    proc = host.popen(argv, log)
    peer = Keepalived(host, config, log, states, vrrp_pidfile, proc)
    if wait:
        try:
            wait_for(peer.ready, 10, interval=0.05)
        except TimeoutError:
            peer.stop()
            raise RuntimeError(
                f"keepalived did not start in {host.name}:\n{peer.log_text()}"
            ) from None
    return peer


# ------------------------------------------------------------- capturing --


@dataclass
class Capture:
    """tcpdump writing `path` in a lab host; stopped by `stop()` or its count."""

    host: Host
    path: Path
    proc: subprocess.Popen[bytes]
    stderr: Path

    def packets(self) -> list[Any]:
        """The frames written so far, decoded by scapy (an independent decoder)."""
        import scapy.layers.inet
        import scapy.layers.l2
        import scapy.layers.vrrp  # noqa: F401  (registers the layers rdpcap decodes into)
        from scapy.error import Scapy_Exception
        from scapy.utils import rdpcap

        try:
            return list(rdpcap(str(self.path)))
        except (FileNotFoundError, EOFError, Scapy_Exception, struct.error):
            return []

    def wait_packets(self, predicate: Any, count: int, timeout: float) -> list[Any]:
        """Wait until `count` captured frames satisfy `predicate`; return them."""

        def matching() -> list[Any]:
            found = [p for p in self.packets() if predicate(p)]
            return found if len(found) >= count else []

        result: list[Any] = wait_for(matching, timeout, interval=0.05)
        return result

    def stop(self, timeout: float = 5) -> list[Any]:
        """SIGINT (tcpdump flushes and exits); the frames it wrote."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                # `timeout` passes SIGTERM on to tcpdump; SIGKILL would orphan it.
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=5)
        return self.packets()

    def text(self, *flags: str) -> str:
        """tcpdump's own decoding of the file (`tcpdump -r FILE -n -vv`)."""
        assert TCPDUMP is not None
        out = subprocess.run(
            [TCPDUMP, "-r", str(self.path), "-n", "-vv", "-e", *flags],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        )
        return out.stdout


def start_capture(
    host: Host, bpf: str, name: str, count: int = 500, timeout: float = 60
) -> Capture:
    """tcpdump on the host's eth1 until `count` frames, SIGINT or `timeout` s.

    `-Z root`: Debian's tcpdump drops to user tcpdump after opening the
    interface, and the lab's work directory is root's alone. The capture is
    ready when tcpdump says "listening on", so no frame sent after this
    returns is missed.
    """
    assert TCPDUMP is not None
    path = host.lab.workdir / f"{name}.pcap"
    stderr = host.lab.workdir / f"{name}.tcpdump.log"
    argv = [
        "timeout",
        "-s",
        "INT",
        str(timeout),
        TCPDUMP,
        "-i",
        "eth1",
        "-n",
        "-U",
        "-Z",
        "root",
        "-c",
        str(count),
        "-w",
        str(path),
        bpf,
    ]
    proc = host.popen(argv, stderr)
    capture = Capture(host, path, proc, stderr)
    try:
        wait_for(lambda: "listening on" in stderr.read_text(errors="replace"), 10)
    except TimeoutError:
        capture.stop()
        raise RuntimeError(f"tcpdump did not start: {stderr.read_text()}") from None
    wait_for(path.exists, 5)  # the pcap file header is written
    return capture
