#!/usr/bin/python3
"""Man pages lvsha(8) and lvsha.toml(5), and the bash completion, from the docs.

lvsha(8) and the completion come from the argparse help of the `lvsha` being
packaged (run as a program, so the pages describe exactly what ships);
lvsha.toml(5) is docs/configuration.md rendered to roff. Standard library only:
the package build (scripts/build-deb) runs it with Debian's python3.

    scripts/manpages.py OUTDIR -- LVSHA_COMMAND...
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Command:
    """One (sub)command as its --help describes it."""

    path: list[str]
    usage: str = ""
    description: str = ""
    sections: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)
    children: list[tuple[str, str]] = field(default_factory=list)  # (name, help)
    sub: list[Command] = field(default_factory=list)


def _help(lvsha: list[str], path: list[str]) -> str:
    env = dict(os.environ, COLUMNS="1000", LC_ALL="C.UTF-8")
    out = subprocess.run(
        [*lvsha, *path, "--help"], capture_output=True, text=True, env=env, timeout=60, check=True
    )
    return out.stdout


def parse_help(text: str, path: list[str]) -> Command:
    """Split argparse's output into usage, description and (entry, help) sections."""
    cmd = Command(path)
    blocks = re.split(r"\n\s*\n", text.strip("\n"))
    cmd.usage = " ".join(blocks[0].split())[len("usage: ") :].replace(" [-h]", "")
    for block in blocks[1:]:
        lines = block.splitlines()
        if not lines[0].endswith(":") or lines[0].startswith(" "):
            cmd.description += (" " if cmd.description else "") + " ".join(block.split())
            continue
        entries: list[tuple[str, str]] = []
        for line in lines[1:]:
            if re.match(r"^ {2}\S", line):
                name, _, text_ = line.strip().partition("  ")
                entries.append((name.strip(), text_.strip()))
            elif re.match(r"^ {4}\S", line) and entries and entries[-1][0].startswith("{"):
                name, _, text_ = line.strip().partition("  ")
                cmd.children.append((name.strip(), text_.strip()))
            elif entries:
                name, text_ = entries[-1]
                entries[-1] = (name, f"{text_} {line.strip()}".strip())
        cmd.sections.append((lines[0][:-1], [e for e in entries if not e[0].startswith("{")]))
    return cmd


def collect(lvsha: list[str], path: list[str] | None = None) -> Command:
    path = path or []
    cmd = parse_help(_help(lvsha, path), path)
    cmd.sub = [collect(lvsha, [*path, name]) for name, _ in cmd.children]
    return cmd


def roff(text: str) -> str:
    """Inline markdown (`code`, **bold**, [text](link)) to roff, escaped."""
    text = text.replace("\\", "\\e")
    text = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", text)
    text = re.sub(r"`([^`]+)`", r"\\fB\1\\fR", text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"\\fB\1\\fR", text)
    text = text.replace("-", "\\-")
    return text


def line(text: str) -> str:
    """A text line that roff does not take for a request."""
    return "\\&" + text if text[:1] in ".'" else text


def header(name: str, section: int, title: str, version: str) -> list[str]:
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", time.time()))
    date = time.strftime("%Y-%m-%d", time.gmtime(epoch))
    return [
        f'.TH "{name.upper()}" "{section}" "{date}" "lvsha {version}" "{title}"',
        ".SH NAME",
        f"{roff(name)} \\- {roff(title_of(name))}",
    ]


def title_of(name: str) -> str:
    return {
        "lvsha": "VRRP and IPVS high availability for LVS directors",
        "lvsha.toml": "configuration file of lvsha(8)",
    }[name]


def option_entries(cmd: Command) -> list[str]:
    out: list[str] = []
    for _title, entries in cmd.sections:
        for name, text in entries:
            if name in ("-h, --help",):
                continue
            out += [".TP", f"\\fB{roff(name)}\\fR", line(roff(text) or "(no description)")]
    return out


def walk(cmd: Command) -> list[Command]:
    return [cmd, *(c for s in cmd.sub for c in walk(s))]


def page_lvsha(top: Command, version: str) -> str:
    out = header("lvsha", 8, "System Administration", version)
    out += [".SH SYNOPSIS", f"\\fBlvsha\\fR {roff(top.usage.removeprefix('lvsha '))}"]
    out += [".SH DESCRIPTION", line(roff(top.description)) + "."]
    out += [
        ".PP",
        "lvsha elects a master between two directors with VRRPv2 (RFC 3768), holds",
        "the virtual IP addresses on the master, programs IPVS through netlink and",
        "health-checks the real servers. It replaces keepalived in an active/standby",
        "pair. Under systemd it runs as \\fBlvsha.service\\fR, which starts only once",
        "\\fI/etc/lvsha.toml\\fR exists; an annotated example is in",
        "\\fI/usr/share/doc/lvsha/examples/lvsha.toml\\fR.",
    ]
    out += [".SH OPTIONS", *option_entries(top)]
    out += [".SH COMMANDS"]
    helps = {tuple([*c.path, n]): h for c in walk(top) for n, h in c.children}
    for cmd in walk(top)[1:]:
        if cmd.sub:
            continue
        out += [".SS " + f'"{roff(cmd.usage)}"', line(roff(helps.get(tuple(cmd.path), "")))]
        if cmd.description:
            out += [".PP", line(roff(cmd.description))]
        out += option_entries(cmd)
    out += [
        ".SH EXIT STATUS",
        ".TP\n0\nsuccess",
        ".TP\n1\nruntime failure",
        ".TP\n69\nthe daemon is not running (no control socket)",
        ".TP\n77\npermission denied",
        ".TP\n78\nconfiguration error: every problem is printed as \\fIkey.path: message\\fR",
        ".SH SIGNALS",
        ".TP\nSIGHUP\nreload /etc/lvsha.toml; a bad file keeps the running configuration",
        ".TP\nSIGTERM\nstop: a master sends one advertisement with priority 0, removes its",
        "VIPs and exits 0; the IPVS table stays",
        ".SH FILES",
        ".TP\n\\fI/etc/lvsha.toml\\fR\nthe configuration, see \\fBlvsha.toml\\fR(5)",
        ".TP\n\\fI/run/lvsha/lvsha.sock\\fR\nthe control socket of \\fBlvsha status\\fR and",
        "\\fBlvsha reload\\fR",
        ".TP\n\\fI/usr/share/doc/lvsha/\\fR\nthe documentation (install, operations,",
        "troubleshooting, migration from keepalived)",
        ".SH SEE ALSO",
        "\\fBlvsha.toml\\fR(5), \\fBsystemctl\\fR(1), \\fBjournalctl\\fR(1), \\fBipvsadm\\fR(8),",
        "\\fBkeepalived\\fR(8)",
    ]
    return "\n".join(out) + "\n"


def page_config(markdown: str, version: str) -> str:
    """docs/configuration.md as lvsha.toml(5): headings, paragraphs, tables, code."""
    out = header("lvsha.toml", 5, "File Formats", version)
    out += [".SH DESCRIPTION"]
    para: list[str] = []
    in_code = False

    def flush() -> None:
        if para:
            out.extend([".PP", line(roff(" ".join(para)))])
            para.clear()

    for raw in markdown.splitlines()[1:]:  # the first line is the title
        if raw.startswith("```"):
            flush()
            out.append(".EE\n.RE" if in_code else ".RS 4\n.EX")
            in_code = not in_code
        elif in_code:
            out.append(line(raw.replace("\\", "\\e").replace("-", "\\-")))
        elif m := re.match(r"^(#{2,6}) (.*)", raw):
            flush()
            out.append((".SH " if len(m[1]) == 2 else ".SS ") + f'"{roff(m[2])}"')
        elif raw.startswith("|"):
            flush()
            cells = [c.strip() for c in raw.strip().strip("|").split("|")]
            if cells[0] in ("key", "") or set(cells[0]) <= set("-:"):
                continue
            key, *rest = cells
            rest += [""] * (3 - len(rest))
            kind, default, meaning = rest[:3]
            what = ", ".join(x for x in (kind, f"default: {default}" if default else "") if x)
            out += [".TP", f"{roff(key)} ({roff(what)})", line(roff(meaning) or "\\&")]
        elif m := re.match(r"^\s*[*-] (.*)", raw):
            flush()
            out += [".IP \\(bu 2", line(roff(m[1]))]
        elif not raw.strip():
            flush()
        else:
            para.append(raw.strip())
    flush()
    out += [
        ".SH FILES",
        ".TP\n\\fI/etc/lvsha.toml\\fR\nread by \\fBlvsha run\\fR at start and on SIGHUP",
        ".TP\n\\fI/usr/share/doc/lvsha/examples/lvsha.toml\\fR\nthe annotated lvs01 pair",
        ".SH SEE ALSO",
        "\\fBlvsha\\fR(8), \\fBkeepalived.conf\\fR(5)",
    ]
    return "\n".join(out) + "\n"


def completion(top: Command) -> str:
    """A bash completion: subcommands, their options, choices and file arguments."""
    words: dict[str, str] = {}
    takes_value: set[str] = set()
    choices: dict[str, str] = {}
    for cmd in walk(top):
        opts: list[str] = []
        for _title, entries in cmd.sections:
            for name, _text in entries:
                for variant in name.split(", "):
                    flag, _, arg = variant.partition(" ")
                    if not flag.startswith("-"):
                        continue
                    opts.append(flag)
                    if arg:
                        takes_value.add(flag)
                        if arg.startswith("{"):
                            choices[flag] = arg.strip("{}").replace(",", " ")
        words[" ".join(["lvsha", *cmd.path])] = " ".join([n for n, _ in cmd.children] + opts)
    tree = "\n".join(f'    ["{k}"]="{v}"' for k, v in sorted(words.items()))
    value_opts = "|".join(sorted(takes_value))
    cases = "\n".join(
        f'      {flag}) COMPREPLY=($(compgen -W "{c}" -- "$cur")); return ;;'
        for flag, c in sorted(choices.items())
    )
    return f"""# bash completion for lvsha(8); generated by scripts/manpages.py from `lvsha --help`
_lvsha() {{
  local cur=${{COMP_WORDS[COMP_CWORD]}} prev=${{COMP_WORDS[COMP_CWORD-1]}} path=lvsha i w
  local -A tree=(
{tree}
  )
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${{COMP_WORDS[i]}}
    case $w in
      {value_opts}) ((i++)) ;;
      -*) ;;
      *) [[ -n ${{tree["$path $w"]+x}} ]] && path="$path $w" ;;
    esac
  done
  case $prev in
{cases}
      --config|--output|--socket|-o) COMPREPLY=($(compgen -f -- "$cur")); return ;;
      {value_opts}) return ;;
  esac
  case $path:$cur in
    "lvsha check-config":[!-]*|"lvsha import-keepalived":[!-]*|*-config:|*-keepalived:)
      COMPREPLY=($(compgen -f -- "$cur")); return ;;
  esac
  COMPREPLY=($(compgen -W "${{tree[$path]}}" -- "$cur"))
}}
complete -F _lvsha lvsha
"""


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 64
    outdir, lvsha = Path(argv[0]), argv[2:]
    outdir.mkdir(parents=True, exist_ok=True)
    version = subprocess.run(
        [*lvsha, "--version"], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()[-1]
    top = collect(lvsha)
    (outdir / "lvsha.8").write_text(page_lvsha(top, version))
    config_md = (ROOT / "docs" / "configuration.md").read_text()
    (outdir / "lvsha.toml.5").write_text(page_config(config_md, version))
    (outdir / "lvsha.bash-completion").write_text(completion(top))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
