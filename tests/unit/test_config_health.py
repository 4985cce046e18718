"""Health-check keys: parsed with keepalived's meaning, every problem by key path."""

from __future__ import annotations

import pytest

from lvsha.config import HttpCheck, MiscCheck, RealServerConfig, TcpCheck, parse_config
from lvsha.errors import ConfigError

SERVICE = """
[[virtual_server]]
address = "192.0.2.84"
port = 80
delay_loop = 5
"""
RS = "virtual_server[0].real_server[0]"


def real(body: str, service: str = "") -> str:
    return SERVICE + service + f"[[virtual_server.real_server]]\naddress = '198.51.100.1'\n{body}\n"


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    return info.value.problems


def test_every_health_key_is_read() -> None:
    text = real(
        """
retry = 2
delay_before_retry = 0.5
rise = 3
fall = 2
warmup = 1.5
initial_state = "down"
[virtual_server.real_server.ssl_get]
path = "/health?full=1"
status = [200, 204]
regex = "ok|OK"
digest = "9B3A0C85A887A256D6939DA88AABD8CD"
host = "www.example.com"
sni = "www.example.com"
verify_certificate = true
connect_timeout = 2
connect_ip = "198.51.100.99"
connect_port = 8443
""",
        service="""quorum = 2
hysteresis = 1
inhibit_on_failure = true
sorry_server = { address = "203.0.113.9", port = 8080 }
""",
    )
    (vs,) = parse_config(text).virtual_servers
    (rs,) = vs.real_servers
    assert (vs.quorum, vs.hysteresis, vs.inhibit_on_failure) == (2, 1, True)
    assert vs.sorry_server == RealServerConfig("203.0.113.9", 8080)
    assert (rs.retry, rs.delay_before_retry, rs.rise, rs.fall, rs.warmup, rs.initial_state) == (
        2,
        0.5,
        3,
        2,
        1.5,
        "down",
    )
    assert rs.ssl_get == HttpCheck(
        tls=True,
        path="/health?full=1",
        status=(200, 204),
        regex="ok|OK",
        digest="9b3a0c85a887a256d6939da88aabd8cd",
        host="www.example.com",
        sni="www.example.com",
        verify_certificate=True,
        connect_timeout=2.0,
        connect_ip="198.51.100.99",
        connect_port=8443,
    )
    assert rs.check is rs.ssl_get


def test_defaults_are_keepalived_ones_or_documented() -> None:
    (vs,) = parse_config(real("http_get = {}")).virtual_servers
    (rs,) = vs.real_servers
    assert (vs.quorum, vs.hysteresis, vs.inhibit_on_failure, vs.sorry_server) == (1, 0, False, None)
    assert (rs.retry, rs.delay_before_retry, rs.warmup) == (None, None, None)  # per check type
    assert (rs.rise, rs.fall, rs.initial_state) == (1, 1, "up")
    assert rs.http_get == HttpCheck()
    assert rs.http_get.status == (200,) and rs.http_get.verify_certificate is False


def test_misc_check_and_sorry_server_defaults() -> None:
    text = real(
        "misc_check = { argv = ['/usr/local/bin/check', '--port', '80'] }",
        service="sorry_server = { address = '203.0.113.9' }\n",
    )
    (vs,) = parse_config(text).virtual_servers
    assert vs.real_servers[0].misc_check == MiscCheck(("/usr/local/bin/check", "--port", "80"))
    assert vs.sorry_server == RealServerConfig("203.0.113.9", 80)  # the service's port


def test_tcp_check_is_unchanged() -> None:
    (vs,) = parse_config(real("tcp_check = { connect_timeout = 3 }")).virtual_servers
    assert vs.real_servers[0].tcp_check == TcpCheck(3.0)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("retry = -1", f"{RS}.retry: must be 0..100, not -1"),
        ("rise = 0", f"{RS}.rise: must be 1..100, not 0"),
        ("fall = 'x'", f"{RS}.fall: must be an integer, not a string"),
        ("warmup = -1", f"{RS}.warmup: must be 0..86400, not -1.0"),
        ("delay_before_retry = true", f"{RS}.delay_before_retry: must be a number, not a boolean"),
        ("initial_state = 'alpha'", f"{RS}.initial_state: must be one of up, down, not 'alpha'"),
        (
            "http_get = { status = [200, 999] }",
            f"{RS}.http_get.status[1]: must be an HTTP status code 100..599 or a range "
            '"200-299", not 999',
        ),
        ("http_get = { status = [] }", f"{RS}.http_get.status: must list at least one status code"),
        (
            "http_get = { path = 'health' }",
            f"{RS}.http_get.path: 'health' must start with / and hold no spaces or control "
            "characters",
        ),
        (
            "http_get = { path = '/a b' }",
            f"{RS}.http_get.path: '/a b' must start with / and hold no spaces or control "
            "characters",
        ),
        (
            'http_get = { host = "a\\r\\nX: y" }',
            f"{RS}.http_get.host: 'a\\r\\nX: y' is not a host name",
        ),
        (
            "http_get = { regex = '(' }",
            f"{RS}.http_get.regex: is not a valid regular expression: missing ), unterminated "
            "subpattern at position 0",
        ),
        (
            "http_get = { digest = 'abc' }",
            f"{RS}.http_get.digest: must be 32 hexadecimal digits (the MD5 of the body, as "
            "keepalived's genhash prints)",
        ),
        ("http_get = { sni = 'x' }", f"{RS}.http_get.sni: is only used with ssl_get"),
        (
            "http_get = { verify_certificate = true }",
            f"{RS}.http_get.verify_certificate: is only used with ssl_get",
        ),
        (
            "ssl_get = { verify_certificates = true }",
            f"{RS}.ssl_get.verify_certificates: unknown key (did you mean 'verify_certificate'?)",
        ),
        ("ssl_get = { connect_port = 0 }", f"{RS}.ssl_get.connect_port: must be 1..65535, not 0"),
        ("misc_check = { timeout = 3 }", f"{RS}.misc_check.argv: is required"),
        (
            "misc_check = { argv = [] }",
            f"{RS}.misc_check.argv: must be a non-empty array of non-empty strings "
            "(argv, no shell)",
        ),
        (
            "misc_check = { argv = 'check.sh' }",
            f"{RS}.misc_check.argv: must be an array, not a string",
        ),
        (
            "misc_check = { argv = ['x'], timeout = 0 }",
            f"{RS}.misc_check.timeout: must be 0.01..3600, not 0.0",
        ),
        (
            "tcp_check = {}\nhttp_get = {}",
            f"{RS}: has tcp_check and http_get; configure at most one check",
        ),
        ("tcp_chek = {}", f"{RS}.tcp_chek: unknown key (did you mean 'tcp_check'?)"),
        ("rize = 2", f"{RS}.rize: unknown key (did you mean 'rise'?)"),
    ],
)
def test_each_real_server_problem_by_key_path(body: str, expected: str) -> None:
    assert expected in problems(real(body))


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        ("quorum = -1\n", "virtual_server[0].quorum: must be 0..4294967295, not -1"),
        ("hysteresis = 'a'\n", "virtual_server[0].hysteresis: must be an integer, not a string"),
        (
            "inhibit_on_failure = 1\n",
            "virtual_server[0].inhibit_on_failure: must be true or false, not an integer",
        ),
        ("sorry_server = { port = 80 }\n", "virtual_server[0].sorry_server.address: is required"),
        (
            "sorry_server = { address = 'x' }\n",
            "virtual_server[0].sorry_server.address: 'x' is not an IP address",
        ),
        (
            "sorry_server = { address = '203.0.113.9', weight = 2 }\n",
            "virtual_server[0].sorry_server.weight: unknown key",
        ),
        (
            "sorry_server = { address = '198.51.100.1' }\n",
            "virtual_server[0].sorry_server: 198.51.100.1:80 is also a real server",
        ),
        (
            "sorry_server = '203.0.113.9'\n",
            "virtual_server[0].sorry_server: must be a table, not a string",
        ),
        ("qourum = 2\n", "virtual_server[0].qourum: unknown key (did you mean 'quorum'?)"),
    ],
)
def test_each_service_problem_by_key_path(service: str, expected: str) -> None:
    assert expected in problems(real("tcp_check = {}", service=service))


def test_all_problems_at_once() -> None:
    found = problems(real("rise = 0\nfall = 0\nhttp_get = { status = [1], path = 'x' }"))
    assert len(found) == 4


def test_unreachable_quorum_with_a_sorry_server_is_a_warning() -> None:
    config = parse_config(
        real("tcp_check = {}", service="quorum = 2\nsorry_server = { address = '203.0.113.9' }\n")
    )
    assert config.warnings == (
        "virtual_server[0].quorum: 2 + hysteresis 0 exceeds the total weight 1 of the real "
        "servers; the sorry server will stay in",
    )
