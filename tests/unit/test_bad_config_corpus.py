"""The bad-config corpus: every broken file gives exactly the messages it must give.

Each file in tests/data/bad-config/ is tests/data/good-config/lvs01.toml
broken once (TOML syntax, a type, a range, an unknown key, a contradiction,
a missing key ...), with its expected problems in its header:

    # range: priority above 255
    # expect: vrrp.VI_1.priority: must be 1..255, not 256

`lvsha check-config FILE` (as a subprocess, as an operator runs it) must exit
78 (EX_CONFIG) without a traceback and print `FILE: PROBLEM` for every
expected problem, and no other problem: the count line says how many.
`{path}` in an expectation stands for the file's path; TOML line numbers
count the header lines too. The good corpus (and conf/lvsha.toml) must pass.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lvsha.exits import EX_CONFIG, EX_OK

ROOT = Path(__file__).resolve().parents[2]
BAD = sorted((ROOT / "tests" / "data" / "bad-config").glob("*.toml"))
GOOD = [
    *sorted((ROOT / "tests" / "data" / "good-config").glob("*.toml")),
    ROOT / "conf" / "lvsha.toml",
]
EXPECT = "# expect: "


def check_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lvsha.cli", "check-config", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
        check=False,
    )


def expectations(path: Path) -> list[str]:
    header = path.read_bytes().decode("utf-8", errors="replace").splitlines()
    return [
        line.removeprefix(EXPECT).replace("{path}", str(path))
        for line in header
        if line.startswith(EXPECT)
    ]


def test_the_corpus_is_big_enough_and_every_file_says_what_it_expects() -> None:
    assert len(BAD) >= 40
    for path in BAD:
        assert expectations(path), f"{path.name} has no '{EXPECT}' line"


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_config_is_refused_with_its_messages(path: Path) -> None:
    out = check_config(path)
    assert "Traceback" not in out.stderr, out.stderr
    assert out.returncode == EX_CONFIG, out.stderr
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    expected = expectations(path)
    for problem in expected:
        assert f"{path}: {problem}" in lines, f"missing {problem!r} in:\n{out.stderr}"
    assert lines[-1] == f"{path}: {len(expected)} problem(s)", out.stderr


@pytest.mark.parametrize("path", GOOD, ids=[p.stem for p in GOOD])
def test_good_config_passes(path: Path) -> None:
    out = check_config(path)
    assert (out.returncode, out.stderr) == (EX_OK, ""), out.stderr
    assert out.stdout.startswith(f"{path}: ok (")
