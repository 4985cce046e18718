"""`lvsha realserver setup --write`: the persistent files, written into a temp root.

No privileges needed: `apply=False` writes the files only, and the checks of
VIP syntax are pure. The namespace tier applies the same setup for real.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lvsha.tools.realserver import (
    IFUPDOWN_FILE,
    NETWORKD_FILE,
    SYSCTL_FILE,
    main_setup,
    parse_vips,
    persistent_files,
    setup,
)

VIPS = ["192.0.2.100", "198.51.100.80"]


def write(root: Path, fmt: str, vips: list[str] = VIPS, dry_run: bool = False) -> list[str]:
    return setup(vips, fmt, dry_run, apply=False, root=root)


def test_sysctl_d_holds_the_cookbook_settings(tmp_path: Path) -> None:
    done = write(tmp_path, "sysctl.d")
    conf = tmp_path / SYSCTL_FILE
    assert done == [
        f"wrote {conf}",
        "note: the VIPs are not persisted; use --write ifupdown or --write networkd",
    ]
    settings = [line for line in conf.read_text().splitlines() if line and not line.startswith("#")]
    assert settings == [
        "net.ipv4.conf.all.arp_ignore = 1",
        "net.ipv4.conf.all.arp_announce = 2",
        "net.ipv4.conf.lo.arp_ignore = 1",
        "net.ipv4.conf.lo.arp_announce = 2",
    ]


def test_ifupdown_one_lo_alias_per_vip(tmp_path: Path) -> None:
    done = write(tmp_path, "ifupdown")
    path = tmp_path / IFUPDOWN_FILE
    assert done == [f"wrote {tmp_path / SYSCTL_FILE}", f"wrote {path}"]
    body = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    assert body == [
        "auto lo:0",
        "iface lo:0 inet static",
        "    address 192.0.2.100",
        "    netmask 255.255.255.255",
        "auto lo:1",
        "iface lo:1 inet static",
        "    address 198.51.100.80",
        "    netmask 255.255.255.255",
    ]


def test_ifupdown_warns_when_interfaces_does_not_source_the_folder(tmp_path: Path) -> None:
    interfaces = tmp_path / "etc/network/interfaces"
    interfaces.parent.mkdir(parents=True)
    interfaces.write_text("auto lo\niface lo inet loopback\n")
    assert write(tmp_path, "ifupdown")[-1].startswith(f"note: {interfaces} does not read")
    interfaces.write_text("source /etc/network/interfaces.d/*\nauto lo\n")
    assert not any(line.startswith("note:") for line in write(tmp_path, "ifupdown"))


def test_networkd_new_file_for_lo(tmp_path: Path) -> None:
    write(tmp_path, "networkd")
    text = (tmp_path / NETWORKD_FILE).read_text()
    assert "\n[Match]\nName=lo\n" in text
    assert "[Address]\nAddress=192.0.2.100/32\n" in text
    assert "[Address]\nAddress=198.51.100.80/32\n" in text


def test_networkd_drop_in_when_a_network_file_already_matches_lo(tmp_path: Path) -> None:
    # networkd uses only the first matching .network file: a second one for lo
    # would be ignored, so lvsha extends the existing one
    lib = tmp_path / "usr/lib/systemd/network"
    lib.mkdir(parents=True)
    (lib / "05-loopback.network").write_text("[Match]\nName=lo dummy*\n\n[Network]\n")
    (lib / "99-default.network").write_text("[Match]\nName=eth*\n")
    done = write(tmp_path, "networkd")
    dropin = tmp_path / "etc/systemd/network/05-loopback.network.d/lvsha-vip.conf"
    assert f"wrote {dropin}" in done
    assert not (tmp_path / NETWORKD_FILE).exists()
    assert "[Match]" not in dropin.read_text()
    assert "[Address]\nAddress=192.0.2.100/32\n" in dropin.read_text()


def test_writing_twice_changes_nothing_and_dry_run_writes_nothing(tmp_path: Path) -> None:
    assert write(tmp_path / "a", "networkd", dry_run=True) == [
        f"would write {tmp_path / 'a' / SYSCTL_FILE}",
        f"would write {tmp_path / 'a' / NETWORKD_FILE}",
    ]
    assert not (tmp_path / "a").exists()
    write(tmp_path, "ifupdown")
    assert write(tmp_path, "ifupdown") == []
    # a changed VIP list rewrites the lvsha file only
    assert write(tmp_path, "ifupdown", ["192.0.2.100"]) == [f"wrote {tmp_path / IFUPDOWN_FILE}"]


def test_vips_are_slash_32_only() -> None:
    assert parse_vips(["192.0.2.100", "192.0.2.100/32", " 198.51.100.80 "]) == [
        "192.0.2.100",
        "198.51.100.80",
    ]
    with pytest.raises(ValueError, match="a VIP goes on lo as a /32, not /24"):
        parse_vips(["192.0.2.100/24"])
    with pytest.raises(ValueError, match="not an IPv4 or IPv6 address"):
        parse_vips(["web1"])


def test_ipv6_vips_are_slash_128_only_in_their_one_spelling() -> None:
    assert parse_vips(["2001:DB8::100", "2001:db8:0::100/128", "192.0.2.100"]) == [
        "2001:db8::100",
        "192.0.2.100",
    ]
    with pytest.raises(ValueError, match="an IPv6 VIP goes on lo as a /128, not /64"):
        parse_vips(["2001:db8::100/64"])
    with pytest.raises(ValueError, match="not a unicast address"):
        parse_vips(["ff02::1"])
    with pytest.raises(ValueError, match="not an IPv4 or IPv6 address"):
        parse_vips(["2001:db8::zz"])


def test_ipv6_vips_persist_on_lo_without_dad_and_without_arp_sysctls(tmp_path: Path) -> None:
    vips = ["2001:db8::100", "2001:db8::101"]
    files = persistent_files(vips, "networkd", tmp_path)
    assert list(files) == [tmp_path / "etc/systemd/network/10-lvsha-lo.network"]  # no sysctl
    text = files[tmp_path / "etc/systemd/network/10-lvsha-lo.network"]
    assert "[Address]\nAddress=2001:db8::100/128\nDuplicateAddressDetection=none\n" in text
    stanza = persistent_files(vips, "ifupdown", tmp_path)[tmp_path / IFUPDOWN_FILE]
    assert "iface lo inet6 static\n    address 2001:db8::100/128\n    dad-attempts 0\n" in stanza
    assert "up ip -6 addr add 2001:db8::101/128 dev lo nodad" in stanza
    both = persistent_files(["192.0.2.100", *vips], "ifupdown", tmp_path)
    assert tmp_path / SYSCTL_FILE in both  # an IPv4 VIP brings the ARP sysctls
    assert "iface lo:0 inet static" in both[tmp_path / IFUPDOWN_FILE]


def test_main_setup_reports_bad_input_without_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main_setup(["192.0.2.0/24"], None, True) == 1
    assert capsys.readouterr().out.startswith("lvsha realserver setup: '192.0.2.0/24': a VIP")
    assert main_setup(["192.0.2.100"], "yaml", True) == 1
    assert "--write must be one of sysctl.d, ifupdown, networkd" in capsys.readouterr().out
