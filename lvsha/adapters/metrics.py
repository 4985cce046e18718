"""Prometheus `/metrics`, served from the event loop (off unless configured).

The values are read from the same document as `lvsha status --json` at
scrape time, inside the loop's thread, so a scrape never races the machines
and the two views never disagree. prometheus-client is optional (extra
`metrics`); without it a configured endpoint is an error at start.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from lvsha.errors import KernelError

STATES = ("INIT", "BACKUP", "MASTER", "FAULT")
StatusSource = Callable[[], dict[str, Any]]


def render(status: dict[str, Any]) -> bytes:
    """The text exposition of one status document."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(lambda: status))
    data: bytes = generate_latest(registry)
    return data


class _Collector:
    def __init__(self, source: StatusSource) -> None:
        self.source = source

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        status = self.source()
        state = GaugeMetricFamily(
            "lvsha_vrrp_state",
            "1 for the instance's current VRRP state",
            labels=["instance", "state"],
        )
        priority = GaugeMetricFamily(
            "lvsha_vrrp_priority", "configured priority", labels=["instance"]
        )
        counters = {
            "adverts_sent": "advertisements sent",
            "adverts_received": "advertisements accepted",
            "became_master": "transitions to MASTER",
            "priority_zero_sent": "priority-0 advertisements sent",
            "priority_zero_received": "priority-0 advertisements accepted",
            "garp_sent": "gratuitous ARP frames sent",
            "send_errors": "advertisements the kernel refused",
        }
        families = {
            key: CounterMetricFamily(f"lvsha_vrrp_{key}", text, labels=["instance"])
            for key, text in counters.items()
        }
        discarded = CounterMetricFamily(
            "lvsha_vrrp_discarded",
            "datagrams dropped by reason (RFC 3768 section 7.1)",
            labels=["instance", "reason"],
        )
        for inst in status["instances"]:
            name = inst["name"]
            for s in STATES:
                state.add_metric([name, s], 1.0 if inst["state"] == s else 0.0)
            priority.add_metric([name], inst["priority"])
            for key, family in families.items():
                family.add_metric([name], inst["counters"][key])
            for reason, count in inst["counters"]["discarded"].items():
                discarded.add_metric([name, reason], count)
        healthy = GaugeMetricFamily(
            "lvsha_real_server_healthy",
            "1 when the real server passes its checks",
            labels=["virtual_server", "real_server"],
        )
        weight = GaugeMetricFamily(
            "lvsha_real_server_weight",
            "configured weight",
            labels=["virtual_server", "real_server"],
        )
        latency = GaugeMetricFamily(
            "lvsha_real_server_check_latency_seconds",
            "duration of the last health check",
            labels=["virtual_server", "real_server"],
        )
        kernel = {
            name: CounterMetricFamily(
                f"lvsha_ipvs_{name}",
                f"kernel IPVS counter ({name}), at the last IPVS pass",
                labels=["virtual_server", "real_server"],
            )
            for name in ("connections", "packets_in", "packets_out", "bytes_in", "bytes_out")
        }
        conns = GaugeMetricFamily(
            "lvsha_ipvs_real_server_connections",
            "kernel IPVS connections now, at the last IPVS pass",
            labels=["virtual_server", "real_server", "state"],
        )
        for vs in status["virtual_servers"]:
            vname = (
                f"fwmark:{vs['fwmark']}" if vs.get("fwmark") else f"{vs['address']}:{vs['port']}"
            )
            vlabel = f"{vs['protocol']}/{vname}"
            for name, value in (vs.get("kernel") or {}).items():
                kernel[name].add_metric([vlabel, ""], value)
            for rs in vs["real_servers"]:
                labels = [vlabel, f"{rs['address']}:{rs['port']}"]
                healthy.add_metric(labels, 1.0 if rs["healthy"] else 0.0)
                weight.add_metric(labels, rs["weight"])
                check = rs.get("check") or {}
                if check.get("latency") is not None:
                    latency.add_metric(labels, check["latency"])
                measured: dict[str, int] = dict(rs.get("kernel") or {})
                for conn_state in ("active", "inactive"):
                    now = measured.pop(f"{conn_state}_connections", None)
                    if now is not None:
                        conns.add_metric([*labels, conn_state], now)
                for counter, amount in measured.items():
                    kernel[counter].add_metric(labels, amount)
        yield from (state, priority, *families.values(), discarded, healthy, weight, latency)
        yield from (*kernel.values(), conns)


class MetricsServer:
    """A minimal HTTP/1.0 server for GET /metrics on the event loop."""

    def __init__(self, listen: str, source: StatusSource) -> None:
        host, _, port = listen.rpartition(":")
        self.host = host.strip("[]") or "127.0.0.1"
        self.port = int(port)
        self.source = source
        self.scrapes = 0
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        try:
            import prometheus_client  # noqa: F401
        except ImportError as exc:
            raise KernelError(
                "metrics needs prometheus-client: pip install 'lvsha[metrics]'"
            ) from exc
        try:
            self._server = await asyncio.start_server(self._client, self.host, self.port)
        except OSError as exc:
            raise KernelError(
                f"cannot listen for metrics on {self.host}:{self.port}: {exc}"
            ) from exc

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                request = await reader.readline()
                while (await reader.readline()).strip():  # skip headers, bounded by the timeout
                    pass
            parts = request.decode("latin-1").split()
            if len(parts) >= 2 and parts[0] == "GET" and parts[1].split("?")[0] == "/metrics":
                self.scrapes += 1
                body = render(self.source())
                head = (
                    "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                )
            else:
                body = b"not found: try /metrics\n"
                head = "HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\n"
            writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError, OSError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
