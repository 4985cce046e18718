"""The generated configs, every option at once, parsed by the real daemons' own checkers.

`bird -p` (parse only) and `exabgp --test` (configuration check) read the
files and start nothing, so this needs no network: a syntax slip in a
rarely used option (BFD, multihop, passive, IPv6, attributes) fails here,
not on an operator's director.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from lvsha.adapters import bird, exabgp
from lvsha.config.model import BgpConfig, BgpPeerConfig
from lvsha.core.announce import Route

PEERS = (
    BgpPeerConfig("192.0.2.1", 64512),
    BgpPeerConfig("192.0.2.2", 64514, hold_time=9, multihop=2, passive=True, bfd=True),
    BgpPeerConfig("2001:db8::1", 64512, local_address="2001:db8::11", hold_time=0),
)
CFG = BgpConfig(
    local_as=64513, router_id="192.0.2.11", peers=PEERS, bfd=True, communities=((64513, 1),), med=5
)
ROUTES = {
    "203.0.113.100/32": Route("203.0.113.100/32"),
    "203.0.113.101/32": Route("203.0.113.101/32", "192.0.2.50", ((65000, 1), (65000, 2)), 7),
    "2001:db8:100::1/128": Route("2001:db8:100::1/128"),
}


@pytest.mark.skipif(shutil.which("bird") is None, reason="needs Debian's bird2")
def test_bird_parses_the_generated_config(tmp_path: Path) -> None:
    conf = tmp_path / "bird.conf"
    conf.write_text(bird.render_config(CFG, ROUTES, {"203.0.113.100/32"}))
    out = subprocess.run(
        ["bird", "-p", "-c", str(conf)], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    conf.write_text(conf.read_text().replace("hold time 9;", "hold time 9; bogus;"))
    out = subprocess.run(
        ["bird", "-p", "-c", str(conf)], capture_output=True, text=True, timeout=30
    )
    assert out.returncode != 0  # the check does check


@pytest.mark.skipif(not Path(exabgp.DEFAULT_PATH).exists(), reason="needs Debian's exabgp")
def test_exabgp_checks_the_generated_config(tmp_path: Path) -> None:
    conf = tmp_path / "exabgp.conf"
    conf.write_text(exabgp.render_config(CFG, ["/usr/bin/python3", "-S", "/r.py", "/s", "1.0"]))
    argv = exabgp.speaker_argv(exabgp.DEFAULT_PATH, conf)
    argv.insert(-1, "--test")
    env = exabgp.speaker_env()
    env.pop("PYTHONPATH", None)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-2000:]
    conf.write_text(conf.read_text().replace("hold-time 9;", "hold-time 9; bogus 1;"))
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert out.returncode != 0


def test_speaker_for_picks_the_adapter(tmp_path: Path) -> None:
    from dataclasses import replace

    from lvsha.adapters.bgp_speakers import speaker_for
    from lvsha.adapters.bird import BirdSpeaker
    from lvsha.adapters.exabgp import ExabgpSpeaker

    cfg = replace(CFG, state_dir=str(tmp_path))
    assert isinstance(speaker_for(cfg), ExabgpSpeaker)  # the default
    assert isinstance(speaker_for(replace(cfg, speaker="bird")), BirdSpeaker)
    with pytest.raises(ValueError, match=r"bgp\.speaker"):
        speaker_for(replace(cfg, speaker="gobgp"))
