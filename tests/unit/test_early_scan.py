"""runtime/early.py reads the interfaces of `lvsha run` without argparse and tomllib.

What it finds must be what the real parser finds, for every good file in
the corpus and the shipped example; what it misreads must open nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lvsha.config import load_config
from lvsha.runtime import early
from lvsha.runtime.early import EarlyListener, scan

ROOT = Path(__file__).resolve().parents[2]
FILES = [*sorted((ROOT / "tests/data/good-config").glob("*.toml")), ROOT / "conf/lvsha.toml"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_the_scan_agrees_with_the_parser(path: Path) -> None:
    wanted: dict[tuple[str, int], bool] = {}
    for cfg in load_config(str(path)).vrrp:
        key = (cfg.interface, 6 if any(":" in v.address for v in cfg.virtual_ipaddress) else 4)
        wanted[key] = wanted.get(key, False) or not cfg.unicast_peers
    assert scan(path.read_text()) == wanted


def test_the_scan_reads_quotes_comments_peers_and_skips_other_tables() -> None:
    text = """
[vrrp.A]
interface = 'eth0'  # a comment
unicast_peers = ["192.0.2.1"]
[vrrp.B]
interface = "eth0"
unicast_peers = [ ]
[vrrp."C"]
interface="eth2"
unicast_peers = [
  "192.0.2.3",
]
[vrrp.D.track]
interface = "not-an-instance"
[[virtual_server]]
interface = "nor-this"
[daemon]
interface = "nor-that"
"""
    assert scan(text) == {("eth0", 4): True, ("eth2", 4): False}  # B is multicast on eth0


def test_the_scan_tells_an_ipv6_instance_by_its_addresses_on_one_line_or_several() -> None:
    text = """
[vrrp.V4]
interface = "eth0"
virtual_ipaddress = ["192.0.2.100/32 dev eth0"]  # a comment: with a colon
[vrrp.V6]
interface = "eth0"
version = 3
virtual_ipaddress = ["2001:db8::100/64"]
[vrrp.W6]
interface = "eth1"
unicast_peers = ["fe80::12"]
virtual_ipaddress = [
  "192.0.2.101/32",  # a comment
  "2001:db8::101/64",
]
interface = "eth1"
[vrrp.W4]
interface = "eth2"
virtual_ipaddress = [
  "192.0.2.102/32",
]
unicast_peers = ["192.0.2.12"]
"""
    assert scan(text) == {
        ("eth0", 4): True,
        ("eth0", 6): True,
        ("eth1", 6): False,
        ("eth2", 4): False,
    }


@pytest.mark.parametrize(
    ("argv", "path"),
    [
        (["run"], "/default.toml"),
        (["run", "--config", "/a.toml"], "/a.toml"),
        (["run", "--log-format", "json", "--config=/b.toml"], "/b.toml"),
        (["status"], None),
        ([], None),
    ],
)
def test_the_config_path_is_found_before_argparse(
    argv: list[str], path: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []

    def fake_open(config_path: str) -> EarlyListener:
        opened.append(config_path)
        return EarlyListener()

    monkeypatch.setattr(EarlyListener, "open", staticmethod(fake_open))
    listener = EarlyListener.for_argv(argv, "/default.toml")
    assert (listener is None) == (path is None)
    assert opened == ([] if path is None else [path])


def test_what_it_cannot_read_opens_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b'[vrrp.VI_1\ninterface = \xff\xfe"\n')
    long = tmp_path / "long.toml"
    long.write_text('[vrrp.VI_1]\ninterface = "an-interface-name-too-long"\n')
    for path in (bad, long, tmp_path / "missing.toml"):
        assert EarlyListener.open(str(path)).interfaces == []
    assert early.scan("") == {}
