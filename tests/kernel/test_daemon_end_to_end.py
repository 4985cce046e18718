"""The real `lvsha run` on a director pair with IPVS: VRRP, DR forwarding, health checks.

One LAN (192.0.2.0/24): a client, two directors running lvsha (priority 150
and 100) and two real servers carrying the VIP on `lo` with arp_ignore=1 /
arp_announce=2. Both directors program the same table (the standby is warm);
health checks take a dead real server out on both and put it back; the
client keeps reaching the service through a crash of the master.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

from lab import VIP, Director, Host, Lab, instance_toml, wait_for

from lvsha.core.vrrp import master_down_interval

PEERS = str(Path(__file__).with_name("peers.py"))
SERVICE = f"""
[[virtual_server]]
address = "{VIP}"
port = 80
protocol = "tcp"
scheduler = "rr"
forwarding = "dr"
delay_loop = 1

[[virtual_server.real_server]]
address = "192.0.2.21"
port = 80
tcp_check = {{ connect_timeout = 1 }}

[[virtual_server.real_server]]
address = "192.0.2.22"
port = 80
tcp_check = {{ connect_timeout = 1 }}
"""


def real_server(lab: Lab, name: str, address: str) -> Host:
    host = lab.host(name, address)
    host.run("ip", "addr", "add", f"{VIP}/32", "dev", "lo")
    for conf in ("all", "lo", "eth1"):
        host.run("sysctl", "-qw", f"net.ipv4.conf.{conf}.arp_ignore=1")
        host.run("sysctl", "-qw", f"net.ipv4.conf.{conf}.arp_announce=2")
    return host


def serve(host: Host) -> object:
    return host.popen([sys.executable, PEERS, "server", host.name, "80"], lab_log(host))


def lab_log(host: Host) -> Path:
    return host.lab.workdir / f"{host.name}-server.log"


def count(client: Host, n: int) -> dict[str, int]:
    out = client.run(sys.executable, PEERS, "count", VIP, "80", str(n), timeout=60)
    result: dict[str, int] = json.loads(out.stdout)
    return result


def dests(host: Host) -> set[str]:
    """Real servers of the VIP:80 service in the host's kernel, via ipvsadm."""
    out = host.run("ipvsadm", "-Ln", "-t", f"{VIP}:80", check=False)
    if out.returncode != 0:
        return set()
    return {
        line.split()[1]
        for line in out.stdout.splitlines()
        if line.strip().startswith("->") and line.split()[1][0].isdigit()
    }


def healthy(director: Director, address: str) -> bool:
    reals = director.status()["virtual_servers"][0]["real_servers"]
    return bool(next(r["healthy"] for r in reals if r["address"] == address))


def test_pair_programs_ipvs_checks_health_and_fails_over(lab: Lab) -> None:
    client = lab.host("client", "192.0.2.50")
    rs1, rs2 = real_server(lab, "rs1", "192.0.2.21"), real_server(lab, "rs2", "192.0.2.22")
    servers = {h.name: serve(h) for h in (rs1, rs2)}
    d1 = lab.start(lab.host("d1", "192.0.2.11"), instance_toml(150) + SERVICE)
    d1.wait_state("MASTER", master_down_interval(1, 150) + 10)
    d2 = lab.start(lab.host("d2", "192.0.2.12"), instance_toml(100) + SERVICE)
    d2.wait_state("BACKUP", 15)
    both = {"192.0.2.21:80", "192.0.2.22:80"}
    # The standby is warm: both directors hold the table.
    wait_for(lambda: dests(d1.host) == both and dests(d2.host) == both, 20)
    assert d1.status()["ipvs"]["error"] is None

    # rr spreads evenly; replies go straight back from the real servers.
    assert count(client, 20) == {"rs1": 10, "rs2": 10}

    # A dead real server leaves the table on both directors within
    # fall x delay_loop + connect_timeout (1 x 1 + 1 s), plus the check phase.
    servers["rs2"].kill()  # type: ignore[attr-defined]
    wait_for(
        lambda: dests(d1.host) == {"192.0.2.21:80"} and dests(d2.host) == {"192.0.2.21:80"}, 10
    )
    assert not healthy(d1, "192.0.2.22") and healthy(d1, "192.0.2.21")
    assert count(client, 6) == {"rs1": 6}

    # Back after rise (1) successful check.
    servers["rs2"] = serve(rs2)
    wait_for(lambda: dests(d1.host) == both and dests(d2.host) == both, 10)
    assert healthy(d1, "192.0.2.22")

    # The master crashes; the backup takes the VIP and the service goes on.
    d1.kill()
    d1.host.link(up=False)
    d2.wait_state("MASTER", master_down_interval(1, 100) + 5)
    wait_for(lambda: client.neighbour_mac(VIP) == d2.host.mac, 10)
    assert count(client, 10) == {"rs1": 5, "rs2": 5}

    # Stopping lvsha leaves the table in place (no flush, live connections survive).
    assert d2.terminate() == 0
    assert dests(d2.host) == both


def test_sync_daemon_keeps_a_live_connection_across_a_master_crash(lab: Lab) -> None:
    """sync_daemon_interface: the backup learns the master's connections."""
    client = lab.host("client", "192.0.2.50")
    for name, address in (("rs1", "192.0.2.21"), ("rs2", "192.0.2.22")):
        serve(real_server(lab, name, address))
    sync = 'sync_daemon_interface = "eth1"\n'
    d1 = lab.start(lab.host("d1", "192.0.2.11"), instance_toml(150, extra=sync) + SERVICE)
    d1.wait_state("MASTER", master_down_interval(1, 150) + 10)
    d2 = lab.start(lab.host("d2", "192.0.2.12"), instance_toml(100, extra=sync) + SERVICE)
    d2.wait_state("BACKUP", 15)
    wait_for(
        lambda: (
            d1.status()["ipvs"]["sync_daemon"] == "master"
            and d2.status()["ipvs"]["sync_daemon"] == "backup"
        ),
        15,
    )
    assert "master sync daemon" in d1.host.run("ipvsadm", "-L", "--daemon").stdout
    assert "backup sync daemon" in d2.host.run("ipvsadm", "-L", "--daemon").stdout
    wait_for(lambda: dests(d1.host) == {"192.0.2.21:80", "192.0.2.22:80"}, 20)

    session = client.popen_pipe([sys.executable, PEERS, "session", VIP, "80"])
    try:
        assert session.readline(15) == "connected"
        first = session.ask("before")
        server = first.split()[0]
        assert server in ("rs1", "rs2")
        # The backup's table learns the connection from the master's sync daemon.
        wait_for(lambda: "192.0.2.50" in d2.host.run("ipvsadm", "-Lnc").stdout, 15)
        d1.kill()
        d1.host.link(up=False)
        d2.wait_state("MASTER", master_down_interval(1, 100) + 5)
        wait_for(lambda: d2.status()["ipvs"]["sync_daemon"] == "master", 10)
        wait_for(lambda: client.neighbour_mac(VIP) == d2.host.mac, 10)
        # The same TCP connection, now through d2, reaches the same real server.
        assert session.ask("after").split()[0] == server
    finally:
        session.stop()


def test_kernel_counters_in_status_and_metrics(lab: Lab) -> None:
    client = lab.host("client", "192.0.2.50")
    for name, address in (("rs1", "192.0.2.21"), ("rs2", "192.0.2.22")):
        serve(real_server(lab, name, address))
    d1 = lab.start(
        lab.host("d1", "192.0.2.11"),
        instance_toml(100) + SERVICE,
        daemon='metrics = "127.0.0.1:9650"\n',
    )
    d1.wait_state("MASTER", master_down_interval(1, 100) + 10)
    wait_for(lambda: dests(d1.host) == {"192.0.2.21:80", "192.0.2.22:80"}, 20)
    assert count(client, 8) == {"rs1": 4, "rs2": 4}

    def kernel_connections() -> int:
        # A reload runs an IPVS pass, which reads the counters; the kernel's
        # estimator folds them into the totals every 2 s, hence the retries.
        d1.signal(signal.SIGHUP)
        service = d1.status()["virtual_servers"][0]
        return int((service.get("kernel") or {}).get("connections", 0))

    wait_for(lambda: kernel_connections() == 8, 15, interval=1.0)
    reals = d1.status()["virtual_servers"][0]["real_servers"]
    assert [r["kernel"]["connections"] for r in reals] == [4, 4]
    assert all(r["kernel"]["packets_in"] > 0 for r in reals)
    code = (
        "import urllib.request,sys;sys.stdout.write(urllib.request.urlopen("
        "'http://127.0.0.1:9650/metrics',timeout=5).read().decode())"
    )
    text = d1.host.run(sys.executable, "-c", code).stdout
    assert (
        'lvsha_ipvs_connections_total{real_server="",virtual_server="tcp/192.0.2.100:80"} 8.0'
        in text
    )
    assert (
        'lvsha_ipvs_connections_total{real_server="192.0.2.21:80",'
        'virtual_server="tcp/192.0.2.100:80"} 4.0'
    ) in text
    assert 'lvsha_real_server_check_latency_seconds{real_server="192.0.2.21:80"' in text


def test_daemon_repairs_drift_and_leaves_foreign_services(lab: Lab) -> None:
    for name, address in (("rs1", "192.0.2.21"), ("rs2", "192.0.2.22")):
        serve(real_server(lab, name, address))
    d1 = lab.start(lab.host("d1", "192.0.2.11"), instance_toml(100) + SERVICE)
    both = {"192.0.2.21:80", "192.0.2.22:80"}
    wait_for(lambda: dests(d1.host) == both, 20)
    foreign = ("-t", "198.51.100.7:25")
    d1.host.run("ipvsadm", "-A", *foreign, "-s", "wlc")
    # An operator's stray commands: a real server deleted, then the service.
    d1.host.run("ipvsadm", "-d", "-t", f"{VIP}:80", "-r", "192.0.2.22:80")
    wait_for(lambda: dests(d1.host) == both, 15, interval=0.2)  # the 10 s resync
    d1.host.run("ipvsadm", "-D", "-t", f"{VIP}:80")
    wait_for(lambda: dests(d1.host) == both, 15, interval=0.2)
    # The log says what was repaired, each time.
    log = d1.log_text()
    assert log.count(f"add dest 192.0.2.22:80 dr weight 1 to TCP {VIP}:80") == 3  # start + 2
    assert log.count(f"add service TCP {VIP}:80") == 2
    # The foreign service was never touched.
    assert "198.51.100.7:25" in d1.host.run("ipvsadm", "-Ln").stdout
