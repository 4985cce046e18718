"""`lvsha doctor` for BGP directors: what breaks active/active ECMP in practice.

* sloppy_tcp / sloppy_sctp: when the router's ECMP moves a flow to another
  director mid-stream, IPVS there takes only a SYN as a new connection
  unless these are 1; lvsha sets them at start, so 0 here means the daemon
  has not run yet or something reset them;
* the speaker: the `exabgp` or `bird` binary lvsha will run as its child;
* the announced addresses: on `lo` only (lvsha puts them there); on another
  interface the director would answer ARP for them and pull the traffic of
  the whole VLAN (docs/scale-out.md).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lvsha.adapters import hostnet
from lvsha.config import Config
from lvsha.tools.doctor.host import tool
from lvsha.tools.doctor.results import Result, Status

SPEAKER_PACKAGE = {"exabgp": "exabgp", "bird": "bird2"}


def check_bgp(
    config: Config,
    *,
    proc_sys: Path = hostnet.PROC_SYS,
    which: Callable[[str], str | None] = tool,
    addresses: Callable[[], list[hostnet.Address]] = hostnet.addresses,
) -> list[Result]:
    """Nothing for a director without `[bgp]`."""
    bgp = config.bgp
    if bgp is None:
        return []
    announced = [vs for vs in config.virtual_servers if vs.announce == "bgp"]
    results = _sloppy(sorted({vs.protocol for vs in announced} & {"tcp", "sctp"}), proc_sys)
    binary = bgp.speaker_path or which(bgp.speaker)
    if binary is None or not Path(binary).exists():
        results.append(
            Result(
                "bgp-speaker",
                Status.FAIL,
                f"speaker {bgp.speaker!r}: no {bgp.speaker_path or bgp.speaker} to run",
                f"apt install {SPEAKER_PACKAGE[bgp.speaker]}",
            )
        )
    else:
        results.append(Result("bgp-speaker", Status.OK, f"speaker {bgp.speaker}: {binary}"))
    wanted = {vs.address for vs in announced if vs.address}
    astray = sorted(
        f"{a.address} on {a.ifname}"
        for a in addresses()
        if a.address in wanted and a.ifname != "lo"
    )
    if astray:
        results.append(
            Result(
                "bgp-vips",
                Status.FAIL,
                f"announced addresses held outside lo ({', '.join(astray)}): the director "
                "answers ARP for them and draws the VLAN's traffic past ECMP",
                "ip addr del ADDRESS/32 dev IFACE (lvsha holds them on lo itself)",
            )
        )
    elif wanted:
        results.append(Result("bgp-vips", Status.OK, "no announced address outside lo"))
    return results


def _sloppy(protocols: list[str], proc_sys: Path) -> list[Result]:
    results = []
    for protocol in protocols:
        name = f"net.ipv4.vs.sloppy_{protocol}"
        value = hostnet.read_sysctl(name, proc_sys)
        if value == 1:
            results.append(Result("sloppy", Status.OK, f"{name} is 1"))
            continue
        seen = "absent (ip_vs not loaded)" if value is None else f"{value}"
        results.append(
            Result(
                "sloppy",
                Status.WARN,
                f"{name} is {seen}: a flow ECMP moves here mid-stream would be dropped "
                "as a non-SYN (lvsha run sets it to 1 at start)",
                f"sysctl -w {name}=1",
            )
        )
    return results
