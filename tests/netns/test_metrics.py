"""Prometheus metrics scraped over HTTP from a running director."""

from __future__ import annotations

import re

from lab import Lab, instance_toml

from lvsha.core.vrrp import master_down_interval


def scrape(lab_host: object, port: int) -> str:
    code = (
        "import urllib.request,sys;"
        f"sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:{port}/metrics',timeout=5)"
        ".read().decode())"
    )
    out = lab_host.run("python3", "-c", code)  # type: ignore[attr-defined]
    return str(out.stdout)


def value(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    match = re.search(rf"^{name}{{{re.escape(want)}}} (\S+)$", text, re.M)
    assert match is not None, f"{name}{{{want}}} not in metrics"
    return float(match.group(1))


def test_metrics_follow_the_status(lab: Lab) -> None:
    host = lab.host("d1", "192.0.2.11")
    d1 = lab.start(host, instance_toml(100), daemon='metrics = "127.0.0.1:9650"\n')
    d1.wait_state("MASTER", master_down_interval(1, 100) + 3)
    text = scrape(host, 9650)
    assert value(text, "lvsha_vrrp_state", instance="VI_1", state="MASTER") == 1.0
    assert value(text, "lvsha_vrrp_state", instance="VI_1", state="BACKUP") == 0.0
    assert value(text, "lvsha_vrrp_priority", instance="VI_1") == 100.0
    assert value(text, "lvsha_vrrp_became_master_total", instance="VI_1") == 1.0
    sent = value(text, "lvsha_vrrp_adverts_sent_total", instance="VI_1")
    assert sent >= 1.0
    assert sent <= d1.status()["instances"][0]["counters"]["adverts_sent"]
