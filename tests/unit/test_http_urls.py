"""HTTP checks with several URLs (all must pass) and keepalived-style status ranges."""

from __future__ import annotations

import asyncio

import pytest

from lvsha.adapters.probe import every_url_probe, probe_for
from lvsha.config import HttpCheck, RealServerConfig, parse_config
from lvsha.config.model import HttpUrl
from lvsha.errors import ConfigError
from tests.unit.test_probe import LOCAL, http_server, reply

SERVICE = """
[[virtual_server]]
address = "192.0.2.100"
port = 80
[[virtual_server.real_server]]
address = "198.51.100.10"
port = 80
http_get = {check}
"""


def check_of(text: str) -> HttpCheck:
    (vs,) = parse_config(SERVICE.format(check=text)).virtual_servers
    check = vs.real_servers[0].http_get
    assert check is not None
    return check


def test_status_ranges_as_keepalived_writes_them() -> None:
    check = check_of('{ status = ["200-204", 301, "302"] }')
    assert check.status == (200, 201, 202, 203, 204, 301, 302)


def test_several_urls_each_with_its_own_expectations() -> None:
    check = check_of(
        '{ url = [{ path = "/", status = ["200-299"] },'
        ' { path = "/api/health", digest = "0123456789abcdef0123456789ABCDEF" }] }'
    )
    assert check.urls == (
        HttpUrl("/", tuple(range(200, 300))),
        HttpUrl("/api/health", (200,), None, "0123456789abcdef0123456789abcdef"),
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{ status = ["299-200"] }', "status[0]: must be an HTTP status code 100..599 or a range"),
        ('{ status = ["2xx"] }', "status[0]: must be an HTTP status code 100..599 or a range"),
        ("{ url = [] }", "url: must be a non-empty array"),
        ('{ path = "/", url = [{ path = "/a" }] }', "url: give either url = [...] or path"),
        ('{ url = [{ pth = "/a" }] }', "url[0].pth: unknown key"),
    ],
)
def test_url_problems_have_key_paths(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_of(text)
    assert any(
        p.startswith(f"virtual_server[0].real_server[0].http_get.{problem}")
        for p in info.value.problems
    ), info.value.problems


def test_every_url_must_pass() -> None:
    def respond(head: bytes) -> bytes:
        return reply("200 OK", b"ok") if head.startswith(b"GET / ") else reply("503 Busy")

    check = HttpCheck(more_urls=(HttpUrl("/api", (200,)),))

    async def go() -> tuple[object, object, list[bytes]]:
        async with http_server(respond) as (port, seen):
            both = await every_url_probe(LOCAL, port, check)
            first_only = await every_url_probe(
                LOCAL, port, HttpCheck(more_urls=(HttpUrl("/", (200,)),))
            )
            return both, first_only, seen

    both, first_only, seen = asyncio.run(go())
    assert not both.ok and both.detail == "/api: HTTP 503, expected 200"  # type: ignore[attr-defined]
    assert first_only.ok  # type: ignore[attr-defined]
    assert [s.split(b" ")[1] for s in seen[:2]] == [b"/", b"/api"]
    rs = RealServerConfig("198.51.100.10", 80, http_get=check)
    assert probe_for(rs, 5.0) is not None
