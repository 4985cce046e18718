"""`lvsha realserver setup|check`: what an LVS-DR real server needs, and why.

In Direct Routing the director forwards a client's packet unchanged (its
destination is still the VIP) to the real server's MAC address. The real
server must therefore accept packets for the VIP, so the VIP sits on `lo` as
a /32, and it must never answer ARP for it, or the router in front would
send clients straight to that real server and bypass the director. The ARP
sysctls of the lvs01 cookbook do that:

* `arp_ignore = 1`: answer ARP only for addresses on the interface the
  request came in on (the VIP is on `lo`, so requests on eth0 go unanswered);
* `arp_announce = 2`: never use the VIP as the sender address of our own ARP
  requests (the neighbours would learn "VIP is at this real server").

The kernel uses max(all, interface) for both, so `all` covers every
interface; `lo` is set too, as the cookbook does. `setup` sets the sysctls
before it adds the VIP, so that there is no moment when the real server
answers ARP for it. IPv6 VIPs (tools/realserver6.py) go on `lo` as a /128
with nodad and need no sysctl. See docs/realservers.md.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lvsha.adapters import hostnet
from lvsha.errors import KernelError
from lvsha.exits import EX_FAILURE, EX_OK
from lvsha.tools import realserver6

SYSCTLS: dict[str, int] = {
    "net.ipv4.conf.all.arp_ignore": 1,
    "net.ipv4.conf.all.arp_announce": 2,
    "net.ipv4.conf.lo.arp_ignore": 1,
    "net.ipv4.conf.lo.arp_announce": 2,
}
ARP_IGNORE_OK = (1, 2)  # 2 is stricter (sender must be in the interface's subnet): fine too
ARP_IGNORE_SILENT = 8  # answers no ARP at all, not even for the interface's own address
RP_FILTER_STRICT = 1

WRITE_FORMATS = ("sysctl.d", "ifupdown", "networkd")
SYSCTL_FILE = "etc/sysctl.d/90-lvsha-realserver.conf"
IFUPDOWN_FILE = "etc/network/interfaces.d/lvsha-vip"
NETWORKD_DIRS = ("etc/systemd/network", "run/systemd/network", "usr/lib/systemd/network")
NETWORKD_FILE = "etc/systemd/network/10-lvsha-lo.network"
NETWORKD_DROPIN = "lvsha-vip.conf"
HEADER = "# Written by `lvsha realserver setup --write {fmt}`: LVS-DR real server.\n"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing missing on this real server, with the command that fixes it."""

    subject: str
    message: str
    fix: str


def parse_vips(vips: Iterable[str]) -> list[str]:
    """`ADDR` or `ADDR/32` (IPv6: `ADDR/128`) -> `ADDR`; a wider prefix is refused.

    A VIP on `lo` with a /24 would make the real server treat the whole /24
    as local and stop talking to its neighbours there.
    """
    out: list[str] = []
    for spec in vips:
        if ":" in spec:
            vip6 = realserver6.parse_vip6(spec)
            if vip6 not in out:
                out.append(vip6)
            continue
        try:
            iface = ipaddress.IPv4Interface(spec.strip())
        except ValueError:
            raise ValueError(f"{spec!r} is not an IPv4 or IPv6 address") from None
        if iface.network.prefixlen != 32:
            raise ValueError(f"{spec!r}: a VIP goes on lo as a /32, not /{iface.network.prefixlen}")
        if str(iface.ip) not in out:
            out.append(str(iface.ip))
    return out


# ------------------------------------------------------------------ setup --


def setup(
    vips: list[str],
    write: str | None = None,
    dry_run: bool = False,
    *,
    apply: bool = True,
    root: Path = Path("/"),
    proc_sys: Path = hostnet.PROC_SYS,
) -> list[str]:
    """Apply (unless `apply` is False) and persist (when `write` is set); say what changed.

    Idempotent: a second run returns an empty list. With `dry_run` nothing is
    touched and each line says what would be done.
    """
    addresses, addresses6 = _split(parse_vips(vips))
    if write is not None and write not in WRITE_FORMATS:
        raise ValueError(f"--write must be one of {', '.join(WRITE_FORMATS)}, not {write!r}")
    done: list[str] = []
    if apply and addresses:  # the ARP sysctls are IPv4's; IPv6 needs none
        for name, value in SYSCTLS.items():
            old = hostnet.read_sysctl(name, proc_sys)
            if old != value:
                if not dry_run:
                    hostnet.write_sysctl(name, value, proc_sys)
                done.append(f"{'would set' if dry_run else 'set'} {name} = {value} (was {old})")
        held = {(a.ifname, a.address, a.prefixlen) for a in hostnet.addresses()}
        for vip in addresses:
            if ("lo", vip, 32) in held:
                continue
            if dry_run or hostnet.add_address("lo", vip, 32):
                done.append(f"{'would add' if dry_run else 'added'} {vip}/32 on lo")
    if apply:
        done.extend(realserver6.setup_steps(addresses6, dry_run))
    if write is not None:
        for path, text in persistent_files(addresses + addresses6, write, root).items():
            if _write_if_changed(path, text, dry_run):
                done.append(f"{'would write' if dry_run else 'wrote'} {path}")
        done.extend(_persistence_notes(addresses + addresses6, write, root))
    return done


def _split(vips: list[str]) -> tuple[list[str], list[str]]:
    """(IPv4 VIPs, IPv6 VIPs), each in the order given."""
    return [v for v in vips if ":" not in v], [v for v in vips if ":" in v]


def persistent_files(vips: list[str], write: str, root: Path = Path("/")) -> dict[Path, str]:
    """The files that make the setup survive a reboot, by path.

    The ARP sysctls go to sysctl.d (neither ifupdown nor networkd sets them)
    when there is an IPv4 VIP; the VIPs go to the chosen network configuration.
    """
    v4, v6 = _split(vips)
    files = {root / SYSCTL_FILE: sysctl_conf()} if v4 or not v6 else {}
    if write == "ifupdown":
        files[root / IFUPDOWN_FILE] = ifupdown_stanzas(v4) + realserver6.ifupdown_stanza(v6)
    elif write == "networkd":
        path, text = networkd_file(vips, root)
        files[path] = text
    return files


def sysctl_conf() -> str:
    lines = [HEADER.format(fmt="sysctl.d")]
    lines.append("# Answer ARP only for addresses of the receiving interface, never for the\n")
    lines.append("# VIP on lo, and never announce the VIP as an ARP sender address.\n")
    lines.extend(f"{name} = {value}\n" for name, value in SYSCTLS.items())
    return "".join(lines)


def ifupdown_stanzas(vips: list[str]) -> str:
    """One `lo:N` alias per VIP (Debian sources interfaces.d/* by default)."""
    out = [HEADER.format(fmt="ifupdown")]
    out.append("# The ARP sysctls are in /etc/sysctl.d/90-lvsha-realserver.conf.\n")
    for n, vip in enumerate(vips):
        out.append(
            f"\nauto lo:{n}\niface lo:{n} inet static\n"
            f"    address {vip}\n    netmask 255.255.255.255\n"
        )
    return "".join(out)


def networkd_file(vips: list[str], root: Path = Path("/")) -> tuple[Path, str]:
    """A drop-in for the .network file that already matches `lo`, or a new one.

    systemd-networkd applies only the first .network file (in lexical order)
    that matches an interface, so adding a second file for lo would be
    ignored when one exists; a drop-in extends it instead.
    """
    v4, v6 = _split(vips)
    sections = "".join(f"\n[Address]\nAddress={vip}/32\n" for vip in v4)
    sections += realserver6.networkd_sections(v6)
    existing = _networkd_lo_file(root)
    if existing is not None:
        path = root / "etc/systemd/network" / f"{existing}.d" / NETWORKD_DROPIN
        return path, HEADER.format(fmt="networkd") + sections
    return root / NETWORKD_FILE, HEADER.format(fmt="networkd") + "\n[Match]\nName=lo\n" + sections


def _networkd_lo_file(root: Path) -> str | None:
    """The name of the .network file networkd would use for lo (not ours)."""
    seen: dict[str, Path] = {}
    for folder in NETWORKD_DIRS:  # /etc masks /run masks /usr/lib, by file name
        directory = root / folder
        if directory.is_dir():
            for path in sorted(directory.glob("*.network")):
                seen.setdefault(path.name, path)
    for name in sorted(seen):
        if name != Path(NETWORKD_FILE).name and _matches_lo(seen[name]):
            return name
    return None


def _matches_lo(path: Path) -> bool:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return False
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line
        elif (
            section == "[Match]"
            and line.startswith("Name=")
            and "lo" in line.partition("=")[2].split()
        ):
            return True
    return False


def _write_if_changed(path: Path, text: str, dry_run: bool) -> bool:
    try:
        if path.read_text() == text:
            return False
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise KernelError(f"cannot read {path}: {exc}") from exc
    if not dry_run:
        old = os.umask(0o022)
        os.umask(old | 0o022)  # root's tools read these: never group- or world-writable
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        except OSError as exc:
            raise KernelError(f"cannot write {path}: {exc}") from exc
        finally:
            os.umask(old)
    return True


def _persistence_notes(vips: list[str], write: str, root: Path) -> list[str]:
    if write == "sysctl.d" and vips and not _split(vips)[0]:
        return [f"note: {realserver6.IPV6_NOTE}; use --write ifupdown or --write networkd"]
    if write == "sysctl.d" and vips:
        return ["note: the VIPs are not persisted; use --write ifupdown or --write networkd"]
    if write == "ifupdown":
        interfaces = root / "etc/network/interfaces"
        try:
            text = interfaces.read_text()
        except OSError:
            return []
        if not re.search(r"^\s*source(-directory)?\s+/etc/network/interfaces\.d", text, re.M):
            return [
                f"note: {interfaces} does not read interfaces.d; "
                "add `source /etc/network/interfaces.d/*` to it"
            ]
    return []


# ------------------------------------------------------------------ check --


def check(vips: list[str], *, proc_sys: Path = hostnet.PROC_SYS) -> list[Problem]:
    """Everything that keeps this host from being a working LVS-DR real server."""
    addresses, addresses6 = _split(parse_vips(vips))
    problems: list[Problem] = []
    if addresses or not addresses6:
        held = hostnet.addresses()
        links = hostnet.links()
        receiving = sorted(
            {a.ifname for a in held if a.ifname != "lo"} & {x.ifname for x in links if x.up}
        )
        problems.extend(_check_vips(addresses, held))
        problems.extend(_check_arp_sysctls(receiving, proc_sys))
        problems.extend(_check_rp_filter(receiving, proc_sys))
    problems.extend(Problem(*p) for p in realserver6.check_vips6(addresses6, proc_sys))
    return problems


def _check_vips(vips: list[str], held: list[hostnet.Address]) -> list[Problem]:
    problems = []
    for vip in vips:
        on_lo = [a for a in held if a.address == vip and a.ifname == "lo"]
        elsewhere = sorted({a.ifname for a in held if a.address == vip and a.ifname != "lo"})
        if not on_lo:
            problems.append(
                Problem(
                    vip,
                    f"VIP {vip} is not on lo: the real server drops the packets the "
                    "director forwards to it",
                    f"lvsha realserver setup --vip {vip}   (or: ip addr add {vip}/32 dev lo)",
                )
            )
        for a in on_lo:
            if a.prefixlen != 32:
                problems.append(
                    Problem(
                        vip,
                        f"VIP {vip} is on lo as /{a.prefixlen}: the whole subnet becomes "
                        "local and unreachable",
                        f"ip addr del {vip}/{a.prefixlen} dev lo && ip addr add {vip}/32 dev lo",
                    )
                )
        for ifname in elsewhere:
            problems.append(
                Problem(
                    vip,
                    f"VIP {vip} is also on {ifname}: the real server answers ARP for it "
                    "there, and clients bypass the director",
                    f"ip addr del {vip}/<prefix> dev {ifname}  (keep it on lo only)",
                )
            )
    return problems


def _check_arp_sysctls(receiving: list[str], proc_sys: Path) -> list[Problem]:
    problems = []
    for name, want in SYSCTLS.items():
        value = hostnet.read_sysctl(name, proc_sys)
        ok = value in ARP_IGNORE_OK if name.endswith("arp_ignore") else value == want
        if not ok:
            if ".lo." in name:
                why = "the cookbook's setting (what counts is `all` and each interface)"
            elif name.endswith("arp_ignore"):
                why = "the real server answers ARP for the VIP on lo"
            else:
                why = "the real server may announce the VIP as its own in ARP requests"
            problems.append(Problem(name, f"{name} = {value}, want {want}: {why}", _fix(name)))
    # The kernel uses max(all, interface): with `all` right, only a higher
    # per-interface arp_ignore (3: answer for global addresses on lo; 8: answer
    # nothing) can still be wrong. arp_announce has no value above 2.
    all_ignore = hostnet.read_sysctl("net.ipv4.conf.all.arp_ignore", proc_sys) or 0
    if all_ignore not in ARP_IGNORE_OK:
        return problems
    for ifname in receiving:
        name = f"net.ipv4.conf.{ifname}.arp_ignore"
        ignore = max(all_ignore, hostnet.read_sysctl(name, proc_sys) or 0)
        if ignore not in ARP_IGNORE_OK:
            detail = (
                "it answers no ARP at all, not even for its own address"
                if ignore >= ARP_IGNORE_SILENT
                else "it answers ARP for addresses of scope global on lo, the VIP included"
            )
            problems.append(Problem(name, f"{name} = {ignore}: {detail}", _fix(name)))
    return problems


def _fix(name: str) -> str:
    want = 2 if name.endswith("arp_announce") else 1
    return f"sysctl -w {name}={want}   (persistent: lvsha realserver setup --write sysctl.d)"


def _check_rp_filter(receiving: list[str], proc_sys: Path) -> list[Problem]:
    """Strict reverse-path filtering drops client packets that arrive on an
    interface the route back to the client does not use (a multi-homed real
    server whose default route is elsewhere, as on SoftLayer's public and
    private VLANs)."""
    defaults = hostnet.default_route_interfaces()
    if not defaults:
        return []
    all_rp = hostnet.read_sysctl("net.ipv4.conf.all.rp_filter", proc_sys) or 0
    problems = []
    for ifname in receiving:
        rp = max(all_rp, hostnet.read_sysctl(f"net.ipv4.conf.{ifname}.rp_filter", proc_sys) or 0)
        if rp == RP_FILTER_STRICT and ifname not in defaults:
            problems.append(
                Problem(
                    f"net.ipv4.conf.{ifname}.rp_filter",
                    f"rp_filter is strict on {ifname} but the default route leaves by "
                    f"{', '.join(sorted(defaults))}: client packets the director forwards "
                    f"in on {ifname} are dropped (2, loose, keeps spoofing out)",
                    f"sysctl -w net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.{ifname}.rp_filter=2",
                )
            )
    return problems


# ------------------------------------------------------------------ CLI --


def main_setup(vips: list[str], write: str | None, dry_run: bool) -> int:
    """`lvsha realserver setup`: 0 done (or nothing to do), 1 failed."""
    try:
        done = setup(vips, write, dry_run)
    except (ValueError, KernelError) as exc:
        print(f"lvsha realserver setup: {exc}")
        return EX_FAILURE
    for line in done:
        print(line)
    if not [line for line in done if not line.startswith("note:")]:
        print("nothing to change: the VIPs are on lo and the ARP sysctls are set")
    return EX_OK


def main_check(vips: list[str]) -> int:
    """`lvsha realserver check`: 0 all good, 1 a problem (each with its fix)."""
    try:
        problems = check(vips)
    except (ValueError, KernelError) as exc:
        print(f"lvsha realserver check: {exc}")
        return EX_FAILURE
    for p in problems:
        print(f"PROBLEM {p.message}\n        fix: {p.fix}")
    if problems:
        return EX_FAILURE
    v4, v6 = _split(parse_vips(vips))
    said = []
    if v4 or not v6:
        said.append(f"{', '.join(v4) if v4 else 'no VIP given'}; arp_ignore and arp_announce set")
    if v6:
        said.append(f"{', '.join(v6)} on lo; {realserver6.IPV6_NOTE}")
    print(f"OK: LVS-DR real server ready ({'; '.join(said)})")
    return EX_OK
