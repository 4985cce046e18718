"""import-keepalived against hostile input: bounded in size, FILE:LINE messages, no traceback."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from lvsha.exits import EX_CONFIG
from lvsha.tools.keepalived import reader
from lvsha.tools.keepalived.importer import convert, main
from lvsha.tools.keepalived.reader import KeepalivedImportError

INSTANCE = """
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        192.0.2.100
    }
}
"""


def problems(path: Path) -> list[str]:
    with pytest.raises(KeepalivedImportError) as info:
        convert(path)
    return info.value.problems


def test_brace_expansion_is_capped(tmp_path: Path) -> None:
    path = tmp_path / "k.conf"
    path.write_text("include " + "{a,b}" * 26 + "\n" + INSTANCE)  # 2^26 patterns
    (problem,) = problems(path)
    assert problem.startswith(f"{path}:1: include ")
    assert f"more than {reader.MAX_ALTERNATIVES} alternatives" in problem


def test_parameter_substitution_is_capped_in_size(tmp_path: Path) -> None:
    path = tmp_path / "k.conf"
    path.write_text("$X=${X}${X}\n$X\n" + INSTANCE)  # doubles each round
    path.write_text("$X=a${X}${X}\n$X\n" + INSTANCE)
    (problem,) = problems(path)
    assert problem.startswith(f"{path}:2: parameter substitution makes the line longer than")


def test_only_regular_files_are_read(tmp_path: Path) -> None:
    path = tmp_path / "k.conf"
    path.write_text("include /dev/zero\n" + INSTANCE)
    (problem,) = problems(path)
    assert problem == f"{path}:1: cannot read /dev/zero: not a regular file"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert problems(fifo) == [f"cannot read {fifo}: not a regular file"]


def test_a_huge_file_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.conf"
    with big.open("wb") as f:
        f.truncate(reader.MAX_FILE_BYTES + 1)  # sparse: no disk used
    path = tmp_path / "k.conf"
    path.write_text(f"include {big}\n" + INSTANCE)
    (problem,) = problems(path)
    assert problem == f"{path}:1: cannot read {big}: larger than {reader.MAX_FILE_BYTES} bytes"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("    priority " + "9" * 5000, "priority: an integer of 5000 digits is outside 1..255"),
        (
            "    advert_int 1" + "0" * 500,
            "advert_int: '1000000000000000000000000000000000000000...",
        ),
    ],
)
def test_huge_numbers_are_file_line_messages(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "k.conf"
    path.write_text(INSTANCE.replace("    interface eth0", "    interface eth0\n" + line))
    (problem,) = problems(path)
    assert problem.startswith(f"{path}:4: {message}"), problem


def test_bad_regex_is_named_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "k.conf"
    path.write_text(
        INSTANCE
        + "virtual_server 192.0.2.100 80 {\n  real_server 198.51.100.1 80 {\n"
        + "    HTTP_GET {\n      url {\n        path /\n        regex (unclosed\n"
        + "      }\n    }\n  }\n}\n"
    )
    result = convert(path)
    (item,) = [u for u in result.untranslated if ".regex:" in u]
    assert f"at {path}:14: not a Python regular expression" in item


def test_control_characters_are_escaped_in_the_header(tmp_path: Path) -> None:
    path = tmp_path / "k.conf"
    # a keyword with a terminal escape, a carriage return and a line separator
    path.write_text(INSTANCE + 'vrrp_\u2028\x1b[2J\rname="pwned" 1\n')
    result = convert(path)
    header = result.toml.split("\n[daemon]\n")[0]
    assert not any(c in header for c in "\x1b\r\u2028")
    assert "\\u001b" in header and "\\u2028" in header
    assert all(line.startswith("#") for line in header.splitlines() if line)
    assert "name" not in tomllib.loads(result.toml)["daemon"]


def test_output_not_written_when_it_does_not_validate(tmp_path: Path) -> None:
    # the same VIP in two instances passes the translator but not check-config
    path = tmp_path / "k.conf"
    path.write_text(INSTANCE + INSTANCE.replace("VI_1", "VI_2").replace("51", "52"))
    out = tmp_path / "out.toml"
    assert main(str(path), str(out)) == EX_CONFIG
    assert not out.exists()
